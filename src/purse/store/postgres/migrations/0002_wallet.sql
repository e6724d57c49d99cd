-- What a check can spend besides points: coupons, certificates, expiring points lots;
-- achievements accounts; administrators' API keys.
--
-- A NULL redemption limit now means "no PIN is ever needed" and 0 "every redemption
-- needs one", as the receipt engine reads them; 0001 documented 0 as "never".

ALTER TABLE account_types ALTER COLUMN redemption_limit_without_pin DROP NOT NULL;
ALTER TABLE account_types ALTER COLUMN redemption_limit_without_pin DROP DEFAULT;
UPDATE account_types SET redemption_limit_without_pin = NULL
 WHERE redemption_limit_without_pin = 0;
ALTER TABLE account_types
    ADD COLUMN purchases_per_reward integer NOT NULL DEFAULT 0
        CHECK (purchases_per_reward >= 0),
    ADD CONSTRAINT account_types_achievements_need_a_count
        CHECK (kind <> 'achievements' OR purchases_per_reward > 0);

-- Special bonus points: a credit that is spendable until `expires_at`. `remaining` falls
-- as points are spent from the lot; the points pocket's balance always includes it.
CREATE TABLE points_lots (
    business_id bigint NOT NULL,
    lot_id bigint GENERATED ALWAYS AS IDENTITY,
    pocket_id bigint NOT NULL,
    remaining bigint NOT NULL CHECK (remaining >= 0),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, lot_id),
    FOREIGN KEY (business_id, pocket_id) REFERENCES pockets
);
CREATE INDEX points_lots_live ON points_lots (business_id, pocket_id, expires_at)
    WHERE remaining > 0;

CREATE TABLE coupon_series (
    business_id bigint NOT NULL REFERENCES businesses,
    series_id bigint GENERATED ALWAYS AS IDENTITY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    title jsonb NOT NULL DEFAULT '{}'::jsonb,
    kind text NOT NULL CHECK (kind IN ('percent', 'fixed', 'free_product')),
    -- Basis points (percent), minor units (fixed) or thousandths of a unit (free product).
    value bigint NOT NULL CHECK (value > 0),
    product_codes text[] NOT NULL DEFAULT '{}',
    check_sum_min_minor_units bigint NOT NULL DEFAULT 0 CHECK (check_sum_min_minor_units >= 0),
    -- The series caps how many coupons exist; NULL: no cap.
    coupons_max bigint CHECK (coupons_max > 0),
    coupons_issued bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, series_id),
    CONSTRAINT coupon_series_cap CHECK (coupons_max IS NULL OR coupons_issued <= coupons_max)
);

CREATE TABLE coupons (
    business_id bigint NOT NULL,
    coupon_id bigint GENERATED ALWAYS AS IDENTITY,
    series_id bigint NOT NULL,
    code text NOT NULL CHECK (length(code) BETWEEN 1 AND 64),
    -- In this customer's wallet; NULL: a bearer coupon anyone may present.
    customer_id bigint,
    status text NOT NULL DEFAULT 'issued' CHECK (status IN ('issued', 'used', 'cancelled')),
    expires_at timestamptz,
    issued_at timestamptz NOT NULL DEFAULT now(),
    used_at timestamptz,
    transaction_id bigint,
    PRIMARY KEY (business_id, coupon_id),
    UNIQUE (business_id, code),
    FOREIGN KEY (business_id, series_id) REFERENCES coupon_series
);
CREATE INDEX coupons_wallet ON coupons (business_id, customer_id) WHERE status = 'issued';

-- Gift certificates: stored value, paid out like money by whoever presents the code.
CREATE TABLE certificates (
    business_id bigint NOT NULL REFERENCES businesses,
    certificate_id bigint GENERATED ALWAYS AS IDENTITY,
    code text NOT NULL CHECK (length(code) BETWEEN 1 AND 64),
    balance_minor_units bigint NOT NULL,
    held_minor_units bigint NOT NULL DEFAULT 0 CHECK (held_minor_units >= 0),
    expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, certificate_id),
    UNIQUE (business_id, code),
    CONSTRAINT certificates_no_overdraft CHECK (balance_minor_units - held_minor_units >= 0)
);

CREATE TABLE admin_api_keys (
    business_id bigint NOT NULL REFERENCES businesses,
    api_key_id bigint GENERATED ALWAYS AS IDENTITY,
    name text NOT NULL DEFAULT '',
    key_hash bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    PRIMARY KEY (business_id, api_key_id)
);
