-- The points a pending sale took from each lot when it held them, {"lot id": points}:
-- releasing the hold gives them back to those lots. NULL for sales stored before.
ALTER TABLE transactions ADD COLUMN lot_reservations jsonb;
