"""PlatformService: the operator's calls, authenticated by an operator key."""

from __future__ import annotations

from purse.api.grpc.common.calls import Context, bearer_credential, public_call
from purse.platform.v1 import platform_service_pb2 as pb
from purse.platform.v1 import platform_service_pb2_grpc
from purse.service.admin.business import BusinessSettings, languages_or_default
from purse.service.platform import NewOwner, Platform


class PlatformServicer(platform_service_pb2_grpc.PlatformServiceServicer):
    def __init__(self, platform: Platform) -> None:
        self._platform = platform

    @public_call
    async def CreateBusiness(
        self, request: pb.CreateBusinessRequest, context: Context
    ) -> pb.CreateBusinessResponse:
        await self._platform.authenticate(bearer_credential(context))
        founded = await self._platform.create_business(
            BusinessSettings(
                request.name,
                request.currency,
                languages_or_default(request.languages),
                request.time_zone or "UTC",
                request.phone_prefix,
            ),
            NewOwner(request.owner_login, request.owner_password, request.owner_name),
        )
        return pb.CreateBusinessResponse(
            business_id=founded.business_id,
            owner_administrator_id=founded.owner_administrator_id,
            owner_api_key=founded.owner_api_key,
        )
