//! The shipper: moves the journal into ClickHouse in large batches, in the background.
//!
//! Every `interval` it takes the oldest unshipped records (whole appends, up to
//! `max_records`), writes them with one INSERT per table (conversions, whose materialized
//! views fill the listing copies, e-mail touches and the dedup log; commissions, derived from
//! the conversion rows; clicks), and releases them from the journal once ClickHouse has
//! acknowledged every table. The INSERTs stream side by side while the records are read in
//! chunks ([`pass`]), so a shipment's memory does not grow with the backlog. A table that fails is sent again, the same rows in the same
//! order, until it succeeds; nothing is skipped. Sending a batch twice (a retry after a
//! partial failure, or after a crash between the INSERTs and the release) is harmless:
//! every row's key and version were fixed when it was journaled, so ReplacingMergeTree
//! collapses the copies.
//!
//! So ClickHouse sees at most one INSERT per table per `interval`: under load the batches
//! grow, when idle a lone conversion waits at most one interval. While ClickHouse is away
//! the records wait in the journal and the node keeps accepting; when it returns the
//! backlog goes at `max_records` per interval.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::journal::Journal;
use crate::metrics::ShipperMetrics;
use crate::runtime::spawn_background;
use crate::store::{Store, StoreError};

mod pass;

use crate::store::ShippedTable as Table;

#[derive(Debug, Clone)]
pub struct ShipperConfig {
    /// Shortest time between two shipping cycles: at most one INSERT per table per interval.
    pub interval: Duration,
    /// Records one cycle takes from the journal (whole appends, so a little more at most).
    pub max_records: usize,
    /// First pause after a failed INSERT; it doubles up to `retry_max`.
    pub retry_first: Duration,
    pub retry_max: Duration,
}

impl Default for ShipperConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            max_records: 100_000,
            retry_first: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
        }
    }
}

/// The running shipper; [`Shipper::stop`] ends it.
pub struct Shipper {
    stop: Sender<Instant>,
    thread: JoinHandle<()>,
}

impl Shipper {
    pub fn start(
        config: ShipperConfig,
        journal: Arc<Journal>,
        store: &Store,
        metrics: ShipperMetrics,
    ) -> Shipper {
        let (stop, stop_requested) = crossbeam_channel::bounded(1);
        let store = store.with_own_pool();
        let thread = spawn_background("shipper", move || async move {
            let shipping = Shipping {
                config,
                journal,
                store,
                metrics,
                stop_requested,
                stop_deadline: None,
            };
            shipping.run().await;
        });
        Shipper { stop, thread }
    }

    /// Ships what is left for at most `grace`, then stops; what is still unshipped waits
    /// in the journal for the next start. Returns how many records that is.
    pub fn stop(self, journal: &Journal, grace: Duration) -> u64 {
        let _ = self.stop.send(Instant::now() + grace);
        if self.thread.join().is_err() {
            tracing::error!("the shipper panicked");
        }
        journal.pending_records()
    }
}

struct Shipping {
    config: ShipperConfig,
    journal: Arc<Journal>,
    store: Store,
    metrics: ShipperMetrics,
    stop_requested: Receiver<Instant>,
    stop_deadline: Option<Instant>,
}

impl Shipping {
    async fn run(mut self) {
        // What a previous run left goes at once; otherwise the first cycle is one interval
        // away, like every other.
        let mut next_cycle = Instant::now();
        if self.journal.pending_records() == 0 {
            next_cycle += self.config.interval;
        }
        loop {
            self.wait_until(next_cycle);
            if self.stopping_and_done() {
                break;
            }
            next_cycle = Instant::now() + self.config.interval;
            let Some(seqs) = self.journal.oldest_unshipped(self.config.max_records) else {
                continue;
            };
            self.metrics
                .batch_records
                .observe((seqs.end() - seqs.start() + 1) as f64);
            if !self.ship(seqs.clone()).await {
                break;
            }
            if let Err(error) = self.journal.release_through(*seqs.end()) {
                // ClickHouse has the rows; they go again after a restart, harmlessly.
                tracing::error!(%error, "releasing shipped journal records failed");
            }
            self.journal.sample_metrics();
        }
        let left = self.journal.pending_records();
        if left > 0 {
            tracing::warn!(
                records = left,
                "stopping with records not yet in ClickHouse; they stay in the journal and are shipped at the next start"
            );
        }
    }

    /// Sleeps until `at`, or until a stop is requested.
    fn wait_until(&mut self, at: Instant) {
        if self.stop_deadline.is_some() {
            return;
        }
        match self
            .stop_requested
            .recv_timeout(at.saturating_duration_since(Instant::now()))
        {
            Ok(deadline) => self.stop_deadline = Some(deadline),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => self.stop_deadline = Some(Instant::now()),
        }
    }

    fn stopping_and_done(&self) -> bool {
        self.stop_deadline.is_some_and(|deadline| {
            self.journal.pending_records() == 0 || Instant::now() >= deadline
        })
    }

    /// Writes every table of the records in `seqs`, retrying the ones that fail; `false`
    /// if a stop's deadline passed first.
    async fn ship(&mut self, seqs: RangeInclusive<u64>) -> bool {
        let mut left = Table::ALL.to_vec();
        let mut delay = self.config.retry_first;
        loop {
            match pass::run(&self.store, &self.journal, seqs.clone(), &left).await {
                Ok(outcome) => {
                    self.count(&outcome);
                    if outcome.failed.is_empty() {
                        return true;
                    }
                    left = outcome.failed.into_iter().map(|(table, _)| table).collect();
                }
                // Nothing was acknowledged: every table of the pass goes again.
                Err(error) => {
                    tracing::error!(%error, "reading the journal for shipping failed; will retry");
                }
            }
            self.wait_until(Instant::now() + delay);
            if self
                .stop_deadline
                .is_some_and(|deadline| Instant::now() >= deadline)
            {
                return false;
            }
            delay = (delay * 2).min(self.config.retry_max);
        }
    }

    fn count(&self, outcome: &pass::Outcome) {
        for (table, shipped) in &outcome.shipped {
            self.metrics
                .insert_seconds
                .with_label_values(&[table.name()])
                .observe(shipped.took.as_secs_f64());
            self.metrics
                .rows_total
                .with_label_values(&[table.name()])
                .inc_by(shipped.rows);
        }
        for (table, error) in &outcome.failed {
            self.count_error(*table, error);
        }
    }

    fn count_error(&self, table: Table, error: &StoreError) {
        let kind = if error.is_retryable() {
            "retryable"
        } else {
            "refused"
        };
        self.metrics
            .errors_total
            .with_label_values(&[table.name(), kind])
            .inc();
        // A refusal is retried too: the rows are acknowledged and must not be dropped, and
        // what ClickHouse refuses (a missing table, a full disk) is usually mended by an
        // operator. The log says so once per attempt.
        tracing::warn!(table = table.name(), kind, %error, "shipping to clickhouse failed; will retry");
    }
}
