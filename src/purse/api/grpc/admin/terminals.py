"""AdminService: terminals and their credentials."""

from __future__ import annotations

from purse.admin.v1 import setup_pb2 as pb
from purse.api.grpc.admin.calls import administrator_call
from purse.api.grpc.admin.mapping import archive_time
from purse.api.grpc.common.calls import Context
from purse.api.grpc.terminal.customers import TERMINAL_KINDS
from purse.domain.administrators import Access, AdministratorContext
from purse.service.admin.terminals import (
    Terminal,
    TerminalApiKey,
    TerminalApiKeys,
    TerminalDraft,
    Terminals,
)

_terminal_kinds = {number: kind for kind, number in TERMINAL_KINDS.items()}


def terminal_to_proto(terminal: Terminal) -> pb.Terminal:
    message = pb.Terminal(
        terminal_id=terminal.terminal_id,
        point_of_sale_id=terminal.point_of_sale_id,
        name=terminal.name,
        kind=TERMINAL_KINDS[terminal.kind],
        login=terminal.login,
        enabled=terminal.enabled,
        version=terminal.version,
    )
    message.create_time.FromDatetime(terminal.created_at)
    archive_time(message, terminal.archived_at)
    return message


def api_key_to_proto(api_key: TerminalApiKey) -> pb.TerminalApiKey:
    message = pb.TerminalApiKey(
        api_key_id=api_key.api_key_id, terminal_id=api_key.terminal_id, name=api_key.name
    )
    message.create_time.FromDatetime(api_key.created_at)
    if api_key.revoked_at is not None:
        message.revoke_time.FromDatetime(api_key.revoked_at)
    return message


def _draft(message: pb.Terminal) -> TerminalDraft:
    """An unset or unknown kind travels as None: validation names it."""
    return TerminalDraft(
        message.point_of_sale_id,
        message.name,
        _terminal_kinds.get(message.kind),
        message.enabled if message.HasField("enabled") else True,
    )


class TerminalCalls:
    """The terminal RPCs of AdminService: the terminals, then their credentials."""

    terminals: Terminals
    terminal_api_keys: TerminalApiKeys

    @administrator_call(Access.CHANGE)
    async def CreateTerminal(
        self, request: pb.CreateTerminalRequest, context: Context, caller: AdministratorContext
    ) -> pb.CreateTerminalResponse:
        terminal = await self.terminals.create(
            caller.actor, _draft(request.terminal), request.terminal.login, request.password
        )
        return pb.CreateTerminalResponse(terminal=terminal_to_proto(terminal))

    @administrator_call(Access.READ)
    async def GetTerminal(
        self, request: pb.GetTerminalRequest, context: Context, caller: AdministratorContext
    ) -> pb.GetTerminalResponse:
        terminal = await self.terminals.get(caller.business_id, request.terminal_id)
        return pb.GetTerminalResponse(terminal=terminal_to_proto(terminal))

    @administrator_call(Access.READ)
    async def ListTerminals(
        self, request: pb.ListTerminalsRequest, context: Context, caller: AdministratorContext
    ) -> pb.ListTerminalsResponse:
        page = await self.terminals.page(
            caller.business_id,
            request.page_size,
            request.page_token,
            request.show_archived,
            ("point_of_sale_id", request.point_of_sale_id),
        )
        response = pb.ListTerminalsResponse(next_page_token=page.next_page_token)
        response.terminals.extend(terminal_to_proto(each) for each in page.items)
        return response

    @administrator_call(Access.CHANGE)
    async def UpdateTerminal(
        self, request: pb.UpdateTerminalRequest, context: Context, caller: AdministratorContext
    ) -> pb.UpdateTerminalResponse:
        terminal = await self.terminals.update(
            caller.actor,
            request.terminal.terminal_id,
            request.expected_version,
            _draft(request.terminal),
        )
        return pb.UpdateTerminalResponse(terminal=terminal_to_proto(terminal))

    @administrator_call(Access.CHANGE)
    async def ArchiveTerminal(
        self, request: pb.ArchiveTerminalRequest, context: Context, caller: AdministratorContext
    ) -> pb.ArchiveTerminalResponse:
        terminal = await self.terminals.archive(
            caller.actor, request.terminal_id, request.expected_version
        )
        return pb.ArchiveTerminalResponse(terminal=terminal_to_proto(terminal))

    @administrator_call(Access.CHANGE)
    async def SetTerminalPassword(
        self,
        request: pb.SetTerminalPasswordRequest,
        context: Context,
        caller: AdministratorContext,
    ) -> pb.SetTerminalPasswordResponse:
        terminal = await self.terminals.set_password(
            caller.actor, request.terminal_id, request.new_password
        )
        return pb.SetTerminalPasswordResponse(terminal=terminal_to_proto(terminal))

    @administrator_call(Access.CHANGE)
    async def CreateTerminalApiKey(
        self,
        request: pb.CreateTerminalApiKeyRequest,
        context: Context,
        caller: AdministratorContext,
    ) -> pb.CreateTerminalApiKeyResponse:
        api_key, secret = await self.terminal_api_keys.create(
            caller.actor, request.terminal_id, request.name
        )
        return pb.CreateTerminalApiKeyResponse(api_key=api_key_to_proto(api_key), secret=secret)

    @administrator_call(Access.READ)
    async def ListTerminalApiKeys(
        self,
        request: pb.ListTerminalApiKeysRequest,
        context: Context,
        caller: AdministratorContext,
    ) -> pb.ListTerminalApiKeysResponse:
        page = await self.terminal_api_keys.page(
            caller.business_id,
            request.page_size,
            request.page_token,
            request.show_revoked,
            ("terminal_id", request.terminal_id),
        )
        response = pb.ListTerminalApiKeysResponse(next_page_token=page.next_page_token)
        response.api_keys.extend(api_key_to_proto(each) for each in page.items)
        return response

    @administrator_call(Access.CHANGE)
    async def RevokeTerminalApiKey(
        self,
        request: pb.RevokeTerminalApiKeyRequest,
        context: Context,
        caller: AdministratorContext,
    ) -> pb.RevokeTerminalApiKeyResponse:
        api_key = await self.terminal_api_keys.revoke(caller.actor, request.api_key_id)
        return pb.RevokeTerminalApiKeyResponse(api_key=api_key_to_proto(api_key))

    @administrator_call(Access.CHANGE)
    async def RotateTerminalApiKey(
        self,
        request: pb.RotateTerminalApiKeyRequest,
        context: Context,
        caller: AdministratorContext,
    ) -> pb.RotateTerminalApiKeyResponse:
        api_key, secret = await self.terminal_api_keys.rotate(caller.actor, request.api_key_id)
        return pb.RotateTerminalApiKeyResponse(api_key=api_key_to_proto(api_key), secret=secret)
