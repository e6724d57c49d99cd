"""The receipt engine: check + compiled program + customer + moment + point of sale → receipt.

`calculate` is pure and deterministic: the same input always gives the same receipt, and
the order of the check's lines does not matter (lines are worked on, and returned, sorted
by position; every tie is broken by the lowest position, rule id or lot id).

Calculation order
-----------------
0. Validate. Bad input raises InvalidArgument with field paths (`check.lines[3].quantity`);
   a blacklisted customer raises FailedPrecondition CUSTOMER_BLACKLISTED. A line's amount
   must be price x quantity rounded either way (|amount x 1000 - price x quantity| < 1000).
   The *check sum* is the sum of the line amounts as sent; every `check_sum_min` compares
   with it. The *context* of a rule (customer category, point of sale, day of week and
   local minute of `moment`, check sum) is worked out once per rule per check.
1. Line discounts. On each line the most generous matching LINE discount rule applies
   (ties: lowest rule id), worked out on the line amount as sent: a percent of it, or a
   fixed amount per unit x quantity, never more than the line.
2. Check discounts. The most generous matching CHECK discount rule applies once: a
   percent of, or a fixed amount up to, what its matching lines still cost, split over
   them in proportion to what each still costs.
3. Coupons, in the order the cashier gave them: percent or fixed like check discounts
   over the lines the coupon allows, or free units of an allowed product (cheapest unit
   first). A coupon that cannot apply is listed in `not_applied` and is not used.
   Then achievement rewards: each achievements account (by account id) counts whole units
   of its products bought on this check; every Nth purchase is a free unit, cheapest
   first, paid from the account. Rewards come before points so that points are never
   spent on a unit that turns out to be free.
4. Points redemption. The cashier asks for any amount up to `points_redeemable_max`: the
   available points of unexpired lots, and no more than the program's share of the check
   after steps 1-3 (`redemption_share_max_basis_points`), only for FULL access and a check
   sum of at least `redemption_check_sum_min`. One point pays
   `point_value_minor_units_per_point` minor units (the money is rounded once). The money
   is split over lines by what each still costs, the points by the money per line; lots
   are taken soonest-to-expire first, lots that never expire last.
5. Account payments: products accounts (quantities of their products, lowest
   position first), then money accounts (split over allowed lines by what each still
   costs), then certificates; within a kind, in the order the cashier gave them.
6. Accrual (FULL and LIMITED access) on the base the program names (`accrual_base`,
   default PAID: what is left to pay at the till). On each line the most generous
   LINE accrual rule; then the most generous CHECK accrual rule, split over its lines.
   A percent accrual gives points worth that percent of the base at the program's point
   value; a fixed LINE accrual gives its points per unit (on the PAID base, units paid by
   products accounts or free units do not count), a fixed CHECK accrual once.

Access types govern bonus points only; accounts, coupons and certificates are the
customer's property and work for every access type except BLACKLISTED.

A debit above its pocket's redemption limit without PIN (an account's
`redemption_limit_without_pin`, the program's `points_redemption_limit_without_pin`) is
listed in `Receipt.confirmations`: the customer must confirm it with a PIN.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, TypeVar

from purse.domain.amounts import (
    basis_points_per_whole,
    currency_exponent,
    divide_each_rounded,
    divide_rounded,
    format_money,
    point_hundredths_per_point,
    quantity_thousandths_per_unit,
    split_list_proportionally,
)
from purse.domain.checks import (
    AccessType,
    AccountKind,
    AccountSpending,
    Accrual,
    AchievementProgress,
    Certificate,
    CertificateSpending,
    Check,
    CheckLine,
    Confirmation,
    Coupon,
    CouponKind,
    Customer,
    CustomerAccount,
    Discount,
    LotTake,
    NotApplied,
    Payment,
    PointsLot,
    Receipt,
    ReceiptLine,
    Redemption,
    SourceKind,
    check_lines_max,
    check_sum_max_minor_units,
    line_amount_max_minor_units,
    no_redemption,
    price_max_minor_units,
    product_code_length_max_characters,
    quantity_max_thousandths,
)
from purse.domain.errors import FailedPrecondition, FieldViolation, InvalidArgument, invalid
from purse.domain.program import (
    AccrualBase,
    CompiledProgram,
    CompiledRule,
    RuleIndex,
    RuleKind,
    RuleScope,
)

_unit: Final = quantity_thousandths_per_unit
_unknown: Final = "?"  # not a reason code: marks a context not yet worked out
_Pocket = TypeVar("_Pocket", Coupon, CustomerAccount, Certificate)
_weekday_names: Final = (
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
)
# The four groups of rules, as `_Work.rules_per_line` selects them: an int rather than a
# getter function, because compiled code calls a Python-level callable slowly.
_line_discounts: Final = 0
_check_discounts: Final = 1
_line_accruals: Final = 2
_check_accruals: Final = 3


def calculate(
    check: Check,
    program: CompiledProgram,
    customer: Customer | None,
    redemption: Redemption = no_redemption,
    *,
    moment: datetime,
    point_of_sale_id: int,
    explain: bool = False,
) -> Receipt:
    """Recalculate `check` under `program` for `customer` (None: not identified).

    `moment` is the local time of the point of sale (naive, or aware in the point of sale's
    zone); its wall clock selects days and time windows, and it is compared directly with
    lots', coupons' and certificates' `expires_at`. With `explain`, the receipt lists every
    rule that did not apply and why.
    """
    lines = _validated_lines(check, program)
    if customer is not None and customer.access_type is AccessType.BLACKLISTED:
        raise FailedPrecondition(
            message="the customer is blacklisted", reason="CUSTOMER_BLACKLISTED"
        )
    coupons, spendings, certificates = _validated_redemption(redemption, customer)
    work = _Work(lines, program, customer, moment, point_of_sale_id)
    _apply_line_discounts(work)
    _apply_check_discounts(work)
    for coupon in coupons:
        _apply_coupon(work, coupon)
    _apply_achievements(work)
    _redeem_points(work, redemption.points)
    for kind in (AccountKind.PRODUCTS, AccountKind.MONEY):
        for index, account, spending in spendings:
            if account.kind is kind:
                _pay_from_account(work, account, spending, index)
    for index, certificate, certificate_spending in certificates:
        _pay_with_certificate(work, certificate, certificate_spending, index)
    _accrue(work)
    if explain:
        _explain_rules(work)
    return _receipt(work, check.currency)


class _Work:
    """The mutable state of one calculation; lists are aligned with lines sorted by position.

    Only `remaining` (what each line still costs) and `quantity_left` (what quantity of it
    no account or free unit has covered yet) change from step to step; the per-line totals
    of the receipt are summed from the recorded discounts, payments and accruals at the end.
    """

    __slots__ = (
        "accruals", "achievements", "amounts", "candidates", "category_id", "check_sum",
        "confirmations", "context_refusals", "customer", "discounts", "every_index", "exponent",
        "lines", "lots_taken", "minute_of_day", "moment", "not_applied", "payments",
        "point_of_sale_id", "points_payment", "points_redeemable_max", "program",
        "quantity_left", "remaining", "weekday",
    )  # fmt: skip

    def __init__(
        self,
        lines: list[CheckLine],
        program: CompiledProgram,
        customer: Customer | None,
        moment: datetime,
        point_of_sale_id: int,
    ) -> None:
        self.lines = lines
        self.program = program
        self.customer = customer
        self.category_id = None if customer is None else customer.category_id
        self.moment = moment
        self.point_of_sale_id = point_of_sale_id
        self.weekday = moment.weekday()
        self.minute_of_day = moment.hour * 60 + moment.minute
        self.exponent = program.currency_exponent
        self.amounts = [line.amount for line in lines]
        # Shared by every "all lines" selection: no caller changes it.
        self.every_index = list(range(len(lines)))
        self.check_sum = sum(self.amounts)
        self.remaining = list(self.amounts)
        self.quantity_left = [line.quantity for line in lines]
        self.candidates = program.candidates_of_lines(lines)
        self.points_redeemable_max = 0
        self.points_payment: Payment | None = None
        self.context_refusals: dict[int, str | None] = {}
        self.discounts: list[Discount] = []
        self.payments: list[Payment] = []
        self.accruals: list[Accrual] = []
        self.lots_taken: list[LotTake] = []
        self.achievements: list[AchievementProgress] = []
        self.confirmations: list[Confirmation] = []
        self.not_applied: list[NotApplied] = []

    def refusal(self, compiled: CompiledRule) -> str | None:
        """Why the rule's context excludes this check (a reason code), None if it does not."""
        rule_id = compiled.rule.rule_id
        reason = self.context_refusals.get(rule_id, _unknown)
        if reason is not _unknown:
            return reason
        reason = None
        categories = compiled.customer_category_ids
        points_of_sale = compiled.point_of_sale_ids
        if categories and self.category_id not in categories:
            reason = "CUSTOMER_CATEGORY_NOT_SELECTED"
        elif points_of_sale and self.point_of_sale_id not in points_of_sale:
            reason = "POINT_OF_SALE_NOT_SELECTED"
        elif compiled.days_of_week and self.weekday not in compiled.days_of_week:
            reason = "DAY_OF_WEEK_NOT_SELECTED"
        elif compiled.time_windows and not _in_windows(self.minute_of_day, compiled.time_windows):
            reason = "OUTSIDE_TIME_WINDOWS"
        elif self.check_sum < compiled.check_sum_min:
            reason = "CHECK_SUM_BELOW_MINIMUM"
        self.context_refusals[rule_id] = reason
        return reason

    def usable(self, rules: tuple[CompiledRule, ...]) -> list[CompiledRule]:
        """The rules among `rules` whose context holds for this check."""
        if not rules:
            return []
        return [compiled for compiled in rules if self.refusal(compiled) is None]

    def rules_per_line(self, group: int) -> list[tuple[CompiledRule, ...]]:
        """For each line, the rules of `group` (`_line_discounts`...) found for its goods."""
        candidates = self.candidates
        if group == _line_discounts:
            return [line.line_discounts for line in candidates]
        if group == _check_discounts:
            return [line.check_discounts for line in candidates]
        if group == _line_accruals:
            return [line.line_accruals for line in candidates]
        return [line.check_accruals for line in candidates]

    def take(self, line_amounts: list[int]) -> None:
        """Take per-line money off what each line still costs."""
        # In place: other names refer to the list.
        remaining = self.remaining
        assert len(line_amounts) == len(remaining), "per-line lists are aligned"
        # A plain zip (lengths asserted): compiled, only a zip without keywords is a native loop.
        remaining[:] = [left - amount for left, amount in zip(remaining, line_amounts)]  # noqa: B905

    def confirm_above(
        self, kind: SourceKind, source_id: int, debit: int, limit: int | None
    ) -> None:
        if limit is not None and debit > limit:
            self.confirmations.append(Confirmation(kind, source_id, debit, limit))


def _in_windows(minute: int, windows: tuple[tuple[int, int], ...]) -> bool:
    for start, end in windows:
        if start <= minute < end if start < end else (minute >= start or minute < end):
            return True
    return False


# --- 0. validation ---------------------------------------------------------------------------


def _validated_lines(check: Check, program: CompiledProgram) -> list[CheckLine]:
    """The check's lines sorted by position, or InvalidArgument naming every bad field."""
    currency_exponent(check.currency, "check.currency")
    if check.currency != program.program.currency:
        raise invalid(
            "check.currency",
            f"the program keeps {program.program.currency}, not {check.currency}",
            reason="CURRENCY_MISMATCH",
        )
    lines = check.lines
    if not lines:
        raise invalid("check.lines", "a check needs at least one line", reason="EMPTY_CHECK")
    if len(lines) > check_lines_max:
        raise invalid("check.lines", f"more than {check_lines_max} lines", reason="TOO_MANY_LINES")
    positions: set[int] = set()
    violations: list[FieldViolation] = []
    previous = -1
    ordered = True
    for index, line in enumerate(lines):
        position = line.position
        category = line.goods_category_code
        if (
            0 < line.price <= price_max_minor_units
            and 0 < line.quantity <= quantity_max_thousandths
            and -_unit < line.amount * _unit - line.price * line.quantity < _unit
            and line.amount <= line_amount_max_minor_units
            and 0 < len(line.product_code) <= product_code_length_max_characters
            and (category is None or 0 < len(category) <= product_code_length_max_characters)
            and position >= 0
            and position not in positions
        ):
            positions.add(position)
            ordered = ordered and position > previous
            previous = position
            continue
        violations.extend(_line_violations(line, f"check.lines[{index}]", positions))
        positions.add(position)
    if not violations and sum(line.amount for line in lines) > check_sum_max_minor_units:
        violations.append(
            FieldViolation("check.lines", f"the lines sum to more than {check_sum_max_minor_units}")
        )
    if violations:
        raise InvalidArgument(
            message=f"{violations[0].field}: {violations[0].description}",
            violations=tuple(violations),
        )
    return list(lines) if ordered else sorted(lines, key=lambda line: line.position)


def _line_violations(line: CheckLine, path: str, positions: set[int]) -> list[FieldViolation]:
    found: list[FieldViolation] = []
    if line.position < 0:
        found.append(FieldViolation(f"{path}.position", "must not be negative"))
    elif line.position in positions:
        found.append(FieldViolation(f"{path}.position", f"duplicate position {line.position}"))
    code_rule = f"must have 1 to {product_code_length_max_characters} characters"
    if not 0 < len(line.product_code) <= product_code_length_max_characters:
        found.append(FieldViolation(f"{path}.product_code", code_rule))
    category = line.goods_category_code
    if category is not None and not 0 < len(category) <= product_code_length_max_characters:
        found.append(FieldViolation(f"{path}.goods_category_code", code_rule))
    price_ok = 0 < line.price <= price_max_minor_units
    quantity_ok = 0 < line.quantity <= quantity_max_thousandths
    if not price_ok:
        found.append(
            FieldViolation(f"{path}.price", f"must be between 1 and {price_max_minor_units}")
        )
    if not quantity_ok:
        found.append(
            FieldViolation(f"{path}.quantity", f"must be between 1 and {quantity_max_thousandths}")
        )
    difference = line.amount * _unit - line.price * line.quantity
    if price_ok and quantity_ok and not -_unit < difference < _unit:
        found.append(
            FieldViolation(f"{path}.amount", "must be price x quantity / 1000, rounded either way")
        )
    elif line.amount > line_amount_max_minor_units:
        found.append(FieldViolation(f"{path}.amount", f"at most {line_amount_max_minor_units}"))
    return found


def _validated_redemption(
    redemption: Redemption, customer: Customer | None
) -> tuple[
    list[Coupon],
    list[tuple[int, CustomerAccount, AccountSpending]],
    list[tuple[int, Certificate, CertificateSpending]],
]:
    """The requested coupons, accounts and certificates, each checked to be the customer's."""
    if redemption.points < 0:
        raise invalid("redemption.points", "must not be negative")
    if customer is None:
        if redemption != no_redemption:
            raise FailedPrecondition(
                message="redemption needs an identified customer", reason="CUSTOMER_REQUIRED"
            )
        return [], [], []
    coupons: list[Coupon] = []
    if redemption.coupon_ids:
        wallet = {coupon.coupon_id: coupon for coupon in customer.coupons}
        _refuse_duplicates(redemption.coupon_ids, "redemption.coupon_ids[{}]")
        for index, coupon_id in enumerate(redemption.coupon_ids):
            coupons.append(
                _owned(wallet, coupon_id, "redemption.coupon_ids[{}]", index, "COUPON_NOT_OWNED")
            )
    spendings: list[tuple[int, CustomerAccount, AccountSpending]] = []
    if redemption.accounts:
        accounts = {account.account_id: account for account in customer.accounts}
        path = "redemption.accounts[{}].account_id"
        _refuse_duplicates(tuple(spending.account_id for spending in redemption.accounts), path)
        for index, spending in enumerate(redemption.accounts):
            account = _owned(accounts, spending.account_id, path, index, "ACCOUNT_NOT_OWNED")
            if account.kind is AccountKind.ACHIEVEMENTS:
                raise invalid(path.format(index), "achievements accounts apply by themselves")
            _refuse_non_positive(spending.amount, "redemption.accounts[{}].amount", index)
            spendings.append((index, account, spending))
    certificates: list[tuple[int, Certificate, CertificateSpending]] = []
    if redemption.certificates:
        owned = {certificate.certificate_id: certificate for certificate in customer.certificates}
        path = "redemption.certificates[{}].certificate_id"
        _refuse_duplicates(tuple(spent.certificate_id for spent in redemption.certificates), path)
        for index, spent in enumerate(redemption.certificates):
            certificate = _owned(owned, spent.certificate_id, path, index, "CERTIFICATE_NOT_OWNED")
            _refuse_non_positive(spent.amount, "redemption.certificates[{}].amount", index)
            certificates.append((index, certificate, spent))
    return coupons, spendings, certificates


def _refuse_duplicates(identifiers: tuple[int, ...], path: str) -> None:
    if len(set(identifiers)) == len(identifiers):
        return
    seen: set[int] = set()
    for index, identifier in enumerate(identifiers):
        if identifier in seen:
            raise invalid(path.format(index), f"{identifier} is named twice", reason="DUPLICATE")
        seen.add(identifier)


def _refuse_non_positive(amount: int | None, path: str, index: int) -> None:
    if amount is not None and amount <= 0:
        raise invalid(path.format(index), "must be positive (or unset for as much as allowed)")


def _owned(
    pockets: dict[int, _Pocket], identifier: int, path: str, index: int, reason: str
) -> _Pocket:
    pocket = pockets.get(identifier)
    if pocket is None:
        field_path = path.format(index)
        raise FailedPrecondition(
            message=f"{field_path}: {identifier} is not this customer's",
            reason=reason,
            violations=(FieldViolation(field_path, "not this customer's"),),
        )
    return pocket


# --- 1. and 2. rule discounts ----------------------------------------------------------------


class _Chosen:
    """A rule with what it gives on each line (the engine's own record: compiled, a native
    class is built and read much faster than a tuple of objects)."""

    __slots__ = ("line_values", "rule")

    def __init__(self, rule: CompiledRule, line_values: list[int]) -> None:
        self.rule = rule
        self.line_values = line_values


def _best_per_line(
    work: _Work,
    index: RuleIndex,
    group: int,
    *,
    bases: list[int],
    quantities: list[int],
    scale: int,
    divisor: int,
    capped: bool,
) -> list[_Chosen]:
    """For each line, the LINE rule giving the most (ties: lowest rule id); by rule id.

    A percent rule gives base x value x `scale` / `divisor`; a fixed rule gives its value per
    unit x the line's entry in `quantities`, no more than the base when `capped`. Rules
    giving nothing do not apply. Of the rules that match every line only the biggest
    percent can win on a line without other candidates, so it is worked out for all lines
    at once and only the other lines are looked at one by one.
    """
    chosen: dict[int, _Chosen] = {}
    top, fixed_everywhere = _partition_everywhere(work.usable(index.everywhere))
    if top is None:
        top_values = [0] * len(bases)
    else:
        factor = top.rule.value * scale
        top_values = divide_each_rounded([base * factor for base in bases], divisor)
        chosen[top.rule.rule_id] = _Chosen(top, top_values)
    if not fixed_everywhere and not index.has_line_specific_rules:
        return list(chosen.values()) if any(top_values) else []
    for line_index, specific in enumerate(work.rules_per_line(group)):
        if not specific and not fixed_everywhere:
            continue
        best = top
        best_value = top_values[line_index]
        base = bases[line_index]
        for compiled in fixed_everywhere + specific:
            if work.refusal(compiled) is not None:
                continue
            if compiled.is_percent:
                given = divide_rounded(base * compiled.rule.value * scale, divisor)
            else:
                given = divide_rounded(compiled.rule.value * quantities[line_index], _unit)
                given = min(given, base) if capped else given
            if given > best_value or (
                given == best_value and (best is None or compiled.rule.rule_id < best.rule.rule_id)
            ):
                best, best_value = compiled, given
        if best is top or best is None:
            continue
        top_values[line_index] = 0
        entry = chosen.get(best.rule.rule_id)
        if entry is None:
            entry = chosen[best.rule.rule_id] = _Chosen(best, [0] * len(bases))
        entry.line_values[line_index] = best_value
    return [chosen[rule_id] for rule_id in sorted(chosen) if any(chosen[rule_id].line_values)]


def _partition_everywhere(
    rules: list[CompiledRule],
) -> tuple[CompiledRule | None, tuple[CompiledRule, ...]]:
    """The biggest percent rule (lowest id on a tie) and the fixed rules, of rules by id."""
    top: CompiledRule | None = None
    fixed: tuple[CompiledRule, ...] = ()
    for compiled in rules:
        if not compiled.is_percent:
            fixed += (compiled,)
        elif top is None or compiled.rule.value > top.rule.value:
            top = compiled
    return top, fixed


class _Matched:
    """A CHECK rule whose context holds, with the indexes of the lines it matches."""

    __slots__ = ("indexes", "rule")

    def __init__(self, rule: CompiledRule, indexes: list[int]) -> None:
        self.rule = rule
        self.indexes = indexes


def _lines_by_check_rule(work: _Work, index: RuleIndex, group: int) -> list[_Matched]:
    """CHECK rules whose context holds, each with the indexes of the lines it matches; by id."""
    every_line = work.every_index
    found: dict[int, _Matched] = {
        compiled.rule.rule_id: _Matched(compiled, every_line)
        for compiled in work.usable(index.everywhere)
    }
    lines = work.lines
    for compiled in work.usable(index.excluding):
        excluded = compiled.product_codes_excluded
        indexes = [i for i in every_line if lines[i].product_code not in excluded]
        if indexes:
            found[compiled.rule.rule_id] = _Matched(compiled, indexes)
    if index.has_listed_rules:
        gathered: dict[int, _Matched] = {}
        for line_index, specific in enumerate(work.rules_per_line(group)):
            for compiled in specific:
                rule_id = compiled.rule.rule_id
                entry = gathered.get(rule_id)
                if entry is None:
                    if work.refusal(compiled) is not None:
                        continue
                    entry = gathered[rule_id] = _Matched(compiled, [])
                entry.indexes.append(line_index)
        found.update(gathered)
    if len(found) < 2:
        return list(found.values())
    return [found[rule_id] for rule_id in sorted(found)]


def _apply_line_discounts(work: _Work) -> None:
    """Step 1: on each line the most generous matching LINE discount, on the amount as sent."""
    chosen = _best_per_line(
        work,
        work.program.line_discounts,
        _line_discounts,
        bases=work.amounts,
        quantities=work.quantity_left,  # nothing is covered yet: the quantities as sent
        scale=1,
        divisor=basis_points_per_whole,
        capped=True,
    )
    for entry in chosen:
        line_amounts = entry.line_values
        rule = entry.rule.rule
        work.take(line_amounts)
        work.discounts.append(
            Discount(
                SourceKind.RULE, rule.rule_id, rule.title, sum(line_amounts), tuple(line_amounts)
            )
        )


def _apply_check_discounts(work: _Work) -> None:
    """Step 2: the most generous matching CHECK discount, over what its lines still cost."""
    remaining = work.remaining
    best: CompiledRule | None = None
    best_amount = 0
    best_indexes: list[int] = []
    for matched in _lines_by_check_rule(work, work.program.check_discounts, _check_discounts):
        compiled = matched.rule
        base = _sum_at(remaining, matched.indexes)
        value = compiled.rule.value
        off = (
            divide_rounded(base * value, basis_points_per_whole)
            if compiled.is_percent
            else min(value, base)
        )
        if off > best_amount:
            best, best_amount, best_indexes = compiled, off, matched.indexes
    if best is None:
        return
    line_amounts = _spread(best_amount, best_indexes, remaining)
    work.take(line_amounts)
    work.discounts.append(
        Discount(
            SourceKind.RULE, best.rule.rule_id, best.rule.title, best_amount, tuple(line_amounts)
        )
    )


def _sum_at(values: list[int], indexes: list[int]) -> int:
    if len(indexes) == len(values):
        return sum(values)
    total = 0
    for index in indexes:
        total += values[index]
    return total


def _spread(total: int, indexes: list[int], weights: list[int]) -> list[int]:
    """`total` split over the lines at `indexes` by their `weights`, as a full-length list."""
    if len(indexes) == len(weights):
        return split_list_proportionally(total, weights)
    line_amounts = [0] * len(weights)
    parts = split_list_proportionally(total, [weights[index] for index in indexes])
    for position, index in enumerate(indexes):
        line_amounts[index] = parts[position]
    return line_amounts


# --- 3. coupons and achievement rewards ------------------------------------------------------


def _apply_coupon(work: _Work, coupon: Coupon) -> None:
    """Step 3: one requested coupon; if it cannot apply it is listed as not applied."""
    remaining = work.remaining
    refusal: tuple[str, str] | None = None
    line_amounts: list[int] = []
    if coupon.expires_at is not None and not work.moment < coupon.expires_at:
        refusal = ("COUPON_EXPIRED", "the coupon has expired")
    elif work.check_sum < coupon.check_sum_min:
        minimum = format_money(coupon.check_sum_min, work.exponent)
        refusal = ("CHECK_SUM_BELOW_MINIMUM", f"check sum below {minimum}")
    else:
        indexes = _allowed_lines(work, coupon.product_codes)
        base = _sum_at(remaining, indexes)
        if base <= 0:
            refusal = ("NO_MATCHING_LINES", "no line is left to pay for the coupon's products")
        elif coupon.kind is CouponKind.FREE_PRODUCT:
            line_amounts, _ = _cover_quantities(
                work, _cheapest_first(work, indexes), coupon.value, whole_units=False
            )
        else:
            if coupon.kind is CouponKind.PERCENT:
                off = divide_rounded(base * coupon.value, basis_points_per_whole)
            else:
                off = min(coupon.value, base)
            line_amounts = _spread(off, indexes, remaining)
        if refusal is None and not any(line_amounts):
            refusal = ("NOTHING_TO_DISCOUNT", "the coupon is worth nothing on this check")
    if refusal is not None:
        work.not_applied.append(NotApplied(SourceKind.COUPON, coupon.coupon_id, *refusal))
        return
    work.take(line_amounts)
    work.discounts.append(
        Discount(
            SourceKind.COUPON,
            coupon.coupon_id,
            coupon.title,
            sum(line_amounts),
            tuple(line_amounts),
        )
    )


def _allowed_lines(work: _Work, product_codes: tuple[str, ...]) -> list[int]:
    """Indexes of lines whose product is allowed (no codes: every line), by position."""
    if not product_codes:
        return work.every_index
    allowed = frozenset(product_codes)
    return [index for index, line in enumerate(work.lines) if line.product_code in allowed]


def _cheapest_first(work: _Work, indexes: list[int]) -> list[int]:
    """`indexes` by the price of their lines, cheapest first (ties: lowest position)."""
    lines = work.lines
    by_price = sorted([(lines[index].price, index) for index in indexes])
    return [index for _, index in by_price]


def _cover_quantities(
    work: _Work, ordered_indexes: list[int], quantity: int, *, whole_units: bool
) -> tuple[list[int], list[int]]:
    """Pay for up to `quantity` thousandths of the lines, in the order given.

    Returns the money and the quantity covered per line. The money for part of a line is
    what the line still costs in proportion to the quantity not yet covered; lines that
    cost nothing any more are skipped, so no account pays quantities for free.
    """
    count = len(work.lines)
    remaining = work.remaining
    quantity_left = work.quantity_left
    line_money = [0] * count
    line_quantities = [0] * count
    left = quantity
    for index in ordered_indexes:
        if left <= 0:
            break
        available = quantity_left[index]
        if whole_units:
            available -= available % _unit
        covered = min(available, left)
        if covered <= 0 or remaining[index] <= 0:
            continue
        if covered == quantity_left[index]:
            line_money[index] = remaining[index]
        else:
            line_money[index] = divide_rounded(remaining[index] * covered, quantity_left[index])
        quantity_left[index] -= covered
        line_quantities[index] = covered
        left -= covered
    return line_money, line_quantities


def _apply_achievements(work: _Work) -> None:
    """Step 3, after coupons: every achievements account, by account id."""
    if work.customer is None or not work.customer.accounts:
        return
    accounts = work.customer.accounts
    by_id = sorted(
        [
            (account.account_id, index)
            for index, account in enumerate(accounts)
            if account.kind is AccountKind.ACHIEVEMENTS
        ]
    )
    for _, index in by_id:
        account = accounts[index]
        if account.purchases_per_reward < 1:
            raise invalid(
                f"customer.accounts[{index}].purchases_per_reward",
                "an achievements account needs N of 'every Nth purchase' (at least 1)",
            )
        _apply_achievement(work, account)


def _apply_achievement(work: _Work, account: CustomerAccount) -> None:
    """Count whole units bought of the account's products; every Nth is free, cheapest first."""
    per_reward = account.purchases_per_reward
    indexes = _allowed_lines(work, account.product_codes)
    line_purchases = [0] * len(work.lines)
    lines = work.lines
    for index in indexes:
        line_purchases[index] = lines[index].quantity // _unit
    purchases = sum(line_purchases)
    if not purchases:
        return
    rewards_due = (account.balance + purchases) // per_reward
    line_money: list[int] = []
    line_quantities: list[int] = []
    rewards = 0
    if rewards_due:
        line_money, line_quantities = _cover_quantities(
            work, _cheapest_first(work, indexes), rewards_due * _unit, whole_units=True
        )
        rewards = sum(line_quantities) // _unit
    balance_after = account.balance + purchases - per_reward * rewards
    work.achievements.append(
        AchievementProgress(
            account.account_id, purchases, rewards, balance_after, tuple(line_purchases)
        )
    )
    if not rewards:
        return
    debit = per_reward * rewards
    work.take(line_money)
    line_debits = tuple([covered // _unit * per_reward for covered in line_quantities])
    work.payments.append(
        Payment(
            SourceKind.ACCOUNT, account.account_id, account.title, sum(line_money), debit,
            tuple(line_money), line_debits,
        )
    )  # fmt: skip
    work.confirm_above(
        SourceKind.ACCOUNT, account.account_id, debit, account.redemption_limit_without_pin
    )


# --- 4. points -------------------------------------------------------------------------------


def _redeem_points(work: _Work, requested: int) -> None:
    """Step 4: work out `points_redeemable_max` and redeem `requested` hundredths of a point."""
    customer = work.customer
    if customer is None:
        return
    program = work.program.program
    moment = work.moment
    spendable = [
        lot
        for lot in customer.points_lots
        if lot.points > 0 and (lot.expires_at is None or moment < lot.expires_at)
    ]
    available = sum([lot.points for lot in spendable])
    refusal: tuple[str, str] | None = None
    if customer.access_type is not AccessType.FULL:
        refusal = ("POINTS_REDEMPTION_NOT_ALLOWED", "the customer's access type forbids it")
    elif work.check_sum < program.redemption_check_sum_min:
        minimum = format_money(program.redemption_check_sum_min, work.exponent)
        refusal = ("CHECK_SUM_BELOW_MINIMUM", f"check sum below {minimum}")
    remaining = work.remaining
    value = program.point_value_minor_units_per_point
    cap_money = divide_rounded(
        sum(remaining) * program.redemption_share_max_basis_points, basis_points_per_whole
    )
    cap_points = cap_money * point_hundredths_per_point // value
    work.points_redeemable_max = 0 if refusal else min(available, cap_points)
    if requested == 0:
        return
    if refusal is None and requested > available:
        refusal = ("INSUFFICIENT_POINTS", f"only {available} hundredths of a point available")
    elif refusal is None and requested > cap_points:
        refusal = ("REDEMPTION_ABOVE_CAP", f"at most {cap_points} hundredths of a point")
    if refusal is not None:
        raise FailedPrecondition(
            message=f"redemption.points: {refusal[1]}",
            reason=refusal[0],
            violations=(FieldViolation("redemption.points", refusal[1]),),
        )
    money = divide_rounded(requested * value, point_hundredths_per_point)
    line_money = split_list_proportionally(money, remaining)
    line_points = split_list_proportionally(requested, line_money if money else remaining)
    work.take(line_money)
    work.lots_taken = _take_from_lots(spendable, requested)
    payment = Payment(
        SourceKind.POINTS, 0, "points", money, requested, tuple(line_money), tuple(line_points)
    )
    work.points_payment = payment
    work.payments.append(payment)
    limit = program.points_redemption_limit_without_pin
    work.confirm_above(SourceKind.POINTS, 0, requested, limit)


def _take_from_lots(lots: list[PointsLot], points: int) -> list[LotTake]:
    """Soonest-to-expire first (ties: lowest lot id), lots that never expire last."""
    if len(lots) > 1:
        # Sort keys end with the lot's place, so that no two keys are equal.
        expiring: list[tuple[datetime, int, int]] = []
        lasting: list[tuple[int, int]] = []
        for place, lot in enumerate(lots):
            if lot.expires_at is None:
                lasting.append((lot.lot_id, place))
            else:
                expiring.append((lot.expires_at, lot.lot_id, place))
        expiring.sort()
        lasting.sort()
        lots = [lots[key[2]] for key in expiring] + [lots[key[1]] for key in lasting]
    taken: list[LotTake] = []
    left = points
    for lot in lots:
        if left == 0:
            break
        portion = min(lot.points, left)
        taken.append(LotTake(lot.lot_id, portion))
        left -= portion
    assert left == 0, "the caller checked that the lots hold enough points"
    return taken


# --- 5. accounts and certificates ------------------------------------------------------------


def _pay_from_account(
    work: _Work, account: CustomerAccount, spending: AccountSpending, request_index: int
) -> None:
    """Step 5: a products account pays quantities, a money account pays money."""
    indexes = _allowed_lines(work, account.product_codes)
    remaining = work.remaining
    products = account.kind is AccountKind.PRODUCTS
    if products:
        quantity_left = work.quantity_left
        room = sum([quantity_left[index] for index in indexes if remaining[index] > 0])
    else:
        room = _sum_at(remaining, indexes)
    amount = _amount_to_pay(
        work,
        kind=SourceKind.ACCOUNT,
        source_id=account.account_id,
        requested=spending.amount,
        balance=account.balance,
        room=room,
        path="redemption.accounts[{}].amount",
        request_index=request_index,
    )
    if amount == 0:
        return
    if products:
        line_money, line_debits = _cover_quantities(work, indexes, amount, whole_units=False)
        amount = sum(line_debits)  # equals the amount asked for: `room` counts the same lines
    else:
        line_money = line_debits = _spread(amount, indexes, remaining)
    work.take(line_money)
    work.payments.append(
        Payment(
            SourceKind.ACCOUNT, account.account_id, account.title, sum(line_money), amount,
            tuple(line_money), tuple(line_debits),
        )
    )  # fmt: skip
    work.confirm_above(
        SourceKind.ACCOUNT, account.account_id, amount, account.redemption_limit_without_pin
    )


def _pay_with_certificate(
    work: _Work, certificate: Certificate, spending: CertificateSpending, request_index: int
) -> None:
    """Step 5, last: a certificate pays money for any line."""
    if certificate.expires_at is not None and not work.moment < certificate.expires_at:
        path = f"redemption.certificates[{request_index}]"
        raise FailedPrecondition(
            message=f"{path}: the certificate has expired",
            reason="CERTIFICATE_EXPIRED",
            violations=(FieldViolation(f"{path}.certificate_id", "expired"),),
        )
    remaining = work.remaining
    amount = _amount_to_pay(
        work,
        kind=SourceKind.CERTIFICATE,
        source_id=certificate.certificate_id,
        requested=spending.amount,
        balance=certificate.balance,
        room=sum(remaining),
        path="redemption.certificates[{}].amount",
        request_index=request_index,
    )
    if amount == 0:
        return
    line_money = split_list_proportionally(amount, remaining)
    work.take(line_money)
    work.payments.append(
        Payment(
            SourceKind.CERTIFICATE, certificate.certificate_id, "certificate", amount, amount,
            tuple(line_money), tuple(line_money),
        )
    )  # fmt: skip


def _amount_to_pay(
    work: _Work,
    *,
    kind: SourceKind,
    source_id: int,
    requested: int | None,
    balance: int,
    room: int,
    path: str,
    request_index: int,
) -> int:
    """The amount a pocket pays: as requested, or as much as allowed when unset (maybe 0).

    `path` is the requested amount's field path with `{}` for `request_index`: it is
    formatted only for an error, as most calculations have none.
    """
    allowed = max(0, min(balance, room))
    if requested is None:
        if allowed == 0:
            work.not_applied.append(
                NotApplied(kind, source_id, "NOTHING_TO_PAY", "nothing on the check it may pay")
            )
        return allowed
    reason = ""
    if requested > balance:
        reason, description = "INSUFFICIENT_BALANCE", f"only {max(balance, 0)} available"
    elif requested > room:
        reason, description = "REDEMPTION_ABOVE_CAP", f"the check allows at most {room}"
    if reason:
        field_path = path.format(request_index)
        raise FailedPrecondition(
            message=f"{field_path}: {description}",
            reason=reason,
            violations=(FieldViolation(field_path, description),),
        )
    return requested


# --- 6. accrual ------------------------------------------------------------------------------


def _accrual_bases(work: _Work) -> list[int]:
    base = work.program.program.accrual_base
    if base is AccrualBase.PAID:
        return work.remaining
    if base is AccrualBase.AFTER_DISCOUNTS:
        discount = _column_sums([d.line_amounts for d in work.discounts], len(work.lines))
        amounts = work.amounts
        return [amount - discount[index] for index, amount in enumerate(amounts)]
    return work.amounts


def _accrual_quantities(work: _Work) -> list[int]:
    """Quantities fixed LINE accruals count: on the PAID base, not those paid by accounts."""
    if work.program.program.accrual_base is AccrualBase.PAID:
        return work.quantity_left
    return [line.quantity for line in work.lines]


def _accrue(work: _Work) -> None:
    """Step 6: the most generous LINE accrual per line, then the most generous CHECK accrual."""
    customer = work.customer
    if customer is None or customer.access_type is AccessType.NONE:
        return
    bases = _accrual_bases(work)
    # hundredths of a point = base x basis points / 10000 (money) x 100 / point value
    divisor = basis_points_per_whole * work.program.program.point_value_minor_units_per_point
    chosen = _best_per_line(
        work,
        work.program.line_accruals,
        _line_accruals,
        bases=bases,
        quantities=_accrual_quantities(work),
        scale=point_hundredths_per_point,
        divisor=divisor,
        capped=False,
    )
    for entry in chosen:
        line_points = entry.line_values
        rule = entry.rule.rule
        work.accruals.append(
            Accrual(rule.rule_id, rule.title, sum(line_points), tuple(line_points))
        )
    _accrue_on_check(work, bases, divisor)


def _accrue_on_check(work: _Work, bases: list[int], divisor: int) -> None:
    best: CompiledRule | None = None
    best_points = 0
    best_indexes: list[int] = []
    for matched in _lines_by_check_rule(work, work.program.check_accruals, _check_accruals):
        compiled = matched.rule
        indexes = matched.indexes
        if compiled.is_percent:
            base = _sum_at(bases, indexes)
            points = divide_rounded(
                base * compiled.rule.value * point_hundredths_per_point, divisor
            )
        else:
            points = compiled.rule.value
        if points > best_points:
            best, best_points, best_indexes = compiled, points, indexes
    if best is None:
        return
    # A fixed accrual on a check paid entirely with points still needs weights to split by.
    weights = bases
    if not _sum_at(bases, best_indexes):
        weights = work.amounts if _sum_at(work.amounts, best_indexes) else work.quantity_left
        if not _sum_at(weights, best_indexes):
            weights = [line.quantity for line in work.lines]
    line_points = _spread(best_points, best_indexes, weights)
    work.accruals.append(
        Accrual(best.rule.rule_id, best.rule.title, best_points, tuple(line_points))
    )


# --- explanations and the receipt ------------------------------------------------------------


def _explain_rules(work: _Work) -> None:
    """List every rule that gave nothing on this check, with the first reason it did not."""
    applied = {d.source_id for d in work.discounts if d.source_kind is SourceKind.RULE}
    applied.update(accrual.rule_id for accrual in work.accruals)
    customer = work.customer
    accrual_allowed = customer is not None and customer.access_type is not AccessType.NONE
    for compiled in work.program.rules_in_order:
        rule = compiled.rule
        if rule.rule_id in applied:
            continue
        if rule.kind is RuleKind.ACCRUAL and not accrual_allowed:
            reason: str | None = "ACCRUAL_NOT_ALLOWED"
        else:
            reason = work.refusal(compiled)
        if reason is None:
            reason = "OUTRANKED" if _matches_some_line(work, compiled) else "NO_MATCHING_LINES"
        work.not_applied.append(
            NotApplied(SourceKind.RULE, rule.rule_id, reason, _describe(work, compiled, reason))
        )


def _matches_some_line(work: _Work, compiled: CompiledRule) -> bool:
    rule = compiled.rule
    accrual = rule.kind is RuleKind.ACCRUAL
    line_scope = rule.scope is RuleScope.LINE
    if accrual:
        index = work.program.line_accruals if line_scope else work.program.check_accruals
        group = _line_accruals if line_scope else _check_accruals
    else:
        index = work.program.line_discounts if line_scope else work.program.check_discounts
        group = _line_discounts if line_scope else _check_discounts
    if compiled in index.everywhere:
        return True
    return any(compiled in rules for rules in work.rules_per_line(group))


def _describe(work: _Work, compiled: CompiledRule, reason: str) -> str:
    """Words for a cashier: why the rule gave nothing."""
    if reason == "CUSTOMER_CATEGORY_NOT_SELECTED":
        if work.category_id is None:
            return "no customer identified, and the rule is for some customer categories only"
        return f"customer category {work.category_id} is not among the rule's categories"
    if reason == "POINT_OF_SALE_NOT_SELECTED":
        return f"point of sale {work.point_of_sale_id} is not among the rule's points of sale"
    if reason == "DAY_OF_WEEK_NOT_SELECTED":
        return f"the rule does not apply on {_weekday_names[work.weekday]}"
    if reason == "OUTSIDE_TIME_WINDOWS":
        hour, minute = divmod(work.minute_of_day, 60)
        return f"the rule does not apply at {hour:02d}:{minute:02d}"
    if reason == "CHECK_SUM_BELOW_MINIMUM":
        return f"check sum below {format_money(compiled.check_sum_min, work.exponent)}"
    if reason == "ACCRUAL_NOT_ALLOWED":
        return "no points accrue for this customer (not identified, or access type none)"
    if reason == "NO_MATCHING_LINES":
        return "no line matches the rule's products or goods categories"
    return "a more generous rule applied, or the rule was worth nothing, on every line it matches"


def _column_sums(rows: list[tuple[int, ...]], count: int) -> list[int]:
    """Per-line sums of several aligned per-line tuples."""
    if not rows:
        return [0] * count
    sums = list(rows[0])
    for row in rows[1:]:
        assert len(row) == count, "per-line tuples are aligned with the lines"
        sums = [total + value for total, value in zip(sums, row)]  # noqa: B905
    return sums


def _receipt(work: _Work, currency: str) -> Receipt:
    count = len(work.lines)
    points_payment = work.points_payment
    discount = _column_sums([discount.line_amounts for discount in work.discounts], count)
    paid_with_accounts = _column_sums(
        [payment.line_amounts for payment in work.payments if payment is not points_payment], count
    )
    zeros = (0,) * count
    paid_with_points = zeros if points_payment is None else points_payment.line_amounts
    points_redeemed = zeros if points_payment is None else points_payment.line_debits
    points_accrued = _column_sums([accrual.line_points for accrual in work.accruals], count)
    remaining = work.remaining
    lines = work.lines
    amounts = work.amounts
    # By index rather than a zip of eight: typeshed types a zip of more than five as Any,
    # which compiled code reads generically.
    receipt_lines = [
        ReceiptLine(
            line.position, line.product_code, amounts[index], discount[index],
            paid_with_points[index], paid_with_accounts[index], remaining[index],
            points_redeemed[index], points_accrued[index],
        )
        for index, line in enumerate(lines)
    ]  # fmt: skip
    return Receipt(
        currency,
        tuple(receipt_lines),
        work.check_sum,
        sum(discount),
        sum(paid_with_points),
        sum(paid_with_accounts),
        sum(remaining),
        0 if points_payment is None else points_payment.debit,
        sum(points_accrued),
        work.points_redeemable_max,
        tuple(work.discounts),
        tuple(work.payments),
        tuple(work.accruals),
        tuple(work.lots_taken),
        tuple(work.achievements),
        tuple(work.confirmations),
        tuple(work.not_applied),
    )
