"""AdminService: a business administrator's calls, authenticated by an API key."""

from __future__ import annotations

from purse.api.grpc.admin.programs import program_from_proto, program_to_proto
from purse.api.grpc.common.calls import Context, authenticated_call
from purse.domain.administrators import AdministratorContext
from purse.service.admin.programs import Programs
from purse.service.authentication import AdministratorAuthenticator
from purse.v1 import admin_service_pb2 as pb
from purse.v1 import admin_service_pb2_grpc


class AdminServicer(admin_service_pb2_grpc.AdminServiceServicer):
    """The control panel contract over gRPC (program rules in this release)."""

    def __init__(self, authenticator: AdministratorAuthenticator, programs: Programs) -> None:
        self.authenticator = authenticator
        self._programs = programs

    @authenticated_call
    async def GetProgramRules(
        self,
        request: pb.GetProgramRulesRequest,
        context: Context,
        administrator: AdministratorContext,
    ) -> pb.GetProgramRulesResponse:
        program, version = await self._programs.rules(
            administrator.business_id, request.program_id, administrator.currency
        )
        return pb.GetProgramRulesResponse(rules=program_to_proto(program), rules_version=version)

    @authenticated_call
    async def SetProgramRules(
        self,
        request: pb.SetProgramRulesRequest,
        context: Context,
        administrator: AdministratorContext,
    ) -> pb.SetProgramRulesResponse:
        program = program_from_proto(request.rules, administrator.currency)
        version = await self._programs.replace(
            administrator.business_id, request.program_id, program
        )
        return pb.SetProgramRulesResponse(rules_version=version)
