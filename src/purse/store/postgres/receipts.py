"""Receipts stored before migration 0013, as JSON documents in `transactions.receipt_document`:
reading them, and converting them to the bytes sales store now.

Until 0013 a sale kept its receipt as a jsonb document ({"receipt", "coupons",
"certificates", "quantities"}; the receipt's records as arrays of their fields, in the order
of `DOCUMENT_FIELDS`). `sale_receipt_from_document` reads one. `convert_documents` rewrites
them as bytes, a chunk per transaction, with the codec the composition root gives it (the
bytes hold the receipt as the API answers it): `purse migrate` runs it after the SQL
migrations. A sale not converted yet stays readable: its record carries the document,
which the codec reads too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import orjson

from purse.domain import checks
from purse.domain.transactions import SaleReceipt, StoredReceipt

# Sales converted per database transaction (each a few tens of microseconds to encode).
conversion_rows_per_chunk = 500

LINE_FIELDS = (
    "position", "product_code", "amount", "discount", "paid_with_points", "paid_with_accounts",
    "to_pay", "points_redeemed", "points_accrued",
)  # fmt: skip
TOTAL_FIELDS = (
    "currency", "check_sum", "discount_total", "paid_with_points", "paid_with_accounts",
    "to_pay", "points_redeemed", "points_accrued", "points_redeemable_max",
)  # fmt: skip
# (receipt attribute, record type, its fields in the document's order)
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


def _restored(name: str, value: Any) -> Any:
    if name == "source_kind":
        return checks.SourceKind(value)
    if isinstance(value, list):
        return tuple(value)
    return value


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


def stored_receipt(row: asyncpg.Record) -> StoredReceipt | None:
    """A transaction row's receipt: its bytes, or the document of a sale not converted
    yet; None for an administrator's operation and a check refused for good."""
    receipt: bytes | None = row["receipt"]
    return receipt if receipt is not None else row["receipt_document"]


def sale_receipt_from_document(document: dict[str, Any]) -> SaleReceipt:
    """A sale's receipt from the document it was stored as before 0013."""
    return SaleReceipt(
        receipt_from_document(document["receipt"]),
        quantities={int(key): value for key, value in document["quantities"].items()},
        coupon_codes={int(key): value for key, value in document.get("coupons", {}).items()},
        certificate_codes={
            int(key): value for key, value in document.get("certificates", {}).items()
        },
    )


async def convert_documents(
    connection: asyncpg.Connection,
    encode: Callable[[SaleReceipt], bytes],
    rows_per_chunk: int = conversion_rows_per_chunk,
) -> int:
    """Rewrite every sale still stored as a document as bytes (`encode`), a chunk of
    `rows_per_chunk` per transaction, until none is left; returns how many it converted.
    Idempotent and resumable: a chunk commits whole or not at all, and only rows still
    holding a document are taken. Rows another process is converting are skipped (that
    process finishes them; until it commits they are read as documents)."""
    converted = 0
    while True:
        async with connection.transaction():
            rows = await connection.fetch(
                "SELECT business_id, transaction_id, receipt_document::text AS document"
                "  FROM transactions WHERE receipt_document IS NOT NULL"
                " ORDER BY transaction_id LIMIT $1 FOR UPDATE SKIP LOCKED",
                rows_per_chunk,
            )
            if not rows:
                return converted
            await connection.execute(
                "UPDATE transactions t SET receipt = d.receipt, receipt_document = NULL"
                "  FROM unnest($1::bigint[], $2::bigint[], $3::bytea[])"
                "       AS d(business_id, transaction_id, receipt)"
                " WHERE t.transaction_id = ANY($2::bigint[]) AND t.receipt_document IS NOT NULL"
                "   AND t.business_id = d.business_id AND t.transaction_id = d.transaction_id",
                [row["business_id"] for row in rows],
                [row["transaction_id"] for row in rows],
                [encode(sale_receipt_from_document(orjson.loads(row["document"]))) for row in rows],
            )
            converted += len(rows)
