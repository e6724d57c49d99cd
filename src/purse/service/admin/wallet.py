"""What customers hold besides points, as administrators set it up: account types, coupon
series and gift certificates (create, read, list, update, archive).

* An account type's kind is set at creation (balances are in its unit); it is archived
  only once no customer has a balance or a hold in it (IN_USE says how many), and then
  tills neither offer nor credit it.
* A coupon series' kind is set at creation (issued coupons carry its meaning); its cap is
  never below what it issued (CAP_BELOW_ISSUED), checked on the locked series, which
  issuing also locks; it is archived only once none of its coupons can still be used.
* A certificate's code is set at creation (it is printed) and unique in the business;
  while a pending transaction holds part of it, it is neither changed nor archived.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from purse.domain.administrators import Actor
from purse.domain.catalogue_setup import (
    AccountTypeDraft,
    CertificateDraft,
    CouponSeriesDraft,
    validate_account_type,
    validate_certificate,
    validate_coupon_series,
)
from purse.domain.checks import CouponKind
from purse.domain.customers import PocketKind
from purse.domain.errors import FailedPrecondition, FieldViolation
from purse.service.admin.versioned import Resource, Versioned, immutable, validated
from purse.service.ports import BackOfficeReads, BackOfficeWriting, Row, Table, Writing

ACCOUNT_TYPES = Table("account_types", "account_type_id")
COUPON_SERIES = Table("coupon_series", "series_id")
CERTIFICATES = Table("certificates", "certificate_id")
_certificate_taken = ("certificate.code", "a certificate with this code", "CODE_TAKEN")


@dataclass(frozen=True, slots=True)
class AccountTypeRecord:
    account_type_id: int
    settings: AccountTypeDraft
    version: int
    archived_at: datetime | None


@dataclass(frozen=True, slots=True)
class CouponSeriesRecord:
    series_id: int
    settings: CouponSeriesDraft
    coupons_issued: int
    version: int
    archived_at: datetime | None


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    certificate_id: int
    settings: CertificateDraft
    held_minor_units: int
    created_at: datetime
    version: int
    archived_at: datetime | None


class WalletWrites(Protocol):
    """What these need beyond plain rows (`purse.store.postgres.catalogue_setup`)."""

    async def balances_in(self, writing: Writing, account_type_id: int) -> int: ...

    async def usable_coupons(self, writing: Writing, series_id: int) -> int: ...


def _account_type(row: Row) -> AccountTypeRecord:
    settings = AccountTypeDraft(
        PocketKind(row["kind"]),
        row["name"],
        row["title"],
        row["description"],
        tuple(row["product_codes"]),
        row["redemption_limit_without_pin"],
        row["purchases_per_reward"],
    )
    return AccountTypeRecord(row["account_type_id"], settings, row["version"], row["archived_at"])


def _account_type_columns(draft: AccountTypeDraft) -> dict[str, object]:
    return {
        "name": draft.name,
        "title": dict(draft.title),
        "description": dict(draft.description),
        "product_codes": list(draft.product_codes),
        "redemption_limit_without_pin": draft.redemption_limit_without_pin,
        "purchases_per_reward": draft.purchases_per_reward,
    }


class AccountTypes(Versioned[AccountTypeRecord]):
    def __init__(
        self, writes: BackOfficeWriting, reads: BackOfficeReads, store: WalletWrites
    ) -> None:
        super().__init__(
            Resource(ACCOUNT_TYPES, "account type", "ACCOUNT_TYPE_NOT_FOUND", _account_type),
            writes,
            reads,
        )
        self._store = store

    async def create(self, actor: Actor, draft: AccountTypeDraft) -> AccountTypeRecord:
        validated(lambda fields: validate_account_type(fields, "account_type", draft))
        assert draft.kind is not None
        columns = {"kind": draft.kind.value, **_account_type_columns(draft)}
        return _account_type(await self.create_row(actor, columns))

    async def update(
        self, actor: Actor, account_type_id: int, expected_version: int, draft: AccountTypeDraft
    ) -> AccountTypeRecord:
        validated(lambda fields: validate_account_type(fields, "account_type", draft))
        kind = draft.kind
        assert kind is not None

        async def same_kind(writing: Writing, before: Row) -> None:
            immutable("account_type.kind", before["kind"], kind.value, "kind")

        columns = _account_type_columns(draft)
        row = await self.update_row(actor, account_type_id, expected_version, columns, same_kind)
        return _account_type(row)

    async def archive(
        self, actor: Actor, account_type_id: int, expected_version: int
    ) -> AccountTypeRecord:
        async def holders(writing: Writing, before: Row) -> str:
            count = await self._store.balances_in(writing, account_type_id)
            if count:
                return f"{count} customers have a balance in accounts of this type"
            return ""

        return _account_type(
            await self.archive_row(actor, account_type_id, expected_version, holders)
        )


def _coupon_series(row: Row) -> CouponSeriesRecord:
    settings = CouponSeriesDraft(
        row["name"],
        row["title"],
        row["description"],
        CouponKind(row["kind"]),
        row["value"],
        tuple(row["product_codes"]),
        row["check_sum_min_minor_units"],
        row["coupons_max"],
        row["valid_until"],
        row["coupon_lifetime_days"] or 0,
    )
    return CouponSeriesRecord(
        row["series_id"], settings, row["coupons_issued"], row["version"], row["archived_at"]
    )


def _coupon_series_columns(draft: CouponSeriesDraft) -> dict[str, object]:
    return {
        "name": draft.name,
        "title": dict(draft.title),
        "description": dict(draft.description),
        "value": draft.value,
        "product_codes": list(draft.product_codes),
        "check_sum_min_minor_units": draft.check_sum_min_minor_units,
        "coupons_max": draft.coupons_max,
        "valid_until": draft.valid_until,
        "coupon_lifetime_days": draft.coupon_lifetime_days or None,
    }


class CouponSeries(Versioned[CouponSeriesRecord]):
    def __init__(
        self, writes: BackOfficeWriting, reads: BackOfficeReads, store: WalletWrites
    ) -> None:
        super().__init__(
            Resource(COUPON_SERIES, "coupon series", "COUPON_SERIES_NOT_FOUND", _coupon_series),
            writes,
            reads,
        )
        self._store = store

    async def create(self, actor: Actor, draft: CouponSeriesDraft) -> CouponSeriesRecord:
        validated(lambda fields: validate_coupon_series(fields, "coupon_series", draft))
        assert draft.kind is not None
        columns = {"kind": draft.kind.value, **_coupon_series_columns(draft)}
        return _coupon_series(await self.create_row(actor, columns))

    async def update(
        self, actor: Actor, series_id: int, expected_version: int, draft: CouponSeriesDraft
    ) -> CouponSeriesRecord:
        validated(lambda fields: validate_coupon_series(fields, "coupon_series", draft))
        kind = draft.kind
        assert kind is not None

        async def same_kind_cap_above_issued(writing: Writing, before: Row) -> None:
            immutable("coupon_series.kind", before["kind"], kind.value, "kind")
            issued = before["coupons_issued"]
            if draft.coupons_max is not None and draft.coupons_max < issued:
                raise FailedPrecondition(
                    f"coupon_series.coupons_max: the series has issued {issued} coupons already",
                    reason="CAP_BELOW_ISSUED",
                    violations=(FieldViolation("coupon_series.coupons_max", f"at least {issued}"),),
                )

        columns = _coupon_series_columns(draft)
        row = await self.update_row(
            actor, series_id, expected_version, columns, same_kind_cap_above_issued
        )
        return _coupon_series(row)

    async def archive(
        self, actor: Actor, series_id: int, expected_version: int
    ) -> CouponSeriesRecord:
        async def usable(writing: Writing, before: Row) -> str:
            count = await self._store.usable_coupons(writing, series_id)
            if count:
                return f"{count} coupons of this series can still be used"
            return ""

        return _coupon_series(await self.archive_row(actor, series_id, expected_version, usable))


def _certificate(row: Row) -> CertificateRecord:
    settings = CertificateDraft(row["code"], row["balance_minor_units"], row["expires_at"])
    return CertificateRecord(
        row["certificate_id"],
        settings,
        row["held_minor_units"],
        row["created_at"],
        row["version"],
        row["archived_at"],
    )


async def _not_held(writing: Writing, before: Row) -> str:
    if before["held_minor_units"]:
        return (
            f"a pending transaction holds {before['held_minor_units']} minor units of this"
            " certificate: confirm or cancel it first"
        )
    return ""


class Certificates(Versioned[CertificateRecord]):
    def __init__(self, writes: BackOfficeWriting, reads: BackOfficeReads) -> None:
        super().__init__(
            Resource(
                CERTIFICATES,
                "certificate",
                "CERTIFICATE_NOT_FOUND",
                _certificate,
                {"certificates_business_id_code_key": _certificate_taken},
            ),
            writes,
            reads,
        )

    async def create(self, actor: Actor, draft: CertificateDraft) -> CertificateRecord:
        validated(lambda fields: validate_certificate(fields, "certificate", draft))
        columns = {
            "code": draft.code,
            "balance_minor_units": draft.balance_minor_units,
            "expires_at": draft.expires_at,
        }
        return _certificate(await self.create_row(actor, columns))

    async def update(
        self, actor: Actor, certificate_id: int, expected_version: int, draft: CertificateDraft
    ) -> CertificateRecord:
        validated(lambda fields: validate_certificate(fields, "certificate", draft, created=False))

        async def same_code_not_held(writing: Writing, before: Row) -> None:
            immutable("certificate.code", before["code"], draft.code, "code")
            held = await _not_held(writing, before)
            if held:
                raise FailedPrecondition(held, reason="IN_USE")

        columns = {"balance_minor_units": draft.balance_minor_units, "expires_at": draft.expires_at}
        row = await self.update_row(
            actor, certificate_id, expected_version, columns, same_code_not_held
        )
        return _certificate(row)

    async def archive(
        self, actor: Actor, certificate_id: int, expected_version: int
    ) -> CertificateRecord:
        return _certificate(
            await self.archive_row(actor, certificate_id, expected_version, _not_held)
        )
