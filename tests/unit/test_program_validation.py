"""Program validation on write, and the compiled index."""

from __future__ import annotations

import pytest

from purse.domain.errors import InvalidArgument
from purse.domain.program import (
    Program,
    Rule,
    RuleKind,
    RuleScope,
    Selector,
    TimeWindow,
    ValueKind,
    compile_program,
    rules_per_program_max,
    validate_program,
)


def rule(rule_id: int = 1, **changes: object) -> Rule:
    fields: dict[str, object] = {
        "rule_id": rule_id,
        "title": f"Rule {rule_id}",
        "kind": RuleKind.DISCOUNT,
        "scope": RuleScope.LINE,
        "value_kind": ValueKind.PERCENT,
        "value": 500,
        "selector": Selector(),
    }
    fields.update(changes)
    return Rule(**fields)  # type: ignore[arg-type]


def violated_fields(program: Program) -> list[str]:
    with pytest.raises(InvalidArgument) as raised:
        validate_program(program)
    return [violation.field for violation in raised.value.violations]


def test_a_sound_program_passes() -> None:
    validate_program(
        Program(
            currency="UAH",
            rules=(
                rule(1),
                rule(2, kind=RuleKind.ACCRUAL, value_kind=ValueKind.FIXED, value=1000),
                rule(
                    3,
                    scope=RuleScope.CHECK,
                    selector=Selector(
                        customer_category_ids=(1, 2),
                        point_of_sale_ids=(7,),
                        product_codes=("A",),
                        goods_category_codes=("fuel",),
                        product_codes_excluded=("B",),
                        check_sum_min=10000,
                        days_of_week=(5, 6),
                        time_windows=(TimeWindow(22 * 60, 2 * 60),),
                    ),
                ),
            ),
        )
    )


def test_every_wrong_field_is_named_at_once() -> None:
    program = Program(
        currency="UAH",
        rules=(rule(1, value=0), rule(1, title=""), rule(3, value=10_001)),
    )
    assert violated_fields(program) == [
        "program.rules[0].value",
        "program.rules[1].rule_id",
        "program.rules[1].title",
        "program.rules[2].value",
    ]


def test_program_settings_are_checked() -> None:
    program = Program(
        currency="ZZZ",
        point_value_minor_units_per_point=0,
        redemption_share_max_basis_points=10_001,
        redemption_check_sum_min=-1,
        points_redemption_limit_without_pin=-5,
    )
    assert violated_fields(program) == [
        "program.currency",
        "program.point_value_minor_units_per_point",
        "program.redemption_share_max_basis_points",
        "program.redemption_check_sum_min",
        "program.points_redemption_limit_without_pin",
    ]


def test_selector_lists_are_checked_entry_by_entry() -> None:
    selector = Selector(
        customer_category_ids=(1, 0),
        product_codes=("A", "", "A"),
        product_codes_excluded=("A",),
        days_of_week=(7,),
        time_windows=(TimeWindow(60, 60), TimeWindow(-1, 1441)),
        check_sum_min=-100,
    )
    assert violated_fields(Program(currency="USD", rules=(rule(selector=selector),))) == [
        "program.rules[0].selector.customer_category_ids[1]",
        "program.rules[0].selector.product_codes[1]",
        "program.rules[0].selector.product_codes[2]",
        "program.rules[0].selector.product_codes_excluded[0]",
        "program.rules[0].selector.check_sum_min",
        "program.rules[0].selector.days_of_week[0]",
        "program.rules[0].selector.time_windows[0]",
        "program.rules[0].selector.time_windows[1].start_minute",
        "program.rules[0].selector.time_windows[1].end_minute",
    ]


def test_a_percent_above_one_hundred_is_refused_but_big_fixed_accruals_are_fine() -> None:
    assert violated_fields(Program(currency="EUR", rules=(rule(value=10_001),))) == [
        "program.rules[0].value"
    ]
    validate_program(
        Program(
            currency="EUR",
            rules=(rule(kind=RuleKind.ACCRUAL, value_kind=ValueKind.FIXED, value=10**9),),
        )
    )


def test_the_number_of_rules_is_bounded() -> None:
    rules = tuple(rule(number + 1) for number in range(rules_per_program_max + 1))
    assert violated_fields(Program(currency="UAH", rules=rules)) == ["program.rules"]


def test_compiling_refuses_an_unsound_program() -> None:
    with pytest.raises(InvalidArgument):
        compile_program(Program(currency="UAH", rules=(rule(value=-1),)))


def test_the_index_files_rules_by_what_goods_they_can_match() -> None:
    compiled = compile_program(
        Program(
            currency="UAH",
            rules=(
                rule(1),
                rule(2, selector=Selector(product_codes=("A",))),
                rule(3, selector=Selector(goods_category_codes=("coffee",))),
                rule(4, selector=Selector(product_codes=("A",), goods_category_codes=("coffee",))),
                rule(5, selector=Selector(product_codes_excluded=("B",))),
            ),
        )
    )
    index = compiled.line_discounts
    assert [c.rule.rule_id for c in index.everywhere] == [1]
    assert [c.rule.rule_id for c in index.matching("A", "coffee")] == [2, 3, 4, 5]
    assert [c.rule.rule_id for c in index.matching("C", "coffee")] == [3, 4, 5]
    assert [c.rule.rule_id for c in index.matching("B", None)] == []
    assert [c.rule.rule_id for c in index.matching("C", None)] == [5]
    candidates = compiled.candidates("A", "coffee")
    assert candidates is compiled.candidates("A", "coffee")  # memoized
    assert [c.rule.rule_id for c in candidates.line_discounts] == [2, 3, 4, 5]
    assert candidates.check_discounts == ()
