"""Transactions and refunds into protobuf; ProcessCheck's request into plain values."""

from __future__ import annotations

import hashlib

from purse.api.grpc.common.mapping import timestamp
from purse.api.grpc.terminal.receipts import calculation_request_from_proto, receipt_to_proto
from purse.domain.errors import invalid
from purse.domain.transactions import RefundRecord, TransactionRecord, TransactionStatus
from purse.service.terminal.calculation import Calculation, CalculationRequest
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
    """The request's digest covers every field: the same key with any difference is refused."""
    calculation: CalculationRequest = calculation_request_from_proto(
        pb.CalculateCheckRequest(
            identifier=request.identifier if request.HasField("identifier") else None,
            check=request.check,
            redemption=request.redemption,
            sale_time=request.sale_time if request.HasField("sale_time") else None,
        )
    )
    digest = hashlib.sha256(request.SerializeToString(deterministic=True)).digest()
    return ProcessRequest(request.check_number, digest, calculation)


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
    message = pb.Transaction(
        transaction_id=record.transaction_id,
        check_number=record.check_number,
        terminal_id=record.terminal_id,
        status=STATUSES[record.status],
        customer_id=record.customer_id or 0,
        create_time=timestamp(record.created_at),
        finish_time=timestamp(record.finished_at),
        confirmation_deadline=timestamp(record.confirmation_deadline)
        if record.status is TransactionStatus.PENDING
        else None,
        refunds=[refund_to_proto(refund) for refund in record.refunds],
    )
    if record.receipt is not None:
        message.receipt.CopyFrom(
            receipt_to_proto(
                Calculation(record.receipt, None, record.coupon_codes, record.certificate_codes)
            )
        )
    return message
