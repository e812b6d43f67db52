-- Daily report rollups: the hourly ones (0008) without the link, by UTC day. A 90-day
-- report grouped by day, campaign or affiliate reads one row per day and key here, where
-- the hourly rollups hold a row per hour and link (millions over 90 days for a brand
-- with a thousand busy links). Reports grouped or filtered by link or hour, and local
-- days that do not start at UTC midnight, keep reading the hourly rollups.
--
-- Written by the same recompute as the hourly rows, whole (brand, UTC day) at a time, as
-- a generation (version) holding every key the day has, so the same rules make them
-- exact: readers take each day's latest generation. A daily generation is the hourly
-- one of the same version summed, so the two agree where a reader takes some hours of a
-- day from each.
CREATE TABLE IF NOT EXISTS report_conversions_daily (
    brand_id            String,
    day                 Date,
    campaign_id         String,
    affiliate_id        String,
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
PARTITION BY toYYYYMM(day)
ORDER BY (brand_id, day, campaign_id, affiliate_id, event_type, currency, commission_currency);

CREATE TABLE IF NOT EXISTS report_clicks_daily (
    brand_id     String,
    day          Date,
    campaign_id  String,
    affiliate_id String,
    version      UInt64,
    clicks       UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(day)
ORDER BY (brand_id, day, campaign_id, affiliate_id);

-- Days recomputed before these tables existed are recomputed again, filling them.
INSERT INTO report_dirty_days
SELECT brand_id, day, now() AS marked_at
FROM report_refreshes GROUP BY brand_id, day;
