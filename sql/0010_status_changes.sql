-- Every status change of a conversion as its own row (who, when, from, to, note), so a
-- reversal keeps the approval it reversed. Rows come from the journal beside the
-- conversion version they produced and are keyed by that version: a record shipped twice,
-- or one automatic approval journaled by two nodes, collapses into one row.
CREATE TABLE IF NOT EXISTS status_changes (
    conversion_id String,
    brand_id      String,
    version       UInt64,
    created_at    DateTime,
    changed_at    DateTime,
    from_status   String,
    to_status     String,
    actor         String,
    note          String
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(changed_at)
ORDER BY (conversion_id, version);
