-- The back office: who administers a business, what they changed, and versions on
-- everything they can change.
--
-- Administrators sign in with a login and password (scrypt) or call with API keys; every
-- key belongs to an administrator and acts with that administrator's role. The operator
-- (whoever runs the instance) has keys of its own that create businesses.
--
-- Every setup row carries `version` (grows by one on every change: an update naming an
-- older one is refused, AIP-154) and `archived_at` (archived rows stay, for the history
-- that names them, but are no longer offered).

CREATE TABLE administrators (
    business_id bigint NOT NULL REFERENCES businesses,
    administrator_id bigint GENERATED ALWAYS AS IDENTITY,
    -- Logins are unique across the platform: sign-in finds the business from the login.
    login text NOT NULL UNIQUE CHECK (login ~ '^[A-Za-z0-9._@-]{3,64}$'),
    name text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    role text NOT NULL CHECK (role IN ('owner', 'manager', 'analyst')),
    password_hash text NOT NULL,
    version bigint NOT NULL DEFAULT 1,
    archived_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, administrator_id)
);

-- Keys made before administrators existed belong to an owner who cannot sign in (the
-- password hash matches nothing) until another owner gives it a password.
INSERT INTO administrators (business_id, login, name, role, password_hash)
SELECT DISTINCT business_id, 'owner-' || business_id, 'Owner', 'owner', '!'
  FROM admin_api_keys;

ALTER TABLE admin_api_keys ADD COLUMN administrator_id bigint;
UPDATE admin_api_keys k SET administrator_id = a.administrator_id
  FROM administrators a
 WHERE a.business_id = k.business_id AND a.login = 'owner-' || k.business_id;
ALTER TABLE admin_api_keys ALTER COLUMN administrator_id SET NOT NULL;
ALTER TABLE admin_api_keys
    ADD FOREIGN KEY (business_id, administrator_id) REFERENCES administrators;
CREATE INDEX admin_api_keys_by_administrator ON admin_api_keys (business_id, administrator_id);

CREATE TABLE operator_api_keys (
    api_key_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL DEFAULT '',
    key_hash bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

-- Append-only: who changed what, when, from what to what. Written in the same database
-- transaction as the change itself; never updated or deleted (the trigger refuses).
CREATE TABLE audit_log (
    business_id bigint NOT NULL,
    entry_id bigint GENERATED ALWAYS AS IDENTITY,
    -- NULL: the operator.
    administrator_id bigint,
    actor text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    action text NOT NULL CHECK (action ~ '^[a-z_]{1,64}$'),
    resource text NOT NULL CHECK (resource ~ '^[a-z_]{1,64}$'),
    resource_id text NOT NULL CHECK (length(resource_id) BETWEEN 1 AND 200),
    before jsonb,
    after jsonb,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, entry_id)
);
CREATE INDEX audit_log_by_resource ON audit_log (business_id, resource, resource_id, entry_id);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_never_truncated BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

ALTER TABLE businesses
    ADD COLUMN languages text[] NOT NULL DEFAULT '{en}',
    ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE loyalty_programs
    ADD COLUMN version bigint NOT NULL DEFAULT 1,
    ADD COLUMN archived_at timestamptz;
ALTER TABLE customer_categories
    ADD COLUMN description jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN version bigint NOT NULL DEFAULT 1,
    ADD COLUMN archived_at timestamptz;
ALTER TABLE points_of_sale
    ADD COLUMN version bigint NOT NULL DEFAULT 1,
    ADD COLUMN archived_at timestamptz;
ALTER TABLE terminals
    ADD COLUMN version bigint NOT NULL DEFAULT 1,
    ADD COLUMN archived_at timestamptz;
ALTER TABLE goods_categories
    ADD COLUMN version bigint NOT NULL DEFAULT 1,
    ADD COLUMN archived_at timestamptz;
ALTER TABLE goods
    ADD COLUMN version bigint NOT NULL DEFAULT 1,
    ADD COLUMN archived_at timestamptz;
ALTER TABLE account_types
    ADD COLUMN description jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN version bigint NOT NULL DEFAULT 1,
    ADD COLUMN archived_at timestamptz;
ALTER TABLE coupon_series
    ADD COLUMN description jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN version bigint NOT NULL DEFAULT 1,
    ADD COLUMN archived_at timestamptz;
ALTER TABLE certificates
    ADD COLUMN version bigint NOT NULL DEFAULT 1,
    ADD COLUMN archived_at timestamptz;
