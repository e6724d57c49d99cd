"""The control panel's account types, coupon series and certificates, through a real
server: versions, pages, what may not change, archive refusals saying what uses a thing,
other businesses' ids not found, every wrong field named, and tills that stop offering
what is archived."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
from admin_support import (
    admin,
    apply_operation,
    assert_refused,
    audit_entries,
    credit_account,
    details,
    enrol,
    new_series,
    owner,
    refused,
)
from google.protobuf import timestamp_pb2
from support import Tenant, bearer, make_business_through_api

from purse.admin.v1 import catalogue_pb2 as pb
from purse.admin.v1 import customers_pb2
from purse.store.postgres.provisioning import Provisioning
from purse.v1 import terminal_service_pb2 as terminal_pb

if TYPE_CHECKING:
    from purse.v1.terminal_service_pb2_grpc import TerminalServiceAsyncStub

Code = grpc.StatusCode


def moment(days_from_now: float) -> timestamp_pb2.Timestamp:
    value = timestamp_pb2.Timestamp()
    value.FromDatetime(datetime.now(UTC) + timedelta(days=days_from_now))
    return value


def coffee_card(**changes: object) -> pb.AccountType:
    fields: dict[str, Any] = {
        "kind": pb.ACCOUNT_KIND_ACHIEVEMENTS,
        "name": "Coffee card",
        "title": {"en": "Every 7th coffee free"},
        "description": {"en": "Buy six, the seventh is ours"},
        "product_codes": ["LATTE", "ESPRESSO"],
        "purchases_per_reward": 7,
    }
    return pb.AccountType(**{**fields, **changes})


async def test_an_account_type_is_created_listed_in_pages_and_updated_by_version(
    channel: grpc.aio.Channel, business: Tenant, pool: asyncpg.Pool
) -> None:
    stub = admin(channel)
    made = await stub.CreateAccountType(
        pb.CreateAccountTypeRequest(account_type=coffee_card()), metadata=owner(business)
    )
    card = made.account_type
    assert (card.version, card.purchases_per_reward, list(card.product_codes)) == (
        1,
        7,
        ["LATTE", "ESPRESSO"],
    )
    assert not card.HasField("redemption_limit_without_pin")
    first = await stub.ListAccountTypes(
        pb.ListAccountTypesRequest(page_size=2), metadata=owner(business)
    )
    second = await stub.ListAccountTypes(
        pb.ListAccountTypesRequest(page_size=2, page_token=first.next_page_token),
        metadata=owner(business),
    )
    listed = [each.account_type_id for each in (*first.account_types, *second.account_types)]
    assert listed == [
        business.products_account_type_id,
        business.money_account_type_id,
        card.account_type_id,
    ]
    changed = coffee_card(
        account_type_id=card.account_type_id, purchases_per_reward=5, redemption_limit_without_pin=0
    )
    updated = await stub.UpdateAccountType(
        pb.UpdateAccountTypeRequest(account_type=changed, expected_version=1),
        metadata=owner(business),
    )
    assert (updated.account_type.version, updated.account_type.purchases_per_reward) == (2, 5)
    assert updated.account_type.redemption_limit_without_pin == 0
    stale = await refused(
        stub.UpdateAccountType(
            pb.UpdateAccountTypeRequest(account_type=changed, expected_version=1),
            metadata=owner(business),
        )
    )
    assert_refused(stale, Code.ABORTED, "VERSION_MISMATCH")
    rekinded = await refused(
        stub.UpdateAccountType(
            pb.UpdateAccountTypeRequest(
                account_type=coffee_card(
                    account_type_id=card.account_type_id,
                    kind=pb.ACCOUNT_KIND_MONEY,
                    purchases_per_reward=0,
                ),
                expected_version=2,
            ),
            metadata=owner(business),
        )
    )
    assert_refused(rekinded, Code.FAILED_PRECONDITION, "FIELD_IMMUTABLE", "account_type.kind")
    read = await stub.GetAccountType(
        pb.GetAccountTypeRequest(account_type_id=card.account_type_id), metadata=owner(business)
    )
    assert read.account_type == updated.account_type
    entries = await audit_entries(
        pool, business.business_id, "account_types", str(card.account_type_id)
    )
    assert [entry["action"] for entry in entries] == ["create", "update"]


async def test_account_type_input_is_refused_naming_every_wrong_field(
    channel: grpc.aio.Channel, business: Tenant
) -> None:
    bad = pb.AccountType(
        kind=pb.ACCOUNT_KIND_PRODUCTS,
        name="",
        title={"english": "Fuel"},
        redemption_limit_without_pin=-1,
        purchases_per_reward=3,
    )
    error = await refused(
        admin(channel).CreateAccountType(
            pb.CreateAccountTypeRequest(account_type=bad), metadata=owner(business)
        )
    )
    assert_refused(
        error,
        Code.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
        "account_type.name",
        "account_type.title['english']",
        "account_type.product_codes",
        "account_type.redemption_limit_without_pin",
        "account_type.purchases_per_reward",
    )
    unspecified = await refused(
        admin(channel).CreateAccountType(
            pb.CreateAccountTypeRequest(account_type=coffee_card(kind=0, purchases_per_reward=0)),
            metadata=owner(business),
        )
    )
    assert_refused(unspecified, Code.INVALID_ARGUMENT, "INVALID_ARGUMENT", "account_type.kind")


async def test_an_account_type_with_balances_is_not_archived_and_tills_drop_it_once_archived(
    channel: grpc.aio.Channel,
    business: Tenant,
    terminal_stub: TerminalServiceAsyncStub,
) -> None:
    customer_id = (await enrol(channel, business)).customer_id
    money = business.money_account_type_id
    await credit_account(channel, business, customer_id, money, 500)
    archive = pb.ArchiveAccountTypeRequest(account_type_id=money, expected_version=1)
    held = await refused(admin(channel).ArchiveAccountType(archive, metadata=owner(business)))
    assert_refused(held, Code.FAILED_PRECONDITION, "IN_USE")
    assert "1 customers have a balance" in details(held)
    await apply_operation(
        channel,
        business,
        customer_id,
        debit_account=customers_pb2.AccountDebitOperation(account_type_id=money, amount=500),
    )
    archived = await admin(channel).ArchiveAccountType(archive, metadata=owner(business))
    assert archived.account_type.HasField("archive_time")
    settings = await terminal_stub.GetTerminalSettings(
        terminal_pb.GetTerminalSettingsRequest(), metadata=bearer(business.cash_desk.api_key)
    )
    assert [each.account_type_id for each in settings.account_types] == [
        business.products_account_type_id
    ]
    again = await refused(
        admin(channel).ArchiveAccountType(
            pb.ArchiveAccountTypeRequest(account_type_id=money, expected_version=2),
            metadata=owner(business),
        )
    )
    assert_refused(again, Code.FAILED_PRECONDITION, "ARCHIVED")


async def test_another_business_s_account_types_series_and_certificates_are_not_found(
    channel: grpc.aio.Channel, business: Tenant, pool: asyncpg.Pool
) -> None:
    other = await make_business_through_api(channel, pool)
    stub = admin(channel)
    series = await new_series(channel, other)
    certificate = await new_certificate(channel, other, "OTHER-1")
    refusals = [
        await refused(
            stub.GetAccountType(
                pb.GetAccountTypeRequest(account_type_id=other.money_account_type_id),
                metadata=owner(business),
            )
        ),
        await refused(
            stub.ArchiveCouponSeries(
                pb.ArchiveCouponSeriesRequest(series_id=series.series_id, expected_version=1),
                metadata=owner(business),
            )
        ),
        await refused(
            stub.UpdateCertificate(
                pb.UpdateCertificateRequest(
                    certificate=pb.Certificate(
                        certificate_id=certificate.certificate_id,
                        code="OTHER-1",
                        balance_minor_units=1,
                    ),
                    expected_version=1,
                ),
                metadata=owner(business),
            )
        ),
    ]
    assert [(error.code(), error.details()) for error in refusals] == [
        (Code.NOT_FOUND, "no such account type in this business"),
        (Code.NOT_FOUND, "no such coupon series in this business"),
        (Code.NOT_FOUND, "no such certificate in this business"),
    ]


async def test_a_coupon_series_cap_never_falls_below_what_it_issued_and_live_coupons_keep_it(
    channel: grpc.aio.Channel, business: Tenant, pool: asyncpg.Pool
) -> None:
    stub = admin(channel)
    series = await new_series(channel, business)
    assert (series.coupons_max, series.coupons_issued, series.coupon_lifetime_days) == (5, 0, 30)
    # Coupons of no customer's (printed ones): the API issues coupons only to customers.
    provisioning = Provisioning(pool)
    for code in ("SPRING-1", "SPRING-2"):
        await provisioning.coupon(business.business_id, series.series_id, code, None)
    lowered = pb.CouponSeries()
    lowered.CopyFrom(series)
    lowered.coupons_max = 1
    capped = await refused(
        stub.UpdateCouponSeries(
            pb.UpdateCouponSeriesRequest(coupon_series=lowered, expected_version=1),
            metadata=owner(business),
        )
    )
    assert_refused(
        capped, Code.FAILED_PRECONDITION, "CAP_BELOW_ISSUED", "coupon_series.coupons_max"
    )
    archive = pb.ArchiveCouponSeriesRequest(series_id=series.series_id, expected_version=1)
    used = await refused(stub.ArchiveCouponSeries(archive, metadata=owner(business)))
    assert_refused(used, Code.FAILED_PRECONDITION, "IN_USE")
    assert "2 coupons" in details(used)
    ended = pb.CouponSeries()
    ended.CopyFrom(series)
    ended.coupons_max = 2
    ended.valid_until.CopyFrom(moment(-1))
    updated = await stub.UpdateCouponSeries(
        pb.UpdateCouponSeriesRequest(coupon_series=ended, expected_version=1),
        metadata=owner(business),
    )
    assert (updated.coupon_series.version, updated.coupon_series.coupons_issued) == (2, 2)
    archived = await stub.ArchiveCouponSeries(
        pb.ArchiveCouponSeriesRequest(series_id=series.series_id, expected_version=2),
        metadata=owner(business),
    )
    assert archived.coupon_series.HasField("archive_time")
    listed = await stub.ListCouponSeries(pb.ListCouponSeriesRequest(), metadata=owner(business))
    assert list(listed.coupon_series) == []


async def test_coupon_series_input_is_refused_naming_every_wrong_field(
    channel: grpc.aio.Channel, business: Tenant
) -> None:
    stub = admin(channel)
    bad = pb.CouponSeries(
        name="x" * 201,
        kind=pb.COUPON_KIND_FREE_PRODUCT,
        value=0,
        product_codes=[],
        check_sum_min_minor_units=-1,
        coupons_max=0,
        coupon_lifetime_days=5000,
    )
    error = await refused(
        stub.CreateCouponSeries(
            pb.CreateCouponSeriesRequest(coupon_series=bad), metadata=owner(business)
        )
    )
    assert_refused(
        error,
        Code.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
        "coupon_series.name",
        "coupon_series.value",
        "coupon_series.product_codes",
        "coupon_series.check_sum_min_minor_units",
        "coupon_series.coupons_max",
        "coupon_series.coupon_lifetime_days",
    )
    series = await new_series(channel, business)
    rekinded = pb.CouponSeries()
    rekinded.CopyFrom(series)
    rekinded.kind = pb.COUPON_KIND_FIXED
    immutable = await refused(
        stub.UpdateCouponSeries(
            pb.UpdateCouponSeriesRequest(coupon_series=rekinded, expected_version=1),
            metadata=owner(business),
        )
    )
    assert_refused(immutable, Code.FAILED_PRECONDITION, "FIELD_IMMUTABLE", "coupon_series.kind")


async def test_a_series_past_its_end_makes_its_coupons_expired_at_the_till(
    channel: grpc.aio.Channel,
    business: Tenant,
    pool: asyncpg.Pool,
    terminal_stub: TerminalServiceAsyncStub,
) -> None:
    discounts = []
    for code, days in (("FRESH-1", 1), ("LATE-1", -1)):
        series = await new_series(channel, business, valid_until=moment(days))
        # A coupon of no customer's, of a series already past its end: no API issues that.
        await Provisioning(pool).coupon(business.business_id, series.series_id, code, None)
        answer = await terminal_stub.CalculateCheck(
            terminal_pb.CalculateCheckRequest(
                check=terminal_pb.Check(
                    lines=[
                        terminal_pb.CheckLine(
                            position=1,
                            product_code="BREAD",
                            price_minor_units=5000,
                            quantity_thousandths=1000,
                        )
                    ]
                ),
                redemption=terminal_pb.Redemption(coupon_codes=[code]),
            ),
            metadata=bearer(business.cash_desk.api_key),
        )
        discounts.append(answer.receipt.discount_minor_units)
    assert discounts == [500, 0]


async def new_certificate(
    channel: grpc.aio.Channel, business: Tenant, code: str, balance: int = 10_000
) -> pb.Certificate:
    answer = await admin(channel).CreateCertificate(
        pb.CreateCertificateRequest(
            certificate=pb.Certificate(
                code=code, balance_minor_units=balance, expire_time=moment(365)
            )
        ),
        metadata=owner(business),
    )
    certificate: pb.Certificate = answer.certificate
    return certificate


async def test_a_certificate_code_is_unique_and_a_held_certificate_is_neither_changed_nor_archived(
    channel: grpc.aio.Channel, business: Tenant, pool: asyncpg.Pool
) -> None:
    stub = admin(channel)
    made = await new_certificate(channel, business, "GIFT-100")
    assert (made.balance_minor_units, made.held_minor_units, made.version) == (10_000, 0, 1)
    assert made.HasField("create_time") and made.HasField("expire_time")
    taken = await refused(
        stub.CreateCertificate(
            pb.CreateCertificateRequest(
                certificate=pb.Certificate(code="GIFT-100", balance_minor_units=1)
            ),
            metadata=owner(business),
        )
    )
    assert_refused(taken, Code.ALREADY_EXISTS, "CODE_TAKEN", "certificate.code")
    topped = pb.Certificate(
        certificate_id=made.certificate_id, code="GIFT-100", balance_minor_units=20_000
    )
    updated = await stub.UpdateCertificate(
        pb.UpdateCertificateRequest(certificate=topped, expected_version=1),
        metadata=owner(business),
    )
    assert (updated.certificate.balance_minor_units, updated.certificate.version) == (20_000, 2)
    assert not updated.certificate.HasField("expire_time")
    stale = await refused(
        stub.UpdateCertificate(
            pb.UpdateCertificateRequest(certificate=topped, expected_version=1),
            metadata=owner(business),
        )
    )
    assert_refused(stale, Code.ABORTED, "VERSION_MISMATCH")
    recoded = pb.Certificate(
        certificate_id=made.certificate_id, code="GIFT-200", balance_minor_units=20_000
    )
    immutable = await refused(
        stub.UpdateCertificate(
            pb.UpdateCertificateRequest(certificate=recoded, expected_version=2),
            metadata=owner(business),
        )
    )
    assert_refused(immutable, Code.FAILED_PRECONDITION, "FIELD_IMMUTABLE", "certificate.code")
    # A pending transaction's hold, as a batch writes it.
    await pool.execute(
        "UPDATE certificates SET held_minor_units = 700 WHERE business_id = $1"
        " AND certificate_id = $2",
        business.business_id,
        made.certificate_id,
    )
    archive = pb.ArchiveCertificateRequest(certificate_id=made.certificate_id, expected_version=2)
    held = await refused(stub.ArchiveCertificate(archive, metadata=owner(business)))
    assert_refused(held, Code.FAILED_PRECONDITION, "IN_USE")
    assert "holds 700" in details(held)
    await pool.execute(
        "UPDATE certificates SET held_minor_units = 0 WHERE business_id = $1"
        " AND certificate_id = $2",
        business.business_id,
        made.certificate_id,
    )
    archived = await stub.ArchiveCertificate(archive, metadata=owner(business))
    assert archived.certificate.HasField("archive_time")
    entries = await audit_entries(
        pool, business.business_id, "certificates", str(made.certificate_id)
    )
    assert [entry["action"] for entry in entries] == ["create", "update", "archive"]


async def test_certificate_input_is_refused_naming_the_field(
    channel: grpc.aio.Channel, business: Tenant
) -> None:
    stub = admin(channel)
    empty = await refused(
        stub.CreateCertificate(
            pb.CreateCertificateRequest(certificate=pb.Certificate(code="", balance_minor_units=0)),
            metadata=owner(business),
        )
    )
    assert_refused(
        empty,
        Code.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
        "certificate.code",
        "certificate.balance_minor_units",
    )
    far = timestamp_pb2.Timestamp(seconds=10**11)
    late = await refused(
        stub.CreateCertificate(
            pb.CreateCertificateRequest(
                certificate=pb.Certificate(code="G-1", balance_minor_units=1, expire_time=far)
            ),
            metadata=owner(business),
        )
    )
    assert_refused(late, Code.INVALID_ARGUMENT, "TIMESTAMP_OUT_OF_RANGE", "certificate.expire_time")
