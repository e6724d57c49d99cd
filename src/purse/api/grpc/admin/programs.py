"""Program rules: AdminService's protobuf into the domain's Program and back."""

from __future__ import annotations

from purse.admin.v1 import admin_service_pb2 as pb
from purse.domain.errors import FieldViolation, InvalidArgument
from purse.domain.program import (
    AccrualBase,
    Program,
    Rule,
    RuleKind,
    RuleScope,
    Selector,
    TimeWindow,
    ValueKind,
)

default_point_value_minor_units = 100
default_hold_seconds = 600
_rule_kinds = {pb.RULE_KIND_ACCRUAL: RuleKind.ACCRUAL, pb.RULE_KIND_DISCOUNT: RuleKind.DISCOUNT}
_scopes = {pb.RULE_SCOPE_LINE: RuleScope.LINE, pb.RULE_SCOPE_CHECK: RuleScope.CHECK}
_value_kinds = {pb.VALUE_KIND_PERCENT: ValueKind.PERCENT, pb.VALUE_KIND_FIXED: ValueKind.FIXED}
_accrual_bases = {
    pb.ACCRUAL_BASE_UNSPECIFIED: AccrualBase.PAID,
    pb.ACCRUAL_BASE_LINE_AMOUNT: AccrualBase.LINE_AMOUNT,
    pb.ACCRUAL_BASE_AFTER_DISCOUNTS: AccrualBase.AFTER_DISCOUNTS,
    pb.ACCRUAL_BASE_PAID: AccrualBase.PAID,
}
_rule_kind_numbers = {kind: number for number, kind in _rule_kinds.items()}
_scope_numbers = {scope: number for number, scope in _scopes.items()}
_value_kind_numbers = {kind: number for number, kind in _value_kinds.items()}
_accrual_base_numbers = {base: number for number, base in _accrual_bases.items() if number}


def program_from_proto(message: pb.ProgramRules, currency: str) -> Program:
    """Unset enums are named as violations here; everything else `validate_program` checks."""
    violations: list[FieldViolation] = []
    rules = tuple(
        _rule(rule, f"rules.rules[{index}]", violations) for index, rule in enumerate(message.rules)
    )
    if violations:
        raise InvalidArgument(
            message=f"{violations[0].field}: {violations[0].description}",
            violations=tuple(violations),
        )
    return Program(
        currency=currency,
        rules=rules,
        accrual_base=_accrual_bases[message.accrual_base],
        point_value_minor_units_per_point=message.point_value_minor_units_per_point
        or default_point_value_minor_units,
        redemption_share_max_basis_points=message.redemption_share_max_basis_points,
        redemption_check_sum_min=message.redemption_check_sum_min_minor_units,
        points_redemption_limit_without_pin=message.points_redemption_limit_without_pin_hundredths
        if message.HasField("points_redemption_limit_without_pin_hundredths")
        else None,
        hold_seconds=message.hold_seconds or default_hold_seconds,
        cancel_completed_sales=message.cancel_completed_sales
        if message.HasField("cancel_completed_sales")
        else True,
    )


def _rule(message: pb.Rule, path: str, violations: list[FieldViolation]) -> Rule:
    for name, table in (("kind", _rule_kinds), ("scope", _scopes), ("value_kind", _value_kinds)):
        if getattr(message, name) not in table:
            violations.append(FieldViolation(f"{path}.{name}", "must be set"))
    selector = message.selector
    return Rule(
        rule_id=message.rule_id,
        title=message.title,
        kind=_rule_kinds.get(message.kind, RuleKind.ACCRUAL),
        scope=_scopes.get(message.scope, RuleScope.LINE),
        value_kind=_value_kinds.get(message.value_kind, ValueKind.PERCENT),
        value=message.value,
        selector=Selector(
            customer_category_ids=tuple(selector.customer_category_ids),
            point_of_sale_ids=tuple(selector.point_of_sale_ids),
            product_codes=tuple(selector.product_codes),
            goods_category_codes=tuple(selector.goods_category_codes),
            product_codes_excluded=tuple(selector.product_codes_excluded),
            check_sum_min=selector.check_sum_min_minor_units,
            days_of_week=tuple(selector.days_of_week),
            time_windows=tuple(
                TimeWindow(window.start_minute, window.end_minute)
                for window in selector.time_windows
            ),
        ),
    )


def program_to_proto(program: Program) -> pb.ProgramRules:
    message = pb.ProgramRules(
        rules=[_rule_to_proto(rule) for rule in program.rules],
        accrual_base=_accrual_base_numbers[program.accrual_base],
        point_value_minor_units_per_point=program.point_value_minor_units_per_point,
        redemption_share_max_basis_points=program.redemption_share_max_basis_points,
        redemption_check_sum_min_minor_units=program.redemption_check_sum_min,
        hold_seconds=program.hold_seconds,
        cancel_completed_sales=program.cancel_completed_sales,
    )
    if program.points_redemption_limit_without_pin is not None:
        message.points_redemption_limit_without_pin_hundredths = (
            program.points_redemption_limit_without_pin
        )
    return message


def _rule_to_proto(rule: Rule) -> pb.Rule:
    selector = rule.selector
    return pb.Rule(
        rule_id=rule.rule_id,
        title=rule.title,
        kind=_rule_kind_numbers[rule.kind],
        scope=_scope_numbers[rule.scope],
        value_kind=_value_kind_numbers[rule.value_kind],
        value=rule.value,
        selector=pb.Selector(
            customer_category_ids=selector.customer_category_ids,
            point_of_sale_ids=selector.point_of_sale_ids,
            product_codes=selector.product_codes,
            goods_category_codes=selector.goods_category_codes,
            product_codes_excluded=selector.product_codes_excluded,
            check_sum_min_minor_units=selector.check_sum_min,
            days_of_week=selector.days_of_week,
            time_windows=[
                pb.TimeWindow(start_minute=w.start_minute, end_minute=w.end_minute)
                for w in selector.time_windows
            ],
        ),
    )
