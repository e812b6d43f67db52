use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::{ArcSwap, ArcSwapOption};
use parking_lot::Mutex;

/// A false positive costs a batched ClickHouse lookup, and while ClickHouse is away a
/// refusal (503): an order the filter is unsure of cannot be confirmed new. At 1% a
/// 30-second outage at 500 req/s refused about 60 new orders, at 0.1% two; at 0.001%
/// the same outage refuses one order in about fifty such outages.
///
/// The filter is split-block (Parquet's layout): a key's eight bits all lie in one
/// 32-byte block, so an insert or a look-up touches one cache line. A classic filter at
/// this rate sets 17 bits spread over the whole array: 17 cache and TLB misses per new
/// order, measured at 2.5% of the service's CPU under `postback-unique` plus most of the
/// bloom sync's. The price is memory: 41 bits per key for 0.001% (Parquet's sizing
/// table) against 24: 64 MB for 12.5 M keys where the classic filter took 37 MB
/// (`benches/benches/bloom.rs`: an insert 3.3 times, a look-up 1.5 times faster).
const BITS_PER_KEY: usize = 41;

/// Room for growth a filter is built with: a quarter more than what it starts with.
pub const HEADROOM: f64 = 1.25;

/// Which conversion ids may already be stored. Until it has been seeded from ClickHouse
/// it says "maybe" to everything, so a node that just started is correct, only slower.
///
/// A filter cannot grow; one holding more than it was sized for answers "maybe" more
/// often. Past its capacity a larger one is seeded beside it ([`SeededBloom::begin_rebuild`])
/// while it keeps answering, and takes its place ([`SeededBloom::finish_rebuild`]).
pub struct SeededBloom {
    current: ArcSwap<Filter>,
    /// The larger filter being seeded, which every insert also goes to.
    next: ArcSwapOption<Filter>,
    seeded: AtomicBool,
}

pub struct Filter {
    /// Behind a lock because the crate's filter takes `&mut` to insert; an insert or a
    /// look-up holds it for one block's worth of work.
    bits: Mutex<sbbf_rs_safe::Filter>,
    capacity: u64,
    /// Keys inserted that were not there yet: distinct keys, less the false positives.
    distinct: AtomicU64,
}

impl Filter {
    pub fn with_capacity(expected_items: u64) -> Self {
        let capacity = expected_items.max(1_000);
        Self {
            bits: Mutex::new(sbbf_rs_safe::Filter::new(
                BITS_PER_KEY,
                usize::try_from(capacity).unwrap_or(usize::MAX / BITS_PER_KEY),
            )),
            capacity,
            distinct: AtomicU64::new(0),
        }
    }

    pub fn insert(&self, dedup_key: u64) {
        let was_there = self.bits.lock().insert_hash(dedup_key);
        if !was_there {
            self.distinct.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn contains(&self, dedup_key: u64) -> bool {
        self.bits.lock().contains_hash(dedup_key)
    }

    pub fn size_bytes(&self) -> usize {
        self.bits.lock().as_bytes().len()
    }

    pub fn distinct(&self) -> u64 {
        self.distinct.load(Ordering::Relaxed)
    }
}

impl SeededBloom {
    pub fn with_capacity(expected_items: u64) -> Self {
        Self {
            current: ArcSwap::from_pointee(Filter::with_capacity(expected_items)),
            next: ArcSwapOption::empty(),
            seeded: AtomicBool::new(false),
        }
    }

    pub fn may_contain(&self, dedup_key: u64) -> bool {
        !self.seeded.load(Ordering::Acquire) || self.current.load().contains(dedup_key)
    }

    pub fn insert(&self, dedup_key: u64) {
        // The filter being seeded first: were the current one first, a rebuild finishing
        // between the two would take its place without this key.
        if let Some(next) = &*self.next.load() {
            next.insert(dedup_key);
        }
        self.current.load().insert(dedup_key);
    }

    /// Call once every stored key has been inserted.
    pub fn mark_seeded(&self) {
        self.seeded.store(true, Ordering::Release);
    }

    pub fn is_seeded(&self) -> bool {
        self.seeded.load(Ordering::Acquire)
    }

    pub fn size_bytes(&self) -> usize {
        self.current.load().size_bytes()
    }

    /// Whether the filter holds more keys than it was sized for.
    pub fn is_over_capacity(&self) -> bool {
        let current = self.current.load();
        current.distinct() > current.capacity
    }

    /// Starts a filter sized for what this one holds, plus headroom, that every insert
    /// goes to from now on. The caller then inserts what is stored and what is journaled
    /// but not yet stored, and calls [`SeededBloom::finish_rebuild`] (or
    /// [`SeededBloom::abandon_rebuild`] if it cannot).
    pub fn begin_rebuild(&self) -> Arc<Filter> {
        let held = self.current.load().distinct() as f64;
        let next = Arc::new(Filter::with_capacity((held * HEADROOM) as u64));
        self.next.store(Some(Arc::clone(&next)));
        next
    }

    pub fn finish_rebuild(&self, next: Arc<Filter>) {
        self.current.store(next);
        self.next.store(None);
    }

    pub fn abandon_rebuild(&self) {
        self.next.store(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unseeded_filters_say_maybe_to_everything() {
        let bloom = SeededBloom::with_capacity(10_000);
        assert!(bloom.may_contain(42));
        bloom.mark_seeded();
        assert!(!bloom.may_contain(42));
        bloom.insert(42);
        assert!(bloom.may_contain(42));
    }

    #[test]
    fn false_positives_stay_near_the_configured_rate() {
        let bloom = SeededBloom::with_capacity(100_000);
        for i in 0..100_000 {
            bloom.insert(key(i));
        }
        bloom.mark_seeded();
        let false_positives = (100_000..200_000)
            .filter(|&i| bloom.may_contain(key(i)))
            .count();
        // 1 expected at the configured rate; 10 would be ten times it.
        assert!(
            false_positives < 10,
            "{false_positives} false positives in 100000"
        );
    }

    #[test]
    fn a_filter_knows_when_it_holds_more_than_it_was_sized_for() {
        let bloom = SeededBloom::with_capacity(1_000);
        for i in 0..1_000 {
            bloom.insert(key(i));
        }
        // Inserting the same keys again adds nothing.
        for i in 0..1_000 {
            bloom.insert(key(i));
        }
        assert!(!bloom.is_over_capacity());
        for i in 1_000..1_100 {
            bloom.insert(key(i));
        }
        assert!(bloom.is_over_capacity());
    }

    #[test]
    fn a_rebuild_keeps_what_was_inserted_while_it_ran_and_grows() {
        let bloom = SeededBloom::with_capacity(1_000);
        bloom.mark_seeded();
        for i in 0..1_100 {
            bloom.insert(key(i));
        }
        let before = bloom.size_bytes();
        let next = bloom.begin_rebuild();
        // Arrives while the new filter is seeded: must be in it once it answers.
        bloom.insert(key(5_000));
        // The seed itself (what ClickHouse and the journal hold).
        for i in 0..1_100 {
            next.insert(key(i));
        }
        assert!(
            bloom.may_contain(key(5_000)),
            "the old filter answers meanwhile"
        );
        bloom.finish_rebuild(next);
        assert!(bloom.may_contain(key(5_000)));
        assert!((0..1_100).all(|i| bloom.may_contain(key(i))));
        assert!(bloom.size_bytes() > before);
        assert!(!bloom.is_over_capacity());
        // Inserts after the switch go to the new filter only, and are answered.
        bloom.insert(key(6_000));
        assert!(bloom.may_contain(key(6_000)));
    }

    #[test]
    fn an_abandoned_rebuild_leaves_the_filter_answering() {
        let bloom = SeededBloom::with_capacity(1_000);
        bloom.mark_seeded();
        bloom.insert(7);
        let next = bloom.begin_rebuild();
        bloom.abandon_rebuild();
        bloom.insert(8);
        assert!(bloom.may_contain(7) && bloom.may_contain(8));
        assert!(
            !next.contains(8),
            "inserts stop reaching an abandoned filter"
        );
    }

    /// Keys as the service has them: the low 64 bits of a conversion id, a keyed hash, so
    /// evenly spread (a split-block filter picks a key's block from its high bits). This
    /// is SplitMix64's finalizer, a bijection: distinct inputs stay distinct keys.
    fn key(i: u64) -> u64 {
        let mut x = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }
}
