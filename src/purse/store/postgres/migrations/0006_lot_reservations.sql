-- The points a sale took from each lot, {"lot id": points}: held by a pending sale (a
-- release gives them back) or spent by a completed one (a refund gives them back).
-- NULL for sales stored before.
ALTER TABLE transactions ADD COLUMN lot_reservations jsonb;
