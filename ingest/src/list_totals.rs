//! `meta.total` of a listing. Counting a big brand's whole history in its latest versions
//! takes seconds on ClickHouse 18.16, so a count that was slow is remembered for a few
//! seconds and reused by the same listing; a fast one is always counted afresh. A status
//! change made through this node forgets the totals of its brand at once.

use std::time::{Duration, Instant};

use attributor::domain::BrandId;
use attributor::store::{ListFilter, ListOwner};
use attributor::{Store, StoreError};

/// Counts faster than this are not cached: small listings stay exact to the request.
const SLOW_COUNT: Duration = Duration::from_millis(100);
/// How stale a slow count may be.
const REUSE_FOR: Duration = Duration::from_secs(5);

pub struct ListTotals {
    slow: moka::future::Cache<ListFilter, u64>,
}

impl ListTotals {
    pub fn new() -> Self {
        Self {
            slow: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(REUSE_FOR)
                .support_invalidation_closures()
                .build(),
        }
    }

    pub async fn count(&self, store: &Store, filter: &ListFilter) -> Result<u64, StoreError> {
        if let Some(total) = self.slow.get(filter).await {
            return Ok(total);
        }
        let started = Instant::now();
        let total = store.count_conversions(filter).await?;
        if started.elapsed() >= SLOW_COUNT {
            self.slow.insert(filter.clone(), total).await;
        }
        Ok(total)
    }

    /// Forgets every remembered total that may include this brand's conversions.
    pub fn forget_brand(&self, brand: &BrandId) {
        let brand = brand.clone();
        // Affiliate listings span brands; forgetting them too is cheap and always right.
        let _ = self
            .slow
            .invalidate_entries_if(move |filter, _| match &filter.owner {
                ListOwner::Brand(owner) => *owner == brand,
                ListOwner::Affiliate(_) => true,
            });
    }
}

impl Default for ListTotals {
    fn default() -> Self {
        Self::new()
    }
}
