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
        }
    }
}
