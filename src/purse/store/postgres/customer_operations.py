"""What an administrator's operation on one customer is decided on, in one round trip.

The chosen terminal, the customer's access type, the account type an account operation
names and whether a coupon series exists, each scoped by business: another business's
terminal, customer, account type or series reads as absent. The operation itself is
written by the batch writer (`purse.store.postgres.batches`), like a sale.
"""

from __future__ import annotations

import asyncpg

from purse.domain.checks import AccessType
from purse.domain.customer_operations import AccountTypeState, Circumstances, TerminalState
from purse.domain.customers import PocketKind

_circumstances = """
SELECT
  (SELECT ROW(point_of_sale_id, enabled, archived_at IS NOT NULL) FROM terminals
    WHERE business_id = $1 AND terminal_id = $2) AS terminal,
  (SELECT access_type FROM memberships
    WHERE business_id = $1 AND customer_id = $3) AS access_type,
  (SELECT ROW(kind, archived_at IS NOT NULL) FROM account_types
    WHERE business_id = $1 AND account_type_id = $4) AS account_type,
  EXISTS (SELECT FROM coupon_series WHERE business_id = $1 AND series_id = $5) AS series_found
"""


class CustomerOperationStore:
    """Reads for `purse.service.admin.customer_operations`."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def circumstances(
        self,
        business_id: int,
        terminal_id: int,
        customer_id: int,
        account_type_id: int | None,
        series_id: int | None,
    ) -> Circumstances:
        row = await self._pool.fetchrow(
            _circumstances, business_id, terminal_id, customer_id, account_type_id, series_id
        )
        assert row is not None
        terminal, account_type = row["terminal"], row["account_type"]
        return Circumstances(
            terminal=None if terminal is None else TerminalState(*terminal),
            access_type=None if row["access_type"] is None else AccessType(row["access_type"]),
            account_type=None
            if account_type is None
            else AccountTypeState(PocketKind(account_type[0]), account_type[1]),
            series_found=row["series_found"],
        )
