-- The customer list (purse.store.postgres.customer_list): statistics it filters and sorts
-- by, kept on the membership by the sale path, and the indexes its pages start from.
--
-- `first_visit_at` is the moment of the customer's earliest sale at the business, NULL
-- until the first one. The batch that writes a sale sets it in the UPDATE that already
-- sets `last_visit_at` (to the earlier of the stored value and the batch's earliest
-- visit, so a sale recorded late with an earlier sale time moves it back).
ALTER TABLE memberships ADD COLUMN first_visit_at timestamptz;

-- The sales sum divided by their count, rounded half away from zero as
-- purse.domain.amounts.divide_rounded does (numeric `round` does so), NULL while there
-- are no sales. Stored, so that a filter or sort reads it as any column (and an index
-- could hold it); PostgreSQL keeps it current whenever a sale writes the count and sum.
ALTER TABLE memberships ADD COLUMN average_check_minor_units bigint GENERATED ALWAYS AS (
    CASE WHEN sales_count > 0
         THEN round(sales_sum_minor_units::numeric / sales_count)::bigint END
) STORED;

-- Memberships with sales before this migration: their earliest sale (completed, refunded
-- in part or whole; an administrator's operation is no sale) in one pass over the
-- transactions, grouped by membership. A membership whose sales left no transaction
-- (none should) falls back to its last visit, the only moment known.
UPDATE memberships m
   SET first_visit_at = f.first_visit
  FROM (SELECT business_id, customer_id,
               min(coalesce(sale_time, finished_at, created_at)) AS first_visit
          FROM transactions
         WHERE customer_id IS NOT NULL AND operation IS NULL
           AND status IN ('completed', 'partially_refunded', 'refunded')
         GROUP BY business_id, customer_id) f
 WHERE m.sales_count > 0 AND f.business_id = m.business_id AND f.customer_id = m.customer_id;
UPDATE memberships SET first_visit_at = last_visit_at
 WHERE sales_count > 0 AND first_visit_at IS NULL;

-- Indexes for the list's sorts: `(business_id, column, customer_id)`, the customer id
-- being the sort's tie-break, so that a keyset page continues along an index range.
--
-- Only created_at has one. The sale path updates sales_count, sales_sum_minor_units (and
-- so the average check), last_visit_at and first_visit_at: an index on any of them makes
-- every membership UPDATE of a sale non-HOT (0016), writing a new entry into each index
-- of memberships. Measured with the load benchmark on the 2-core machine, back to back,
-- indexes on those five columns took process-stream from 4,841 to 4,391 checks/s and
-- process-stream-large (a million memberships) from 6,136 to 4,018 checks/s (p99 of a
-- message 178 -> 322 ms). Sales keep their latency first; the list sorted or filtered by
-- a statistic reads the business's memberships until its benchmark on a million decides
-- how to serve it without touching the sale path.

-- Registered in a period, and the list's newest members first. The sale path never
-- changes created_at, so its updates stay HOT.
CREATE INDEX memberships_by_created
    ON memberships (business_id, created_at, customer_id);
