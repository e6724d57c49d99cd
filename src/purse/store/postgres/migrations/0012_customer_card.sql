-- The customer's card in the control panel: the profile (category, access type, this
-- business's personal data) gets a version of its own, so an administrator's update
-- names what it read (AIP-154) without colliding with every sale, which changes only
-- the statistics.
ALTER TABLE memberships ADD COLUMN profile_version bigint NOT NULL DEFAULT 1;
