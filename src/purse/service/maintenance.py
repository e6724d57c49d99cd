"""The periodic sweeps: holds past their deadline, special points past their expiry.

`expire_overdue` voids the holds of pending transactions whose PIN did not come in time:
the overdue transactions of a business are read in one query and their releases handed
to the batch writer together, so they share batches. `write_off_expired_lots` takes
expired special points off the balance with an `expire` ledger entry, then the balance
cache forgets the customers (through the unit of work).
"""

from __future__ import annotations

import asyncio

from purse.domain.transactions import TransactionRecord, TransactionStatus, effects_of_release
from purse.service.operations import Transition
from purse.service.ports import ReceiptCodec, Sweeps, TransactionReads, Writer
from purse.service.unit_of_work import UnitOfWork

overdue_holds_per_sweep_max = 500
expired_lots_per_sweep_max = 5_000


class Maintenance:
    """The sweeps the server runs every `hold_sweep_interval_seconds`."""

    def __init__(
        self,
        sweeps: Sweeps,
        transactions: TransactionReads,
        writer: Writer,
        changes: UnitOfWork,
        receipts: ReceiptCodec,
    ) -> None:
        self._sweeps = sweeps
        self._transactions = transactions
        self._writer = writer
        self._changes = changes
        self._receipts = receipts

    async def expire_overdue(self) -> int:
        """Void the holds of pending transactions past their deadline; returns how many.

        The overdue transactions of a business are read in one query and their releases
        handed to the writer together, so they share batches."""
        overdue = await self._sweeps.overdue_holds(overdue_holds_per_sweep_max)
        by_business: dict[int, list[int]] = {}
        for business_id, transaction_id in overdue:
            by_business.setdefault(business_id, []).append(transaction_id)
        submissions = []
        for business_id, transaction_ids in by_business.items():
            records = await self._transactions.by_ids(business_id, transaction_ids)
            submissions += [
                self._writer.submit(business_id, self._expiry(record), None)
                for record in records
                if record.receipt is not None
            ]
        outcomes = await asyncio.gather(*submissions)
        return sum(outcome.refusal is None for outcome in outcomes)

    async def write_off_expired_lots(self) -> int:
        """Expired special points leave the balance, with an `expire` ledger entry."""
        written, changed = await self._sweeps.write_off_expired_lots(expired_lots_per_sweep_max)
        by_business: dict[int, list[int]] = {}
        for business_id, customer_id in changed:
            by_business.setdefault(business_id, []).append(customer_id)
        for business_id, customer_ids in by_business.items():
            await self._changes.committed(business_id, customer_ids)
        return written

    def _expiry(self, record: TransactionRecord) -> Transition:
        assert record.receipt is not None
        sale = self._receipts.decode(record.receipt)
        return Transition(
            transaction_id=record.transaction_id,
            expected=TransactionStatus.PENDING,
            status=TransactionStatus.EXPIRED,
            effects=effects_of_release(
                sale.receipt, record.customer_id, list(sale.coupon_codes), record.lot_reservations
            ),
            customer_id=record.customer_id,
        )
