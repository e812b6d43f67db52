use prometheus::{IntCounterVec, Registry};

use super::counter_vec;

/// The in-memory catalog's refreshes from ClickHouse.
#[derive(Clone)]
pub struct CatalogMetrics {
    /// Refreshes; `outcome`: ok | failed.
    pub refreshes_total: IntCounterVec,
}

impl CatalogMetrics {
    pub fn new(registry: &Registry) -> Self {
        Self {
            refreshes_total: counter_vec(
                registry,
                "affilync_catalog_refreshes_total",
                "Reads of what other nodes added to the catalog",
                &["outcome"],
                [["ok"], ["failed"]],
            ),
        }
    }
}
