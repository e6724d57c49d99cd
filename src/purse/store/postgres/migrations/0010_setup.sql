-- The setup of a business as the control panel edits it: programs, points of sale,
-- terminals.
--
-- A program says how its transactions are told to the customer (`notice_channel`; 'none'
-- sends nothing). A point of sale is what customers see of a shop: a title, a description
-- and an address by language (BCP 47 → text), shown only once `published`. Terminals come
-- in more kinds, and are found by the point of sale that counts them before it is archived.

ALTER TABLE loyalty_programs
    ADD COLUMN notice_channel text NOT NULL DEFAULT 'sms'
        CHECK (notice_channel IN ('sms', 'push', 'smart', 'none'));

ALTER TABLE points_of_sale
    ADD COLUMN title jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN description jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN address jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN published boolean NOT NULL DEFAULT false,
    ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
-- Archiving a program counts the points of sale still on it.
CREATE INDEX points_of_sale_by_program ON points_of_sale (business_id, program_id)
    WHERE archived_at IS NULL;

-- 'online' stays for the terminals that have it (a partner backend or online store).
ALTER TABLE terminals DROP CONSTRAINT terminals_kind_check;
ALTER TABLE terminals ADD CONSTRAINT terminals_kind_check
    CHECK (kind IN ('cash_desk', 'pos_app', 'external_pos', 'kiosk', 'steward', 'online'));
-- Archiving a point of sale counts the terminals still at it.
CREATE INDEX terminals_by_point_of_sale ON terminals (business_id, point_of_sale_id)
    WHERE archived_at IS NULL;

-- A terminal's keys, listed by terminal.
CREATE INDEX terminal_api_keys_by_terminal ON terminal_api_keys (business_id, terminal_id);
