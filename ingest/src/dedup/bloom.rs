use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::{ArcSwap, ArcSwapOption};
use fastbloom::AtomicBloomFilter;

/// A false positive costs a batched ClickHouse lookup, and while ClickHouse is away a
/// refusal (503): an order the filter is unsure of cannot be confirmed new. At 1% a
/// 30-second outage at 500 req/s refused about 60 new orders, at 0.1% two; at 0.001%
/// (3 bytes per stored conversion, 17 hashes) the same outage refuses one order in about
/// fifty such outages, for 15 MB more at ten million conversions than 0.1% took.
const FALSE_POSITIVE_RATE: f64 = 0.000_01;

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
    bits: AtomicBloomFilter,
    capacity: u64,
    /// Keys inserted that were not there yet: distinct keys, less the false positives.
    distinct: AtomicU64,
}

impl Filter {
    pub fn with_capacity(expected_items: u64) -> Self {
        let capacity = expected_items.max(1_000);
        Self {
            bits: AtomicBloomFilter::with_false_pos(FALSE_POSITIVE_RATE)
                .expected_items(usize::try_from(capacity).unwrap_or(usize::MAX)),
            capacity,
            distinct: AtomicU64::new(0),
        }
    }

    pub fn insert(&self, dedup_key: u64) {
        if !self.bits.insert_hash(dedup_key) {
            self.distinct.fetch_add(1, Ordering::Relaxed);
        }
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
        !self.seeded.load(Ordering::Acquire) || self.current.load().bits.contains_hash(dedup_key)
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
        self.current.load().bits.num_bits() / 8
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
        let mix = |i: u64| xorshift(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        for i in 0..100_000 {
            bloom.insert(mix(i));
        }
        bloom.mark_seeded();
        let false_positives = (100_000..200_000)
            .filter(|&i| bloom.may_contain(mix(i)))
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
        for key in 0..1_000 {
            bloom.insert(xorshift(key + 1));
        }
        // Inserting the same keys again adds nothing.
        for key in 0..1_000 {
            bloom.insert(xorshift(key + 1));
        }
        assert!(!bloom.is_over_capacity());
        for key in 1_000..1_100 {
            bloom.insert(xorshift(key + 1));
        }
        assert!(bloom.is_over_capacity());
    }

    #[test]
    fn a_rebuild_keeps_what_was_inserted_while_it_ran_and_grows() {
        let bloom = SeededBloom::with_capacity(1_000);
        bloom.mark_seeded();
        for key in 0..1_100 {
            bloom.insert(xorshift(key + 1));
        }
        let before = bloom.size_bytes();
        let next = bloom.begin_rebuild();
        // Arrives while the new filter is seeded: must be in it once it answers.
        bloom.insert(xorshift(5_000));
        // The seed itself (what ClickHouse and the journal hold).
        for key in 0..1_100 {
            next.insert(xorshift(key + 1));
        }
        assert!(
            bloom.may_contain(xorshift(5_000)),
            "the old filter answers meanwhile"
        );
        bloom.finish_rebuild(next);
        assert!(bloom.may_contain(xorshift(5_000)));
        assert!((0..1_100).all(|key| bloom.may_contain(xorshift(key + 1))));
        assert!(bloom.size_bytes() > before);
        assert!(!bloom.is_over_capacity());
        // Inserts after the switch go to the new filter only, and are answered.
        bloom.insert(xorshift(6_000));
        assert!(bloom.may_contain(xorshift(6_000)));
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
            !next.bits.contains_hash(8),
            "inserts stop reaching an abandoned filter"
        );
    }

    fn xorshift(mut x: u64) -> u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}
