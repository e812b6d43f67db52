-- Conversions: the authoritative table is keyed by conversion_id, which is derived from
-- (brand_id, order_id), so a repeated order collapses into one row and a status change is
-- a new version of it. ReplacingMergeTree only collapses at merge time: every reader asks
-- for the latest version explicitly (FINAL).
-- created_at never changes between versions, so all versions of a conversion share a
-- monthly partition and collapse together. Reads of this table are look-ups of scattered
-- ids (dedup, the workers' existence check, GET by id); small granules keep each one from
-- reading thousands of neighbours.

CREATE TABLE IF NOT EXISTS conversions (
    conversion_id         String,
    dedup_key             UInt64,
    brand_id              String,
    order_id              String,
    version               UInt64,
    created_at            DateTime,
    updated_at            DateTime,
    source                String,
    campaign_id           String,
    affiliate_id          String,
    link_id               String,
    click_id              String,
    attribution_method    String,
    click_time            Nullable(DateTime),
    seconds_from_click    Nullable(UInt32),
    event_type            String,
    amount                Decimal(18, 4),
    currency              String,
    commission_amount     Decimal(18, 4),
    commission_currency   String,
    commission_rule       String,
    status                String,
    status_reason         String,
    note                  String,
    customer_email_sha256 String,
    metadata              Nested(key String, value String)
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(created_at)
ORDER BY conversion_id
SETTINGS index_granularity = 256;

-- Listing copies: a brand's (or an affiliate's) conversions newest first without scanning
-- the whole table. Filled by materialized views on every INSERT into conversions.
CREATE TABLE IF NOT EXISTS conversions_by_brand AS conversions
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(created_at)
ORDER BY (brand_id, created_at, conversion_id);

CREATE TABLE IF NOT EXISTS conversions_by_affiliate AS conversions
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(created_at)
ORDER BY (affiliate_id, created_at, conversion_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS conversions_by_brand_mv TO conversions_by_brand
AS SELECT * FROM conversions;

CREATE MATERIALIZED VIEW IF NOT EXISTS conversions_by_affiliate_mv TO conversions_by_affiliate
AS SELECT * FROM conversions;
