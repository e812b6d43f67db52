-- One commission row per conversion, owed to its affiliate; versions follow the
-- conversion's status (pending, approved, rejected). Sorted for payout reports.
CREATE TABLE IF NOT EXISTS commissions (
    conversion_id String,
    brand_id      String,
    affiliate_id  String,
    campaign_id   String,
    version       UInt64,
    created_at    DateTime,
    updated_at    DateTime,
    event_type    String,
    status        String,
    amount        Decimal(18, 4),
    currency      String,
    rule          String,
    base_amount   Decimal(18, 4),
    base_currency String
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(created_at)
ORDER BY (affiliate_id, created_at, conversion_id);
