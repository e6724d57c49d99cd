-- Bulk actions (purse.store.postgres.bulk_actions): an administrator's action on a
-- selection of customers, run as a long-running operation.
--
-- A dry run writes the operation as a 'draft' with its selection frozen in
-- `bulk_operation_members` (one row a customer, 'pending'); starting it with the dry
-- run's token makes it 'running'; the runner then moves members, a chunk at a time, to
-- 'done', 'failed' or 'rejected', and the operation's counters with them in the same
-- database transaction, until none is pending ('succeeded') or it is cancelled.
CREATE TABLE bulk_operations (
    business_id bigint NOT NULL,
    operation_id bigint GENERATED ALWAYS AS IDENTITY,
    action text NOT NULL CHECK (action IN (
        'credit_points', 'credit_account', 'issue_coupons', 'change_category',
        'change_access_type', 'send_message', 'send_news')),
    -- The action with its message, as purse.domain.bulk_actions stores it.
    parameters jsonb NOT NULL,
    -- The selection as it was given (a filter, a saved segment, ids, a scope): the
    -- members are what it selected at the dry run.
    selection jsonb NOT NULL,
    -- What the dry run counted (customers, amounts, messages by channel, SMS segments and
    -- cost), shown again with the operation.
    estimate jsonb NOT NULL,
    state text NOT NULL CHECK (state IN ('draft', 'running', 'succeeded', 'cancelled')),
    -- SHA-256 of the dry run's token: StartBulkAction compares digests, never the token.
    token_digest bytea NOT NULL,
    -- The terminal credits and coupons go through (NULL for actions without a ledger).
    terminal_id bigint,
    administrator_id bigint,
    actor text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    total integer NOT NULL CHECK (total >= 0),
    done integer NOT NULL DEFAULT 0,
    failed integer NOT NULL DEFAULT 0,
    rejected integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- A draft not started by then is no longer startable (and its members are removed).
    draft_expires_at timestamptz NOT NULL,
    started_at timestamptz,
    finished_at timestamptz,
    PRIMARY KEY (business_id, operation_id),
    CHECK (done + failed + rejected <= total)
);
-- The runner looks for running operations of every business.
CREATE INDEX bulk_operations_running ON bulk_operations (operation_id) WHERE state = 'running';
-- ListOperations: a business's newest first.
CREATE INDEX bulk_operations_newest ON bulk_operations (business_id, operation_id DESC);

CREATE TABLE bulk_operation_members (
    business_id bigint NOT NULL,
    operation_id bigint NOT NULL,
    customer_id bigint NOT NULL,
    state text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'done', 'failed', 'rejected')),
    -- Why a member failed or was rejected (an error reason of the catalogue).
    reason text NOT NULL DEFAULT '',
    PRIMARY KEY (business_id, operation_id, customer_id)
);
-- The runner's next chunk: pending members in customer order.
CREATE INDEX bulk_operation_members_pending
    ON bulk_operation_members (business_id, operation_id, customer_id) WHERE state = 'pending';

-- A bulk message (SMS, push or smart) to a member is written with the member's move to
-- 'done' in one transaction; the key makes a second one impossible all the same.
ALTER TABLE outbox_messages ADD COLUMN bulk_operation_id bigint;
CREATE UNIQUE INDEX outbox_messages_bulk
    ON outbox_messages (business_id, bulk_operation_id, customer_id)
    WHERE bulk_operation_id IS NOT NULL;
