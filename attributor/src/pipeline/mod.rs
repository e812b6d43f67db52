//! The path from the ingest tier to the journal. A handler hands a checked conversion to
//! [`Pipeline::submit`] (or a status change to [`Pipeline::record_change`]), which puts it
//! on a bounded crossbeam channel and waits. Worker threads take jobs off the channel in
//! batches, attribute each new conversion, append the whole batch to the journal with one
//! fdatasync (group commit: a batch is whatever queued while the previous one was being
//! written), and only then answer every waiting request: an answer means the conversion is
//! durable on this node. Whether an order is new was decided before it was queued (the
//! ingest tier's dedup front); getting it into ClickHouse is the shipper's job.

mod attribution;
mod touches;
mod worker;

#[cfg(test)]
mod in_memory_tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use tokio::sync::oneshot;

pub use attribution::{Touch, attribute};
pub use touches::TouchSource;

use crate::catalog::Catalog;
use crate::clock::Clock;
use crate::conversion::{Conversion, NewConversion};
use crate::journal::{Journal, JournalError};
use crate::metrics::PipelineMetrics;
use crate::store::StatusChangeRow;

/// How the pipeline batches and when it gives up.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Attribution worker threads. Their appends take turns on the journal; while one
    /// waits for its fdatasync the other attributes the next batch.
    pub workers: usize,
    /// Jobs that may wait for a worker; past this, submissions get `QueueFull`.
    pub queue_capacity: usize,
    /// The most jobs one batch (one journal append) carries.
    pub batch_max_rows: usize,
    /// How long a batch's first job waits for company. Zero is right for a journal: a
    /// batch is already whatever queued during the previous fdatasync, so waiting longer
    /// only adds latency.
    pub batch_max_wait: Duration,
    /// How long a batch waits for ClickHouse to say which click a customer e-mail came
    /// through (cross-device attribution) before those conversions get 503.
    pub touch_lookup_timeout: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            queue_capacity: 50_000,
            batch_max_rows: 10_000,
            batch_max_wait: Duration::ZERO,
            touch_lookup_timeout: Duration::from_secs(2),
        }
    }
}

/// Why a conversion or a status change was not journaled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    #[error("the attribution queue is full")]
    QueueFull,
    #[error("the service is shutting down")]
    ShuttingDown,
    #[error("the journal is full: ClickHouse has not taken the records waiting in it")]
    JournalFull,
    #[error("the journal cannot be written: {0}")]
    JournalUnwritable(String),
    #[error("clickhouse is unavailable: {0}")]
    StoreUnavailable(String),
    #[error("clickhouse refused the statement: {0}")]
    StoreRefused(String),
    #[error("the click's tracking link does not exist")]
    UnknownClick,
    #[error("the click belongs to another brand's campaign")]
    ClickOfAnotherBrand,
    #[error("no click of this customer's e-mail within the cookie window")]
    NoMatchingTouch,
}

impl PipelineError {
    /// The label a refusal is counted under, in every metric that counts refusals.
    /// Every value [`PipelineError::label`] gives, for metrics declared with all their series.
    pub const LABELS: [&'static str; 9] = [
        "queue_full",
        "shutting_down",
        "journal_full",
        "journal_unwritable",
        "store_unavailable",
        "store_refused",
        "unknown_click",
        "click_of_another_brand",
        "no_matching_touch",
    ];

    pub fn label(&self) -> &'static str {
        match self {
            PipelineError::QueueFull => "queue_full",
            PipelineError::ShuttingDown => "shutting_down",
            PipelineError::JournalFull => "journal_full",
            PipelineError::JournalUnwritable(_) => "journal_unwritable",
            PipelineError::StoreUnavailable(_) => "store_unavailable",
            PipelineError::StoreRefused(_) => "store_refused",
            PipelineError::UnknownClick => "unknown_click",
            PipelineError::ClickOfAnotherBrand => "click_of_another_brand",
            PipelineError::NoMatchingTouch => "no_matching_touch",
        }
    }
}

impl From<JournalError> for PipelineError {
    fn from(error: JournalError) -> Self {
        match error {
            JournalError::Full { .. } => PipelineError::JournalFull,
            other => PipelineError::JournalUnwritable(other.to_string()),
        }
    }
}

impl From<crate::store::StoreError> for PipelineError {
    fn from(error: crate::store::StoreError) -> Self {
        match error {
            crate::store::StoreError::Unavailable(text) => PipelineError::StoreUnavailable(text),
            other => PipelineError::StoreRefused(other.to_string()),
        }
    }
}

/// What a worker is asked to journal.
// Nearly every job is a report; boxing it to shrink the rare status change would cost an
// allocation per conversion.
#[allow(clippy::large_enum_variant)]
enum Work {
    /// A first report: attribute it, then journal it.
    Report(NewConversion),
    /// A new version decided by the caller (a status change): journal it as it is, with
    /// its history row.
    Change(Arc<Conversion>, StatusChangeRow),
}

type Reply = oneshot::Sender<Result<Arc<Conversion>, PipelineError>>;

struct Job {
    work: Work,
    enqueued_at: Instant,
    reply: Reply,
}

/// The handle handlers submit through; cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    /// Boxed: a bounded channel allocates every slot up front (13 MB of whole jobs).
    sender: Sender<Box<Job>>,
    closing: Arc<AtomicBool>,
    metrics: PipelineMetrics,
}

/// The worker threads, to be joined at shutdown after [`Pipeline::close`].
pub struct PipelineWorkers {
    threads: Vec<JoinHandle<()>>,
}

/// What the workers need besides their configuration.
pub struct PipelineParts<T> {
    pub touches: T,
    pub journal: Arc<Journal>,
    pub catalog: Arc<Catalog>,
    pub clock: Clock,
    pub metrics: PipelineMetrics,
}

impl Pipeline {
    pub fn start<T: TouchSource>(
        config: PipelineConfig,
        parts: PipelineParts<T>,
    ) -> (Pipeline, PipelineWorkers) {
        let (sender, receiver) = crossbeam_channel::bounded(config.queue_capacity.max(1));
        parts
            .metrics
            .queue_capacity
            .set(i64::try_from(config.queue_capacity.max(1)).unwrap_or(i64::MAX));
        let closing = Arc::new(AtomicBool::new(false));
        let threads = (0..config.workers.max(1))
            .map(|n| {
                let worker = worker::Worker {
                    receiver: receiver.clone(),
                    closing: Arc::clone(&closing),
                    config: config.clone(),
                    touches: parts.touches.for_worker(),
                    journal: Arc::clone(&parts.journal),
                    catalog: Arc::clone(&parts.catalog),
                    clock: parts.clock.clone(),
                    metrics: parts.metrics.clone(),
                };
                std::thread::Builder::new()
                    .name(format!("attributor-{n}"))
                    .spawn(move || worker.run())
                    .expect("spawning an attribution worker thread")
            })
            .collect();
        let pipeline = Pipeline {
            sender,
            closing,
            metrics: parts.metrics,
        };
        (pipeline, PipelineWorkers { threads })
    }

    /// Queues a first report and waits until it is journaled (or refused). Never blocks
    /// the calling thread: a full queue is an immediate `QueueFull`.
    pub async fn submit(
        &self,
        conversion: NewConversion,
    ) -> Result<Arc<Conversion>, PipelineError> {
        self.enqueue(Work::Report(conversion)).await
    }

    /// Journals a new version of a conversion (a status change) and its history row in
    /// one append, after every version this node journaled before.
    pub async fn record_change(
        &self,
        next: Conversion,
        change: StatusChangeRow,
    ) -> Result<Arc<Conversion>, PipelineError> {
        self.enqueue(Work::Change(Arc::new(next), change)).await
    }

    async fn enqueue(&self, work: Work) -> Result<Arc<Conversion>, PipelineError> {
        if self.closing.load(Ordering::Acquire) {
            return Err(PipelineError::ShuttingDown);
        }
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Job {
            work,
            enqueued_at: Instant::now(),
            reply,
        });
        match self.sender.try_send(job) {
            Ok(()) => self.metrics.queue_depth.set(self.sender.len() as i64),
            Err(TrySendError::Full(_)) => return Err(PipelineError::QueueFull),
            Err(TrySendError::Disconnected(_)) => return Err(PipelineError::ShuttingDown),
        }
        // A worker always answers a job it took; a dropped reply means it panicked.
        answer.await.unwrap_or(Err(PipelineError::StoreRefused(
            "attribution worker stopped".into(),
        )))
    }

    /// Jobs waiting for a worker right now.
    pub fn queue_depth(&self) -> usize {
        self.sender.len()
    }

    /// Stops taking submissions; the workers journal what is queued and then exit.
    pub fn close(&self) {
        self.closing.store(true, Ordering::Release);
    }
}

impl PipelineWorkers {
    /// Waits for the workers to drain the queue and exit. Call after [`Pipeline::close`].
    pub fn join(self) {
        for thread in self.threads {
            if thread.join().is_err() {
                tracing::error!("an attribution worker panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PipelineError;

    #[test]
    fn every_error_label_is_declared_for_the_metrics() {
        let errors = [
            PipelineError::QueueFull,
            PipelineError::ShuttingDown,
            PipelineError::JournalFull,
            PipelineError::JournalUnwritable(String::new()),
            PipelineError::StoreUnavailable(String::new()),
            PipelineError::StoreRefused(String::new()),
            PipelineError::UnknownClick,
            PipelineError::ClickOfAnotherBrand,
            PipelineError::NoMatchingTouch,
        ];
        let labels: Vec<_> = errors.iter().map(PipelineError::label).collect();
        assert_eq!(labels, PipelineError::LABELS);
    }
}
