-- Per-key rate limits the operator set through the admin API; a key without a row has
-- the node's default (AFFILYNC_RATE_LIMIT_KEY_*). mode is 'default', 'unlimited' or
-- 'limited' (per_second and burst then apply). Latest version wins.
CREATE TABLE IF NOT EXISTS api_key_limits (
    key_hash   String,
    mode       String,
    per_second UInt32,
    burst      UInt32,
    changed_at DateTime,
    version    UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY key_hash;
