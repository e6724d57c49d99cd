"""A receipt's storage form: the JSON kept in `transactions.receipt`, the first answer a
retried check gets back. `receipt_document` and `receipt_from_document` are inverses.

The document holds tuples and `SourceKind` members as they are: the jsonb codec (orjson)
writes them as arrays and strings, and this runs for every check processed."""

from __future__ import annotations

from operator import attrgetter
from typing import Any

from purse.domain import checks
from purse.domain.transactions import SaleReceipt

LINE_FIELDS = (
    "position", "product_code", "amount", "discount", "paid_with_points", "paid_with_accounts",
    "to_pay", "points_redeemed", "points_accrued",
)  # fmt: skip
TOTAL_FIELDS = (
    "currency", "check_sum", "discount_total", "paid_with_points", "paid_with_accounts",
    "to_pay", "points_redeemed", "points_accrued", "points_redeemable_max",
)  # fmt: skip
# (receipt attribute, record type, its fields, fields that hold enums, fields that are tuples)
DOCUMENT_FIELDS: tuple[tuple[str, type[Any], tuple[str, ...]], ...] = (
    ("discounts", checks.Discount, ("source_kind", "source_id", "title", "amount", "line_amounts")),
    (
        "payments",
        checks.Payment,
        ("source_kind", "source_id", "title", "amount", "debit", "line_amounts", "line_debits"),
    ),
    ("accruals", checks.Accrual, ("rule_id", "title", "points", "line_points")),
    ("lots_taken", checks.LotTake, ("lot_id", "points")),
    (
        "achievements",
        checks.AchievementProgress,
        ("account_id", "purchases", "rewards", "balance_after", "line_purchases"),
    ),
    ("confirmations", checks.Confirmation, ("source_kind", "source_id", "debit", "limit")),
    ("not_applied", checks.NotApplied, ("source_kind", "source_id", "reason", "description")),
)


_totals_of = attrgetter(*TOTAL_FIELDS)
_line_of = attrgetter(*LINE_FIELDS)
_records_of = tuple(
    (attribute, attrgetter(attribute), attrgetter(*names))
    for attribute, _, names in DOCUMENT_FIELDS
)


def _restored(name: str, value: Any) -> Any:
    if name == "source_kind":
        return checks.SourceKind(value)
    if isinstance(value, list):
        return tuple(value)
    return value


def receipt_document(receipt: checks.Receipt) -> dict[str, Any]:
    document: dict[str, Any] = dict(zip(TOTAL_FIELDS, _totals_of(receipt), strict=True))
    document["lines"] = [_line_of(line) for line in receipt.lines]
    for attribute, records_of, fields_of in _records_of:
        document[attribute] = [fields_of(record) for record in records_of(receipt)]
    return document


def receipt_from_document(document: dict[str, Any]) -> checks.Receipt:
    values: dict[str, Any] = {name: document[name] for name in TOTAL_FIELDS}
    values["lines"] = tuple(
        checks.ReceiptLine(**dict(zip(LINE_FIELDS, line, strict=True)))
        for line in document["lines"]
    )
    for attribute, record_type, names in DOCUMENT_FIELDS:
        values[attribute] = tuple(
            record_type(
                **{name: _restored(name, value) for name, value in zip(names, record, strict=True)}
            )
            for record in document[attribute]
        )
    return checks.Receipt(**values)


def sale_receipt_from_document(document: dict[str, Any]) -> SaleReceipt:
    """A sale's receipt from the document it is stored as (`checkout` writes it)."""
    return SaleReceipt(
        receipt_from_document(document["receipt"]),
        quantities={int(key): value for key, value in document["quantities"].items()},
        coupon_codes={int(key): value for key, value in document.get("coupons", {}).items()},
        certificate_codes={
            int(key): value for key, value in document.get("certificates", {}).items()
        },
    )
