"""Transactions and refunds into protobuf; ProcessCheck's request into plain values."""

from __future__ import annotations

import hashlib

from purse.api.grpc.common.mapping import set_timestamp, timestamp
from purse.api.grpc.common.surface import nul_field_path
from purse.api.grpc.terminal.receipts import calculation_request_from_proto
from purse.api.grpc.terminal.stored_receipts import answered_receipt
from purse.domain.errors import invalid
from purse.domain.transactions import RefundRecord, TransactionRecord, TransactionStatus
from purse.service.terminal.calculation import CalculationRequest
from purse.service.terminal.checkout import ProcessRequest
from purse.v1 import terminal_service_pb2 as pb

STATUSES = {
    TransactionStatus.PENDING: pb.TRANSACTION_STATUS_PENDING,
    TransactionStatus.COMPLETED: pb.TRANSACTION_STATUS_COMPLETED,
    TransactionStatus.CANCELLED: pb.TRANSACTION_STATUS_CANCELLED,
    TransactionStatus.EXPIRED: pb.TRANSACTION_STATUS_EXPIRED,
    TransactionStatus.LOCKED: pb.TRANSACTION_STATUS_LOCKED,
    TransactionStatus.REJECTED: pb.TRANSACTION_STATUS_REJECTED,
    TransactionStatus.PARTIALLY_REFUNDED: pb.TRANSACTION_STATUS_PARTIALLY_REFUNDED,
    TransactionStatus.REFUNDED: pb.TRANSACTION_STATUS_REFUNDED,
}
STATUSES_FROM_PROTO = {number: status for status, number in STATUSES.items()}


def status_filter_from_proto(number: int, field: str = "status") -> TransactionStatus | None:
    """A status to filter by; unspecified = any. A number this server does not know is
    refused rather than ignored: ignoring it would list every status."""
    if number == pb.TRANSACTION_STATUS_UNSPECIFIED:
        return None
    status = STATUSES_FROM_PROTO.get(pb.TransactionStatus.ValueType(number))
    if status is None:
        raise invalid(field, f"{number} is not a TransactionStatus")
    return status


def process_request_from_proto(request: pb.ProcessCheckRequest) -> ProcessRequest:
    """The request's digest covers every field: the same key with any difference is refused.
    A string holding NUL is refused with its path; only a request whose bytes hold a zero
    byte at all (rare: zeros and empty messages are mostly not on the wire) is searched."""
    serialized = request.SerializeToString(deterministic=True)
    if b"\x00" in serialized:
        nul_path = nul_field_path(request)
        if nul_path is not None:
            raise invalid(nul_path, "text may not contain NUL characters", "STRING_HAS_NUL")
    calculation: CalculationRequest = calculation_request_from_proto(request)
    return ProcessRequest(request.check_number, hashlib.sha256(serialized).digest(), calculation)


def refund_to_proto(refund: RefundRecord) -> pb.Refund:
    return pb.Refund(
        refund_id=refund.refund_id,
        refund_number=refund.refund_number,
        refunded_minor_units=refund.refunded_minor_units,
        points_returned_hundredths=refund.points_returned,
        points_recovered_hundredths=refund.points_recovered,
        points_not_recovered_hundredths=refund.points_not_recovered,
        create_time=timestamp(refund.created_at),
        accounts=[
            pb.RefundedAccount(
                account_type_id=account.account_type_id,
                returned=account.returned,
                recovered=account.recovered,
                not_recovered=account.not_recovered,
            )
            for account in refund.accounts
        ],
    )


def transaction_to_proto(record: TransactionRecord) -> pb.Transaction:
    message = pb.Transaction()
    fill_transaction(message, record)
    return message


def fill_transaction(message: pb.Transaction, record: TransactionRecord) -> None:
    """`message` (empty, usually a response's own field) set to `record` in place."""
    message.transaction_id = record.transaction_id
    message.check_number = record.check_number
    message.terminal_id = record.terminal_id
    message.status = STATUSES[record.status]
    message.customer_id = record.customer_id or 0
    set_timestamp(message.create_time, record.created_at)
    if record.finished_at is not None:
        set_timestamp(message.finish_time, record.finished_at)
    if record.status is TransactionStatus.PENDING and record.confirmation_deadline is not None:
        set_timestamp(message.confirmation_deadline, record.confirmation_deadline)
    for refund in record.refunds:
        message.refunds.append(refund_to_proto(refund))
    if record.receipt is not None:
        # As stored: every answer about a sale has the receipt its first answer had.
        message.receipt.MergeFromString(answered_receipt(record.receipt))
