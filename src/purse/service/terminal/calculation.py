"""Calculating a check: a preview of the receipt, with no side effects.

Gathers the inputs — the customer's membership (identification), their spendable lots,
accounts, the coupons and certificates the cashier named, the catalogue's goods
categories, the program compiled at its current version — in two round trips, turns
them into the engine's plain values, and calls the pure engine.

Coupons in a customer's wallet are theirs alone; a coupon with no owner is a bearer
coupon anyone may present. Certificates are bearer instruments of the business.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from purse.domain import checks
from purse.domain.catalogue import check_goods_categories
from purse.domain.customers import (
    POINTS_ACCOUNT_TYPE_ID,
    Membership,
    Pocket,
    PocketKind,
    with_points_limit,
)
from purse.domain.engine import calculate
from purse.domain.errors import (
    DomainError,
    FailedPrecondition,
    FieldViolation,
    UnexpectedFailure,
    echoed,
)
from purse.domain.identifiers import Identifier
from purse.domain.localize import localized
from purse.domain.pockets import spendable_lots
from purse.domain.program import CompiledProgram
from purse.domain.terminals import TerminalContext
from purse.service.ports import CalculationInputReads, ProgramRules
from purse.service.terminal.identification import IdentificationService
from purse.store.postgres.calculation_inputs import CalculationInputs

_logger = logging.getLogger(__name__)
_account_kinds = {
    PocketKind.MONEY: checks.AccountKind.MONEY,
    PocketKind.PRODUCTS: checks.AccountKind.PRODUCTS,
    PocketKind.ACHIEVEMENTS: checks.AccountKind.ACHIEVEMENTS,
}


@dataclass(frozen=True, slots=True)
class CalculationRequest:
    """A check and what the cashier wants to spend on it, in plain values."""

    check: checks.Check
    identifier: Identifier | None = None
    points: int = 0
    points_maximum: bool = False
    # (account type id, amount in the account's unit or None for "as much as allowed")
    accounts: tuple[tuple[int, int | None], ...] = ()
    coupon_codes: tuple[str, ...] = ()
    certificate_codes: tuple[str, ...] = ()
    explain: bool = False
    sale_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Calculation:
    """The receipt, the membership it was calculated for, and the ids behind the codes."""

    receipt: checks.Receipt
    membership: Membership | None
    coupon_codes: dict[int, str] = field(default_factory=dict)
    certificate_codes: dict[int, str] = field(default_factory=dict)
    # The program's hold for a transaction that waits for the PIN, seconds.
    hold_seconds: int = 600
    # Achievements pockets the member does not have yet (id 0, empty): the sale that
    # counts a first purchase creates them.
    unopened_pockets: tuple[Pocket, ...] = ()


class CheckCalculation:
    """CalculateCheck's use case."""

    def __init__(
        self,
        identification: IdentificationService,
        inputs: CalculationInputReads,
        programs: ProgramRules,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._identification = identification
        self._inputs = inputs
        self._programs = programs
        self._clock = clock

    async def calculate(
        self, terminal: TerminalContext, request: CalculationRequest
    ) -> Calculation:
        membership = None
        if request.identifier is not None:
            membership = await self._identification.identify(terminal, request.identifier)
        inputs = await self._inputs_of(terminal, [request], [membership])
        program = await self._programs.compiled(
            terminal.business_id, terminal.program_id, terminal.currency, inputs.rules_version
        )
        return self.prepared(terminal, request, membership, inputs, program)

    async def identify_many(
        self, terminal: TerminalContext, identifiers: Sequence[Identifier | None]
    ) -> list[Membership | DomainError | None]:
        """The members of many checks, read from PostgreSQL (never the balance cache)."""
        return await self._identification.identify_many(terminal, identifiers)

    async def calculate_many(
        self, terminal: TerminalContext, requests: Sequence[CalculationRequest]
    ) -> list[Calculation | DomainError]:
        """Many checks with their reads done together: one query for the members known by
        phone, one for every other input; each check fails or succeeds on its own."""
        memberships = await self._identification.identify_many(
            terminal, [request.identifier for request in requests]
        )
        return await self.calculate_for(terminal, requests, memberships)

    async def calculate_for(
        self,
        terminal: TerminalContext,
        requests: Sequence[CalculationRequest],
        memberships: Sequence[Membership | DomainError | None],
    ) -> list[Calculation | DomainError]:
        """Checks of customers identified already, with one read of the other inputs. A
        check whose calculation fails unexpectedly fails alone: it is logged, and its
        result is `UnexpectedFailure`."""
        known = [None if isinstance(m, DomainError) else m for m in memberships]
        inputs = await self._inputs_of(terminal, requests, known)
        program = await self._programs.compiled(
            terminal.business_id, terminal.program_id, terminal.currency, inputs.rules_version
        )
        results: list[Calculation | DomainError] = []
        for request, membership in zip(requests, memberships, strict=True):
            if isinstance(membership, DomainError):
                results.append(membership)
                continue
            try:
                results.append(self.prepared(terminal, request, membership, inputs, program))
            except DomainError as refusal:
                results.append(refusal)
            except Exception:
                _logger.exception("calculating one check of a group failed")
                results.append(UnexpectedFailure("this check could not be calculated"))
        return results

    async def _inputs_of(
        self,
        terminal: TerminalContext,
        requests: Sequence[CalculationRequest],
        memberships: Sequence[Membership | None],
    ) -> CalculationInputs:
        return await self._inputs.inputs(
            terminal.business_id,
            terminal.program_id,
            sorted({m.customer_id for m in memberships if m is not None}),
            sorted({code for request in requests for code in request.coupon_codes}),
            sorted({code for request in requests for code in request.certificate_codes}),
            sorted(
                {
                    line.product_code
                    for request in requests
                    for line in request.check.lines
                    if not line.goods_category_code
                }
            ),
            sorted(
                {
                    line.goods_category_code
                    for request in requests
                    for line in request.check.lines
                    if line.goods_category_code
                }
            ),
        )

    def prepared(
        self,
        terminal: TerminalContext,
        request: CalculationRequest,
        membership: Membership | None,
        inputs: CalculationInputs,
        program: CompiledProgram,
    ) -> Calculation:
        """The receipt from inputs already read (synchronous: the pure engine)."""
        check_goods_categories(request.check.lines, inputs.known_goods_categories)
        moment = _local_moment(terminal.time_zone, request.sale_time, self._clock())
        unopened = _unopened_pockets(membership, inputs)
        customer, coupon_ids, certificate_ids = _customer(
            request, membership, inputs, moment, unopened
        )
        check = _categorised(request.check, inputs.goods_categories, terminal.currency)
        redemption = checks.Redemption(
            points=request.points,
            coupon_ids=tuple(coupon_ids.values()),
            accounts=tuple(
                checks.AccountSpending(account_type_id, amount)
                for account_type_id, amount in request.accounts
            ),
            certificates=tuple(
                checks.CertificateSpending(certificate_id)
                for certificate_id in certificate_ids.values()
            ),
        )

        def run(points: int) -> checks.Receipt:
            return calculate(
                check,
                program,
                customer,
                replace(redemption, points=points),
                moment=moment,
                point_of_sale_id=terminal.point_of_sale_id,
                explain=request.explain,
            )

        receipt = run(request.points)
        if request.points_maximum and receipt.points_redeemable_max != request.points:
            receipt = run(receipt.points_redeemable_max)
        if membership is not None:
            # The answer's points pocket reports the limit the receipt was calculated on.
            membership = with_points_limit(
                membership, program.program.points_redemption_limit_without_pin
            )
        return Calculation(
            receipt,
            membership,
            {coupon_id: code for code, coupon_id in coupon_ids.items()},
            {certificate_id: code for code, certificate_id in certificate_ids.items()},
            program.program.hold_seconds,
            unopened,
        )


def _local_moment(time_zone: str, sale_time: datetime | None, now: float) -> datetime:
    moment = sale_time or datetime.fromtimestamp(now, UTC)
    return moment.astimezone(ZoneInfo(time_zone))


def _categorised(check: checks.Check, categories: dict[str, str], currency: str) -> checks.Check:
    """Lines the POS sent without a goods category get the catalogue's, a check sent
    without a currency the business's. Built with the constructors: `dataclasses.replace`
    cost a few microseconds a line on every check."""
    if not categories:
        return check if check.currency else checks.Check(currency, check.lines)
    return checks.Check(
        check.currency or currency,
        tuple(
            line
            if line.goods_category_code or line.product_code not in categories
            else checks.CheckLine(
                line.position,
                line.product_code,
                line.price,
                line.quantity,
                line.amount,
                categories[line.product_code],
            )
            for line in check.lines
        ),
    )


def _customer(
    request: CalculationRequest,
    membership: Membership | None,
    inputs: CalculationInputs,
    moment: datetime,
    unopened: tuple[Pocket, ...],
) -> tuple[checks.Customer | None, dict[str, int], dict[str, int]]:
    """The engine's view of the customer, and the ids of the named coupons and certificates."""
    customer_id = None if membership is None else membership.customer_id
    coupons, coupon_ids = _coupons(request.coupon_codes, inputs, customer_id)
    certificate_ids = _certificate_ids(request.certificate_codes, inputs)
    certificates = tuple(
        checks.Certificate(row.certificate_id, row.available, row.expires_at)
        for row in inputs.certificates.values()
        if row.certificate_id in certificate_ids.values()
    )
    if membership is None:
        if not coupons and not certificates:
            return None, {}, {}
        # An unidentified buyer may still present bearer coupons and certificates.
        anonymous = checks.Customer(
            category_id=0,
            access_type=checks.AccessType.NONE,
            coupons=coupons,
            certificates=certificates,
        )
        return anonymous, coupon_ids, certificate_ids
    points = next(p for p in membership.pockets if p.account_type_id == POINTS_ACCOUNT_TYPE_ID)
    customer = checks.Customer(
        category_id=membership.category_id,
        access_type=membership.access_type,
        points_lots=spendable_lots(
            points.balance,
            points.held,
            (
                (lot.lot_id, lot.remaining, lot.expires_at)
                for lot in inputs.lots(membership.customer_id)
            ),
            moment,
        ),
        accounts=_accounts((*membership.pockets, *unopened), inputs),
        coupons=coupons,
        certificates=certificates,
    )
    return customer, coupon_ids, certificate_ids


def _accounts(
    pockets: Sequence[Pocket], inputs: CalculationInputs
) -> tuple[checks.CustomerAccount, ...]:
    accounts = []
    for pocket in pockets:
        settings = inputs.account_types.get(pocket.account_type_id)
        if settings is None:
            continue
        accounts.append(
            checks.CustomerAccount(
                account_id=pocket.account_type_id,
                kind=_account_kinds[pocket.kind],
                balance=pocket.available,
                product_codes=settings.product_codes,
                redemption_limit_without_pin=settings.redemption_limit_without_pin,
                purchases_per_reward=settings.purchases_per_reward,
                title=pocket.title,
            )
        )
    return tuple(accounts)


def _unopened_pockets(
    membership: Membership | None, inputs: CalculationInputs
) -> tuple[Pocket, ...]:
    """Achievements count from a member's first purchase: every achievements account the
    member has no pocket for yet, empty."""
    if membership is None:
        return ()
    held = {pocket.account_type_id for pocket in membership.pockets}
    return tuple(
        Pocket(
            pocket_id=0,
            kind=PocketKind.ACHIEVEMENTS,
            account_type_id=settings.account_type_id,
            title=localized(settings.title, membership.language, settings.name),
            balance=0,
            held=0,
            redemption_limit_without_pin=settings.redemption_limit_without_pin,
        )
        for settings in inputs.account_types.values()
        if settings.kind == PocketKind.ACHIEVEMENTS.value and settings.account_type_id not in held
    )


def _coupons(
    codes: tuple[str, ...], inputs: CalculationInputs, customer_id: int | None
) -> tuple[tuple[checks.Coupon, ...], dict[str, int]]:
    """The named coupons the customer may use, and their ids by code; refuses the others."""
    coupons: list[checks.Coupon] = []
    violations: list[FieldViolation] = []
    for index, code in enumerate(codes):
        path = f"redemption.coupon_codes[{index}]"
        row = inputs.coupons.get(code)
        if row is None:
            violations.append(FieldViolation(path, f"no coupon {echoed(code)} in this business"))
        elif row.customer_id is not None and row.customer_id != customer_id:
            violations.append(FieldViolation(path, f"coupon {echoed(code)} is not this customer's"))
        elif row.status != "issued":
            violations.append(FieldViolation(path, f"coupon {echoed(code)} is {row.status}"))
        else:
            coupons.append(
                checks.Coupon(
                    coupon_id=row.coupon_id,
                    kind=checks.CouponKind(row.kind),
                    value=row.value,
                    product_codes=row.product_codes,
                    check_sum_min=row.check_sum_min,
                    expires_at=row.expires_at,
                    title=localized(row.title, "", row.name),
                )
            )
    if violations:
        raise FailedPrecondition(
            violations[0].description, reason="COUPON_NOT_USABLE", violations=tuple(violations)
        )
    return tuple(coupons), {code: inputs.coupons[code].coupon_id for code in codes}


def _certificate_ids(codes: tuple[str, ...], inputs: CalculationInputs) -> dict[str, int]:
    found: dict[str, int] = {}
    violations: list[FieldViolation] = []
    for index, code in enumerate(codes):
        row = inputs.certificates.get(code)
        if row is None:
            violations.append(
                FieldViolation(
                    f"redemption.certificate_codes[{index}]",
                    f"no certificate {echoed(code)} in this business",
                )
            )
        else:
            found[code] = row.certificate_id
    if violations:
        raise FailedPrecondition(
            violations[0].description, reason="CERTIFICATE_NOT_FOUND", violations=tuple(violations)
        )
    return found
