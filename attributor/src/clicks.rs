//! Clicks are answered first and journaled after: the redirect must be fast, and nothing
//! the service promises depends on a click row (click ids carry their own link and time).
//! A bounded queue feeds one thread that appends the queued clicks to the journal every
//! `flush_interval`, with one fdatasync; the shipper takes them to ClickHouse with the
//! conversions. A kill -9 loses at most the clicks of the last interval and the fdatasync
//! in progress. A full queue drops clicks, counted, rather than slow the redirect.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::journal::{Entry, Journal};
use crate::metrics::ClickMetrics;
use crate::store::ClickRow;

#[derive(Debug, Clone)]
pub struct ClickWriterConfig {
    pub queue_capacity: usize,
    pub batch_max_rows: usize,
    /// How long a click may wait in memory before it is journaled.
    pub flush_interval: Duration,
}

impl Default for ClickWriterConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 100_000,
            batch_max_rows: 20_000,
            flush_interval: Duration::from_millis(100),
        }
    }
}

/// The handle the click endpoint records through; cheap to clone.
#[derive(Clone)]
pub struct ClickRecorder {
    /// Boxed: a bounded channel allocates every slot up front, and 100,000 slots of a
    /// whole row were 36 MB of memory whether or not a click ever waited.
    sender: Sender<Box<ClickRow>>,
    closing: Arc<AtomicBool>,
    metrics: ClickMetrics,
}

pub struct ClickWriter {
    thread: JoinHandle<()>,
}

impl ClickRecorder {
    pub fn start(
        config: ClickWriterConfig,
        journal: Arc<Journal>,
        metrics: ClickMetrics,
    ) -> (ClickRecorder, ClickWriter) {
        let (sender, receiver) = crossbeam_channel::bounded(config.queue_capacity.max(1));
        metrics
            .queue_capacity
            .set(i64::try_from(config.queue_capacity.max(1)).unwrap_or(i64::MAX));
        let closing = Arc::new(AtomicBool::new(false));
        let writer = Journaling {
            config,
            receiver,
            closing: Arc::clone(&closing),
            journal,
            metrics: metrics.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("click-journal".into())
            // At normal priority, unlike the other background threads: what waits here
            // in memory is what a kill -9 loses, so the thread must keep up under load.
            .spawn(move || writer.run())
            .expect("spawning the click journal thread");
        (
            ClickRecorder {
                sender,
                closing,
                metrics,
            },
            ClickWriter { thread },
        )
    }

    /// Queues a click for the journal; never waits.
    pub fn record(&self, click: ClickRow) {
        // Counted before it is queued, so that no moment sees it neither here nor in the
        // journal's pending records (what a drain waits on).
        self.metrics.queue_depth.inc();
        if self.sender.try_send(Box::new(click)).is_err() {
            self.metrics.queue_depth.dec();
            self.metrics
                .clicks_total
                .with_label_values(&["dropped_queue_full"])
                .inc();
        }
    }

    /// Journals what is queued and stops the writer.
    pub fn close(&self) {
        self.closing.store(true, Ordering::Release);
    }
}

impl ClickWriter {
    pub fn join(self) {
        if self.thread.join().is_err() {
            tracing::error!("the click journal thread panicked");
        }
    }
}

struct Journaling {
    config: ClickWriterConfig,
    receiver: Receiver<Box<ClickRow>>,
    closing: Arc<AtomicBool>,
    journal: Arc<Journal>,
    metrics: ClickMetrics,
}

impl Journaling {
    fn run(self) {
        let mut batch: Vec<Entry> = Vec::new();
        loop {
            if batch.is_empty() {
                match self.receiver.recv_timeout(self.config.flush_interval) {
                    Ok(click) => batch.push(Entry::Click(*click)),
                    Err(RecvTimeoutError::Timeout) if !self.closing() => continue,
                    Err(_) => return,
                }
                // Let the batch gather without waiting on the channel: a waiting receiver
                // is woken by every click sent, tens of thousands of wake-ups a second.
                if !self.closing() {
                    std::thread::sleep(self.config.flush_interval);
                }
            }
            let room = self.config.batch_max_rows.saturating_sub(batch.len());
            batch.extend(
                self.receiver
                    .try_iter()
                    .take(room)
                    .map(|click| Entry::Click(*click)),
            );
            match self.journal.append(&batch) {
                Ok(_) => {
                    self.metrics
                        .clicks_total
                        .with_label_values(&["journaled"])
                        .inc_by(batch.len() as u64);
                    self.metrics.queue_depth.sub(batch.len() as i64);
                    batch.clear();
                }
                Err(error) if self.closing() => {
                    tracing::error!(clicks = batch.len(), %error, "clicks not journaled at shutdown");
                    self.metrics
                        .clicks_total
                        .with_label_values(&["dropped_journal_error"])
                        .inc_by(batch.len() as u64);
                    self.metrics.queue_depth.sub(batch.len() as i64);
                    batch.clear();
                }
                Err(error) => {
                    // Kept and tried again next interval; meanwhile new clicks wait in the
                    // bounded queue, and past it are dropped and counted.
                    tracing::warn!(clicks = batch.len(), %error, "journaling clicks failed; will retry");
                    std::thread::sleep(self.config.flush_interval);
                }
            }
        }
    }

    fn closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }
}
