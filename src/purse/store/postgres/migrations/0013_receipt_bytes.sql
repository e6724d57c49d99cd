-- A sale keeps its receipt as protobuf bytes (purse.store.v1.StoredReceipt: about 580 B
-- for a 10-line check) instead of a jsonb document (about 2.6 KB, over the TOAST
-- threshold, so every insert parsed it and compressed it with pglz: a third of
-- PostgreSQL's time per check).
--
-- The documents of sales stored before stay in `receipt_document`, readable as they are,
-- until `purse migrate` converts them to bytes (that needs Python: the bytes hold the
-- receipt as the API answers it); the partial index finds the ones left, and is empty
-- once they are all converted. Nothing writes a document any more.
ALTER TABLE transactions RENAME COLUMN receipt TO receipt_document;
ALTER TABLE transactions ALTER COLUMN receipt_document DROP NOT NULL;
-- `receipt` is NULL for an administrator's operation and a check refused for good.
ALTER TABLE transactions ADD COLUMN receipt bytea;
-- What an administrator's operation did (it has no receipt), kept where it is read as
-- one document: small, rare, and not worth a codec of its own.
ALTER TABLE transactions ADD COLUMN operation jsonb;

UPDATE transactions SET operation = receipt_document -> 'operation', receipt_document = NULL
 WHERE receipt_document ? 'operation';
-- A refused check stored an empty document: it has no receipt.
UPDATE transactions SET receipt_document = NULL
 WHERE receipt_document IS NOT NULL AND NOT receipt_document ? 'receipt';

CREATE INDEX transactions_receipt_documents ON transactions (transaction_id)
    WHERE receipt_document IS NOT NULL;
