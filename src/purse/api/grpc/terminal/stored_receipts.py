"""A sale's receipt as stored: protobuf bytes (`purse.store.v1.StoredReceipt`) that hold
the receipt exactly as the terminal was answered with it, and beside it what refunds and
holds need that the answer leaves out.

The receipt is built once, in place inside the stored message, before the sale is written
(`encode`); every answer about the sale afterwards — the first, a retried check's, the
transaction history — parses its bytes (`answered_receipt`) instead of building the
receipt again, so a retry gets the first answer's receipt byte for byte. `decode` gives
back the engine's receipt exactly, for refunds and holds; the use cases reach both
through `service.ports.ReceiptCodec`. A sale stored before receipts were bytes, and not
converted yet, is its JSON document (`purse.store.postgres.receipts`): read here too.
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

from purse.api.grpc.terminal.receipts import fill_receipt
from purse.domain import checks
from purse.domain.transactions import SaleReceipt, StoredReceipt
from purse.service.terminal.calculation import Calculation
from purse.store.postgres.receipts import sale_receipt_from_document
from purse.store.v1 import receipt_pb2 as store_pb
from purse.v1 import terminal_service_pb2 as pb

_discount_sources = {
    pb.ADJUSTMENT_KIND_RULE_DISCOUNT: checks.SourceKind.RULE,
    pb.ADJUSTMENT_KIND_COUPON: checks.SourceKind.COUPON,
}
_payment_sources = {
    pb.ADJUSTMENT_KIND_POINTS_PAYMENT: checks.SourceKind.POINTS,
    pb.ADJUSTMENT_KIND_ACCOUNT_PAYMENT: checks.SourceKind.ACCOUNT,
    pb.ADJUSTMENT_KIND_CERTIFICATE_PAYMENT: checks.SourceKind.CERTIFICATE,
}
_sources = {
    pb.SOURCE_KIND_RULE: checks.SourceKind.RULE,
    pb.SOURCE_KIND_COUPON: checks.SourceKind.COUPON,
    pb.SOURCE_KIND_POINTS: checks.SourceKind.POINTS,
    pb.SOURCE_KIND_ACCOUNT: checks.SourceKind.ACCOUNT,
    pb.SOURCE_KIND_CERTIFICATE: checks.SourceKind.CERTIFICATE,
}


class StoredReceipts:
    """`service.ports.ReceiptCodec`, for the composition root to hand the use cases."""

    def encode(self, sale: SaleReceipt) -> bytes:
        return encode(sale)

    def decode(self, stored: StoredReceipt) -> SaleReceipt:
        return decode(stored)


def encode(sale: SaleReceipt) -> bytes:
    """The bytes a sale stores: its receipt as answered, with what the answer leaves out."""
    receipt = sale.receipt
    lines = receipt.lines
    if len(sale.quantities) != len(lines):
        raise ValueError("a sale's quantities must name exactly the lines of its receipt")
    stored = store_pb.StoredReceipt(
        quantities_thousandths=[sale.quantities[line.position] for line in lines]
    )
    fill_receipt(
        stored.receipt, Calculation(receipt, None, sale.coupon_codes, sale.certificate_codes)
    )
    # Most checks have a discount or a payment and nothing else of these: skip empty lists.
    if receipt.discounts:
        stored.discount_source_ids.extend([item.source_id for item in receipt.discounts])
    if receipt.payments:
        stored.payment_source_ids.extend([item.source_id for item in receipt.payments])
    if receipt.confirmations:
        stored.confirmation_source_ids.extend([item.source_id for item in receipt.confirmations])
    if receipt.not_applied:
        stored.not_applied_source_ids.extend([item.source_id for item in receipt.not_applied])
    for progress in receipt.achievements:
        stored.achievement_line_purchases.extend(progress.line_purchases)
    if sale.coupon_codes:
        stored.coupon_codes.update(sale.coupon_codes)
    if sale.certificate_codes:
        stored.certificate_codes.update(sale.certificate_codes)
    return stored.SerializeToString()


def answered_receipt(stored: StoredReceipt) -> bytes:
    """The receipt as the sale's first answer had it: a serialized `purse.v1.Receipt`."""
    if isinstance(stored, dict):
        stored = encode(sale_receipt_from_document(stored))
    return store_pb.AnsweredReceipt.FromString(stored).receipt


def decode(stored: StoredReceipt) -> SaleReceipt:
    """The sale's receipt as the engine made it, with its quantities and codes."""
    if isinstance(stored, dict):
        return sale_receipt_from_document(stored)
    message = store_pb.StoredReceipt.FromString(stored)
    receipt = message.receipt
    lines = tuple(
        checks.ReceiptLine(
            line.position,
            line.product_code,
            line.amount_minor_units,
            line.discount_minor_units,
            line.paid_with_points_minor_units,
            line.paid_with_accounts_minor_units,
            line.to_pay_minor_units,
            line.points_redeemed_hundredths,
            line.points_accrued_hundredths,
        )
        for line in receipt.lines
    )
    discounts, payments, accruals = _adjustments(receipt.adjustments, message, lines)
    return SaleReceipt(
        checks.Receipt(
            receipt.currency,
            lines,
            receipt.sum_minor_units,
            receipt.discount_minor_units,
            receipt.paid_with_points_minor_units,
            receipt.paid_with_accounts_minor_units,
            receipt.to_pay_minor_units,
            receipt.points_redeemed_hundredths,
            receipt.points_accrued_hundredths,
            receipt.points_redeemable_max_hundredths,
            discounts,
            payments,
            accruals,
            tuple(checks.LotTake(lot.lot_id, lot.points_hundredths) for lot in receipt.lots_taken),
            _achievements(receipt, message, len(lines)),
            tuple(
                checks.Confirmation(_sources[item.source_kind], source_id, item.amount, item.limit)
                for item, source_id in zip(
                    receipt.confirmation_reasons, message.confirmation_source_ids, strict=True
                )
            ),
            tuple(
                checks.NotApplied(
                    _sources[item.source_kind], source_id, item.reason, item.description
                )
                for item, source_id in zip(
                    receipt.not_applied, message.not_applied_source_ids, strict=True
                )
            ),
        ),
        quantities=dict(
            zip((line.position for line in lines), message.quantities_thousandths, strict=True)
        ),
        coupon_codes=dict(message.coupon_codes),
        certificate_codes=dict(message.certificate_codes),
    )


def _adjustments(
    adjustments: RepeatedCompositeFieldContainer[pb.Adjustment],
    message: store_pb.StoredReceipt,
    lines: Sequence[checks.ReceiptLine],
) -> tuple[tuple[checks.Discount, ...], tuple[checks.Payment, ...], tuple[checks.Accrual, ...]]:
    """Discounts, payments and accruals, from the adjustments (in that order) with the
    sources stored beside them; each line share back in its line's place."""
    index = {line.position: place for place, line in enumerate(lines)}
    discount_ids, payment_ids = message.discount_source_ids, message.payment_source_ids
    discounts: list[checks.Discount] = []
    payments: list[checks.Payment] = []
    accruals: list[checks.Accrual] = []
    for adjustment in adjustments:
        amounts, pocket_amounts = [0] * len(lines), [0] * len(lines)
        for share in adjustment.lines:
            amounts[index[share.position]] = share.amount_minor_units
            pocket_amounts[index[share.position]] = share.pocket_amount
        kind = adjustment.kind
        if kind in _discount_sources:
            discounts.append(
                checks.Discount(
                    _discount_sources[kind], discount_ids[len(discounts)], adjustment.title,
                    adjustment.amount_minor_units, tuple(amounts),
                )
            )  # fmt: skip
        elif kind in _payment_sources:
            payments.append(
                checks.Payment(
                    _payment_sources[kind], payment_ids[len(payments)], adjustment.title,
                    adjustment.amount_minor_units, adjustment.pocket_amount, tuple(amounts),
                    tuple(pocket_amounts),
                )
            )  # fmt: skip
        elif kind == pb.ADJUSTMENT_KIND_POINTS_ACCRUAL:
            accruals.append(
                checks.Accrual(
                    adjustment.rule_id, adjustment.title, adjustment.pocket_amount,
                    tuple(pocket_amounts),
                )
            )  # fmt: skip
        else:
            raise ValueError(f"a stored receipt has an adjustment of kind {kind}")
    if (len(discounts), len(payments)) != (len(discount_ids), len(payment_ids)):
        raise ValueError("a stored receipt's sources do not match its adjustments")
    return tuple(discounts), tuple(payments), tuple(accruals)


def _achievements(
    receipt: pb.Receipt, message: store_pb.StoredReceipt, line_count: int
) -> tuple[checks.AchievementProgress, ...]:
    purchases = message.achievement_line_purchases
    if len(purchases) != line_count * len(receipt.achievements):
        raise ValueError("a stored receipt's achievements do not match its lines")
    return tuple(
        checks.AchievementProgress(
            item.account_type_id,
            item.purchases,
            item.rewards,
            item.balance_after,
            tuple(purchases[place * line_count : (place + 1) * line_count]),
        )
        for place, item in enumerate(receipt.achievements)
    )
