-- A customer's memberships across businesses: when the customer's own details (names,
-- language) change, every business's balance cache is told; the customer app lists
-- every pocket of a customer in one place the same way.
CREATE INDEX memberships_by_customer ON memberships (customer_id);
