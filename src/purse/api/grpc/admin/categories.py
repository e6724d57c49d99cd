"""AdminService: customer categories."""

from __future__ import annotations

from purse.admin.v1 import admin_service_pb2 as pb
from purse.api.grpc.admin.calls import administrator_call
from purse.api.grpc.admin.mapping import archive_time
from purse.api.grpc.common.calls import Context
from purse.domain.administrators import Access, AdministratorContext
from purse.service.admin.categories import Category, CategoryDraft, CustomerCategories


def category_to_proto(category: Category) -> pb.CustomerCategory:
    message = pb.CustomerCategory(
        category_id=category.category_id,
        name=category.name,
        title=category.title,
        description=category.description,
        is_default=category.is_default,
        version=category.version,
    )
    archive_time(message, category.archived_at)
    return message


def _draft(message: pb.CustomerCategory) -> CategoryDraft:
    return CategoryDraft(
        message.name, dict(message.title), dict(message.description), message.is_default
    )


class CategoryCalls:
    """The customer category RPCs of AdminService."""

    categories: CustomerCategories

    @administrator_call(Access.CHANGE)
    async def CreateCustomerCategory(
        self,
        request: pb.CreateCustomerCategoryRequest,
        context: Context,
        caller: AdministratorContext,
    ) -> pb.CreateCustomerCategoryResponse:
        category = await self.categories.create(caller.actor, _draft(request.category))
        return pb.CreateCustomerCategoryResponse(category=category_to_proto(category))

    @administrator_call(Access.READ)
    async def GetCustomerCategory(
        self, request: pb.GetCustomerCategoryRequest, context: Context, caller: AdministratorContext
    ) -> pb.GetCustomerCategoryResponse:
        category = await self.categories.get(caller.business_id, request.category_id)
        return pb.GetCustomerCategoryResponse(category=category_to_proto(category))

    @administrator_call(Access.READ)
    async def ListCustomerCategories(
        self,
        request: pb.ListCustomerCategoriesRequest,
        context: Context,
        caller: AdministratorContext,
    ) -> pb.ListCustomerCategoriesResponse:
        page = await self.categories.page(
            caller.business_id, request.page_size, request.page_token, request.show_archived
        )
        response = pb.ListCustomerCategoriesResponse(next_page_token=page.next_page_token)
        response.categories.extend(category_to_proto(each) for each in page.items)
        return response

    @administrator_call(Access.CHANGE)
    async def UpdateCustomerCategory(
        self,
        request: pb.UpdateCustomerCategoryRequest,
        context: Context,
        caller: AdministratorContext,
    ) -> pb.UpdateCustomerCategoryResponse:
        category = await self.categories.update(
            caller.actor,
            request.category.category_id,
            request.expected_version,
            _draft(request.category),
        )
        return pb.UpdateCustomerCategoryResponse(category=category_to_proto(category))

    @administrator_call(Access.CHANGE)
    async def ArchiveCustomerCategory(
        self,
        request: pb.ArchiveCustomerCategoryRequest,
        context: Context,
        caller: AdministratorContext,
    ) -> pb.ArchiveCustomerCategoryResponse:
        category = await self.categories.archive(
            caller.actor, request.category_id, request.expected_version
        )
        return pb.ArchiveCustomerCategoryResponse(category=category_to_proto(category))
