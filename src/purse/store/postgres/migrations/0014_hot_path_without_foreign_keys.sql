-- No foreign keys on the rows a sale writes.
--
-- A foreign key is checked by a trigger for every row inserted: an index probe of the
-- referenced table and a row lock on what it finds. A streamed check inserts a
-- transaction and two or three ledger entries, sometimes a pocket or a points lot, and
-- the checks of those keys cost about a tenth of PostgreSQL's time per check. They guard
-- against nothing the application can do: the rows they name are never deleted
-- (terminals, memberships and pockets are archived or kept), and every id the batch
-- writes is one it has just read (the terminal it authenticated, pockets it locked in the
-- same transaction). `purse audit` finds any such row instead (a ledger entry, lot or
-- pocket of nothing, a transaction of an unknown terminal, business or customer), should
-- a hand-made change or a bug ever write one.
--
-- Foreign keys the sale path does not check stay: memberships, coupons and refunds keep
-- theirs (a sale updates memberships and coupons without changing the columns a key
-- names, and inserts neither).

ALTER TABLE transactions DROP CONSTRAINT transactions_business_id_terminal_id_fkey;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_business_id_pocket_id_fkey;
ALTER TABLE pockets DROP CONSTRAINT pockets_business_id_customer_id_fkey;
ALTER TABLE points_lots DROP CONSTRAINT points_lots_business_id_pocket_id_fkey;
