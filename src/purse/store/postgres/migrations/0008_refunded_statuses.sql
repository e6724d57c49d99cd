-- A sale after refunds is PARTIALLY_REFUNDED, or REFUNDED once every line is refunded
-- whole. Stored (set by the refund under the sale's lock) rather than derived on read, so
-- that ListTransactions filters on it with the same index-friendly equality as any status.
ALTER TABLE transactions DROP CONSTRAINT transactions_status_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_status_check
    CHECK (status IN ('pending', 'completed', 'cancelled', 'expired', 'locked', 'rejected',
                      'partially_refunded', 'refunded'));

-- Sales refunded before this migration: refunded whole when no line has any quantity left.
UPDATE transactions t
   SET status = CASE WHEN EXISTS (
           SELECT 1 FROM jsonb_each_text(t.receipt -> 'quantities') AS q(position, quantity)
            WHERE q.quantity::bigint > (
                  SELECT coalesce(sum((r.result -> 'lines' ->> q.position)::bigint), 0)
                    FROM refunds r
                   WHERE r.business_id = t.business_id AND r.transaction_id = t.transaction_id))
        THEN 'partially_refunded' ELSE 'refunded' END
 WHERE t.status = 'completed'
   AND EXISTS (SELECT 1 FROM refunds r
                WHERE r.business_id = t.business_id AND r.transaction_id = t.transaction_id);
