-- Hold periods: a campaign's conversions stay pending for hold_days after they are
-- reported, then are approved automatically unless the brand decided first. Set when the
-- campaign is created; a campaign without a row has no hold. Latest version wins.
CREATE TABLE IF NOT EXISTS campaign_holds (
    campaign_id String,
    brand_id    String,
    hold_days   UInt16,
    created_at  DateTime,
    version     UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY campaign_id;
