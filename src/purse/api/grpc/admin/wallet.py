"""AdminService: account types, coupon series, certificates."""

from __future__ import annotations

from purse.admin.v1 import catalogue_pb2 as pb
from purse.api.grpc.admin.calls import administrator_call
from purse.api.grpc.admin.mapping import archive_time, optional_moment, set_moment
from purse.api.grpc.common.calls import Context
from purse.domain.administrators import Access, AdministratorContext
from purse.domain.catalogue_setup import AccountTypeDraft, CertificateDraft, CouponSeriesDraft
from purse.domain.checks import CouponKind
from purse.domain.customers import PocketKind
from purse.service.admin.wallet import (
    AccountTypeRecord,
    AccountTypes,
    CertificateRecord,
    Certificates,
    CouponSeries,
    CouponSeriesRecord,
)

_account_kinds = {
    PocketKind.MONEY: pb.ACCOUNT_KIND_MONEY,
    PocketKind.PRODUCTS: pb.ACCOUNT_KIND_PRODUCTS,
    PocketKind.ACHIEVEMENTS: pb.ACCOUNT_KIND_ACHIEVEMENTS,
}
_account_kinds_from_proto = {value: kind for kind, value in _account_kinds.items()}
_coupon_kinds = {
    CouponKind.PERCENT: pb.COUPON_KIND_PERCENT,
    CouponKind.FIXED: pb.COUPON_KIND_FIXED,
    CouponKind.FREE_PRODUCT: pb.COUPON_KIND_FREE_PRODUCT,
}
_coupon_kinds_from_proto = {value: kind for kind, value in _coupon_kinds.items()}


def account_type_to_proto(record: AccountTypeRecord) -> pb.AccountType:
    settings = record.settings
    assert settings.kind is not None
    message = pb.AccountType(
        account_type_id=record.account_type_id,
        kind=_account_kinds[settings.kind],
        name=settings.name,
        title=settings.title,
        description=settings.description,
        product_codes=settings.product_codes,
        redemption_limit_without_pin=settings.redemption_limit_without_pin,
        purchases_per_reward=settings.purchases_per_reward,
        version=record.version,
    )
    archive_time(message, record.archived_at)
    return message


def _account_type_draft(message: pb.AccountType) -> AccountTypeDraft:
    return AccountTypeDraft(
        _account_kinds_from_proto.get(message.kind),
        message.name,
        dict(message.title),
        dict(message.description),
        tuple(message.product_codes),
        (
            message.redemption_limit_without_pin
            if message.HasField("redemption_limit_without_pin")
            else None
        ),
        message.purchases_per_reward,
    )


def coupon_series_to_proto(record: CouponSeriesRecord) -> pb.CouponSeries:
    settings = record.settings
    assert settings.kind is not None
    message = pb.CouponSeries(
        series_id=record.series_id,
        name=settings.name,
        title=settings.title,
        description=settings.description,
        kind=_coupon_kinds[settings.kind],
        value=settings.value,
        product_codes=settings.product_codes,
        check_sum_min_minor_units=settings.check_sum_min_minor_units,
        coupons_max=settings.coupons_max,
        coupons_issued=record.coupons_issued,
        coupon_lifetime_days=settings.coupon_lifetime_days,
        version=record.version,
    )
    set_moment(message, "valid_until", settings.valid_until)
    archive_time(message, record.archived_at)
    return message


def _coupon_series_draft(message: pb.CouponSeries) -> CouponSeriesDraft:
    return CouponSeriesDraft(
        message.name,
        dict(message.title),
        dict(message.description),
        _coupon_kinds_from_proto.get(message.kind),
        message.value,
        tuple(message.product_codes),
        message.check_sum_min_minor_units,
        message.coupons_max if message.HasField("coupons_max") else None,
        optional_moment(message, "valid_until", "coupon_series.valid_until"),
        message.coupon_lifetime_days,
    )


def certificate_to_proto(record: CertificateRecord) -> pb.Certificate:
    settings = record.settings
    message = pb.Certificate(
        certificate_id=record.certificate_id,
        code=settings.code,
        balance_minor_units=settings.balance_minor_units,
        held_minor_units=record.held_minor_units,
        version=record.version,
    )
    set_moment(message, "expire_time", settings.expires_at)
    set_moment(message, "create_time", record.created_at)
    archive_time(message, record.archived_at)
    return message


def _certificate_draft(message: pb.Certificate) -> CertificateDraft:
    return CertificateDraft(
        message.code,
        message.balance_minor_units,
        optional_moment(message, "expire_time", "certificate.expire_time"),
    )


class AccountTypeCalls:
    """The account type RPCs of AdminService."""

    account_types: AccountTypes

    @administrator_call(Access.CHANGE)
    async def CreateAccountType(
        self, request: pb.CreateAccountTypeRequest, context: Context, caller: AdministratorContext
    ) -> pb.CreateAccountTypeResponse:
        record = await self.account_types.create(
            caller.actor, _account_type_draft(request.account_type)
        )
        return pb.CreateAccountTypeResponse(account_type=account_type_to_proto(record))

    @administrator_call(Access.READ)
    async def GetAccountType(
        self, request: pb.GetAccountTypeRequest, context: Context, caller: AdministratorContext
    ) -> pb.GetAccountTypeResponse:
        record = await self.account_types.get(caller.business_id, request.account_type_id)
        return pb.GetAccountTypeResponse(account_type=account_type_to_proto(record))

    @administrator_call(Access.READ)
    async def ListAccountTypes(
        self, request: pb.ListAccountTypesRequest, context: Context, caller: AdministratorContext
    ) -> pb.ListAccountTypesResponse:
        page = await self.account_types.page(
            caller.business_id, request.page_size, request.page_token, request.show_archived
        )
        response = pb.ListAccountTypesResponse(next_page_token=page.next_page_token)
        response.account_types.extend(account_type_to_proto(each) for each in page.items)
        return response

    @administrator_call(Access.CHANGE)
    async def UpdateAccountType(
        self, request: pb.UpdateAccountTypeRequest, context: Context, caller: AdministratorContext
    ) -> pb.UpdateAccountTypeResponse:
        record = await self.account_types.update(
            caller.actor,
            request.account_type.account_type_id,
            request.expected_version,
            _account_type_draft(request.account_type),
        )
        return pb.UpdateAccountTypeResponse(account_type=account_type_to_proto(record))

    @administrator_call(Access.CHANGE)
    async def ArchiveAccountType(
        self, request: pb.ArchiveAccountTypeRequest, context: Context, caller: AdministratorContext
    ) -> pb.ArchiveAccountTypeResponse:
        record = await self.account_types.archive(
            caller.actor, request.account_type_id, request.expected_version
        )
        return pb.ArchiveAccountTypeResponse(account_type=account_type_to_proto(record))


class CouponSeriesCalls:
    """The coupon series RPCs of AdminService."""

    coupon_series: CouponSeries

    @administrator_call(Access.CHANGE)
    async def CreateCouponSeries(
        self, request: pb.CreateCouponSeriesRequest, context: Context, caller: AdministratorContext
    ) -> pb.CreateCouponSeriesResponse:
        record = await self.coupon_series.create(
            caller.actor, _coupon_series_draft(request.coupon_series)
        )
        return pb.CreateCouponSeriesResponse(coupon_series=coupon_series_to_proto(record))

    @administrator_call(Access.READ)
    async def GetCouponSeries(
        self, request: pb.GetCouponSeriesRequest, context: Context, caller: AdministratorContext
    ) -> pb.GetCouponSeriesResponse:
        record = await self.coupon_series.get(caller.business_id, request.series_id)
        return pb.GetCouponSeriesResponse(coupon_series=coupon_series_to_proto(record))

    @administrator_call(Access.READ)
    async def ListCouponSeries(
        self, request: pb.ListCouponSeriesRequest, context: Context, caller: AdministratorContext
    ) -> pb.ListCouponSeriesResponse:
        page = await self.coupon_series.page(
            caller.business_id, request.page_size, request.page_token, request.show_archived
        )
        response = pb.ListCouponSeriesResponse(next_page_token=page.next_page_token)
        response.coupon_series.extend(coupon_series_to_proto(each) for each in page.items)
        return response

    @administrator_call(Access.CHANGE)
    async def UpdateCouponSeries(
        self, request: pb.UpdateCouponSeriesRequest, context: Context, caller: AdministratorContext
    ) -> pb.UpdateCouponSeriesResponse:
        record = await self.coupon_series.update(
            caller.actor,
            request.coupon_series.series_id,
            request.expected_version,
            _coupon_series_draft(request.coupon_series),
        )
        return pb.UpdateCouponSeriesResponse(coupon_series=coupon_series_to_proto(record))

    @administrator_call(Access.CHANGE)
    async def ArchiveCouponSeries(
        self,
        request: pb.ArchiveCouponSeriesRequest,
        context: Context,
        caller: AdministratorContext,
    ) -> pb.ArchiveCouponSeriesResponse:
        record = await self.coupon_series.archive(
            caller.actor, request.series_id, request.expected_version
        )
        return pb.ArchiveCouponSeriesResponse(coupon_series=coupon_series_to_proto(record))


class CertificateCalls:
    """The certificate RPCs of AdminService."""

    certificates: Certificates

    @administrator_call(Access.CHANGE)
    async def CreateCertificate(
        self, request: pb.CreateCertificateRequest, context: Context, caller: AdministratorContext
    ) -> pb.CreateCertificateResponse:
        record = await self.certificates.create(
            caller.actor, _certificate_draft(request.certificate)
        )
        return pb.CreateCertificateResponse(certificate=certificate_to_proto(record))

    @administrator_call(Access.READ)
    async def GetCertificate(
        self, request: pb.GetCertificateRequest, context: Context, caller: AdministratorContext
    ) -> pb.GetCertificateResponse:
        record = await self.certificates.get(caller.business_id, request.certificate_id)
        return pb.GetCertificateResponse(certificate=certificate_to_proto(record))

    @administrator_call(Access.READ)
    async def ListCertificates(
        self, request: pb.ListCertificatesRequest, context: Context, caller: AdministratorContext
    ) -> pb.ListCertificatesResponse:
        page = await self.certificates.page(
            caller.business_id, request.page_size, request.page_token, request.show_archived
        )
        response = pb.ListCertificatesResponse(next_page_token=page.next_page_token)
        response.certificates.extend(certificate_to_proto(each) for each in page.items)
        return response

    @administrator_call(Access.CHANGE)
    async def UpdateCertificate(
        self, request: pb.UpdateCertificateRequest, context: Context, caller: AdministratorContext
    ) -> pb.UpdateCertificateResponse:
        record = await self.certificates.update(
            caller.actor,
            request.certificate.certificate_id,
            request.expected_version,
            _certificate_draft(request.certificate),
        )
        return pb.UpdateCertificateResponse(certificate=certificate_to_proto(record))

    @administrator_call(Access.CHANGE)
    async def ArchiveCertificate(
        self, request: pb.ArchiveCertificateRequest, context: Context, caller: AdministratorContext
    ) -> pb.ArchiveCertificateResponse:
        record = await self.certificates.archive(
            caller.actor, request.certificate_id, request.expected_version
        )
        return pb.ArchiveCertificateResponse(certificate=certificate_to_proto(record))
