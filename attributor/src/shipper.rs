//! The shipper: moves the journal into ClickHouse in large batches, in the background.
//!
//! Every `interval` it takes the oldest unshipped records (whole appends, up to
//! `max_records`), writes them with one INSERT per table (conversions, whose materialized
//! views fill the listing copies, e-mail touches and the dedup log; commissions, derived from
//! the conversion rows; clicks), and releases them from the journal once ClickHouse has
//! acknowledged every table. A table that fails is sent again, the same rows in the same
//! order, until it succeeds; nothing is skipped. Sending a batch twice (a retry after a
//! partial failure, or after a crash between the INSERTs and the release) is harmless:
//! every row's key and version were fixed when it was journaled, so ReplacingMergeTree
//! collapses the copies.
//!
//! So ClickHouse sees at most one INSERT per table per `interval`: under load the batches
//! grow, when idle a lone conversion waits at most one interval. While ClickHouse is away
//! the records wait in the journal and the node keeps accepting; when it returns the
//! backlog goes at `max_records` per interval.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::journal::{Entry, Journal, ShipBatch};
use crate::metrics::ShipperMetrics;
use crate::runtime::spawn_background;
use crate::store::{ClickRow, CommissionRow, ConversionRow, Store, StoreError};

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Table {
    Conversions,
    Commissions,
    Clicks,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Conversions => "conversions",
            Table::Commissions => "commissions",
            Table::Clicks => "clicks",
        }
    }
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
            let batch = match self.journal.oldest(self.config.max_records) {
                Ok(Some(batch)) => batch,
                Ok(None) => continue,
                Err(error) => {
                    tracing::error!(%error, "reading the journal failed");
                    continue;
                }
            };
            self.metrics
                .batch_records
                .observe(batch.records.len() as f64);
            if !self.ship(&batch).await {
                break;
            }
            if let Err(error) = self.journal.release(&batch) {
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

    /// Writes every table of the batch, retrying the ones that fail; `false` if a stop's
    /// deadline passed first.
    async fn ship(&mut self, batch: &ShipBatch) -> bool {
        let rows = BatchRows::of(batch);
        let mut left: Vec<Table> = [Table::Conversions, Table::Commissions, Table::Clicks]
            .into_iter()
            .filter(|table| rows.count(*table) > 0)
            .collect();
        let mut delay = self.config.retry_first;
        loop {
            let mut failed = Vec::new();
            for table in left {
                let started = Instant::now();
                match rows.insert(&self.store, table).await {
                    Ok(()) => {
                        self.metrics
                            .insert_seconds
                            .with_label_values(&[table.name()])
                            .observe(started.elapsed().as_secs_f64());
                        self.metrics
                            .rows_total
                            .with_label_values(&[table.name()])
                            .inc_by(rows.count(table) as u64);
                    }
                    Err(error) => {
                        self.count_error(table, &error);
                        failed.push(table);
                    }
                }
            }
            if failed.is_empty() {
                return true;
            }
            left = failed;
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

/// A batch's rows, table by table, in journal order.
struct BatchRows<'a> {
    conversions: Vec<&'a ConversionRow>,
    commissions: Vec<CommissionRow>,
    clicks: Vec<&'a ClickRow>,
}

impl<'a> BatchRows<'a> {
    fn of(batch: &'a ShipBatch) -> Self {
        let mut rows = BatchRows {
            conversions: Vec::new(),
            commissions: Vec::new(),
            clicks: Vec::new(),
        };
        for (_, entry) in &batch.records {
            match entry {
                Entry::Conversion(row) => {
                    rows.commissions.push(CommissionRow::from(row));
                    rows.conversions.push(row);
                }
                Entry::Click(row) => rows.clicks.push(row),
            }
        }
        rows
    }

    fn count(&self, table: Table) -> usize {
        match table {
            Table::Conversions => self.conversions.len(),
            Table::Commissions => self.commissions.len(),
            Table::Clicks => self.clicks.len(),
        }
    }

    async fn insert(&self, store: &Store, table: Table) -> Result<(), StoreError> {
        match table {
            Table::Conversions => {
                store
                    .insert_rows(table.name(), self.conversions.iter().copied())
                    .await
            }
            Table::Commissions => store.insert_rows(table.name(), &self.commissions).await,
            Table::Clicks => {
                store
                    .insert_rows(table.name(), self.clicks.iter().copied())
                    .await
            }
        }
    }
}
