use prometheus::{Histogram, IntCounterVec, IntGauge, Registry};

use super::{COUNTS, FAST_SECONDS, counter_vec, gauge, histogram, pairs};
use crate::PipelineError;
use crate::domain::{Source, Status};

/// From the handler's hand-off to the journal: the queue and the attribution workers.
#[derive(Clone)]
pub struct PipelineMetrics {
    /// Conversions and status changes waiting in the channel for an attribution worker.
    pub queue_depth: IntGauge,
    /// Jobs the queue holds before new conversions are refused (503 `queue_full`).
    pub queue_capacity: IntGauge,
    /// Time from enqueue to the start of the batch that took the job.
    pub queue_wait_seconds: Histogram,
    /// Jobs per attribution batch (one journal append each).
    pub batch_jobs: Histogram,
    /// Conversion versions journaled; `status`: pending | approved | rejected, `source`:
    /// api | postback | pixel.
    pub conversions_journaled_total: IntCounterVec,
    /// Jobs answered without being journaled; `reason`: unknown_click |
    /// click_of_another_brand | no_matching_touch | store_unavailable | store_refused |
    /// journal_full | journal_unwritable.
    pub conversions_failed_total: IntCounterVec,
    /// Duration of the reads workers make of ClickHouse; `query`: email_touches.
    pub clickhouse_read_seconds: prometheus::HistogramVec,
}

impl PipelineMetrics {
    pub fn new(registry: &Registry) -> Self {
        Self {
            queue_depth: gauge(
                registry,
                "affilync_attribution_queue_depth",
                "Conversions and status changes waiting for an attribution worker",
            ),
            queue_capacity: gauge(
                registry,
                "affilync_attribution_queue_capacity",
                "Jobs the attribution queue holds before new conversions are refused",
            ),
            queue_wait_seconds: histogram(
                registry,
                "affilync_attribution_queue_wait_seconds",
                "Time a job waits in the queue before its batch starts",
                FAST_SECONDS,
            ),
            batch_jobs: histogram(
                registry,
                "affilync_attribution_batch_jobs",
                "Jobs per attribution batch",
                COUNTS,
            ),
            conversions_journaled_total: counter_vec(
                registry,
                "affilync_conversions_journaled_total",
                "Conversion versions written to the journal",
                &["status", "source"],
                pairs(
                    &Status::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                    &Source::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                ),
            ),
            conversions_failed_total: counter_vec(
                registry,
                "affilync_conversions_failed_total",
                "Jobs that reached a worker and were not journaled",
                &["reason"],
                PipelineError::LABELS.iter().map(|label| [*label]),
            ),
            clickhouse_read_seconds: super::histogram_vec(
                registry,
                "affilync_attribution_clickhouse_read_seconds",
                "Duration of the ClickHouse reads attribution workers make",
                super::SLOW_SECONDS,
                &["query"],
                [["email_touches"]],
            ),
        }
    }
}
