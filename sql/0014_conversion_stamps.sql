-- The creation stamp every conversion row was written with, logged as it is written (by
-- the ClickHouse server's clock, like dedup_log). Two nodes that take the same order
-- before either has heard of the other's copy stamp it with their own clocks: the
-- conversion is one row in `conversions` (keyed by its id alone), but the listing copies,
-- `conversions_by_status` and `commissions` sort by created_at and keep one row per stamp.
-- Nodes read this log for orders written with more than one stamp and repair those copies
-- (ingest's dedup/race_repair.rs). Days older than two are dropped, as from dedup_log.
CREATE TABLE IF NOT EXISTS conversion_stamps (
    written_at    DateTime,
    dedup_key     UInt64,
    conversion_id String,
    brand_id      String,
    affiliate_id  String,
    created_at    DateTime
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(written_at)
ORDER BY written_at;

CREATE MATERIALIZED VIEW IF NOT EXISTS conversion_stamps_mv TO conversion_stamps
AS SELECT now() AS written_at, dedup_key, conversion_id, brand_id, affiliate_id,
       created_at
FROM conversions;
