-- Push notifications and delivery states.
--
-- `device_tokens`: the push tokens a customer's app registers with a business (one row a
-- device; a token moves to whoever registers it last, as a shared device changes hands).
-- A token the gateway calls unregistered, or one past the customer's limit, is revoked,
-- not deleted: the row says when and keeps a revoked token from counting as live.
CREATE TABLE device_tokens (
    business_id bigint NOT NULL,
    token text NOT NULL CHECK (length(token) BETWEEN 1 AND 4096),
    customer_id bigint NOT NULL,
    platform text NOT NULL CHECK (platform IN ('ios', 'android', 'web')),
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    PRIMARY KEY (business_id, token)
);
-- The dispatcher reads a customer's live tokens for every push or smart message.
CREATE INDEX device_tokens_live ON device_tokens (business_id, customer_id, last_seen_at)
    WHERE revoked_at IS NULL;

-- Expand only: 'delivered' joins the statuses every existing row already satisfies.
ALTER TABLE outbox_messages DROP CONSTRAINT outbox_messages_status_check;
ALTER TABLE outbox_messages ADD CONSTRAINT outbox_messages_status_check
    CHECK (status IN ('pending', 'sent', 'delivered', 'rejected', 'failed')) NOT VALID;
ALTER TABLE outbox_messages VALIDATE CONSTRAINT outbox_messages_status_check;

-- The channel that sent or delivered the message; for a pending smart message, 'sms'
-- once its push was not delivered (so a retry goes straight to SMS). NULL until then:
-- the sale batch that inserts messages writes nothing more.
ALTER TABLE outbox_messages ADD COLUMN delivery_channel text
    CHECK (delivery_channel IN ('sms', 'push'));
