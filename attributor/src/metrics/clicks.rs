use prometheus::{IntCounterVec, IntGauge, Registry};

use super::{counter_vec, gauge};

/// Clicks between the redirect and the journal.
#[derive(Clone)]
pub struct ClickMetrics {
    /// Clicks answered and not journaled yet: queued, or in the batch being written.
    pub queue_depth: IntGauge,
    /// Clicks the queue holds before further ones are dropped.
    pub queue_capacity: IntGauge,
    /// Clicks by what became of them; `outcome`: journaled | dropped_queue_full |
    /// dropped_journal_error.
    pub clicks_total: IntCounterVec,
}

impl ClickMetrics {
    pub fn new(registry: &Registry) -> Self {
        Self {
            queue_depth: gauge(
                registry,
                "affilync_click_queue_depth",
                "Clicks answered and not journaled yet (queued or being written)",
            ),
            queue_capacity: gauge(
                registry,
                "affilync_click_queue_capacity",
                "Clicks the queue holds before further ones are dropped",
            ),
            clicks_total: counter_vec(
                registry,
                "affilync_clicks_total",
                "Clicks by what became of them",
                &["outcome"],
                [
                    ["journaled"],
                    ["dropped_queue_full"],
                    ["dropped_journal_error"],
                ],
            ),
        }
    }
}
