-- Saved segments of the customer list and the business's news and information, both
-- back-office resources (purse.service.admin.segments, purse.service.admin.news):
-- versioned, archived instead of deleted, every key starting with business_id.

-- A named selection of the customer list. `filter` is the filter's canonical document
-- (purse.domain.segments.filter_to_document), validated before it is stored; the scope is
-- the list's (purse.store.postgres.customer_list.ListScope): NULL or no ids for "any".
-- A name is unique among the business's live segments, so an archived one's name can be
-- taken again.
CREATE TABLE saved_segments (
    business_id bigint NOT NULL REFERENCES businesses,
    segment_id bigint GENERATED ALWAYS AS IDENTITY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    filter jsonb NOT NULL,
    program_id bigint,
    point_of_sale_id bigint,
    terminal_id bigint,
    customer_ids bigint[] NOT NULL DEFAULT '{}',
    version bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    archived_at timestamptz,
    PRIMARY KEY (business_id, segment_id)
);
CREATE UNIQUE INDEX saved_segments_name_live ON saved_segments (business_id, name)
    WHERE archived_at IS NULL;

-- An item of news and information: title and text by language tag, an optional image
-- address, the points of sale it belongs to (none: all of them; the use case checks they
-- are the business's, an array having no foreign key), and its publication window, from
-- its start until before its end (NULL: no end). A business has tens of items, not
-- millions: its list and "published now" read them through the primary key.
CREATE TABLE news_items (
    business_id bigint NOT NULL REFERENCES businesses,
    news_item_id bigint GENERATED ALWAYS AS IDENTITY,
    title jsonb NOT NULL,
    text jsonb NOT NULL,
    image_url text NOT NULL DEFAULT '' CHECK (length(image_url) <= 2000),
    point_of_sale_ids bigint[] NOT NULL DEFAULT '{}',
    publication_start_at timestamptz NOT NULL,
    publication_end_at timestamptz,
    version bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    archived_at timestamptz,
    PRIMARY KEY (business_id, news_item_id),
    CONSTRAINT news_items_window
        CHECK (publication_end_at IS NULL OR publication_end_at > publication_start_at)
);
