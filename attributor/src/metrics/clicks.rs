use prometheus::{IntCounterVec, IntGauge, Registry};

use super::{counter_vec, gauge};

/// Clicks between the redirect and the journal.
#[derive(Clone)]
pub struct ClickMetrics {
    /// Clicks answered and waiting to be journaled.
    pub queue_depth: IntGauge,
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
                "Clicks answered and waiting to be journaled",
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
