-- Every node keeps a bloom filter of the conversions it knows are stored. An order stored by
-- another node reaches this node's filter through this log: the dedup keys of every
-- conversion row, stamped with the ClickHouse server's own clock as they are written (one
-- clock for all nodes), sorted by that time so that "written since T" is a range read.
-- Nodes read it every second and drop days older than two.
CREATE TABLE IF NOT EXISTS dedup_log (
    written_at DateTime,
    dedup_key  UInt64
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(written_at)
ORDER BY written_at;

CREATE MATERIALIZED VIEW IF NOT EXISTS dedup_log_mv TO dedup_log
AS SELECT now() AS written_at, dedup_key FROM conversions;
