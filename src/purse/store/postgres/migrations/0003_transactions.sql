-- Transactions that change money: stored answers for idempotency, refunds, holds on
-- coupons, the notification outbox.

-- A refused check is stored too: a retry with the same check number gets the same refusal.
ALTER TABLE transactions DROP CONSTRAINT transactions_status_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_status_check
    CHECK (status IN ('pending', 'completed', 'cancelled', 'expired', 'locked', 'rejected'));
ALTER TABLE transactions
    ADD COLUMN refusal jsonb,
    ADD COLUMN point_of_sale_id bigint NOT NULL DEFAULT 0,
    ADD COLUMN sale_time timestamptz;

-- A coupon of a pending transaction is reserved: no other check may use it meanwhile.
ALTER TABLE coupons DROP CONSTRAINT coupons_status_check;
ALTER TABLE coupons ADD CONSTRAINT coupons_status_check
    CHECK (status IN ('issued', 'reserved', 'used', 'cancelled'));

CREATE TABLE refunds (
    business_id bigint NOT NULL,
    refund_id bigint GENERATED ALWAYS AS IDENTITY,
    transaction_id bigint NOT NULL,
    terminal_id bigint NOT NULL,
    refund_number text NOT NULL CHECK (length(refund_number) BETWEEN 1 AND 64),
    request_digest bytea NOT NULL,
    -- What was refunded, line by line, and its effects on the pockets.
    result jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, refund_id),
    UNIQUE (business_id, terminal_id, refund_number),
    FOREIGN KEY (business_id, transaction_id) REFERENCES transactions
);
CREATE INDEX refunds_by_transaction ON refunds (business_id, transaction_id, refund_id);

-- Messages to customers, written in the same database transaction as what they announce,
-- sent later by the dispatcher. A PIN is never stored readable: `sealed_secret` holds it
-- encrypted with the instance key, and is erased once the message is sent.
CREATE TABLE outbox_messages (
    business_id bigint NOT NULL,
    message_id bigint GENERATED ALWAYS AS IDENTITY,
    customer_id bigint NOT NULL,
    transaction_id bigint,
    channel text NOT NULL CHECK (channel IN ('sms', 'push', 'smart')),
    purpose text NOT NULL CHECK (purpose IN ('pin', 'transaction', 'bulk')),
    phone text NOT NULL,
    language text NOT NULL DEFAULT '',
    -- The text; for PIN messages it holds the placeholder {pin}.
    body text NOT NULL CHECK (length(body) BETWEEN 1 AND 1000),
    sealed_secret bytea,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sent', 'rejected', 'failed')),
    -- Why a message was rejected or failed (PARTICIPATION_NOT_CONFIRMED, HTTP 400 …).
    reason text NOT NULL DEFAULT '',
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    PRIMARY KEY (business_id, message_id)
);
CREATE INDEX outbox_messages_due ON outbox_messages (next_attempt_at) WHERE status = 'pending';
