use std::sync::atomic::{AtomicBool, Ordering};

use fastbloom::AtomicBloomFilter;

/// False positives cost one batched ClickHouse lookup each; 1% keeps that rare for
/// about 1.2 bytes per stored conversion.
const FALSE_POSITIVE_RATE: f64 = 0.01;

/// Which conversion ids may already be stored. Until it has been seeded from ClickHouse
/// it says "maybe" to everything, so a node that just started is correct, only slower.
pub struct SeededBloom {
    filter: AtomicBloomFilter,
    seeded: AtomicBool,
}

impl SeededBloom {
    pub fn with_capacity(expected_items: u64) -> Self {
        let expected = usize::try_from(expected_items.max(1_000)).unwrap_or(usize::MAX);
        Self {
            filter: AtomicBloomFilter::with_false_pos(FALSE_POSITIVE_RATE).expected_items(expected),
            seeded: AtomicBool::new(false),
        }
    }

    pub fn may_contain(&self, dedup_key: u64) -> bool {
        !self.seeded.load(Ordering::Acquire) || self.filter.contains_hash(dedup_key)
    }

    pub fn insert(&self, dedup_key: u64) {
        self.filter.insert_hash(dedup_key);
    }

    /// Call once every stored key has been inserted.
    pub fn mark_seeded(&self) {
        self.seeded.store(true, Ordering::Release);
    }

    pub fn is_seeded(&self) -> bool {
        self.seeded.load(Ordering::Acquire)
    }

    pub fn size_bytes(&self) -> usize {
        self.filter.num_bits() / 8
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
        assert!(
            false_positives < 2_000,
            "{false_positives} false positives in 100000"
        );
    }

    fn xorshift(mut x: u64) -> u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}
