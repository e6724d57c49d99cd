"""Writing a batch of operations in one PostgreSQL transaction with set-based statements.

Round trips per batch, whatever its size: BEGIN; create missing pockets (only when some
are new); one statement that claims the sales' idempotency keys (`INSERT … ON CONFLICT
DO NOTHING`) and locks, in one global order (sorted ids), every pocket, points lot,
certificate, coupon and transaction the batch touches; the stored answers of keys
claimed earlier (only when there are some); one statement that writes everything
(`unnest` into every table); COMMIT. Between the two, `purse.domain.settlement` decides
operation by operation against the locked rows, so a refused operation never fails its
neighbours, and adds up what the applied ones change; this module keeps the SQL.

A batch that carries administrators' operations (`purse.service.admin`) takes two more,
and only such a batch: before settlement, one that locks the coupon series they issue
from (after everything else, in id order), finds which of their codes are taken, and
draws ids for the points lots they may create; after the write, one that inserts the new
lots, coupons and audit entries (`unnest` again) and counts the coupons in their series.
A lot's id is drawn early so that a debit later in the same batch takes from it
(soonest-to-expire first) and the lot is inserted with what is left of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from purse.domain.settlement import Settlement, Writes
from purse.domain.transactions import (
    FINAL_REFUSALS,
    Balance,
    Effects,
    LockedState,
    PocketKey,
    SeriesCount,
    TransactionStatus,
)
from purse.service.operations import (
    AuditNote,
    Message,
    Notice,
    NoticeText,
    Outcome,
    Sale,
    Transition,
)
from purse.service.ports import UniqueConflict

if TYPE_CHECKING:
    Connection = asyncpg.pool.PoolConnectionProxy[asyncpg.Record]
else:  # generic only in the type stubs
    Connection = asyncpg.pool.PoolConnectionProxy

# The delivery reason of a notice to a customer who has not confirmed participation (as
# the dispatcher would record it; see purse.notify.dispatcher).
participation_not_confirmed = "PARTICIPATION_NOT_CONFIRMED"

_claim_and_lock = """
WITH claimed AS (
  INSERT INTO transactions (business_id, terminal_id, point_of_sale_id, check_number,
                            request_digest, customer_id, status, receipt, sum_minor_units,
                            confirmation_deadline, sale_time, refusal, operation, finished_at)
  SELECT *, CASE WHEN status = 'pending' THEN NULL ELSE now() END
    FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::bytea[],
                $6::bigint[], $7::text[], $8::bytea[], $9::bigint[],
                $10::timestamptz[], $11::timestamptz[], $19::jsonb[], $22::jsonb[])
         AS claim(business_id, terminal_id, point_of_sale_id, check_number, request_digest,
                  customer_id, status, receipt, sum_minor_units, confirmation_deadline,
                  sale_time, refusal, operation)
  ON CONFLICT (business_id, terminal_id, check_number) DO NOTHING
  RETURNING business_id, terminal_id, check_number, transaction_id, created_at
)
SELECT
  ARRAY(SELECT ROW(terminal_id, check_number, transaction_id, created_at) FROM claimed)
    AS claimed,
  -- Transactions first, then pockets and lots: a refund locks in the same order.
  ARRAY(SELECT ROW(transaction_id, status, point_of_sale_id)
          FROM transactions WHERE business_id = $12 AND transaction_id = ANY($18::bigint[])
         ORDER BY transaction_id FOR UPDATE) AS transitions,
  ARRAY(SELECT ROW(p.customer_id, p.account_type_id, p.pocket_id, p.balance, p.held)
          FROM pockets p
         WHERE p.business_id = $12 AND (p.customer_id, p.account_type_id) IN
               (SELECT * FROM unnest($13::bigint[], $14::bigint[]))
         ORDER BY p.pocket_id FOR UPDATE) AS pockets,
  -- The customers' live lots and the lots named (a pending sale's), as two branches each
  -- on an index: one OR of the two scanned every lot and pocket of the business.
  ARRAY(SELECT ROW(p.customer_id, l.lot_id, l.remaining, l.expires_at, l.expires_at > now())
          FROM points_lots l
          JOIN pockets p ON p.business_id = l.business_id AND p.pocket_id = l.pocket_id
         WHERE l.business_id = $12 AND p.account_type_id = 0
           AND l.lot_id IN (
               SELECT live.lot_id FROM pockets own
                 JOIN points_lots live
                   ON live.business_id = own.business_id AND live.pocket_id = own.pocket_id
                WHERE own.business_id = $12 AND own.account_type_id = 0
                  AND own.customer_id = ANY($15::bigint[])
                  AND live.remaining > 0 AND live.expires_at > now()
               UNION ALL SELECT unnest($20::bigint[]))
         ORDER BY l.lot_id FOR UPDATE OF l) AS lots,
  ARRAY(SELECT ROW(certificate_id, balance_minor_units, held_minor_units)
          FROM certificates WHERE business_id = $12 AND certificate_id = ANY($16::bigint[])
         ORDER BY certificate_id FOR UPDATE) AS certificates,
  ARRAY(SELECT ROW(coupon_id, status)
          FROM coupons WHERE business_id = $12 AND coupon_id = ANY($17::bigint[])
         ORDER BY coupon_id FOR UPDATE) AS coupons,
  -- Memberships last: each answer reports the statistics after its own operation.
  ARRAY(SELECT ROW(customer_id, sales_count, sales_sum_minor_units, last_visit_at,
                   participation_confirmed)
          FROM memberships WHERE business_id = $12 AND customer_id = ANY($21::bigint[])
         ORDER BY customer_id FOR UPDATE) AS memberships,
  now() AS now
"""

# Every UPDATE names its keys twice: `= ANY(keys)` beside the business makes the row's
# primary key the way to it, whatever the planner's statistics say (joined with `unnest`
# alone, a large business's rows were found by scanning all of them); the join with the
# same arrays brings each row its values.
_write = """
WITH pocket_rows AS (
  UPDATE pockets p SET balance = p.balance + d.amount, held = p.held + d.held,
                       updated_at = now()
    FROM unnest($2::bigint[], $3::bigint[], $4::bigint[]) AS d(pocket_id, amount, held)
   WHERE p.business_id = $1 AND p.pocket_id = ANY($2::bigint[]) AND p.pocket_id = d.pocket_id
), ledger AS (
  INSERT INTO ledger_entries (business_id, pocket_id, transaction_id, kind, amount, held_amount,
                              expires_at)
  SELECT $1, * FROM unnest($5::bigint[], $6::bigint[], $7::text[], $8::bigint[], $9::bigint[],
                           $37::timestamptz[])
), lot_rows AS (
  UPDATE points_lots l SET remaining = l.remaining - d.taken
    FROM unnest($10::bigint[], $11::bigint[]) AS d(lot_id, taken)
   WHERE l.business_id = $1 AND l.lot_id = ANY($10::bigint[]) AND l.lot_id = d.lot_id
), certificate_rows AS (
  UPDATE certificates c SET balance_minor_units = c.balance_minor_units + d.amount,
                            held_minor_units = c.held_minor_units + d.held
    FROM unnest($12::bigint[], $13::bigint[], $14::bigint[]) AS d(certificate_id, amount, held)
   WHERE c.business_id = $1 AND c.certificate_id = ANY($12::bigint[])
     AND c.certificate_id = d.certificate_id
), coupon_rows AS (
  UPDATE coupons c SET status = d.status, transaction_id = d.transaction_id,
                       used_at = CASE WHEN d.status = 'used' THEN now() ELSE c.used_at END
    FROM unnest($15::bigint[], $16::text[], $17::bigint[]) AS d(coupon_id, status, transaction_id)
   WHERE c.business_id = $1 AND c.coupon_id = ANY($15::bigint[]) AND c.coupon_id = d.coupon_id
), transaction_rows AS (
  UPDATE transactions t SET status = d.status, refusal = d.refusal,
         finished_at = CASE WHEN d.status = 'pending' THEN NULL ELSE now() END
    FROM unnest($18::bigint[], $19::text[], $20::jsonb[]) AS d(transaction_id, status, refusal)
   WHERE t.business_id = $1 AND t.transaction_id = ANY($18::bigint[])
     AND t.transaction_id = d.transaction_id
), membership_rows AS (
  -- Absolute values, worked out on the rows the batch locked; the first visit from the
  -- stored one and the batch's earliest (`least` passes over NULL, a batch without sales).
  UPDATE memberships m SET sales_count = d.sales_count, sales_sum_minor_units = d.sales_sum,
         last_visit_at = d.last_visit, participation_confirmed = d.confirmed,
         first_visit_at = least(m.first_visit_at, d.first_visit)
    FROM unnest($21::bigint[], $22::bigint[], $23::bigint[], $24::timestamptz[],
                $25::boolean[], $40::timestamptz[])
         AS d(customer_id, sales_count, sales_sum, last_visit, confirmed, first_visit)
   WHERE m.business_id = $1 AND m.customer_id = ANY($21::bigint[]) AND m.customer_id = d.customer_id
), point_of_sale_rows AS (
  -- The batch's sales added up by customer and point of sale, added to what each point
  -- of sale holds (the batch locked these customers' memberships: no other batch writes
  -- their rows meanwhile); sums saturate as the membership's do.
  INSERT INTO point_of_sale_statistics AS s (business_id, customer_id, point_of_sale_id,
              sales_count, sales_sum_minor_units, first_visit_at, last_visit_at)
  SELECT $1, * FROM unnest($41::bigint[], $42::bigint[], $43::bigint[], $44::bigint[],
                           $45::timestamptz[], $46::timestamptz[])
  ON CONFLICT (business_id, point_of_sale_id, customer_id) DO UPDATE
     SET sales_count = s.sales_count + excluded.sales_count,
         sales_sum_minor_units = least(s.sales_sum_minor_units::numeric
                                       + excluded.sales_sum_minor_units,
                                       9223372036854775807)::bigint,
         first_visit_at = least(s.first_visit_at, excluded.first_visit_at),
         last_visit_at = greatest(s.last_visit_at, excluded.last_visit_at)
), reservation_rows AS (
  UPDATE transactions t SET lot_reservations = d.reservations
    FROM unnest($34::bigint[], $35::jsonb[]) AS d(transaction_id, reservations)
   WHERE t.business_id = $1 AND t.transaction_id = ANY($34::bigint[])
     AND t.transaction_id = d.transaction_id
), released_claims AS (
  -- Sales refused because a balance changed after they were calculated: their check
  -- numbers stay free, for the same check calculated again.
  DELETE FROM transactions t
   WHERE t.business_id = $1 AND t.transaction_id = ANY($36::bigint[])
)
INSERT INTO outbox_messages (business_id, customer_id, transaction_id, channel, purpose, phone,
                             language, body, sealed_secret, status, reason)
SELECT $1, * FROM unnest($26::bigint[], $27::bigint[], $28::text[], $29::text[], $30::text[],
                         $31::text[], $32::text[], $33::bytea[], $38::text[], $39::text[])
"""

# Only for a batch with administrators' operations: the series they issue from, locked
# after everything the claim locked; which of their codes are taken; ids for new lots.
_lock_administered = """
SELECT
  ARRAY(SELECT ROW(series_id, coupons_issued, coupons_max, archived_at IS NOT NULL)
          FROM coupon_series WHERE business_id = $1 AND series_id = ANY($2::bigint[])
         ORDER BY series_id FOR UPDATE) AS series,
  ARRAY(SELECT code FROM coupons WHERE business_id = $1 AND code = ANY($3::text[])) AS taken,
  ARRAY(SELECT nextval(pg_get_serial_sequence('points_lots', 'lot_id'))
          FROM generate_series(1, $4)) AS lot_ids
"""

_write_administered = """
WITH lot_rows AS (
  INSERT INTO points_lots (business_id, lot_id, pocket_id, remaining, expires_at)
  OVERRIDING SYSTEM VALUE
  SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::timestamptz[])
), series_rows AS (
  UPDATE coupon_series s SET coupons_issued = s.coupons_issued + d.issued
    FROM unnest($6::bigint[], $7::bigint[]) AS d(series_id, issued)
   WHERE s.business_id = $1 AND s.series_id = d.series_id
), coupon_rows AS (
  -- A coupon lives its series' lifetime from today, and never past the series' end.
  INSERT INTO coupons (business_id, series_id, code, customer_id, expires_at)
  SELECT $1, d.series_id, d.code, d.customer_id,
         least(s.valid_until, now() + make_interval(days => s.coupon_lifetime_days))
    FROM unnest($8::bigint[], $9::text[], $10::bigint[]) AS d(series_id, code, customer_id)
    JOIN coupon_series s ON s.business_id = $1 AND s.series_id = d.series_id
)
INSERT INTO audit_log (business_id, administrator_id, actor, action, resource, resource_id,
                       before, after)
SELECT $1, * FROM unnest($11::bigint[], $12::text[], $13::text[], $14::text[], $15::text[],
                         $16::jsonb[], $17::jsonb[])
"""


class BatchStore:
    """Applies the operations of one business in one database transaction."""

    def __init__(self, pool: asyncpg.Pool, notice_text: NoticeText) -> None:
        self._pool = pool
        self._notice_text = notice_text

    async def apply(
        self, business_id: int, sales: Sequence[Sale], transitions: Sequence[Transition]
    ) -> tuple[list[Outcome], list[Outcome]]:
        """Outcomes aligned with `sales` and with `transitions`.

        Sales must have distinct (terminal, check number) keys (the writer sees to it).
        """
        async with self._pool.acquire() as connection, connection.transaction():
            await _create_missing_pockets(connection, business_id, sales, transitions)
            locked = await connection.fetchrow(
                _claim_and_lock, *_claim_arguments(business_id, sales, transitions)
            )
            assert locked is not None
            settlement = Settlement(
                locked["pockets"],
                locked["certificates"],
                locked["coupons"],
                locked["lots"],
                locked["memberships"],
                locked["now"],
            )
            lot_ids = await _lock_administered_rows(
                connection, business_id, sales, settlement.state
            )
            claimed = {(row[0], row[1]): (row[2], row[3]) for row in locked["claimed"]}
            statuses = {row[0]: row[1] for row in locked["transitions"]}
            points_of_sale = {row[0]: row[2] for row in locked["transitions"]}
            sale_outcomes = await _settle_sales(connection, business_id, sales, claimed, settlement)
            transition_outcomes = _settle_transitions(
                transitions, statuses, points_of_sale, settlement
            )
            writes = _Writes(business_id, Writes(settlement, lot_ids), self._notice_text)
            writes.add_sales(sales, sale_outcomes)
            writes.add_transitions(transitions, transition_outcomes)
            await connection.execute(_write, *writes.arguments(settlement))
            administered = writes.administered_arguments()
            if administered is not None:
                try:
                    await connection.execute(_write_administered, *administered)
                except asyncpg.UniqueViolationError as error:
                    # A coupon code another batch committed after the codes were read.
                    raise UniqueConflict(error.constraint_name or "") from error
        return sale_outcomes, transition_outcomes


def _pocket_keys(effects: Effects) -> list[PocketKey]:
    return [change.pocket for change in effects.pockets]


async def _create_missing_pockets(
    connection: Connection,
    business_id: int,
    sales: Sequence[Sale],
    transitions: Sequence[Transition],
) -> None:
    """Accruals may reach an account the customer never had (a first achievements
    purchase); creating it is idempotent. Operations that name their new pockets spare
    the batch this round trip when there are none."""
    operations: list[Sale | Transition] = [*sales, *transitions]
    keys = sorted({key for operation in operations for key in _maybe_missing(operation)})
    if not keys:
        return
    await connection.execute(
        "INSERT INTO pockets (business_id, customer_id, account_type_id)"
        " SELECT $1, * FROM unnest($2::bigint[], $3::bigint[])"
        " ON CONFLICT (business_id, customer_id, account_type_id) DO NOTHING",
        business_id,
        [key[0] for key in keys],
        [key[1] for key in keys],
    )


def _maybe_missing(operation: Sale | Transition) -> Sequence[PocketKey]:
    if operation.new_pockets is None:
        return _pocket_keys(operation.effects)
    return operation.new_pockets


def _claim_arguments(
    business_id: int, sales: Sequence[Sale], transitions: Sequence[Transition]
) -> list[Any]:
    ordered = sorted(sales, key=lambda sale: (sale.terminal_id, sale.check_number))
    all_effects = [sale.effects for sale in sales] + [t.effects for t in transitions]
    keys = sorted({key for effects in all_effects for key in _pocket_keys(effects)})
    return [
        [business_id] * len(ordered),
        [sale.terminal_id for sale in ordered],
        [sale.point_of_sale_id for sale in ordered],
        [sale.check_number for sale in ordered],
        [sale.request_digest for sale in ordered],
        [sale.customer_id for sale in ordered],
        [sale.status.value for sale in ordered],
        [sale.receipt for sale in ordered],
        [sale.sum_minor_units for sale in ordered],
        [sale.confirmation_deadline for sale in ordered],
        [sale.sale_time for sale in ordered],
        business_id,
        [key[0] for key in keys],
        [key[1] for key in keys],
        sorted(
            {
                key[0]
                for effects in all_effects
                if effects.points_spent or effects.points_reserved
                for key in _pocket_keys(effects)
            }
        ),
        sorted({c.certificate_id for effects in all_effects for c in effects.certificates}),
        sorted({c.coupon_id for effects in all_effects for c in effects.coupons}),
        sorted({transition.transaction_id for transition in transitions}),
        [sale.refusal for sale in ordered],
        sorted({lot_id for effects in all_effects for lot_id, _ in effects.lots_returned}),
        sorted(
            {sale.customer_id for sale in sales if sale.customer_id}
            | {transition.customer_id for transition in transitions if transition.customer_id}
        ),
        [sale.operation for sale in ordered],
    ]


async def _lock_administered_rows(
    connection: Connection, business_id: int, sales: Sequence[Sale], state: LockedState
) -> list[int]:
    """For administrators' operations only: lock the coupon series they issue from into
    `state`, with the codes taken; the ids drawn for the points lots they may create."""
    grants = [grant for sale in sales for grant in sale.effects.coupons_issued]
    lots = sum(change.expires_at is not None for sale in sales for change in sale.effects.pockets)
    if not grants and not lots:
        return []
    row = await connection.fetchrow(
        _lock_administered,
        business_id,
        sorted({grant.series_id for grant in grants}),
        sorted({grant.code for grant in grants}),
        lots,
    )
    assert row is not None
    state.series = {values[0]: SeriesCount(*values[1:]) for values in row["series"]}
    state.coupon_codes_taken = set(row["taken"])
    return list(row["lot_ids"])


async def _settle_sales(
    connection: Connection,
    business_id: int,
    sales: Sequence[Sale],
    claimed: dict[tuple[int, str], tuple[int, datetime]],
    settlement: Settlement,
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    earlier = [sale for sale in sales if (sale.terminal_id, sale.check_number) not in claimed]
    stored = await _stored_sales(connection, business_id, earlier) if earlier else {}
    for sale in sales:
        key = (sale.terminal_id, sale.check_number)
        if key not in claimed:
            outcomes.append(Outcome(existing=True, stored=stored.get(key)))
            continue
        transaction_id, created_at = claimed[key]
        settled = settlement.settle(
            sale.effects,
            sale.statistics,
            sale.customer_id,
            decide=sale.status is not TransactionStatus.REJECTED,
            point_of_sale_id=sale.point_of_sale_id,
        )
        outcomes.append(
            Outcome(
                transaction_id,
                created_at,
                settled.refusal,
                balances=settled.balances,
                pocket_ids=settled.pocket_ids,
                totals=settled.totals,
            )
        )
    return outcomes


async def _stored_sales(
    connection: Connection, business_id: int, sales: Sequence[Sale]
) -> dict[tuple[int, str], asyncpg.Record]:
    # Keys claimed by an earlier (committed) batch; ON CONFLICT waited for it to commit.
    rows = await connection.fetch(
        "SELECT t.* FROM transactions t"
        " JOIN unnest($2::bigint[], $3::text[]) AS k(terminal_id, check_number)"
        "   ON t.terminal_id = k.terminal_id AND t.check_number = k.check_number"
        " WHERE t.business_id = $1",
        business_id,
        [sale.terminal_id for sale in sales],
        [sale.check_number for sale in sales],
    )
    return {(row["terminal_id"], row["check_number"]): row for row in rows}


def _settle_transitions(
    transitions: Sequence[Transition],
    statuses: dict[int, str],
    points_of_sale: dict[int, int],
    settlement: Settlement,
) -> list[Outcome]:
    """Each transition against the status its transaction had when locked; a confirmed
    sale counts at the point of sale the transaction was made at."""
    outcomes = []
    for transition in transitions:
        current = statuses.get(transition.transaction_id)
        if current != transition.expected.value:
            outcomes.append(Outcome(transition.transaction_id, refusal="TRANSACTION_NOT_PENDING"))
            continue
        settled = settlement.settle(
            transition.effects,
            transition.statistics,
            transition.customer_id,
            point_of_sale_id=points_of_sale.get(transition.transaction_id, 0),
        )
        if settled.refusal is None:
            statuses[transition.transaction_id] = transition.status.value
        outcomes.append(
            Outcome(
                transition.transaction_id,
                refusal=settled.refusal,
                balances=settled.balances,
                pocket_ids=settled.pocket_ids,
                totals=settled.totals,
            )
        )
    return outcomes


class _Writes:
    """The arrays of the write statement: what the settled operations change (`Writes`),
    their transactions' new states, outbox messages and audit entries."""

    def __init__(self, business_id: int, changes: Writes, notice_text: NoticeText) -> None:
        self.business_id = business_id
        self.changes = changes
        self.notice_text = notice_text
        self.audits: list[tuple[Any, ...]] = []
        self.transactions: list[tuple[int, str, dict[str, str] | None]] = []
        self.messages: list[tuple[Message, int | None]] = []
        # Per message: its status as written, and why (a notice to a customer who has not
        # confirmed participation is rejected here: the dispatcher would only reject it).
        self.message_states: list[tuple[str, str]] = []
        self.released: list[int] = []

    def add_sales(self, sales: Sequence[Sale], outcomes: Sequence[Outcome]) -> None:
        for sale, outcome in zip(sales, outcomes, strict=True):
            if outcome.existing:
                continue
            if outcome.refusal in FINAL_REFUSALS or (
                sale.refusals_final and outcome.refusal is not None
            ):
                refusal = {"reason": str(getattr(outcome.refusal, "value", outcome.refusal))}
                self.transactions.append((outcome.transaction_id, "rejected", refusal))
                continue
            if outcome.refusal is not None:
                self.released.append(outcome.transaction_id)
                continue
            self.changes.add(sale.effects, outcome.transaction_id, sale.customer_id, new_sale=True)
            self._messages(sale.messages, outcome.transaction_id)
            if sale.audit is not None:
                self.audits.append(_audit_entry(sale.audit, sale.effects, outcome))
            if sale.notice is not None:
                self._notice(sale.notice, outcome.transaction_id, outcome)

    def _notice(self, notice: Notice, transaction_id: int, outcome: Outcome) -> None:
        # The balance right after this operation, not after the whole batch.
        pocket = (notice.customer_id, notice.account_type_id)
        balance = outcome.balances.get(pocket, Balance(0, 0)).balance
        if notice.text is None:
            text = self.notice_text(
                notice.language, notice.points_accrued, notice.points_redeemed, balance
            )
        else:
            text = notice.text(balance)
        message = Message(
            notice.customer_id, notice.channel, notice.purpose, notice.phone, notice.language, text
        )
        self.messages.append((message, transaction_id))
        if outcome.totals is not None and not outcome.totals.participation_confirmed:
            self.message_states.append(("rejected", participation_not_confirmed))
        else:
            self.message_states.append(("pending", ""))

    def _messages(self, messages: Sequence[Message], transaction_id: int | None) -> None:
        self.messages += [(message, transaction_id) for message in messages]
        self.message_states += [("pending", "")] * len(messages)

    def add_transitions(
        self, transitions: Sequence[Transition], outcomes: Sequence[Outcome]
    ) -> None:
        for transition, outcome in zip(transitions, outcomes, strict=True):
            if outcome.refusal is not None:
                continue
            self.changes.add(transition.effects, transition.transaction_id, transition.customer_id)
            self.transactions.append((transition.transaction_id, transition.status.value, None))
            self._messages(transition.messages, transition.transaction_id)
            if transition.notice is not None:
                self._notice(transition.notice, transition.transaction_id, outcome)

    def arguments(self, settlement: Settlement) -> list[Any]:
        changes = self.changes
        *statistics, first_visits = settlement.statistics_columns()
        return [
            self.business_id,
            *changes.pocket_columns(),
            changes.ledger_pocket_ids,
            changes.ledger_transaction_ids,
            changes.ledger_kinds,
            changes.ledger_amounts,
            changes.ledger_held_amounts,
            *changes.lot_columns(),
            *changes.certificate_columns(),
            *changes.coupon_columns(),
            *_columns(self.transactions, 3),
            *statistics,
            [message.customer_id for message, _ in self.messages],
            [transaction_id for _, transaction_id in self.messages],
            [message.channel for message, _ in self.messages],
            [message.purpose for message, _ in self.messages],
            [message.phone for message, _ in self.messages],
            [message.language for message, _ in self.messages],
            [message.body for message, _ in self.messages],
            [message.sealed_secret for message, _ in self.messages],
            [transaction_id for transaction_id, _ in changes.lots_taken],
            [taken for _, taken in changes.lots_taken],
            sorted(self.released),
            changes.ledger_expiries,
            [status for status, _ in self.message_states],
            [reason for _, reason in self.message_states],
            first_visits,
            *settlement.point_of_sale_columns(),
        ]

    def administered_arguments(self) -> list[Any] | None:
        """The arguments of `_write_administered`; None when the batch has nothing for it."""
        changes = self.changes
        if not (changes.new_lots or changes.coupons_issued or self.audits):
            return None
        issued: dict[int, int] = {}
        for grant in changes.coupons_issued:
            issued[grant.series_id] = issued.get(grant.series_id, 0) + 1
        return [
            self.business_id,
            *changes.new_lot_columns(),
            sorted(issued),
            [issued[series_id] for series_id in sorted(issued)],
            [grant.series_id for grant in changes.coupons_issued],
            [grant.code for grant in changes.coupons_issued],
            [grant.customer_id for grant in changes.coupons_issued],
            *_columns(self.audits, 7),
        ]


def _audit_entry(note: AuditNote, effects: Effects, outcome: Outcome) -> tuple[Any, ...]:
    """The audit log's row: the balances the operation changed before and after it (by
    account type id; 0 is points), and its transaction."""
    changed: dict[PocketKey, int] = {}
    for change in effects.pockets:
        changed[change.pocket] = changed.get(change.pocket, 0) + change.amount
    after = {str(key[1]): outcome.balances[key].balance for key in changed}
    before = {
        str(key[1]): outcome.balances[key].balance - amount for key, amount in changed.items()
    }
    return (
        note.actor.administrator_id,
        note.actor.name,
        note.action,
        note.resource,
        note.resource_id,
        {"balances": before} if changed else None,
        {**note.after, "transaction_id": outcome.transaction_id}
        | ({"balances": after} if changed else {}),
    )


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return [[row[index] for row in rows] for index in range(width)]
