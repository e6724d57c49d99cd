-- Foundation schema.
--
-- Every table's primary key starts with business_id and no foreign key crosses
-- businesses, so the schema can be distributed by business. The one exception is
-- `customers`: a phone number is one purse shared by every business (a reference table
-- when distributed), and it holds nothing but the phone and the questionnaire.
--
-- Amounts are integers: money in minor units, points in hundredths, quantities in
-- thousandths. Pockets carry balance and held; available = balance - held, and the
-- CHECK constraints make an overdraft impossible whatever the code does.

CREATE TABLE instance_secrets (
    name text PRIMARY KEY,
    value bytea NOT NULL CHECK (length(value) >= 32)
);

CREATE TABLE businesses (
    business_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    currency char(3) NOT NULL,
    currency_exponent smallint NOT NULL CHECK (currency_exponent BETWEEN 0 AND 4),
    phone_prefix text NOT NULL DEFAULT '' CHECK (phone_prefix ~ '^(\+[0-9]{1,6})?$'),
    time_zone text NOT NULL DEFAULT 'UTC',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE loyalty_programs (
    business_id bigint NOT NULL REFERENCES businesses,
    program_id bigint GENERATED ALWAYS AS IDENTITY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    enrols_unknown_phones boolean NOT NULL DEFAULT true,
    default_access_type text NOT NULL DEFAULT 'full'
        CHECK (default_access_type IN ('full', 'limited', 'none')),
    -- The rule set as validated by the domain; `rules_version` grows on every change
    -- so in-process caches know when to reload.
    rules jsonb NOT NULL DEFAULT '{}'::jsonb,
    rules_version bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, program_id)
);

CREATE TABLE customer_categories (
    business_id bigint NOT NULL REFERENCES businesses,
    category_id bigint GENERATED ALWAYS AS IDENTITY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    title jsonb NOT NULL DEFAULT '{}'::jsonb,
    is_default boolean NOT NULL DEFAULT false,
    PRIMARY KEY (business_id, category_id)
);
CREATE UNIQUE INDEX customer_categories_one_default
    ON customer_categories (business_id) WHERE is_default;

CREATE TABLE points_of_sale (
    business_id bigint NOT NULL,
    point_of_sale_id bigint GENERATED ALWAYS AS IDENTITY,
    program_id bigint NOT NULL,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    time_zone text NOT NULL DEFAULT 'UTC',
    PRIMARY KEY (business_id, point_of_sale_id),
    FOREIGN KEY (business_id, program_id) REFERENCES loyalty_programs
);

CREATE TABLE terminals (
    business_id bigint NOT NULL,
    terminal_id bigint GENERATED ALWAYS AS IDENTITY,
    point_of_sale_id bigint NOT NULL,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind text NOT NULL CHECK (kind IN ('cash_desk', 'kiosk', 'steward', 'online')),
    -- Logins are unique across the platform: sign-in finds the business from the login.
    login text NOT NULL UNIQUE CHECK (login ~ '^[A-Za-z0-9._@-]{3,64}$'),
    password_hash text NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, terminal_id),
    FOREIGN KEY (business_id, point_of_sale_id) REFERENCES points_of_sale
);

CREATE TABLE terminal_api_keys (
    business_id bigint NOT NULL,
    api_key_id bigint GENERATED ALWAYS AS IDENTITY,
    terminal_id bigint NOT NULL,
    name text NOT NULL DEFAULT '',
    -- SHA-256 of the key: keys are 256-bit random, so a fast hash cannot be brute-forced
    -- and lets every call find its key by index.
    key_hash bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    PRIMARY KEY (business_id, api_key_id),
    FOREIGN KEY (business_id, terminal_id) REFERENCES terminals
);

CREATE TABLE goods_categories (
    business_id bigint NOT NULL REFERENCES businesses,
    goods_category_id bigint GENERATED ALWAYS AS IDENTITY,
    code text NOT NULL CHECK (length(code) BETWEEN 1 AND 64),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    PRIMARY KEY (business_id, goods_category_id),
    UNIQUE (business_id, code)
);

CREATE TABLE goods (
    business_id bigint NOT NULL REFERENCES businesses,
    product_code text NOT NULL CHECK (length(product_code) BETWEEN 1 AND 64),
    title text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    price_minor_units bigint NOT NULL CHECK (price_minor_units >= 0),
    goods_category_id bigint,
    PRIMARY KEY (business_id, product_code),
    FOREIGN KEY (business_id, goods_category_id) REFERENCES goods_categories
);

CREATE TABLE customers (
    customer_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    phone text NOT NULL UNIQUE CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    given_name text NOT NULL DEFAULT '',
    family_name text NOT NULL DEFAULT '',
    language text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
-- Prefix search by phone (SearchCustomers) uses the C-collation ordering.
CREATE INDEX customers_phone_prefix ON customers (phone text_pattern_ops);

CREATE TABLE memberships (
    business_id bigint NOT NULL REFERENCES businesses,
    customer_id bigint NOT NULL,
    category_id bigint NOT NULL,
    access_type text NOT NULL CHECK (access_type IN ('full', 'limited', 'none', 'blacklisted')),
    participation_confirmed boolean NOT NULL DEFAULT false,
    personal_data_consent boolean NOT NULL DEFAULT false,
    sales_count bigint NOT NULL DEFAULT 0 CHECK (sales_count >= 0),
    sales_sum_minor_units bigint NOT NULL DEFAULT 0,
    last_visit_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, customer_id),
    FOREIGN KEY (business_id, category_id) REFERENCES customer_categories
);

CREATE TABLE customer_identifiers (
    business_id bigint NOT NULL,
    kind text NOT NULL CHECK (kind IN ('card_number', 'card_qr')),
    value text NOT NULL CHECK (length(value) BETWEEN 1 AND 256),
    customer_id bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, kind, value),
    FOREIGN KEY (business_id, customer_id) REFERENCES memberships
);
CREATE INDEX customer_identifiers_by_customer ON customer_identifiers (business_id, customer_id);

CREATE TABLE account_types (
    business_id bigint NOT NULL REFERENCES businesses,
    account_type_id bigint GENERATED ALWAYS AS IDENTITY,
    kind text NOT NULL CHECK (kind IN ('money', 'products', 'achievements')),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    title jsonb NOT NULL DEFAULT '{}'::jsonb,
    product_codes text[] NOT NULL DEFAULT '{}',
    redemption_limit_without_pin bigint NOT NULL DEFAULT 0
        CHECK (redemption_limit_without_pin >= 0),
    PRIMARY KEY (business_id, account_type_id)
);

-- One pocket per membership and account type; account_type_id 0 is the points pocket.
CREATE TABLE pockets (
    business_id bigint NOT NULL,
    pocket_id bigint GENERATED ALWAYS AS IDENTITY,
    customer_id bigint NOT NULL,
    account_type_id bigint NOT NULL DEFAULT 0,
    balance bigint NOT NULL DEFAULT 0,
    held bigint NOT NULL DEFAULT 0 CHECK (held >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, pocket_id),
    UNIQUE (business_id, customer_id, account_type_id),
    FOREIGN KEY (business_id, customer_id) REFERENCES memberships,
    CONSTRAINT pockets_no_overdraft CHECK (balance - held >= 0)
);

-- Append-only: a pocket's balance is the sum of its entries (`purse audit` checks it).
CREATE TABLE ledger_entries (
    business_id bigint NOT NULL,
    entry_id bigint GENERATED ALWAYS AS IDENTITY,
    pocket_id bigint NOT NULL,
    transaction_id bigint,
    kind text NOT NULL CHECK (kind IN
        ('accrue', 'redeem', 'hold', 'post', 'void', 'expire', 'adjust', 'refund')),
    -- Effect on the balance (hold and void change `held` only and carry it in held_amount).
    amount bigint NOT NULL,
    held_amount bigint NOT NULL DEFAULT 0,
    -- For expiring credits: when this lot stops being spendable.
    expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, entry_id),
    FOREIGN KEY (business_id, pocket_id) REFERENCES pockets
);
CREATE INDEX ledger_entries_by_pocket ON ledger_entries (business_id, pocket_id, entry_id);

CREATE TABLE transactions (
    business_id bigint NOT NULL,
    transaction_id bigint GENERATED ALWAYS AS IDENTITY,
    terminal_id bigint NOT NULL,
    check_number text NOT NULL CHECK (length(check_number) BETWEEN 1 AND 64),
    -- Digest of the request: the same check number with another request is refused.
    request_digest bytea NOT NULL,
    customer_id bigint,
    status text NOT NULL
        CHECK (status IN ('pending', 'completed', 'cancelled', 'expired', 'locked')),
    receipt jsonb NOT NULL,
    sum_minor_units bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    confirmation_deadline timestamptz,
    PRIMARY KEY (business_id, transaction_id),
    UNIQUE (business_id, terminal_id, check_number),
    FOREIGN KEY (business_id, terminal_id) REFERENCES terminals
);
CREATE INDEX transactions_newest_first ON transactions (business_id, created_at DESC, transaction_id DESC);
CREATE INDEX transactions_by_customer
    ON transactions (business_id, customer_id, created_at DESC, transaction_id DESC);
CREATE INDEX transactions_pending_deadline
    ON transactions (confirmation_deadline) WHERE status = 'pending';
