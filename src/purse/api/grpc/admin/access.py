"""AdminService: signing in, administrators, API keys and the audit log."""

from __future__ import annotations

import json

from google.protobuf.timestamp_pb2 import Timestamp

from purse.admin.v1 import admin_service_pb2 as pb
from purse.api.grpc.admin.calls import administrator_call
from purse.api.grpc.admin.mapping import archive_time
from purse.api.grpc.common.calls import Context, public_call
from purse.domain.administrators import Access, AdministratorContext, Role
from purse.service.admin.administrators import (
    Administrator,
    Administrators,
    ApiKey,
    AuditEntry,
)
from purse.service.authentication import AdministratorAuthenticator

_roles = {
    pb.ADMINISTRATOR_ROLE_OWNER: Role.OWNER,
    pb.ADMINISTRATOR_ROLE_MANAGER: Role.MANAGER,
    pb.ADMINISTRATOR_ROLE_ANALYST: Role.ANALYST,
}
_role_numbers = {role: number for number, role in _roles.items()}


def administrator_to_proto(administrator: Administrator) -> pb.Administrator:
    message = pb.Administrator(
        administrator_id=administrator.administrator_id,
        login=administrator.login,
        name=administrator.name,
        role=_role_numbers[administrator.role],
        version=administrator.version,
    )
    message.create_time.FromDatetime(administrator.created_at)
    archive_time(message, administrator.archived_at)
    return message


def _caller_to_proto(caller: AdministratorContext) -> pb.Administrator:
    return pb.Administrator(
        administrator_id=caller.administrator_id,
        login=caller.login,
        role=_role_numbers[caller.role],
    )


def api_key_to_proto(key: ApiKey) -> pb.ApiKey:
    message = pb.ApiKey(
        api_key_id=key.api_key_id, administrator_id=key.administrator_id, name=key.name
    )
    message.create_time.FromDatetime(key.created_at)
    if key.revoked_at is not None:
        message.revoke_time.FromDatetime(key.revoked_at)
    return message


def _entry_to_proto(entry: AuditEntry) -> pb.AuditEntry:
    message = pb.AuditEntry(
        entry_id=entry.entry_id,
        administrator_id=entry.administrator_id or 0,
        actor=entry.actor,
        action=entry.action,
        resource=entry.resource,
        resource_id=entry.resource_id,
        before_json="" if entry.before is None else json.dumps(entry.before, sort_keys=True),
        after_json="" if entry.after is None else json.dumps(entry.after, sort_keys=True),
    )
    message.record_time.FromDatetime(entry.recorded_at)
    return message


class AccessCalls:
    """Sign-in, administrators, keys and the audit log."""

    authenticator: AdministratorAuthenticator
    administrators: Administrators

    @public_call
    async def SignIn(self, request: pb.SignInRequest, context: Context) -> pb.SignInResponse:
        token, expires_at, caller = await self.authenticator.sign_in(
            request.login, request.password
        )
        administrator = await self.administrators.get(caller.business_id, caller.administrator_id)
        return pb.SignInResponse(
            token=token,
            expire_time=Timestamp(seconds=expires_at),
            administrator=administrator_to_proto(administrator),
            business_id=caller.business_id,
        )

    @administrator_call(Access.READ)
    async def GetCaller(
        self, request: pb.GetCallerRequest, context: Context, caller: AdministratorContext
    ) -> pb.GetCallerResponse:
        return pb.GetCallerResponse(
            business_id=caller.business_id, administrator=_caller_to_proto(caller)
        )

    @administrator_call(Access.ADMINISTER)
    async def CreateAdministrator(
        self,
        request: pb.CreateAdministratorRequest,
        context: Context,
        caller: AdministratorContext,
    ) -> pb.CreateAdministratorResponse:
        administrator = await self.administrators.create(
            caller.actor, request.login, request.name, _roles.get(request.role), request.password
        )
        return pb.CreateAdministratorResponse(administrator=administrator_to_proto(administrator))

    @administrator_call(Access.READ)
    async def ListAdministrators(
        self,
        request: pb.ListAdministratorsRequest,
        context: Context,
        caller: AdministratorContext,
    ) -> pb.ListAdministratorsResponse:
        page = await self.administrators.page(
            caller.business_id, request.page_size, request.page_token, request.show_archived
        )
        response = pb.ListAdministratorsResponse(next_page_token=page.next_page_token)
        response.administrators.extend(administrator_to_proto(each) for each in page.items)
        return response

    @administrator_call(Access.ADMINISTER)
    async def UpdateAdministrator(
        self,
        request: pb.UpdateAdministratorRequest,
        context: Context,
        caller: AdministratorContext,
    ) -> pb.UpdateAdministratorResponse:
        administrator = await self.administrators.update(
            caller.actor,
            request.administrator_id,
            request.expected_version,
            request.name,
            _roles.get(request.role),
        )
        return pb.UpdateAdministratorResponse(administrator=administrator_to_proto(administrator))

    @administrator_call(Access.ADMINISTER)
    async def ArchiveAdministrator(
        self,
        request: pb.ArchiveAdministratorRequest,
        context: Context,
        caller: AdministratorContext,
    ) -> pb.ArchiveAdministratorResponse:
        administrator = await self.administrators.archive(
            caller.actor, request.administrator_id, request.expected_version
        )
        return pb.ArchiveAdministratorResponse(administrator=administrator_to_proto(administrator))

    # Anyone sets their own password and manages their own keys; the use case asks an
    # owner's access for anyone else's.
    @administrator_call(Access.READ)
    async def SetAdministratorPassword(
        self,
        request: pb.SetAdministratorPasswordRequest,
        context: Context,
        caller: AdministratorContext,
    ) -> pb.SetAdministratorPasswordResponse:
        administrator = await self.administrators.set_password(
            caller, request.administrator_id, request.current_password, request.new_password
        )
        return pb.SetAdministratorPasswordResponse(
            administrator=administrator_to_proto(administrator)
        )

    @administrator_call(Access.READ)
    async def CreateApiKey(
        self, request: pb.CreateApiKeyRequest, context: Context, caller: AdministratorContext
    ) -> pb.CreateApiKeyResponse:
        key, secret = await self.administrators.create_key(
            caller, request.administrator_id, request.name
        )
        return pb.CreateApiKeyResponse(api_key=api_key_to_proto(key), secret=secret)

    @administrator_call(Access.READ)
    async def ListApiKeys(
        self, request: pb.ListApiKeysRequest, context: Context, caller: AdministratorContext
    ) -> pb.ListApiKeysResponse:
        page = await self.administrators.keys(
            caller.business_id,
            request.administrator_id,
            request.page_size,
            request.page_token,
            request.show_revoked,
        )
        response = pb.ListApiKeysResponse(next_page_token=page.next_page_token)
        response.api_keys.extend(api_key_to_proto(each) for each in page.items)
        return response

    @administrator_call(Access.READ)
    async def RotateApiKey(
        self, request: pb.RotateApiKeyRequest, context: Context, caller: AdministratorContext
    ) -> pb.RotateApiKeyResponse:
        key, secret = await self.administrators.rotate_key(caller, request.api_key_id)
        return pb.RotateApiKeyResponse(api_key=api_key_to_proto(key), secret=secret)

    @administrator_call(Access.READ)
    async def RevokeApiKey(
        self, request: pb.RevokeApiKeyRequest, context: Context, caller: AdministratorContext
    ) -> pb.RevokeApiKeyResponse:
        key = await self.administrators.revoke_key(caller, request.api_key_id)
        return pb.RevokeApiKeyResponse(api_key=api_key_to_proto(key))

    @administrator_call(Access.READ)
    async def ListAuditEntries(
        self,
        request: pb.ListAuditEntriesRequest,
        context: Context,
        caller: AdministratorContext,
    ) -> pb.ListAuditEntriesResponse:
        page = await self.administrators.audit(
            caller.business_id,
            request.resource,
            request.resource_id,
            request.page_size,
            request.page_token,
        )
        response = pb.ListAuditEntriesResponse(next_page_token=page.next_page_token)
        response.entries.extend(_entry_to_proto(each) for each in page.items)
        return response
