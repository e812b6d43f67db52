//! The appends not yet shipped, oldest first, with their sizes and times: what the size
//! limit, the lag and the shipper's next batch are computed from, without reading disk.

use std::collections::VecDeque;
use std::ops::RangeInclusive;
use std::sync::{Mutex, MutexGuard};

/// One append (or, after a restart, one recovered record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Batch {
    pub seqs: RangeInclusive<u64>,
    pub bytes: u64,
    pub journaled_at_ms: u64,
}

impl Batch {
    fn records(&self) -> u64 {
        self.seqs.end() - self.seqs.start() + 1
    }
}

#[derive(Default)]
pub(super) struct Pending {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    batches: VecDeque<Batch>,
    records: u64,
    bytes: u64,
}

impl Pending {
    pub fn push(&self, batch: Batch) {
        let mut inner = self.lock();
        inner.records += batch.records();
        inner.bytes += batch.bytes;
        inner.batches.push_back(batch);
    }

    /// The sequence numbers of the oldest whole batches holding about `max_records`
    /// records: at least one batch, never a part of one.
    pub fn oldest(&self, max_records: u64) -> Option<RangeInclusive<u64>> {
        let inner = self.lock();
        let first = inner.batches.front()?;
        let mut last = *first.seqs.end();
        let mut records = first.records();
        for batch in inner.batches.iter().skip(1) {
            if records + batch.records() > max_records {
                break;
            }
            records += batch.records();
            last = *batch.seqs.end();
        }
        Some(*first.seqs.start()..=last)
    }

    /// Drops every batch that ends at or before `last`.
    pub fn release_through(&self, last: u64) {
        let mut inner = self.lock();
        while inner.batches.front().is_some_and(|b| *b.seqs.end() <= last) {
            let batch = inner.batches.pop_front().expect("front exists");
            inner.records -= batch.records();
            inner.bytes -= batch.bytes;
        }
    }

    pub fn records(&self) -> u64 {
        self.lock().records
    }

    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    pub fn oldest_journaled_at_ms(&self) -> Option<u64> {
        self.lock().batches.front().map(|b| b.journaled_at_ms)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("pending journal lock poisoned")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(seqs: RangeInclusive<u64>, at: u64) -> Batch {
        Batch {
            bytes: (seqs.end() - seqs.start() + 1) * 100,
            seqs,
            journaled_at_ms: at,
        }
    }

    #[test]
    fn the_oldest_whole_batches_are_shipped_first() {
        let pending = Pending::default();
        pending.push(batch(1..=10, 100));
        pending.push(batch(11..=15, 200));
        pending.push(batch(16..=40, 300));
        assert_eq!(pending.oldest(12), Some(1..=10));
        assert_eq!(pending.oldest(15), Some(1..=15));
        // A batch larger than the limit still goes, whole.
        assert_eq!(pending.oldest(3), Some(1..=10));
        assert_eq!((pending.records(), pending.bytes()), (40, 4_000));
        assert_eq!(pending.oldest_journaled_at_ms(), Some(100));

        pending.release_through(15);
        assert_eq!(pending.oldest(100), Some(16..=40));
        assert_eq!((pending.records(), pending.bytes()), (25, 2_500));
        assert_eq!(pending.oldest_journaled_at_ms(), Some(300));
        pending.release_through(40);
        assert_eq!(pending.records(), 0);
        assert_eq!(pending.oldest(100), None);
    }
}
