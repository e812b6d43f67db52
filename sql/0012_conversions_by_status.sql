-- The pending queue: a brand's conversions sorted by status, then time, so a listing with
-- a status filter reads only that status's rows, however rare the status is.
-- A status change leaves the conversion's row under its old status behind (it has another
-- sort key, so it never collapses with the new one); the change's history row therefore
-- writes a tombstone (live = 0) under the old status with the change's version, which
-- replaces the old row there. Readers take FINAL and live = 1. (ClickHouse 18.16 wants
-- every column of the target from a materialized view, hence the tombstone's defaults.)

CREATE TABLE IF NOT EXISTS conversions_by_status (
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
    metadata              Nested(key String, value String),
    live                  UInt8
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(created_at)
ORDER BY (brand_id, status, created_at, conversion_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS conversions_by_status_mv TO conversions_by_status
AS SELECT *, toUInt8(1) AS live FROM conversions;

CREATE MATERIALIZED VIEW IF NOT EXISTS conversions_by_status_gone_mv TO conversions_by_status
AS SELECT
    conversion_id,
    toUInt64(0) AS dedup_key,
    brand_id,
    '' AS order_id,
    version,
    created_at,
    changed_at AS updated_at,
    '' AS source,
    '' AS campaign_id,
    '' AS affiliate_id,
    '' AS link_id,
    '' AS click_id,
    '' AS attribution_method,
    CAST(NULL AS Nullable(DateTime)) AS click_time,
    CAST(NULL AS Nullable(UInt32)) AS seconds_from_click,
    '' AS event_type,
    toDecimal64(0, 4) AS amount,
    '' AS currency,
    toDecimal64(0, 4) AS commission_amount,
    '' AS commission_currency,
    '' AS commission_rule,
    from_status AS status,
    '' AS status_reason,
    '' AS note,
    '' AS customer_email_sha256,
    emptyArrayString() AS `metadata.key`,
    emptyArrayString() AS `metadata.value`,
    toUInt8(0) AS live
FROM status_changes;

-- Conversions stored before this table existed, in their latest status.
INSERT INTO conversions_by_status
SELECT *, toUInt8(1) AS live FROM conversions FINAL;
