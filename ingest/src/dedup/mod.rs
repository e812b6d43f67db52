//! The dedup front: answers "has this order been reported?" before a conversion is queued.
//!
//! 1. A moka cache of recent conversions answers most replays from memory, and its entry
//!    API coalesces concurrent requests for one order id: one of them does the work, the
//!    others wait for its result, so duplicates racing each other end as one conversion.
//! 2. On a cache miss, a bloom filter tells an order that is certainly new (almost every
//!    unique order) from one that may be stored. It is seeded from ClickHouse at start and
//!    learns every second what other nodes stored ([`start_bloom`]).
//! 3. A "maybe" is confirmed in this node's unshipped journal, then in ClickHouse, batched
//!    ([`StoredLookup`]); the two together are the authority. A new order goes to the
//!    attribution pipeline and waits until it is journaled.

mod bloom;
mod bloom_sync;
mod edges;
mod lookup;
mod metrics;
mod race_repair;

use std::sync::Arc;

use actix_web::web::Bytes;
use std::sync::atomic::{AtomicBool, Ordering};

use attributor::domain::ConversionId;
use attributor::{Conversion, NewConversion, Pipeline, PipelineError};

pub use bloom::SeededBloom;
pub use bloom_sync::start_bloom;
pub use edges::{NewOrders, StoredOrders};
pub use lookup::{LookupConfig, StoredLookup};
pub use metrics::DedupMetrics;
pub use race_repair::{RaceRepairConfig, start_race_repair};

use crate::views;

#[derive(Debug, Clone)]
pub struct DedupConfig {
    /// Memory for cached conversions (approximate).
    pub cache_bytes: u64,
    /// Conversions the bloom filter is sized for, at least; it is sized for a quarter more
    /// than what is stored when that is more, and rebuilt larger when it fills.
    pub bloom_capacity: u64,
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            cache_bytes: 64 * 1024 * 1024,
            bloom_capacity: 10_000_000,
        }
    }
}

/// A stored conversion with its answer body, serialized once: replays, the most
/// frequent answer under retrying networks, are sent as these bytes.
#[derive(Debug)]
pub struct Remembered {
    pub conversion: Arc<Conversion>,
    /// `{"data": <conversion>}`
    pub body: Bytes,
}

impl Remembered {
    pub fn new(conversion: Arc<Conversion>) -> Arc<Self> {
        // A typical answer is 600-900 bytes: room for it up front, where `to_vec` would
        // start at 128 bytes and copy it three times as it grew.
        let mut body = Vec::with_capacity(ANSWER_BYTES);
        serde_json::to_writer(&mut body, &views::data(&conversion))
            .expect("conversion views serialize to JSON");
        Arc::new(Self {
            conversion,
            body: body.into(),
        })
    }
}

/// Room reserved for a conversion's JSON answer.
const ANSWER_BYTES: usize = 1_024;

/// How a reported conversion was answered.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// First report: stored now (201).
    Created(Arc<Remembered>),
    /// The same report again: the stored conversion, nothing written (200).
    Replayed(Arc<Remembered>),
    /// The same order with different values: the stored conversion (409).
    Conflict(Arc<Remembered>),
}

/// Generic over its edges for tests; the service's is `DedupFront` with the defaults.
pub struct DedupFront<L = StoredLookup, P = Pipeline> {
    /// Keyed by the conversion id's 128 bits ([`ConversionId::key`]).
    cache: moka::future::Cache<u128, Arc<Remembered>, foldhash::fast::RandomState>,
    bloom: Arc<SeededBloom>,
    lookup: L,
    pipeline: P,
    metrics: DedupMetrics,
}

impl<L: StoredOrders, P: NewOrders> DedupFront<L, P> {
    pub fn new(
        config: &DedupConfig,
        bloom: Arc<SeededBloom>,
        lookup: L,
        pipeline: P,
        metrics: DedupMetrics,
    ) -> Self {
        let cache = moka::future::Cache::builder()
            .max_capacity(config.cache_bytes)
            .weigher(|_, remembered: &Arc<Remembered>| approximate_size(remembered))
            // Recency is what a dedup cache is for: a retry comes soon after the original.
            // TinyLFU favours entries asked for before over new orders, each seen once so
            // far, and its bookkeeping showed in a new order's cost.
            .eviction_policy(moka::policy::EvictionPolicy::lru())
            // Sized up front: growing the table was a few percent of a new order's cost.
            .initial_capacity(
                usize::try_from(config.cache_bytes / TYPICAL_ENTRY_BYTES).unwrap_or(0),
            )
            // Hashing was an eighth of a new order's cost with SipHash and still a few
            // percent with a seeded xxh3 over the id's text; the 128 bits under a seeded
            // foldhash keep keys chosen by brands from colliding on purpose, at a few ns.
            .build_with_hasher(foldhash::fast::RandomState::default());
        Self {
            cache,
            bloom,
            lookup,
            pipeline,
            metrics,
        }
    }

    /// The answer from memory, if this order is in the cache: the common replay, answered
    /// without a task or a lock on the order.
    pub async fn cached(&self, new: &NewConversion) -> Option<Outcome> {
        let stored = self.cache.get(&new.id.key()).await?;
        self.count("cache_hit");
        Some(Self::compare(new, stored))
    }

    /// For an order [`DedupFront::cached`] did not know: the handler asks that first, on
    /// its own thread, and only a miss pays for the task this runs in. Another look-up
    /// here would cost every new order a second probe of the cache; an order cached since
    /// is found by the entry below all the same (and counted as coalesced).
    pub async fn submit(&self, new: NewConversion) -> Result<Outcome, PipelineError> {
        let created = AtomicBool::new(false);
        let entry = self
            .cache
            .entry(new.id.key())
            .or_try_insert_with(self.load_or_store(&new, &created))
            .await
            .map_err(|error| (*error).clone())?;
        if created.load(Ordering::Acquire) {
            return Ok(Outcome::Created(entry.into_value()));
        }
        if !entry.is_fresh() {
            self.count("coalesced");
        }
        Ok(Self::compare(&new, entry.into_value()))
    }

    /// Records a new version (a status change) so replays answer with it.
    pub async fn refresh(&self, conversion: Arc<Conversion>) {
        self.cache
            .insert(conversion.id.key(), Remembered::new(conversion))
            .await;
    }

    pub fn bloom(&self) -> &SeededBloom {
        &self.bloom
    }

    /// The conversion with this id, from this node's journal or ClickHouse.
    pub async fn find(
        &self,
        id: &ConversionId,
    ) -> Result<Option<Conversion>, attributor::StoreError> {
        self.lookup.find(id.clone()).await
    }

    /// Bloom "maybe"s waiting for their ClickHouse look-up.
    /// Sets the gauges that are read rather than counted, so an idle node reports its
    /// present state rather than the last change.
    pub fn sample_metrics(&self) {
        let metrics = &self.metrics;
        metrics
            .lookup_queue_depth
            .set(self.lookup.queue_depth() as i64);
        metrics.bloom_seeded.set(i64::from(self.bloom.is_seeded()));
    }

    /// Runs once per order id at a time (moka coalesces concurrent callers onto it).
    async fn load_or_store(
        &self,
        new: &NewConversion,
        created: &AtomicBool,
    ) -> Result<Arc<Remembered>, PipelineError> {
        let key = new.id.dedup_key();
        if self.bloom.may_contain(key) {
            let stored = self
                .lookup
                .find(new.id.clone())
                .await
                .map_err(PipelineError::from)?;
            if let Some(stored) = stored {
                self.count("store_hit");
                return Ok(Remembered::new(Arc::new(stored)));
            }
            self.count("store_miss");
        } else {
            self.count("bloom_negative");
        }
        let stored = self.pipeline.submit(new.clone()).await?;
        self.bloom.insert(key);
        created.store(true, Ordering::Release);
        Ok(Remembered::new(stored))
    }

    fn compare(new: &NewConversion, stored: Arc<Remembered>) -> Outcome {
        if new.is_same_report_as(&stored.conversion) {
            Outcome::Replayed(stored)
        } else {
            Outcome::Conflict(stored)
        }
    }

    fn count(&self, outcome: &str) {
        self.metrics
            .outcomes_total
            .with_label_values(&[outcome])
            .inc();
    }
}

/// Bytes a cached conversion holds, near enough for sizing the cache.
fn approximate_size(remembered: &Remembered) -> u32 {
    let conversion = &remembered.conversion;
    let text = conversion.order_id.as_str().len()
        + conversion.click_id.as_str().len()
        + conversion.status_reason.len()
        + conversion.note.len()
        + conversion.commission_rule.len()
        + conversion
            .metadata
            .iter()
            .map(|(k, v)| k.len() + v.len() + 48)
            .sum::<usize>();
    let size = std::mem::size_of::<Remembered>()
        + std::mem::size_of::<Conversion>()
        + remembered.body.len()
        + text
        + ENTRY_OVERHEAD_BYTES;
    u32::try_from(size).unwrap_or(u32::MAX)
}

/// What a typical entry weighs, for sizing the cache's table up front.
const TYPICAL_ENTRY_BYTES: u64 = 2_000;

/// What an entry costs beyond its fields: the key's copy, a dozen small heap blocks and
/// their allocator headers, moka's own bookkeeping. Measured: with this counted, the cache
/// stays within its configured memory (without it, a 64 MB cache took about 150 MB).
const ENTRY_OVERHEAD_BYTES: usize = 1_100;

#[cfg(test)]
mod tests;
