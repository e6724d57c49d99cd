"""Program rules in PostgreSQL: a JSON document per program with a version that grows on
every change, so that every process knows when its compiled copy is stale.

The document is the storage form of `purse.domain.program.Program` (minus the currency,
which is the business's); `program_document` and `program_from_document` are exact
inverses for every valid program.
"""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractAsyncContextManager
from typing import Any

import asyncpg

from purse.domain.administrators import Actor
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
from purse.service.ports import Row, Writing
from purse.store.postgres import back_office
from purse.store.postgres.back_office import BackOfficeWrites, connection_of


def program_document(program: Program) -> dict[str, Any]:
    return {
        "accrual_base": program.accrual_base.value,
        "point_value_minor_units_per_point": program.point_value_minor_units_per_point,
        "redemption_share_max_basis_points": program.redemption_share_max_basis_points,
        "redemption_check_sum_min": program.redemption_check_sum_min,
        "points_redemption_limit_without_pin": program.points_redemption_limit_without_pin,
        "hold_seconds": program.hold_seconds,
        "cancel_completed_sales": program.cancel_completed_sales,
        "rules": [_rule_document(rule) for rule in program.rules],
    }


def _rule_document(rule: Rule) -> dict[str, Any]:
    selector = rule.selector
    return {
        "rule_id": rule.rule_id,
        "title": rule.title,
        "kind": rule.kind.value,
        "scope": rule.scope.value,
        "value_kind": rule.value_kind.value,
        "value": rule.value,
        "selector": {
            "customer_category_ids": list(selector.customer_category_ids),
            "point_of_sale_ids": list(selector.point_of_sale_ids),
            "product_codes": list(selector.product_codes),
            "goods_category_codes": list(selector.goods_category_codes),
            "product_codes_excluded": list(selector.product_codes_excluded),
            "check_sum_min": selector.check_sum_min,
            "days_of_week": list(selector.days_of_week),
            "time_windows": [[w.start_minute, w.end_minute] for w in selector.time_windows],
        },
    }


def program_from_document(document: dict[str, Any], currency: str) -> Program:
    """The Program a stored document describes; an empty document is the default program."""
    defaults = Program(currency=currency)
    return Program(
        currency=currency,
        rules=tuple(_rule_from_document(rule) for rule in document.get("rules", ())),
        accrual_base=AccrualBase(document.get("accrual_base", defaults.accrual_base.value)),
        point_value_minor_units_per_point=document.get(
            "point_value_minor_units_per_point", defaults.point_value_minor_units_per_point
        ),
        redemption_share_max_basis_points=document.get(
            "redemption_share_max_basis_points", defaults.redemption_share_max_basis_points
        ),
        redemption_check_sum_min=document.get(
            "redemption_check_sum_min", defaults.redemption_check_sum_min
        ),
        points_redemption_limit_without_pin=document.get(
            "points_redemption_limit_without_pin", defaults.points_redemption_limit_without_pin
        ),
        hold_seconds=document.get("hold_seconds", defaults.hold_seconds),
        cancel_completed_sales=document.get(
            "cancel_completed_sales", defaults.cancel_completed_sales
        ),
    )


def _rule_from_document(document: dict[str, Any]) -> Rule:
    selector = document["selector"]
    return Rule(
        rule_id=document["rule_id"],
        title=document["title"],
        kind=RuleKind(document["kind"]),
        scope=RuleScope(document["scope"]),
        value_kind=ValueKind(document["value_kind"]),
        value=document["value"],
        selector=Selector(
            customer_category_ids=tuple(selector["customer_category_ids"]),
            point_of_sale_ids=tuple(selector["point_of_sale_ids"]),
            product_codes=tuple(selector["product_codes"]),
            goods_category_codes=tuple(selector["goods_category_codes"]),
            product_codes_excluded=tuple(selector["product_codes_excluded"]),
            check_sum_min=selector["check_sum_min"],
            days_of_week=tuple(selector["days_of_week"]),
            time_windows=tuple(TimeWindow(start, end) for start, end in selector["time_windows"]),
        ),
    )


class ProgramStore:
    """Rules of the programs of one business at a time; replaced in a back-office writing."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._writes = BackOfficeWrites(pool)

    def writing(self, actor: Actor) -> AbstractAsyncContextManager[back_office.Writing]:
        """A back-office transaction, for replacing rules with their audit entry."""
        return self._writes.writing(actor)

    async def rules(self, business_id: int, program_id: int) -> tuple[int, dict[str, Any]] | None:
        """(version, document), or None when the business has no such program."""
        row = await self._pool.fetchrow(
            "SELECT rules_version, rules FROM loyalty_programs"
            " WHERE business_id = $1 AND program_id = $2",
            business_id,
            program_id,
        )
        return None if row is None else (row["rules_version"], row["rules"])

    async def version(self, business_id: int, program_id: int) -> int | None:
        version: int | None = await self._pool.fetchval(
            "SELECT rules_version FROM loyalty_programs WHERE business_id = $1 AND program_id = $2",
            business_id,
            program_id,
        )
        return version

    async def replace_rules(
        self, writing: Writing, program_id: int, document: dict[str, Any]
    ) -> Row:
        """Store the rules of a program locked in `writing`; its row as it is now (the
        program's own `version` stays: its settings did not change)."""
        row = await connection_of(writing).fetchrow(
            "UPDATE loyalty_programs SET rules = $3, rules_version = rules_version + 1"
            " WHERE business_id = $1 AND program_id = $2 RETURNING *",
            writing.actor.business_id,
            program_id,
            document,
        )
        assert row is not None, "replace the rules of a program locked in this transaction"
        return dict(row)

    async def live_goods_categories(self, writing: Writing, codes: Collection[str]) -> set[str]:
        """Which of `codes` are live goods categories of the business (locked, so that
        none is archived before the rules naming it commit)."""
        rows = await connection_of(writing).fetch(
            "SELECT code FROM goods_categories"
            " WHERE business_id = $1 AND code = ANY($2::text[]) AND archived_at IS NULL"
            " FOR SHARE",
            writing.actor.business_id,
            sorted(codes),
        )
        return {row["code"] for row in rows}
