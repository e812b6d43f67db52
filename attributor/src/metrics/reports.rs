use prometheus::{Histogram, IntCounter, IntGauge, Registry};

use super::{SLOW_SECONDS, counter, gauge, histogram};

/// The report rollups' refresher.
#[derive(Clone)]
pub struct ReportMetrics {
    /// Unix time (ClickHouse's clock) before which every row written is in the rollups.
    /// Now minus this is how far rollup reports lag ClickHouse.
    pub rollup_complete_through_seconds: IntGauge,
    /// (brand, UTC day)s recomputed.
    pub rollup_recomputes_total: IntCounter,
    /// Refresh passes that failed (and are retried at the next interval).
    pub rollup_errors_total: IntCounter,
    /// Duration of each refresh pass.
    pub rollup_pass_seconds: Histogram,
}

impl ReportMetrics {
    pub fn new(registry: &Registry) -> Self {
        Self {
            rollup_complete_through_seconds: gauge(
                registry,
                "affilync_report_rollup_complete_through_seconds",
                "Unix time before which every row written to ClickHouse is in the report rollups",
            ),
            // Not "..._days_...": promtool's lint reads "days" as a unit that should be seconds.
            rollup_recomputes_total: counter(
                registry,
                "affilync_report_rollup_recomputes_total",
                "Brand-days whose report rollups were recomputed",
            ),
            rollup_errors_total: counter(
                registry,
                "affilync_report_rollup_errors_total",
                "Report rollup refresh passes that failed",
            ),
            rollup_pass_seconds: histogram(
                registry,
                "affilync_report_rollup_pass_seconds",
                "Duration of report rollup refresh passes",
                SLOW_SECONDS,
            ),
        }
    }
}
