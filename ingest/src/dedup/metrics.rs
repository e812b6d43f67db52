//! The dedup front's metrics.

use attributor::metrics::{counter, counter_vec, gauge};
use prometheus::{IntCounter, IntCounterVec, IntGauge, Registry};

#[derive(Clone)]
pub struct DedupMetrics {
    /// How the front answered a conversion; `outcome`, one of [`DedupMetrics::OUTCOMES`].
    pub outcomes_total: IntCounterVec,
    /// Bloom "maybe"s waiting for their batched ClickHouse look-up (sampled at scrape).
    pub lookup_queue_depth: IntGauge,
    /// Reads of the dedup log that brought other nodes' conversions into the bloom filter.
    pub bloom_syncs_total: IntCounter,
    /// Larger bloom filters seeded to replace one holding more than it was sized for.
    pub bloom_rebuilds_total: IntCounter,
    /// Memory of the bloom filter answering now.
    pub bloom_bytes: IntGauge,
    /// 1 once the bloom filter has been seeded from ClickHouse; until then every new order
    /// costs a look-up (sampled at scrape).
    pub bloom_seeded: IntGauge,
    /// Conversions two nodes wrote with different creation stamps that this node has seen
    /// settled (see `race_repair`), and those whose copies it repaired (another node may
    /// have).
    pub races_found_total: IntCounter,
    pub races_repaired_total: IntCounter,
    /// Reads of the stamp log, or repairs, that failed (retried at the next check).
    pub race_check_errors_total: IntCounter,
}

impl DedupMetrics {
    pub const OUTCOMES: [&'static str; 5] = [
        "cache_hit",
        "bloom_negative",
        "store_hit",
        "store_miss",
        "coalesced",
    ];

    pub fn new(registry: &Registry) -> Self {
        Self {
            outcomes_total: counter_vec(
                registry,
                "affilync_dedup_total",
                "Dedup front outcomes",
                &["outcome"],
                Self::OUTCOMES.map(|outcome| [outcome]),
            ),
            lookup_queue_depth: gauge(
                registry,
                "affilync_dedup_lookup_queue_depth",
                "Bloom maybes waiting for their ClickHouse look-up",
            ),
            bloom_syncs_total: counter(
                registry,
                "affilync_dedup_bloom_syncs_total",
                "Reads of the dedup log into this node's bloom filter",
            ),
            bloom_rebuilds_total: counter(
                registry,
                "affilync_dedup_bloom_rebuilds_total",
                "Larger bloom filters seeded to replace a full one",
            ),
            bloom_bytes: gauge(
                registry,
                "affilync_dedup_bloom_bytes",
                "Memory of this node's dedup bloom filter",
            ),
            bloom_seeded: gauge(
                registry,
                "affilync_dedup_bloom_seeded",
                "1 once the dedup bloom filter is seeded from ClickHouse",
            ),
            races_found_total: counter(
                registry,
                "affilync_dedup_races_found_total",
                "Conversions found written by two nodes with different stamps",
            ),
            races_repaired_total: counter(
                registry,
                "affilync_dedup_races_repaired_total",
                "Conversions written by two nodes with different stamps whose copies were repaired",
            ),
            race_check_errors_total: counter(
                registry,
                "affilync_dedup_race_check_errors_total",
                "Failed checks or repairs of conversions written by two nodes at once",
            ),
        }
    }
}
