-- The catalogue as the control panel edits it: goods categories, goods, account types,
-- coupon series, certificates.
--
-- A goods category's code is unique among the business's active categories only: an
-- archived category keeps its code for the history that names it, and a new category
-- may take the code up again (rules and check lines name categories by code).
-- Goods keep their product code (the primary key) when archived: a price list that
-- lists an archived product makes it active again.

ALTER TABLE goods_categories DROP CONSTRAINT goods_categories_business_id_code_key;
CREATE UNIQUE INDEX goods_categories_code_active ON goods_categories (business_id, code)
    WHERE archived_at IS NULL;

-- Archiving a goods category counts the active goods still in it.
CREATE INDEX goods_by_category ON goods (business_id, goods_category_id)
    WHERE archived_at IS NULL;

-- Goods as the control panel lists them: with their category's code.
CREATE VIEW goods_listed AS
SELECT g.*, coalesce(k.code, '') AS goods_category_code
  FROM goods g
  LEFT JOIN goods_categories k
    ON k.business_id = g.business_id AND k.goods_category_id = g.goods_category_id;

-- How long coupons of a series last: none is accepted after the series' `valid_until`
-- (checks read it with each coupon), and whoever issues a coupon sets its `expires_at`
-- to `coupon_lifetime_days` after the issue (bounded by `valid_until`).
ALTER TABLE coupon_series
    ADD COLUMN valid_until timestamptz,
    ADD COLUMN coupon_lifetime_days integer
        CHECK (coupon_lifetime_days BETWEEN 1 AND 3660);
