-- Hourly rollups behind /api/reports, so that a 90-day report reads thousands of rows
-- rather than every conversion and click of the range.
--
-- Exact under change: a rollup row is keyed only by what never changes in a conversion
-- (brand, UTC hour of created_at, campaign, affiliate, link, event type, currencies) and
-- holds the counts and sums of each status side by side. A status change moves money from
-- one column to another of the same row; it never makes or removes a key. A (brand, UTC
-- day) touched by an INSERT is recomputed whole from the latest version of each
-- conversion (argMax) and the distinct clicks, and written as a new generation (version)
-- of its rows, holding every key the day has; readers take each day's latest generation.
-- So re-shipped rows, replays and status changes cannot be counted twice.
--
-- Hours are UTC: a report in a zone whose offset is a whole number of hours over its range
-- regroups them exactly; other zones (Asia/Kolkata, Australia/Lord_Howe) read the raw rows.
CREATE TABLE IF NOT EXISTS report_conversions_hourly (
    brand_id            String,
    hour                DateTime,
    campaign_id         String,
    affiliate_id        String,
    link_id             String,
    event_type          String,
    currency            String,
    commission_currency String,
    version             UInt64,
    pending             UInt64,
    approved            UInt64,
    rejected            UInt64,
    amount_pending      Decimal(38, 4),
    amount_approved     Decimal(38, 4),
    amount_rejected     Decimal(38, 4),
    commission_pending  Decimal(38, 4),
    commission_approved Decimal(38, 4),
    commission_rejected Decimal(38, 4)
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(hour)
ORDER BY (brand_id, hour, campaign_id, affiliate_id, link_id, event_type, currency, commission_currency);

CREATE TABLE IF NOT EXISTS report_clicks_hourly (
    brand_id     String,
    hour         DateTime,
    campaign_id  String,
    affiliate_id String,
    link_id      String,
    version      UInt64,
    clicks       UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(hour)
ORDER BY (brand_id, hour, campaign_id, affiliate_id, link_id);

-- Which (brand, UTC day) an INSERT touched, stamped with the server's clock: one row per
-- day per INSERT block, written with the rows themselves, so no crash can lose one.
CREATE TABLE IF NOT EXISTS report_dirty_days (
    brand_id  String,
    day       Date,
    marked_at DateTime
) ENGINE = MergeTree
PARTITION BY toYYYYMM(marked_at)
ORDER BY (marked_at, brand_id, day);

CREATE MATERIALIZED VIEW IF NOT EXISTS report_dirty_conversions_mv TO report_dirty_days
AS SELECT brand_id, toDate(created_at, 'UTC') AS day, now() AS marked_at
FROM conversions GROUP BY brand_id, day;

CREATE MATERIALIZED VIEW IF NOT EXISTS report_dirty_clicks_mv TO report_dirty_days
AS SELECT brand_id, toDate(clicked_at, 'UTC') AS day, now() AS marked_at
FROM clicks GROUP BY brand_id, day;

-- When each (brand, day) was last recomputed, by the server's clock at the recompute's start.
CREATE TABLE IF NOT EXISTS report_refreshes (
    brand_id     String,
    day          Date,
    refreshed_at DateTime
) ENGINE = ReplacingMergeTree(refreshed_at)
ORDER BY (brand_id, day);

-- Rows stored before the rollups existed.
INSERT INTO report_dirty_days
SELECT brand_id, toDate(created_at, 'UTC') AS day, now() AS marked_at
FROM conversions GROUP BY brand_id, day;

INSERT INTO report_dirty_days
SELECT brand_id, toDate(clicked_at, 'UTC') AS day, now() AS marked_at
FROM clicks GROUP BY brand_id, day;
