-- Personal data belongs to the membership of the business that collected it.
--
-- Names and language used to live on `customers`, one row per phone shared by every
-- business: a business identifying or registering a phone saw, and overwrote, what
-- another business had collected. What a business collects about a customer is now a
-- column of that business's membership, next to category, access type, consent and
-- participation; no statement of one business reads or writes another's membership.
--
-- The limits are the domain's (`purse.domain.customers`): names of at most 200
-- characters, a language tag of at most 35 (a BCP 47 tag: a 2-8 letter language and
-- dash-separated subtags of 1-8 letters or digits), empty meaning unknown.

ALTER TABLE memberships
    ADD COLUMN given_name text NOT NULL DEFAULT ''
        CONSTRAINT memberships_given_name_length CHECK (char_length(given_name) <= 200),
    ADD COLUMN family_name text NOT NULL DEFAULT ''
        CONSTRAINT memberships_family_name_length CHECK (char_length(family_name) <= 200),
    ADD COLUMN language text NOT NULL DEFAULT ''
        CONSTRAINT memberships_language_tag CHECK (
            char_length(language) <= 35
            AND language ~ '^([A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*)?$'
        );

-- Which business collected the shared values was never recorded, so every membership of
-- the customer keeps what it has been shown until now. Values the old table took
-- unchecked are fitted to the new limits rather than failing the migration: a name is
-- cut to 200 characters, and a language that is not a tag is dropped (texts fell back
-- to English for it anyway).
UPDATE memberships m
   SET given_name = left(c.given_name, 200),
       family_name = left(c.family_name, 200),
       language = CASE
           WHEN char_length(c.language) <= 35
                AND c.language ~ '^([A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*)?$'
           THEN c.language
           ELSE ''
       END
  FROM customers c
 WHERE c.customer_id = m.customer_id
   AND (c.given_name <> '' OR c.family_name <> '' OR c.language <> '');

-- The shared row keeps only the phone (and when it first appeared). Later, what the
-- customer sets for themself in the customer app (their own settings, not any
-- business's) lives here.
ALTER TABLE customers
    DROP COLUMN given_name,
    DROP COLUMN family_name,
    DROP COLUMN language;

COMMENT ON TABLE customers IS
    'One row per phone, shared by every business: the phone and created_at only. '
    'What a business collects lives on its membership; the customer app''s own '
    'settings will live here.';

-- memberships_by_customer (0004) stays: registration no longer needs it (names changed
-- by one business concern that business's cache alone), but the customer app lists
-- every membership of a customer with it.
COMMENT ON INDEX memberships_by_customer IS
    'A customer''s memberships across businesses, for the customer app.';
