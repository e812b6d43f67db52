use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Spaces INSERTs out so ClickHouse gets few, large ones under load: each INSERT takes a
/// slot, slots are `interval` apart, and after a quiet spell up to `burst` may start at
/// once, so that a lone conversion is written without waiting. Workers that wait for a
/// slot keep filling their batch meanwhile; that wait is what makes batches grow with load.
#[derive(Debug)]
pub struct InsertPacer {
    interval: Duration,
    burst: u32,
    next_free: Mutex<Option<Instant>>,
}

impl InsertPacer {
    pub fn new(inserts_per_second: f64, burst: u32) -> Self {
        let interval = if inserts_per_second > 0.0 {
            Duration::from_secs_f64(1.0 / inserts_per_second)
        } else {
            Duration::ZERO
        };
        Self {
            interval,
            burst: burst.max(1),
            next_free: Mutex::new(None),
        }
    }

    /// Reserves the next slot and returns when it starts.
    pub fn reserve(&self, now: Instant) -> Instant {
        let mut next_free = self.next_free.lock().expect("pacer lock poisoned");
        let credit = self.interval * (self.burst - 1);
        let floor = now.checked_sub(credit).unwrap_or(now);
        let base = next_free.map_or(floor, |next| next.max(floor));
        *next_free = Some(base + self.interval);
        base.max(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_a_quiet_spell_a_burst_goes_at_once_then_slots_are_spaced() {
        let pacer = InsertPacer::new(10.0, 3);
        let now = Instant::now();
        assert_eq!(pacer.reserve(now), now);
        assert_eq!(pacer.reserve(now), now);
        assert_eq!(pacer.reserve(now), now);
        assert_eq!(pacer.reserve(now), now + Duration::from_millis(100));
        assert_eq!(pacer.reserve(now), now + Duration::from_millis(200));
    }

    #[test]
    fn credit_is_regained_with_time() {
        let pacer = InsertPacer::new(10.0, 2);
        let start = Instant::now();
        pacer.reserve(start);
        pacer.reserve(start);
        let later = start + Duration::from_secs(5);
        assert_eq!(pacer.reserve(later), later);
        assert_eq!(pacer.reserve(later), later);
        assert_eq!(pacer.reserve(later), later + Duration::from_millis(100));
    }

    #[test]
    fn zero_rate_means_unpaced() {
        let pacer = InsertPacer::new(0.0, 1);
        let now = Instant::now();
        for _ in 0..5 {
            assert_eq!(pacer.reserve(now), now);
        }
    }
}
