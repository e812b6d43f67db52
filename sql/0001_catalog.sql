-- The network's catalog: who reports, who earns, what is tracked.
-- Every table is a ReplacingMergeTree keyed by its id so that a later change is a new
-- version of the row; readers take the latest version with FINAL.

CREATE TABLE IF NOT EXISTS brands (
    brand_id   String,
    name       String,
    created_at DateTime,
    version    UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY brand_id;

CREATE TABLE IF NOT EXISTS affiliates (
    affiliate_id String,
    name         String,
    created_at   DateTime,
    version      UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY affiliate_id;

-- commission_rules is the campaign's rule table as JSON, e.g.
-- {"sale":{"percent":"10"},"lead":{"flat":"2.50"}}; event types without a rule earn 0.
CREATE TABLE IF NOT EXISTS campaigns (
    campaign_id        String,
    brand_id           String,
    name               String,
    landing_url        String,
    currency           String,
    cookie_window_days UInt16,
    commission_rules   String,
    created_at         DateTime,
    version            UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY campaign_id;

CREATE TABLE IF NOT EXISTS links (
    link_id      String,
    campaign_id  String,
    affiliate_id String,
    brand_id     String,
    created_at   DateTime,
    version      UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY link_id;

-- Keys are stored as the SHA-256 of the key; the key itself is shown once at creation.
-- Exactly one of brand_id / affiliate_id is set.
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash     String,
    key_prefix   String,
    brand_id     String,
    affiliate_id String,
    created_at   DateTime,
    version      UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY key_hash;
