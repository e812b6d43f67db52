//! `meta.total` of a listing. Counting a big brand's conversions in their latest versions
//! (FINAL) takes seconds on ClickHouse 18.16, more than a page may wait. So the exact count
//! gets a budget; when it runs over, the answer carries a cheap estimate, labelled as one,
//! and the exact count goes on in the background and is remembered for the listings that
//! follow. A count that was slow is reused for a while (longer the slower it was); a fast
//! one is always counted afresh. Past that while, the last exact count stands in as the
//! estimate (it is at once at hand) while a new one runs. A status change made through
//! this node forgets the totals of its brand at once.

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
/// How long the exact count runs alone before the estimate is read beside it.
const ESTIMATE_AFTER: Duration = Duration::from_millis(50);
/// How long an estimate answers again while the exact count it stood in for still runs.
const ESTIMATE_REUSE: Duration = Duration::from_secs(2);

/// A listing's total, and whether it is the estimate rather than the exact count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Total {
    pub value: u64,
    pub estimated: bool,
}

impl Total {
    fn exact(value: u64) -> Self {
        Self {
            value,
            estimated: false,
        }
    }

    fn estimate(value: u64) -> Self {
        Self {
            value,
            estimated: true,
        }
    }
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
    estimates: moka::future::Cache<ListFilter, u64>,
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
            estimates: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(ESTIMATE_REUSE)
                .support_invalidation_closures()
                .build(),
            counting: Arc::default(),
        }
    }

    pub async fn count(&self, store: &Store, filter: &ListFilter) -> Result<Total, StoreError> {
        let remembered = self.slow.get(filter).await;
        if let Some(remembered) = remembered {
            let fresh = remembered.fresh();
            if !fresh {
                // Counted again in the background; this answer does not wait for it.
                let _ = self.count_exactly(store, filter);
            }
            let total = if fresh { Total::exact } else { Total::estimate };
            return Ok(total(remembered.total));
        }
        let Some(exact) = self.count_exactly(store, filter) else {
            // Being counted for an earlier listing: its estimate, or a new one.
            let value = match self.estimates.get(filter).await {
                Some(value) => value,
                None => self.estimate(store, filter).await?,
            };
            return Ok(Total::estimate(value));
        };
        // Most counts are small and answer at once; the estimate is read only for the
        // ones that do not, beside the rest of the budget.
        let mut exact = exact;
        let first = ESTIMATE_AFTER.min(self.budget);
        let answered = match within(first, &mut exact).await {
            Some(answered) => answered,
            None => {
                let rest = within(self.budget - first, exact);
                match tokio::join!(rest, self.estimate(store, filter)) {
                    (Some(answered), _) => answered,
                    // Still counting: the estimate stands in.
                    (None, estimate) => return estimate.map(Total::estimate),
                }
            }
        };
        // The exact count answered in time, or failed: its error says more than an
        // estimate read from the same server would. A dropped task means the runtime is
        // stopping.
        answered
            .map_err(|_| StoreError::Unavailable("the count was not finished".into()))?
            .map(Total::exact)
    }

    async fn estimate(&self, store: &Store, filter: &ListFilter) -> Result<u64, StoreError> {
        let value = store.estimate_conversions(filter).await?;
        self.estimates.insert(filter.clone(), value).await;
        Ok(value)
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
                // Fast again: counted afresh from now on.
                Ok(_) => totals.slow.invalidate(&filter).await,
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

    /// Forgets every remembered total and estimate that may include this brand's
    /// conversions.
    pub fn forget_brand(&self, brand: &BrandId) {
        let of_slow = brand.clone();
        let _ = self
            .slow
            .invalidate_entries_if(move |filter, _| may_include(filter, &of_slow));
        let of_estimates = brand.clone();
        let _ = self
            .estimates
            .invalidate_entries_if(move |filter, _| may_include(filter, &of_estimates));
    }
}

/// What `answer` gives within `budget`; none at once for no budget (a zero-length timer
/// still waits for the timer's next tick).
async fn within<F: std::future::Future>(budget: Duration, answer: F) -> Option<F::Output> {
    if budget.is_zero() {
        return None;
    }
    tokio::time::timeout(budget, answer).await.ok()
}

/// Whether a listing may show this brand's conversions. Affiliate listings span brands;
/// counting them in is cheap and always right.
fn may_include(filter: &ListFilter, brand: &BrandId) -> bool {
    match &filter.owner {
        ListOwner::Brand(owner) => owner == brand,
        ListOwner::Affiliate(_) => true,
    }
}

impl Default for ListTotals {
    fn default() -> Self {
        Self::new(DEFAULT_COUNT_BUDGET)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(ago: Duration, took: Duration) -> Remembered {
        Remembered {
            total: 1,
            counted_at: Instant::now() - ago,
            took,
        }
    }

    #[test]
    fn slower_counts_are_reused_longer_within_bounds() {
        let second = Duration::from_secs(1);
        // At least five seconds however fast.
        assert!(counted(second * 4, Duration::from_millis(150)).fresh());
        assert!(!counted(second * 6, Duration::from_millis(150)).fresh());
        // Six times what the count took.
        assert!(counted(second * 50, second * 9).fresh());
        assert!(!counted(second * 56, second * 9).fresh());
        // Never past two minutes.
        assert!(!counted(second * 121, second * 60).fresh());
    }
}
