//! `meta.total` of a listing. Counting a big brand's conversions in their latest versions
//! (FINAL) takes seconds on ClickHouse 18.16, more than a page may wait. So the exact count
//! gets a budget; when it runs over, the answer carries a cheap estimate, labelled as one,
//! and the exact count goes on in the background and is remembered for the listings that
//! follow. A count that was slow is reused for a while (longer the slower it was); a fast
//! one is always counted afresh. A status change made through this node forgets the totals
//! of its brand at once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use attributor::domain::BrandId;
use attributor::store::{ListFilter, ListOwner};
use attributor::{Store, StoreError};

/// Counts faster than this are not remembered: small listings stay exact to the request.
const SLOW_COUNT: Duration = Duration::from_millis(100);
/// How long the exact count may hold up a page before the estimate is answered, unless
/// configured otherwise.
pub const DEFAULT_COUNT_BUDGET: Duration = Duration::from_millis(200);
/// How stale a slow count may be at least, and in multiples of what it took to count:
/// a count that costs ClickHouse seconds is not started again every few seconds.
const REUSE_AT_LEAST: Duration = Duration::from_secs(5);
const REUSE_PER_COUNTING_TIME: u32 = 6;
/// Remembered counts are dropped after this whatever they cost.
const REUSE_AT_MOST: Duration = Duration::from_secs(120);

/// A listing's total, and whether it is the estimate rather than the exact count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Total {
    pub value: u64,
    pub estimated: bool,
}

#[derive(Debug, Clone, Copy)]
struct Remembered {
    total: u64,
    counted_at: Instant,
    took: Duration,
}

impl Remembered {
    fn fresh(&self) -> bool {
        let reuse_for = (self.took * REUSE_PER_COUNTING_TIME).clamp(REUSE_AT_LEAST, REUSE_AT_MOST);
        self.counted_at.elapsed() < reuse_for
    }
}

#[derive(Clone)]
pub struct ListTotals {
    budget: Duration,
    slow: moka::future::Cache<ListFilter, Remembered>,
    /// Filters whose exact count is running: a burst of first requests starts one.
    counting: Arc<Mutex<HashSet<ListFilter>>>,
}

impl ListTotals {
    pub fn new(budget: Duration) -> Self {
        Self {
            budget,
            slow: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(REUSE_AT_MOST)
                .support_invalidation_closures()
                .build(),
            counting: Arc::default(),
        }
    }

    pub async fn count(&self, store: &Store, filter: &ListFilter) -> Result<Total, StoreError> {
        if let Some(remembered) = self.slow.get(filter).await.filter(Remembered::fresh) {
            return Ok(Total {
                value: remembered.total,
                estimated: false,
            });
        }
        let exact = self.count_exactly(store, filter);
        let estimate = store.estimate_conversions(filter);
        let within_budget = async {
            match exact {
                Some(exact) => tokio::time::timeout(self.budget, exact).await.ok(),
                None => None,
            }
        };
        let (exact, estimate) = tokio::join!(within_budget, estimate);
        match exact {
            // The exact count answered in time (or failed: its error says more than an
            // estimate read from the same server).
            Some(Ok(answer)) => answer.map(|value| Total {
                value,
                estimated: false,
            }),
            // Still counting (or the counting task was dropped): the estimate stands in.
            _ => estimate.map(|value| Total {
                value,
                estimated: true,
            }),
        }
    }

    /// Starts the exact count on a task of its own, so that it finishes (and is
    /// remembered if slow) even when the page is answered without it. None when the same
    /// count is already running.
    fn count_exactly(
        &self,
        store: &Store,
        filter: &ListFilter,
    ) -> Option<tokio::sync::oneshot::Receiver<Result<u64, StoreError>>> {
        if !self
            .counting
            .lock()
            .expect("the counting set is never poisoned")
            .insert(filter.clone())
        {
            return None;
        }
        let (answer, answered) = tokio::sync::oneshot::channel();
        let (totals, store, filter) = (self.clone(), store.clone(), filter.clone());
        actix_web::rt::spawn(async move {
            let started = Instant::now();
            let counted = store.count_conversions(&filter).await;
            let took = started.elapsed();
            match &counted {
                Ok(total) if took >= SLOW_COUNT => {
                    let remembered = Remembered {
                        total: *total,
                        counted_at: started,
                        took,
                    };
                    totals.slow.insert(filter.clone(), remembered).await;
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "counting a listing's total failed"),
            }
            totals
                .counting
                .lock()
                .expect("the counting set is never poisoned")
                .remove(&filter);
            let _ = answer.send(counted);
        });
        Some(answered)
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
        Self::new(DEFAULT_COUNT_BUDGET)
    }
}
