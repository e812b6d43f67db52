use prometheus::{Histogram, HistogramVec, IntCounterVec, Registry};

use super::{COUNTS, SLOW_SECONDS, counter_vec, histogram, histogram_vec, pairs};
use crate::store::ShippedTable;

const TABLES: [&str; 4] = [
    ShippedTable::ALL[0].name(),
    ShippedTable::ALL[1].name(),
    ShippedTable::ALL[2].name(),
    ShippedTable::ALL[3].name(),
];

/// The shipper: journal to ClickHouse. `table` is one of conversions | commissions | clicks |
/// status_changes.
#[derive(Clone)]
pub struct ShipperMetrics {
    /// Rows ClickHouse acknowledged.
    pub rows_total: IntCounterVec,
    /// Duration of each acknowledged INSERT.
    pub insert_seconds: HistogramVec,
    /// Failed INSERT attempts; `kind`: retryable | refused.
    pub errors_total: IntCounterVec,
    /// Journal records per shipping cycle.
    pub batch_records: Histogram,
}

impl ShipperMetrics {
    pub fn new(registry: &Registry) -> Self {
        Self {
            rows_total: counter_vec(
                registry,
                "affilync_shipper_rows_total",
                "Rows the shipper wrote to ClickHouse",
                &["table"],
                TABLES.map(|table| [table]),
            ),
            insert_seconds: histogram_vec(
                registry,
                "affilync_shipper_insert_seconds",
                "Duration of the shipper's acknowledged INSERTs",
                SLOW_SECONDS,
                &["table"],
                TABLES.map(|table| [table]),
            ),
            errors_total: counter_vec(
                registry,
                "affilync_shipper_errors_total",
                "Failed INSERT attempts of the shipper",
                &["table", "kind"],
                pairs(&TABLES, &["retryable", "refused"]),
            ),
            batch_records: histogram(
                registry,
                "affilync_shipper_batch_records",
                "Journal records per shipping cycle",
                COUNTS,
            ),
        }
    }
}
