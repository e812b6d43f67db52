use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge, Registry};

use super::{COUNTS, FAST_SECONDS, counter, counter_vec, gauge, histogram};

/// The node's journal: what it holds that ClickHouse does not have yet, and what writing
/// it costs.
#[derive(Clone)]
pub struct JournalMetrics {
    /// Records journaled and not yet acknowledged by ClickHouse.
    pub pending_records: IntGauge,
    /// Their encoded bytes; appends are refused past `affilync_journal_max_bytes`.
    pub pending_bytes: IntGauge,
    /// The configured limit of `pending_bytes`.
    pub max_bytes: IntGauge,
    /// Bytes the journal's files take on disk.
    pub disk_bytes: IntGauge,
    /// Age of the oldest record not yet in ClickHouse: the shipping lag (0 when empty).
    pub lag_seconds: prometheus::Gauge,
    /// Duration of one durable append: the write and its fdatasync.
    pub append_seconds: Histogram,
    /// Records per append (group commit: one fdatasync each).
    pub append_records: Histogram,
    /// Appends refused; `reason`: full | unwritable.
    pub refusals_total: IntCounterVec,
    /// Records found damaged (checksum, format) and dropped, at start or when read.
    pub corrupt_records_total: IntCounter,
}

impl JournalMetrics {
    pub fn new(registry: &Registry) -> Self {
        Self {
            pending_records: gauge(
                registry,
                "affilync_journal_pending_records",
                "Records journaled and not yet acknowledged by ClickHouse",
            ),
            pending_bytes: gauge(
                registry,
                "affilync_journal_pending_bytes",
                "Encoded bytes of the records not yet acknowledged by ClickHouse",
            ),
            max_bytes: gauge(
                registry,
                "affilync_journal_max_bytes",
                "Pending bytes past which appends are refused",
            ),
            disk_bytes: gauge(
                registry,
                "affilync_journal_disk_bytes",
                "Bytes the journal's files take on disk",
            ),
            lag_seconds: super::registered(
                registry,
                prometheus::Gauge::new(
                    "affilync_journal_lag_seconds",
                    "Age of the oldest record not yet in ClickHouse",
                )
                .expect("valid metric"),
            ),
            append_seconds: histogram(
                registry,
                "affilync_journal_append_seconds",
                "Duration of a durable journal append, fdatasync included",
                FAST_SECONDS,
            ),
            append_records: histogram(
                registry,
                "affilync_journal_append_records",
                "Records per journal append",
                COUNTS,
            ),
            refusals_total: counter_vec(
                registry,
                "affilync_journal_refusals_total",
                "Journal appends refused",
                &["reason"],
                [["full"], ["unwritable"]],
            ),
            corrupt_records_total: counter(
                registry,
                "affilync_journal_corrupt_records_total",
                "Damaged journal records found and dropped",
            ),
        }
    }
}
