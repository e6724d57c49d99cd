"""AdminService: the business's own settings."""

from __future__ import annotations

from purse.admin.v1 import admin_service_pb2 as pb
from purse.api.grpc.admin.calls import administrator_call
from purse.api.grpc.common.calls import Context
from purse.domain.administrators import Access, AdministratorContext
from purse.service.admin.business import Business, Businesses, BusinessSettings


def business_to_proto(business: Business) -> pb.Business:
    settings = business.settings
    message = pb.Business(
        business_id=business.business_id,
        name=settings.name,
        currency=settings.currency,
        languages=settings.languages,
        time_zone=settings.time_zone,
        phone_prefix=settings.phone_prefix,
        version=business.version,
    )
    message.create_time.FromDatetime(business.created_at)
    return message


class BusinessCalls:
    businesses: Businesses

    @administrator_call(Access.READ)
    async def GetBusiness(
        self, request: pb.GetBusinessRequest, context: Context, caller: AdministratorContext
    ) -> pb.GetBusinessResponse:
        business = await self.businesses.get(caller.business_id)
        return pb.GetBusinessResponse(business=business_to_proto(business))

    @administrator_call(Access.CHANGE)
    async def UpdateBusiness(
        self, request: pb.UpdateBusinessRequest, context: Context, caller: AdministratorContext
    ) -> pb.UpdateBusinessResponse:
        sent = request.business
        settings = BusinessSettings(
            sent.name, sent.currency, tuple(sent.languages), sent.time_zone, sent.phone_prefix
        )
        business = await self.businesses.update(caller.actor, request.expected_version, settings)
        return pb.UpdateBusinessResponse(business=business_to_proto(business))
