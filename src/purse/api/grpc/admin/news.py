"""AdminService: news and information."""

from __future__ import annotations

from purse.admin.v1 import news_pb2 as pb
from purse.api.grpc.admin.calls import administrator_call
from purse.api.grpc.admin.mapping import archive_time, optional_moment, set_moment
from purse.api.grpc.common.calls import Context
from purse.domain.administrators import Access, AdministratorContext
from purse.domain.news import NewsDraft
from purse.service.admin.news import NewsItem, NewsItems


def news_item_to_proto(item: NewsItem) -> pb.NewsItem:
    settings = item.settings
    message = pb.NewsItem(
        news_item_id=item.news_item_id,
        title=settings.title,
        text=settings.text,
        image_url=settings.image_url,
        point_of_sale_ids=settings.point_of_sale_ids,
        version=item.version,
    )
    set_moment(message, "publication_start_time", settings.publication_start)
    set_moment(message, "publication_end_time", settings.publication_end)
    message.create_time.FromDatetime(item.created_at)
    archive_time(message, item.archived_at)
    return message


def _draft(message: pb.NewsItem) -> NewsDraft:
    path = "news_item"
    return NewsDraft(
        dict(message.title),
        dict(message.text),
        message.image_url,
        tuple(message.point_of_sale_ids),
        optional_moment(message, "publication_start_time", f"{path}.publication_start_time"),
        optional_moment(message, "publication_end_time", f"{path}.publication_end_time"),
    )


class NewsCalls:
    """The news and information RPCs of AdminService."""

    news: NewsItems

    @administrator_call(Access.CHANGE)
    async def CreateNewsItem(
        self, request: pb.CreateNewsItemRequest, context: Context, caller: AdministratorContext
    ) -> pb.CreateNewsItemResponse:
        item = await self.news.create(caller.actor, _draft(request.news_item))
        return pb.CreateNewsItemResponse(news_item=news_item_to_proto(item))

    @administrator_call(Access.READ)
    async def GetNewsItem(
        self, request: pb.GetNewsItemRequest, context: Context, caller: AdministratorContext
    ) -> pb.GetNewsItemResponse:
        item = await self.news.get(caller.business_id, request.news_item_id)
        return pb.GetNewsItemResponse(news_item=news_item_to_proto(item))

    @administrator_call(Access.READ)
    async def ListNewsItems(
        self, request: pb.ListNewsItemsRequest, context: Context, caller: AdministratorContext
    ) -> pb.ListNewsItemsResponse:
        if request.published_now:
            page = await self.news.published_page(
                caller.business_id, request.page_size, request.page_token
            )
        else:
            page = await self.news.page(
                caller.business_id, request.page_size, request.page_token, request.show_archived
            )
        response = pb.ListNewsItemsResponse(next_page_token=page.next_page_token)
        response.news_items.extend(news_item_to_proto(each) for each in page.items)
        return response

    @administrator_call(Access.CHANGE)
    async def UpdateNewsItem(
        self, request: pb.UpdateNewsItemRequest, context: Context, caller: AdministratorContext
    ) -> pb.UpdateNewsItemResponse:
        item = await self.news.update(
            caller.actor,
            request.news_item.news_item_id,
            request.expected_version,
            _draft(request.news_item),
        )
        return pb.UpdateNewsItemResponse(news_item=news_item_to_proto(item))

    @administrator_call(Access.CHANGE)
    async def ArchiveNewsItem(
        self, request: pb.ArchiveNewsItemRequest, context: Context, caller: AdministratorContext
    ) -> pb.ArchiveNewsItemResponse:
        item = await self.news.archive(caller.actor, request.news_item_id, request.expected_version)
        return pb.ArchiveNewsItemResponse(news_item=news_item_to_proto(item))
