"""AdminService: points of sale."""

from __future__ import annotations

from purse.admin.v1 import setup_pb2 as pb
from purse.api.grpc.admin.calls import administrator_call
from purse.api.grpc.admin.mapping import archive_time
from purse.api.grpc.common.calls import Context
from purse.domain.administrators import Access, AdministratorContext
from purse.service.admin.points_of_sale import PointOfSale, PointOfSaleDraft, PointsOfSale


def point_of_sale_to_proto(point_of_sale: PointOfSale) -> pb.PointOfSale:
    message = pb.PointOfSale(
        point_of_sale_id=point_of_sale.point_of_sale_id,
        program_id=point_of_sale.program_id,
        name=point_of_sale.name,
        time_zone=point_of_sale.time_zone,
        title=point_of_sale.title,
        description=point_of_sale.description,
        address=point_of_sale.address,
        published=point_of_sale.published,
        version=point_of_sale.version,
    )
    message.create_time.FromDatetime(point_of_sale.created_at)
    archive_time(message, point_of_sale.archived_at)
    return message


def _draft(message: pb.PointOfSale) -> PointOfSaleDraft:
    return PointOfSaleDraft(
        message.program_id,
        message.name,
        message.time_zone,
        dict(message.title),
        dict(message.description),
        dict(message.address),
        message.published,
    )


class PointOfSaleCalls:
    """The point of sale RPCs of AdminService."""

    points_of_sale: PointsOfSale

    @administrator_call(Access.CHANGE)
    async def CreatePointOfSale(
        self, request: pb.CreatePointOfSaleRequest, context: Context, caller: AdministratorContext
    ) -> pb.CreatePointOfSaleResponse:
        created = await self.points_of_sale.create(caller.actor, _draft(request.point_of_sale))
        return pb.CreatePointOfSaleResponse(point_of_sale=point_of_sale_to_proto(created))

    @administrator_call(Access.READ)
    async def GetPointOfSale(
        self, request: pb.GetPointOfSaleRequest, context: Context, caller: AdministratorContext
    ) -> pb.GetPointOfSaleResponse:
        found = await self.points_of_sale.get(caller.business_id, request.point_of_sale_id)
        return pb.GetPointOfSaleResponse(point_of_sale=point_of_sale_to_proto(found))

    @administrator_call(Access.READ)
    async def ListPointsOfSale(
        self, request: pb.ListPointsOfSaleRequest, context: Context, caller: AdministratorContext
    ) -> pb.ListPointsOfSaleResponse:
        page = await self.points_of_sale.page(
            caller.business_id, request.page_size, request.page_token, request.show_archived
        )
        response = pb.ListPointsOfSaleResponse(next_page_token=page.next_page_token)
        response.points_of_sale.extend(point_of_sale_to_proto(each) for each in page.items)
        return response

    @administrator_call(Access.CHANGE)
    async def UpdatePointOfSale(
        self, request: pb.UpdatePointOfSaleRequest, context: Context, caller: AdministratorContext
    ) -> pb.UpdatePointOfSaleResponse:
        updated = await self.points_of_sale.update(
            caller.actor,
            request.point_of_sale.point_of_sale_id,
            request.expected_version,
            _draft(request.point_of_sale),
        )
        return pb.UpdatePointOfSaleResponse(point_of_sale=point_of_sale_to_proto(updated))

    @administrator_call(Access.CHANGE)
    async def ArchivePointOfSale(
        self, request: pb.ArchivePointOfSaleRequest, context: Context, caller: AdministratorContext
    ) -> pb.ArchivePointOfSaleResponse:
        archived = await self.points_of_sale.archive(
            caller.actor, request.point_of_sale_id, request.expected_version
        )
        return pb.ArchivePointOfSaleResponse(point_of_sale=point_of_sale_to_proto(archived))
