-- The customer list on a business of a million members (issue 13): what serves its
-- pages and counts, measured with `make bench-list` on the 2-core machine against a
-- business `purse generate` made (1,000,000 members, 3.9 million sales).
--
-- No index on the statistics the sale path updates (sales count and sum, average check,
-- first and last visit) nor on the pocket's balance: any of them makes every sale's
-- UPDATE of its row non-HOT (0016, 0018: five of them took process-stream-large from
-- 6,136 to 4,018 checks/s). The list does without them: a page first chooses its
-- customers reading only the tables its filter and sort name, so that PostgreSQL keeps
-- the best rows as it reads (a bounded top-N sort, in parallel workers) instead of
-- sorting every membership joined with its customer, pocket and lot, and only then
-- reads those rows whole. That alone took the issue's page ("more than 5 sales, no
-- visit in 30 days, more than 100 points", by average check) from 87 to 65 ms, its count
-- from 280 to 120 ms, and a page sorted by sales count from 300 to 90 ms (EXPLAIN
-- ANALYZE: the sort of a million rows had spilled 30 MB to disk). Pages sorted by the
-- points balance or the soonest lot still join every membership with its pocket (0.3 to
-- 0.6 s): an index on the balance would make every sale's pocket update non-HOT, and
-- more work_mem (64 MB: the hash in one batch instead of eight) did not make it faster.
--
-- Sorted by phone, a page read and sorted every customer (230 ms): customers are never
-- updated by a sale, so an index in the list's byte order costs the sale path nothing
-- (enrolment writes one more entry) and takes that page to 1 ms, walked in order and
-- each customer's membership probed.
CREATE INDEX customers_by_phone_bytes ON customers ((phone COLLATE "C"), customer_id);

-- Statistics per point of sale: a customer who bought at several points of sale appears
-- in the list scoped by each with that point of sale's own sales count and sum, average
-- check, first and last visit (the membership's are the business's). The batch that
-- writes a sale adds it here too, in the statement that writes everything else (one
-- upsert of the batch's sales added up by customer and point of sale); a confirmed
-- pending sale counts at the point of sale it was made at. As on the membership, a
-- refund or cancel takes nothing back: the statistics count completed sales, refunded
-- or not.
--
-- Keyed by point of sale first: the list scoped by one reads its rows in a range. Filled
-- to 70 % like memberships (0016), so that a sale's update of its row stays HOT (no index
-- holds a statistic). No foreign keys, as on every row a sale writes (0014).
--
-- What it costs a sale: batches of 100 sales of 5,000 members at three points of sale
-- applied straight through the batch store, with and without the upsert alternately
-- (400 each): 48.5 -> 55.5 us a sale (median), of which about 2 us building and sending
-- its six arrays and 5 us PostgreSQL's upsert. process-stream on the shared machine
-- moved more from run to run than that (four alternating runs each way: 3,308 checks/s
-- before, 3,062 after on average, 2,276 to 3,962 in all).
-- On a business of a million members and 3.8 million sales the backfill below takes
-- about 7 s.
CREATE TABLE point_of_sale_statistics (
    business_id bigint NOT NULL,
    point_of_sale_id bigint NOT NULL,
    customer_id bigint NOT NULL,
    sales_count bigint NOT NULL CHECK (sales_count >= 0),
    sales_sum_minor_units bigint NOT NULL,
    first_visit_at timestamptz NOT NULL,
    last_visit_at timestamptz NOT NULL,
    -- Rounded as the membership's (0018).
    average_check_minor_units bigint GENERATED ALWAYS AS (
        CASE WHEN sales_count > 0
             THEN round(sales_sum_minor_units::numeric / sales_count)::bigint END
    ) STORED,
    PRIMARY KEY (business_id, point_of_sale_id, customer_id)
) WITH (fillfactor = 70);

-- What the sales before this migration leave there, as 0018 counted the first visit:
-- completed sales, refunded in part or whole (an administrator's operation is no sale),
-- of customers who are members, at the point of sale the transaction names (or, for one
-- recorded before transactions named it, its terminal's).
INSERT INTO point_of_sale_statistics (business_id, point_of_sale_id, customer_id, sales_count,
                                      sales_sum_minor_units, first_visit_at, last_visit_at)
SELECT t.business_id, coalesce(nullif(t.point_of_sale_id, 0), r.point_of_sale_id), t.customer_id,
       count(*), least(sum(t.sum_minor_units), 9223372036854775807)::bigint,
       min(coalesce(t.sale_time, t.finished_at, t.created_at)),
       max(coalesce(t.sale_time, t.finished_at, t.created_at))
  FROM transactions t
  JOIN memberships m ON m.business_id = t.business_id AND m.customer_id = t.customer_id
  LEFT JOIN terminals r ON r.business_id = t.business_id AND r.terminal_id = t.terminal_id
 WHERE t.operation IS NULL AND t.status IN ('completed', 'partially_refunded', 'refunded')
   AND coalesce(nullif(t.point_of_sale_id, 0), r.point_of_sale_id) IS NOT NULL
 GROUP BY 1, 2, 3;
