"""AdminService: loyalty programs (their rules are the servicer's Get/SetProgramRules)."""

from __future__ import annotations

from purse.admin.v1 import setup_pb2 as pb
from purse.api.grpc.admin.calls import administrator_call
from purse.api.grpc.admin.mapping import archive_time
from purse.api.grpc.common.calls import Context
from purse.api.grpc.common.mapping import ACCESS_TYPES
from purse.domain.administrators import Access, AdministratorContext
from purse.domain.terminals import NoticeChannel
from purse.service.admin.loyalty_programs import LoyaltyProgram, LoyaltyPrograms, ProgramDraft

NOTICE_CHANNELS = {
    NoticeChannel.SMS: pb.NOTICE_CHANNEL_SMS,
    NoticeChannel.PUSH: pb.NOTICE_CHANNEL_PUSH,
    NoticeChannel.SMART: pb.NOTICE_CHANNEL_SMART,
    NoticeChannel.NONE: pb.NOTICE_CHANNEL_NONE,
}
_notice_channels = {number: channel for channel, number in NOTICE_CHANNELS.items()}
_access_types = {number: access_type for access_type, number in ACCESS_TYPES.items()}


def program_to_proto(program: LoyaltyProgram) -> pb.Program:
    message = pb.Program(
        program_id=program.program_id,
        name=program.name,
        enrols_unknown_phones=program.enrols_unknown_phones,
        default_access_type=ACCESS_TYPES[program.default_access_type],
        notice_channel=NOTICE_CHANNELS[program.notice_channel],
        rules_version=program.rules_version,
        version=program.version,
    )
    message.create_time.FromDatetime(program.created_at)
    archive_time(message, program.archived_at)
    return message


def _draft(message: pb.Program) -> ProgramDraft:
    """Unset or unknown enums travel as None: validation names them."""
    return ProgramDraft(
        message.name,
        message.enrols_unknown_phones,
        _access_types.get(message.default_access_type),
        _notice_channels.get(message.notice_channel),
    )


class ProgramCalls:
    """The program RPCs of AdminService."""

    loyalty_programs: LoyaltyPrograms

    @administrator_call(Access.CHANGE)
    async def CreateProgram(
        self, request: pb.CreateProgramRequest, context: Context, caller: AdministratorContext
    ) -> pb.CreateProgramResponse:
        program = await self.loyalty_programs.create(caller.actor, _draft(request.program))
        return pb.CreateProgramResponse(program=program_to_proto(program))

    @administrator_call(Access.READ)
    async def GetProgram(
        self, request: pb.GetProgramRequest, context: Context, caller: AdministratorContext
    ) -> pb.GetProgramResponse:
        program = await self.loyalty_programs.get(caller.business_id, request.program_id)
        return pb.GetProgramResponse(program=program_to_proto(program))

    @administrator_call(Access.READ)
    async def ListPrograms(
        self, request: pb.ListProgramsRequest, context: Context, caller: AdministratorContext
    ) -> pb.ListProgramsResponse:
        page = await self.loyalty_programs.page(
            caller.business_id, request.page_size, request.page_token, request.show_archived
        )
        response = pb.ListProgramsResponse(next_page_token=page.next_page_token)
        response.programs.extend(program_to_proto(each) for each in page.items)
        return response

    @administrator_call(Access.CHANGE)
    async def UpdateProgram(
        self, request: pb.UpdateProgramRequest, context: Context, caller: AdministratorContext
    ) -> pb.UpdateProgramResponse:
        program = await self.loyalty_programs.update(
            caller.actor,
            request.program.program_id,
            request.expected_version,
            _draft(request.program),
        )
        return pb.UpdateProgramResponse(program=program_to_proto(program))

    @administrator_call(Access.CHANGE)
    async def ArchiveProgram(
        self, request: pb.ArchiveProgramRequest, context: Context, caller: AdministratorContext
    ) -> pb.ArchiveProgramResponse:
        program = await self.loyalty_programs.archive(
            caller.actor, request.program_id, request.expected_version
        )
        return pb.ArchiveProgramResponse(program=program_to_proto(program))
