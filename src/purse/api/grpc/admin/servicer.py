"""AdminService: a business administrator's calls.

The service is assembled from one class of calls per part of the control panel
(`categories.py`, `programs.py` …); each declares the access every method needs
(`administrator_call`). The use cases arrive built, from the composition root.
"""

from __future__ import annotations

from dataclasses import dataclass

from purse.admin.v1 import admin_service_pb2 as pb
from purse.admin.v1 import admin_service_pb2_grpc
from purse.api.grpc.admin.access import AccessCalls
from purse.api.grpc.admin.bulk_actions import BulkActionCalls
from purse.api.grpc.admin.business import BusinessCalls
from purse.api.grpc.admin.calls import administrator_call
from purse.api.grpc.admin.categories import CategoryCalls
from purse.api.grpc.admin.customer_list import CustomerListCalls
from purse.api.grpc.admin.customers import CustomerCalls
from purse.api.grpc.admin.goods import GoodsCalls
from purse.api.grpc.admin.loyalty_programs import ProgramCalls
from purse.api.grpc.admin.news import NewsCalls
from purse.api.grpc.admin.points_of_sale import PointOfSaleCalls
from purse.api.grpc.admin.programs import program_from_proto, program_to_proto
from purse.api.grpc.admin.segments import SegmentCalls
from purse.api.grpc.admin.terminals import TerminalCalls
from purse.api.grpc.admin.wallet import AccountTypeCalls, CertificateCalls, CouponSeriesCalls
from purse.api.grpc.common.calls import Context
from purse.domain.administrators import Access, AdministratorContext
from purse.service.admin.administrators import Administrators
from purse.service.admin.bulk_actions import BulkActions
from purse.service.admin.business import Businesses
from purse.service.admin.categories import CustomerCategories
from purse.service.admin.customer_export import CustomerExport
from purse.service.admin.customer_list import CustomerList
from purse.service.admin.customer_operations import CustomerOperations
from purse.service.admin.customers import CustomerCards
from purse.service.admin.goods import Goods, GoodsCategories
from purse.service.admin.loyalty_programs import LoyaltyPrograms
from purse.service.admin.news import NewsItems
from purse.service.admin.points_of_sale import PointsOfSale
from purse.service.admin.programs import Programs
from purse.service.admin.segments import SavedSegments
from purse.service.admin.terminals import TerminalApiKeys, Terminals
from purse.service.admin.wallet import AccountTypes, Certificates, CouponSeries
from purse.service.authentication import AdministratorAuthenticator


@dataclass(frozen=True, slots=True)
class AdminUseCases:
    """Everything the control panel calls, built at the composition root."""

    authenticator: AdministratorAuthenticator
    administrators: Administrators
    businesses: Businesses
    programs: Programs
    categories: CustomerCategories
    goods_categories: GoodsCategories
    goods: Goods
    account_types: AccountTypes
    coupon_series: CouponSeries
    certificates: Certificates
    customers: CustomerCards
    customer_list: CustomerList
    segments: SavedSegments
    news: NewsItems
    customer_export: CustomerExport
    operations: CustomerOperations
    loyalty_programs: LoyaltyPrograms
    points_of_sale: PointsOfSale
    terminals: Terminals
    terminal_api_keys: TerminalApiKeys
    bulk_actions: BulkActions


class AdminServicer(
    AccessCalls,
    BulkActionCalls,
    BusinessCalls,
    CategoryCalls,
    CustomerCalls,
    CustomerListCalls,
    SegmentCalls,
    NewsCalls,
    GoodsCalls,
    AccountTypeCalls,
    CouponSeriesCalls,
    CertificateCalls,
    ProgramCalls,
    PointOfSaleCalls,
    TerminalCalls,
    admin_service_pb2_grpc.AdminServiceServicer,
):
    """The control panel contract over gRPC."""

    def __init__(self, use_cases: AdminUseCases) -> None:
        self.authenticator = use_cases.authenticator
        self.administrators = use_cases.administrators
        self.businesses = use_cases.businesses
        self._programs = use_cases.programs
        self.categories = use_cases.categories
        self.goods_categories = use_cases.goods_categories
        self.goods = use_cases.goods
        self.account_types = use_cases.account_types
        self.coupon_series = use_cases.coupon_series
        self.certificates = use_cases.certificates
        self.customers = use_cases.customers
        self.customer_list = use_cases.customer_list
        self.segments = use_cases.segments
        self.news = use_cases.news
        self.customer_export = use_cases.customer_export
        self.operations = use_cases.operations
        self.loyalty_programs = use_cases.loyalty_programs
        self.points_of_sale = use_cases.points_of_sale
        self.terminals = use_cases.terminals
        self.terminal_api_keys = use_cases.terminal_api_keys
        self.bulk_actions = use_cases.bulk_actions

    @administrator_call(Access.READ)
    async def GetProgramRules(
        self,
        request: pb.GetProgramRulesRequest,
        context: Context,
        caller: AdministratorContext,
    ) -> pb.GetProgramRulesResponse:
        program, version = await self._programs.rules(
            caller.business_id, request.program_id, caller.currency
        )
        return pb.GetProgramRulesResponse(rules=program_to_proto(program), rules_version=version)

    @administrator_call(Access.CHANGE)
    async def SetProgramRules(
        self,
        request: pb.SetProgramRulesRequest,
        context: Context,
        caller: AdministratorContext,
    ) -> pb.SetProgramRulesResponse:
        program = program_from_proto(request.rules, caller.currency)
        version = await self._programs.replace(
            caller.actor, request.program_id, program, request.expected_rules_version
        )
        return pb.SetProgramRulesResponse(rules_version=version)
