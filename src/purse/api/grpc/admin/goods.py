"""AdminService: goods categories and goods, with the price list upsert."""

from __future__ import annotations

from purse.admin.v1 import catalogue_pb2 as pb
from purse.api.grpc.admin.calls import administrator_call
from purse.api.grpc.admin.mapping import archive_time
from purse.api.grpc.common.calls import Context
from purse.domain.administrators import Access, AdministratorContext
from purse.domain.catalogue_setup import GoodsCategoryDraft, GoodsDraft
from purse.service.admin.goods import Goods, GoodsCategories, GoodsCategoryRecord, GoodsRecord


def goods_category_to_proto(record: GoodsCategoryRecord) -> pb.GoodsCategory:
    message = pb.GoodsCategory(
        goods_category_id=record.goods_category_id,
        code=record.settings.code,
        name=record.settings.name,
        version=record.version,
    )
    archive_time(message, record.archived_at)
    return message


def goods_to_proto(record: GoodsRecord) -> pb.Goods:
    settings = record.settings
    message = pb.Goods(
        product_code=settings.product_code,
        title=settings.title,
        price_minor_units=settings.price_minor_units,
        goods_category_code=settings.goods_category_code,
        version=record.version,
    )
    archive_time(message, record.archived_at)
    return message


def _category_draft(message: pb.GoodsCategory) -> GoodsCategoryDraft:
    return GoodsCategoryDraft(message.code, message.name)


def goods_draft(message: pb.Goods) -> GoodsDraft:
    return GoodsDraft(
        message.product_code, message.title, message.price_minor_units, message.goods_category_code
    )


class GoodsCalls:
    """The goods category and goods RPCs of AdminService."""

    goods_categories: GoodsCategories
    goods: Goods

    @administrator_call(Access.CHANGE)
    async def CreateGoodsCategory(
        self, request: pb.CreateGoodsCategoryRequest, context: Context, caller: AdministratorContext
    ) -> pb.CreateGoodsCategoryResponse:
        record = await self.goods_categories.create(
            caller.actor, _category_draft(request.goods_category)
        )
        return pb.CreateGoodsCategoryResponse(goods_category=goods_category_to_proto(record))

    @administrator_call(Access.READ)
    async def GetGoodsCategory(
        self, request: pb.GetGoodsCategoryRequest, context: Context, caller: AdministratorContext
    ) -> pb.GetGoodsCategoryResponse:
        record = await self.goods_categories.get(caller.business_id, request.goods_category_id)
        return pb.GetGoodsCategoryResponse(goods_category=goods_category_to_proto(record))

    @administrator_call(Access.READ)
    async def ListGoodsCategories(
        self, request: pb.ListGoodsCategoriesRequest, context: Context, caller: AdministratorContext
    ) -> pb.ListGoodsCategoriesResponse:
        page = await self.goods_categories.page(
            caller.business_id, request.page_size, request.page_token, request.show_archived
        )
        response = pb.ListGoodsCategoriesResponse(next_page_token=page.next_page_token)
        response.goods_categories.extend(goods_category_to_proto(each) for each in page.items)
        return response

    @administrator_call(Access.CHANGE)
    async def UpdateGoodsCategory(
        self, request: pb.UpdateGoodsCategoryRequest, context: Context, caller: AdministratorContext
    ) -> pb.UpdateGoodsCategoryResponse:
        record = await self.goods_categories.update(
            caller.actor,
            request.goods_category.goods_category_id,
            request.expected_version,
            _category_draft(request.goods_category),
        )
        return pb.UpdateGoodsCategoryResponse(goods_category=goods_category_to_proto(record))

    @administrator_call(Access.CHANGE)
    async def ArchiveGoodsCategory(
        self,
        request: pb.ArchiveGoodsCategoryRequest,
        context: Context,
        caller: AdministratorContext,
    ) -> pb.ArchiveGoodsCategoryResponse:
        record = await self.goods_categories.archive(
            caller.actor, request.goods_category_id, request.expected_version
        )
        return pb.ArchiveGoodsCategoryResponse(goods_category=goods_category_to_proto(record))

    @administrator_call(Access.CHANGE)
    async def CreateGoods(
        self, request: pb.CreateGoodsRequest, context: Context, caller: AdministratorContext
    ) -> pb.CreateGoodsResponse:
        record = await self.goods.create(caller.actor, goods_draft(request.goods))
        return pb.CreateGoodsResponse(goods=goods_to_proto(record))

    @administrator_call(Access.READ)
    async def GetGoods(
        self, request: pb.GetGoodsRequest, context: Context, caller: AdministratorContext
    ) -> pb.GetGoodsResponse:
        record = await self.goods.get(caller.business_id, request.product_code)
        return pb.GetGoodsResponse(goods=goods_to_proto(record))

    @administrator_call(Access.READ)
    async def ListGoods(
        self, request: pb.ListGoodsRequest, context: Context, caller: AdministratorContext
    ) -> pb.ListGoodsResponse:
        page = await self.goods.page(
            caller.business_id, request.page_size, request.page_token, request.show_archived
        )
        response = pb.ListGoodsResponse(next_page_token=page.next_page_token)
        response.goods.extend(goods_to_proto(each) for each in page.items)
        return response

    @administrator_call(Access.CHANGE)
    async def UpdateGoods(
        self, request: pb.UpdateGoodsRequest, context: Context, caller: AdministratorContext
    ) -> pb.UpdateGoodsResponse:
        record = await self.goods.update(
            caller.actor, request.expected_version, goods_draft(request.goods)
        )
        return pb.UpdateGoodsResponse(goods=goods_to_proto(record))

    @administrator_call(Access.CHANGE)
    async def ArchiveGoods(
        self, request: pb.ArchiveGoodsRequest, context: Context, caller: AdministratorContext
    ) -> pb.ArchiveGoodsResponse:
        record = await self.goods.archive(
            caller.actor, request.product_code, request.expected_version
        )
        return pb.ArchiveGoodsResponse(goods=goods_to_proto(record))

    @administrator_call(Access.CHANGE)
    async def UpsertGoods(
        self, request: pb.UpsertGoodsRequest, context: Context, caller: AdministratorContext
    ) -> pb.UpsertGoodsResponse:
        counts = await self.goods.upsert(
            caller.actor, [goods_draft(each) for each in request.goods]
        )
        return pb.UpsertGoodsResponse(
            created_count=counts.created,
            updated_count=counts.updated,
            unchanged_count=counts.unchanged,
        )
