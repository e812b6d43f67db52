//! Group commit across threads. Whoever submits while no write is in progress becomes the
//! leader: it takes every request queued so far, its own included, writes them with one
//! fdatasync, and hands each submitter its outcome. Submitters that arrive meanwhile queue
//! up and wait; the next leader takes them all together. So under load the writes grow and
//! their number stays bounded by the disk's fdatasync rate, and an idle node writes each
//! request at once.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

pub(super) struct GroupCommit<R, O> {
    state: Mutex<State<R, O>>,
    written: Condvar,
}

struct State<R, O> {
    queue: Vec<(R, Arc<OnceLock<O>>)>,
    writing: bool,
}

impl<R, O> GroupCommit<R, O> {
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State {
                queue: Vec::new(),
                writing: false,
            }),
            written: Condvar::new(),
        }
    }

    /// Queues `request` and returns its outcome once written. `write` gets the requests of
    /// one group, in arrival order, and returns one outcome per request, in the same order;
    /// it runs on whichever submitter leads, never on two threads at once.
    pub fn submit(&self, request: R, mut write: impl FnMut(Vec<R>) -> Vec<O>) -> O
    where
        O: Clone,
    {
        let outcome = Arc::new(OnceLock::new());
        let mut state = self.lock();
        state.queue.push((request, Arc::clone(&outcome)));
        loop {
            if let Some(outcome) = outcome.get() {
                return outcome.clone();
            }
            if state.writing {
                state = self
                    .written
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            }
            state.writing = true;
            let group = std::mem::take(&mut state.queue);
            drop(state);
            let (requests, slots): (Vec<R>, Vec<Arc<OnceLock<O>>>) = group.into_iter().unzip();
            let outcomes = write(requests);
            assert_eq!(outcomes.len(), slots.len(), "one outcome per request");
            for (slot, result) in slots.iter().zip(outcomes) {
                let _ = slot.set(result);
            }
            state = self.lock();
            state.writing = false;
            self.written.notify_all();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<R, O>> {
        // A panic in `write` leaves no half-written state here: the queue was taken whole.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn concurrent_submitters_share_writes_and_each_gets_its_own_outcome() {
        let commit = Arc::new(GroupCommit::<u32, u32>::new());
        let writes = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let commit = Arc::clone(&commit);
                let writes = Arc::clone(&writes);
                std::thread::spawn(move || {
                    (0..200)
                        .map(|i| {
                            let request = t * 1_000 + i;
                            let outcome = commit.submit(request, |group| {
                                writes.fetch_add(1, Ordering::Relaxed);
                                // A write that takes a while lets others queue behind it.
                                std::thread::sleep(std::time::Duration::from_micros(200));
                                group.iter().map(|r| r * 2).collect()
                            });
                            assert_eq!(outcome, request * 2);
                        })
                        .count()
                })
            })
            .collect();
        let answered: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(answered, 1_600);
        let writes = writes.load(Ordering::Relaxed);
        assert!(writes < 1_600, "requests were grouped: {writes} writes");
    }
}
