"""A loyalty program's rule set: plain values, validation on write, and the compiled form.

Contract:

* `Program`, `Rule`, `Selector` and `TimeWindow` are frozen dataclasses of plain values, as
  an administrator writes them. `validate_program` checks one on write and raises a single
  InvalidArgument naming every wrong field (`program.rules[3].selector.days_of_week[0]`).
* A rule is an accrual or a discount, on a line or on the check, a percent (basis points)
  or a fixed value (discounts: minor units per unit on a line, or per check; accruals:
  hundredths of a point per unit on a line, or per check).
* A selector narrows where a rule applies; every empty list means "any". A line matches
  the goods part when `product_codes` and `goods_category_codes` are both empty, or its
  product code or goods category is listed, and its product code is not excluded.
  The context part (customer category, point of sale, day of week, local time window,
  check sum as sent >= `check_sum_min`) is the same for every line of a check.
* `compile_program` validates and indexes the rules by product code, by goods category,
  and "applies to any goods", once per program version, so that evaluating a check looks
  only at rules that can match its lines, however many rules there are for other goods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Final, TypeVar

from purse.domain.amounts import basis_points_per_whole, currency_exponents
from purse.domain.checks import (
    CheckLine,
    price_max_minor_units,
    product_code_length_max_characters,
)
from purse.domain.errors import FieldViolation, InvalidArgument, echoed

rules_per_program_max: Final = 10_000
codes_per_selector_max: Final = 10_000
identifiers_per_selector_max: Final = 1_000
time_windows_per_selector_max: Final = 24
title_length_max_characters: Final = 200
minutes_per_day: Final = 24 * 60
days_per_week: Final = 7
fixed_value_max_minor_units: Final = price_max_minor_units
fixed_accrual_max_points: Final = 10**12
point_value_max_minor_units: Final = 10**9
hold_seconds_min: Final = 1
hold_seconds_max: Final = 86_400
candidate_cache_entries_max: Final = 100_000

_Entry = TypeVar("_Entry", int, str)


class RuleKind(Enum):
    ACCRUAL = "accrual"
    DISCOUNT = "discount"


class RuleScope(Enum):
    """LINE: the rule is worked out line by line; CHECK: once over the lines it matches."""

    LINE = "line"
    CHECK = "check"


class ValueKind(Enum):
    PERCENT = "percent"  # basis points
    FIXED = "fixed"  # minor units (discounts) or hundredths of a point (accruals)


class AccrualBase(Enum):
    """Which amount of a line accrual percentages apply to."""

    LINE_AMOUNT = "line_amount"  # as sent by the POS, before anything
    AFTER_DISCOUNTS = "after_discounts"  # after rule discounts and coupons
    PAID = "paid"  # what the customer pays at the till: after discounts and every payment


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Local minutes of the day, start inclusive, end exclusive; start > end wraps midnight."""

    start_minute: int
    end_minute: int


@dataclass(frozen=True, slots=True)
class Selector:
    """Where a rule applies; every empty tuple means "any". Days: 0 is Monday."""

    customer_category_ids: tuple[int, ...] = ()
    point_of_sale_ids: tuple[int, ...] = ()
    product_codes: tuple[str, ...] = ()
    goods_category_codes: tuple[str, ...] = ()
    product_codes_excluded: tuple[str, ...] = ()
    check_sum_min: int = 0
    days_of_week: tuple[int, ...] = ()
    time_windows: tuple[TimeWindow, ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    rule_id: int
    title: str
    kind: RuleKind
    scope: RuleScope
    value_kind: ValueKind
    value: int
    selector: Selector = field(default_factory=Selector)


@dataclass(frozen=True, slots=True)
class Program:
    """A program's rules and settings.

    Points redemption: at most `redemption_share_max_basis_points` of the check after
    discounts may be paid with points, and only when the check sum as sent is at least
    `redemption_check_sum_min`. One whole point pays `point_value_minor_units_per_point`
    minor units (default 100: one point pays one currency unit). Redeeming more than
    `points_redemption_limit_without_pin` hundredths needs the customer's PIN (0: every
    redemption does; None: none does).

    A transaction waiting for the PIN holds its debits for `hold_seconds`; a completed sale
    of the same day may be cancelled (reversed whole) only when `cancel_completed_sales`.
    """

    currency: str
    rules: tuple[Rule, ...] = ()
    accrual_base: AccrualBase = AccrualBase.PAID
    point_value_minor_units_per_point: int = 100
    redemption_share_max_basis_points: int = basis_points_per_whole
    redemption_check_sum_min: int = 0
    points_redemption_limit_without_pin: int | None = 0
    hold_seconds: int = 600
    cancel_completed_sales: bool = True


# --- validation ------------------------------------------------------------------------------


def validate_program(program: Program, path: str = "program") -> None:
    """Raise InvalidArgument naming every wrong field of `program`; return if it is sound."""
    violations = list(_program_violations(program, path))
    if violations:
        first = violations[0]
        raise InvalidArgument(
            message=f"{first.field}: {first.description}"
            + (f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""),
            violations=tuple(violations),
        )


def _program_violations(program: Program, path: str) -> Iterator[FieldViolation]:
    if program.currency not in currency_exponents:
        yield FieldViolation(f"{path}.currency", f"unknown currency {echoed(program.currency)}")
    if not 1 <= program.point_value_minor_units_per_point <= point_value_max_minor_units:
        yield FieldViolation(
            f"{path}.point_value_minor_units_per_point",
            f"must be between 1 and {point_value_max_minor_units}",
        )
    if not 0 <= program.redemption_share_max_basis_points <= basis_points_per_whole:
        yield FieldViolation(
            f"{path}.redemption_share_max_basis_points",
            f"must be between 0 and {basis_points_per_whole}",
        )
    if not 0 <= program.redemption_check_sum_min <= fixed_value_max_minor_units:
        yield FieldViolation(f"{path}.redemption_check_sum_min", "must not be negative")
    if not hold_seconds_min <= program.hold_seconds <= hold_seconds_max:
        yield FieldViolation(
            f"{path}.hold_seconds", f"from {hold_seconds_min} to {hold_seconds_max} seconds"
        )
    threshold = program.points_redemption_limit_without_pin
    if threshold is not None and threshold < 0:
        yield FieldViolation(f"{path}.points_redemption_limit_without_pin", "must not be negative")
    if len(program.rules) > rules_per_program_max:
        yield FieldViolation(f"{path}.rules", f"more than {rules_per_program_max} rules")
        return
    seen: set[int] = set()
    for index, rule in enumerate(program.rules):
        rule_path = f"{path}.rules[{index}]"
        if rule.rule_id in seen:
            yield FieldViolation(f"{rule_path}.rule_id", f"duplicate rule id {rule.rule_id}")
        seen.add(rule.rule_id)
        yield from _rule_violations(rule, rule_path)


def _rule_violations(rule: Rule, path: str) -> Iterator[FieldViolation]:
    if rule.rule_id <= 0:
        yield FieldViolation(f"{path}.rule_id", "must be positive")
    if not rule.title or len(rule.title) > title_length_max_characters:
        yield FieldViolation(
            f"{path}.title", f"must have 1 to {title_length_max_characters} characters"
        )
    if rule.value_kind is ValueKind.PERCENT:
        value_max = basis_points_per_whole
    elif rule.kind is RuleKind.DISCOUNT:
        value_max = fixed_value_max_minor_units
    else:
        value_max = fixed_accrual_max_points
    if not 1 <= rule.value <= value_max:
        yield FieldViolation(f"{path}.value", f"must be between 1 and {value_max}")
    yield from _selector_violations(rule.selector, f"{path}.selector")


def _selector_violations(selector: Selector, path: str) -> Iterator[FieldViolation]:
    yield from _list_violations(
        selector.customer_category_ids,
        f"{path}.customer_category_ids",
        identifiers_per_selector_max,
        _identifier_problem,
    )
    yield from _list_violations(
        selector.point_of_sale_ids,
        f"{path}.point_of_sale_ids",
        identifiers_per_selector_max,
        _identifier_problem,
    )
    for name in ("product_codes", "goods_category_codes", "product_codes_excluded"):
        codes: tuple[str, ...] = getattr(selector, name)
        yield from _list_violations(codes, f"{path}.{name}", codes_per_selector_max, _code_problem)
    both = set(selector.product_codes) & set(selector.product_codes_excluded)
    for index, code in enumerate(selector.product_codes_excluded):
        if code in both:
            yield FieldViolation(
                f"{path}.product_codes_excluded[{index}]", f"{echoed(code)} is also included"
            )
    if not 0 <= selector.check_sum_min <= fixed_value_max_minor_units:
        yield FieldViolation(f"{path}.check_sum_min", "must not be negative")
    yield from _list_violations(
        selector.days_of_week, f"{path}.days_of_week", days_per_week, _day_problem
    )
    if len(selector.time_windows) > time_windows_per_selector_max:
        yield FieldViolation(
            f"{path}.time_windows", f"more than {time_windows_per_selector_max} windows"
        )
    for index, window in enumerate(selector.time_windows[:time_windows_per_selector_max]):
        window_path = f"{path}.time_windows[{index}]"
        for name in ("start_minute", "end_minute"):
            minute: int = getattr(window, name)
            if not 0 <= minute <= minutes_per_day:
                yield FieldViolation(
                    f"{window_path}.{name}", f"must be between 0 and {minutes_per_day}"
                )
        if window.start_minute == window.end_minute:
            yield FieldViolation(window_path, "start and end must differ")


def _list_violations(
    values: tuple[_Entry, ...],
    path: str,
    length_max: int,
    problem: Callable[[_Entry], str | None],
) -> Iterator[FieldViolation]:
    if len(values) > length_max:
        yield FieldViolation(path, f"more than {length_max} entries")
        return
    seen: set[_Entry] = set()
    for index, value in enumerate(values):
        description = problem(value)
        if description is None and value in seen:
            description = f"duplicate {echoed(str(value))}"
        if description is not None:
            yield FieldViolation(f"{path}[{index}]", description)
        seen.add(value)


def _identifier_problem(value: int) -> str | None:
    return None if value > 0 else "must be positive"


def _code_problem(value: str) -> str | None:
    if not value or len(value) > product_code_length_max_characters:
        return f"must have 1 to {product_code_length_max_characters} characters"
    return None


def _day_problem(value: int) -> str | None:
    return None if 0 <= value < days_per_week else "must be 0 (Monday) to 6 (Sunday)"


# --- the compiled form -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule with its selector turned into sets for constant-time membership tests."""

    rule: Rule
    customer_category_ids: frozenset[int]
    point_of_sale_ids: frozenset[int]
    product_codes: frozenset[str]
    goods_category_codes: frozenset[str]
    product_codes_excluded: frozenset[str]
    days_of_week: frozenset[int]
    time_windows: tuple[tuple[int, int], ...]
    check_sum_min: int
    is_percent: bool


@dataclass(frozen=True, slots=True)
class RuleIndex:
    """The rules of one kind and scope, by what goods they can match.

    `everywhere` holds rules that match every line (no product, goods-category or excluded
    lists); their context is checked once per check. The others are found per line: under
    each listed product code and goods category, or, for rules that list only exclusions,
    in `excluding`.
    """

    everywhere: tuple[CompiledRule, ...]
    excluding: tuple[CompiledRule, ...]
    by_product_code: dict[str, tuple[CompiledRule, ...]]
    by_goods_category: dict[str, tuple[CompiledRule, ...]]

    @property
    def has_line_specific_rules(self) -> bool:
        """Whether some rule here matches only some lines (otherwise lines need no lookup)."""
        return bool(self.excluding or self.by_product_code or self.by_goods_category)

    @property
    def has_listed_rules(self) -> bool:
        """Whether some rule here lists product codes or goods categories."""
        return bool(self.by_product_code or self.by_goods_category)

    def matching(
        self, product_code: str, goods_category_code: str | None, *, with_excluding: bool = True
    ) -> tuple[CompiledRule, ...]:
        """Rules other than `everywhere` whose goods part matches a line, once each, by id."""
        found = [
            *(self.excluding if with_excluding else ()),
            *self.by_product_code.get(product_code, ()),
        ]
        if goods_category_code is not None:
            found.extend(
                compiled
                for compiled in self.by_goods_category.get(goods_category_code, ())
                if product_code not in compiled.product_codes
            )
        found = [c for c in found if product_code not in c.product_codes_excluded]
        found.sort(key=lambda compiled: compiled.rule.rule_id)
        return tuple(found)


@dataclass(frozen=True, slots=True)
class LineCandidates:
    """The rules of each group that match lines of one product code and goods category.

    Leaves out each group's `everywhere` rules, and for CHECK groups its `excluding` rules:
    the engine handles those for all lines at once.
    """

    line_discounts: tuple[CompiledRule, ...]
    check_discounts: tuple[CompiledRule, ...]
    line_accruals: tuple[CompiledRule, ...]
    check_accruals: tuple[CompiledRule, ...]


@dataclass(frozen=True, slots=True)
class CompiledProgram:
    """A validated program indexed for evaluation; build it once per program version.

    `candidates` memoizes per (product code, goods category) which rules can match: the
    result depends only on the immutable program, so the memo never changes an answer; it
    is bounded by `candidate_cache_entries_max` and safe to share between threads.
    """

    program: Program
    currency_exponent: int
    line_discounts: RuleIndex
    check_discounts: RuleIndex
    line_accruals: RuleIndex
    check_accruals: RuleIndex
    rules_in_order: tuple[CompiledRule, ...]
    _candidate_cache: dict[tuple[str, str | None], LineCandidates] = field(
        default_factory=dict, compare=False, repr=False
    )

    def candidates(self, product_code: str, goods_category_code: str | None) -> LineCandidates:
        """The rules that can match a line with this product code and goods category."""
        key = (product_code, goods_category_code)
        found = self._candidate_cache.get(key)
        if found is None:
            found = LineCandidates(
                line_discounts=self.line_discounts.matching(product_code, goods_category_code),
                check_discounts=self.check_discounts.matching(
                    product_code, goods_category_code, with_excluding=False
                ),
                line_accruals=self.line_accruals.matching(product_code, goods_category_code),
                check_accruals=self.check_accruals.matching(
                    product_code, goods_category_code, with_excluding=False
                ),
            )
            if len(self._candidate_cache) >= candidate_cache_entries_max:
                self._candidate_cache.clear()
            self._candidate_cache[key] = found
        return found

    def candidates_of_lines(self, lines: Iterable[CheckLine]) -> list[LineCandidates]:
        """`candidates` for each line, in order."""
        # The cache's own get, not a bound method kept in a local: compiled, that is a
        # Python-level call per line.
        cache = self._candidate_cache
        found: list[LineCandidates] = []
        for line in lines:
            line_candidates = cache.get((line.product_code, line.goods_category_code))
            if line_candidates is None:
                line_candidates = self.candidates(line.product_code, line.goods_category_code)
            found.append(line_candidates)
        return found


def compile_program(program: Program) -> CompiledProgram:
    """Validate `program` (InvalidArgument if unsound) and index its rules."""
    validate_program(program)
    compiled_rules = tuple(
        _compile_rule(rule) for rule in sorted(program.rules, key=lambda rule: rule.rule_id)
    )

    def index(kind: RuleKind, scope: RuleScope) -> RuleIndex:
        return _build_index(
            compiled
            for compiled in compiled_rules
            if compiled.rule.kind is kind and compiled.rule.scope is scope
        )

    return CompiledProgram(
        program=program,
        currency_exponent=currency_exponents[program.currency],
        line_discounts=index(RuleKind.DISCOUNT, RuleScope.LINE),
        check_discounts=index(RuleKind.DISCOUNT, RuleScope.CHECK),
        line_accruals=index(RuleKind.ACCRUAL, RuleScope.LINE),
        check_accruals=index(RuleKind.ACCRUAL, RuleScope.CHECK),
        rules_in_order=compiled_rules,
    )


def _compile_rule(rule: Rule) -> CompiledRule:
    selector = rule.selector
    return CompiledRule(
        rule=rule,
        customer_category_ids=frozenset(selector.customer_category_ids),
        point_of_sale_ids=frozenset(selector.point_of_sale_ids),
        product_codes=frozenset(selector.product_codes),
        goods_category_codes=frozenset(selector.goods_category_codes),
        product_codes_excluded=frozenset(selector.product_codes_excluded),
        days_of_week=frozenset(selector.days_of_week),
        time_windows=tuple((w.start_minute, w.end_minute) for w in selector.time_windows),
        check_sum_min=selector.check_sum_min,
        is_percent=rule.value_kind is ValueKind.PERCENT,
    )


def _build_index(rules: Iterable[CompiledRule]) -> RuleIndex:
    everywhere: list[CompiledRule] = []
    excluding: list[CompiledRule] = []
    by_product_code: dict[str, list[CompiledRule]] = {}
    by_goods_category: dict[str, list[CompiledRule]] = {}
    for compiled in rules:
        if not compiled.product_codes and not compiled.goods_category_codes:
            (excluding if compiled.product_codes_excluded else everywhere).append(compiled)
        for code in compiled.product_codes:
            by_product_code.setdefault(code, []).append(compiled)
        for code in compiled.goods_category_codes:
            by_goods_category.setdefault(code, []).append(compiled)
    return RuleIndex(
        everywhere=tuple(everywhere),
        excluding=tuple(excluding),
        by_product_code={code: tuple(bucket) for code, bucket in by_product_code.items()},
        by_goods_category={code: tuple(bucket) for code, bucket in by_goods_category.items()},
    )
