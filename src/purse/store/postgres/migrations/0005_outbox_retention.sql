-- Finished outbox messages are deleted after the retention period, oldest first.
CREATE INDEX outbox_messages_finished ON outbox_messages (created_at) WHERE status <> 'pending';
