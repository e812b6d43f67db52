//! The path from the ingest tier to ClickHouse. A handler hands a checked conversion to
//! [`Pipeline::submit`], which puts it on a bounded crossbeam channel and waits. Worker
//! threads take conversions off the channel in batches, attribute each one, write the
//! batch's commission rows and then its conversion rows (one INSERT per table), and only
//! then answer every waiting request: an answer means the rows are in ClickHouse. Whether
//! an order is new was decided before it was queued (the ingest tier's dedup front).

mod attribution;
mod pacer;
mod sink;
mod worker;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use tokio::sync::oneshot;

pub use attribution::{Touch, attribute};
pub use pacer::InsertPacer;
pub use sink::ConversionSink;

use crate::catalog::Catalog;
use crate::clock::Clock;
use crate::conversion::{Conversion, NewConversion};
use crate::metrics::PipelineMetrics;

/// How the pipeline batches and when it gives up.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Attribution worker threads; each has at most one INSERT in flight.
    pub workers: usize,
    /// Conversions that may wait for a worker; past this, submissions get `QueueFull`.
    pub queue_capacity: usize,
    /// The most conversions one batch (one INSERT per table) carries.
    pub batch_max_rows: usize,
    /// How long a batch's first conversion waits for company when INSERT slots are free.
    pub batch_max_wait: Duration,
    /// INSERT starts per second per table across all workers (0: unpaced).
    pub inserts_per_second: f64,
    /// INSERTs that may start at once after a quiet spell.
    pub insert_burst: u32,
    /// How long a batch's INSERTs are retried before its requests are answered 503.
    pub insert_retry_budget: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            queue_capacity: 50_000,
            batch_max_rows: 10_000,
            batch_max_wait: Duration::from_millis(2),
            inserts_per_second: 20.0,
            insert_burst: 4,
            insert_retry_budget: Duration::from_secs(3),
        }
    }
}

/// Why a conversion was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    #[error("the attribution queue is full")]
    QueueFull,
    #[error("the service is shutting down")]
    ShuttingDown,
    #[error("clickhouse is unavailable: {0}")]
    StoreUnavailable(String),
    #[error("clickhouse refused the write: {0}")]
    StoreRefused(String),
    #[error("the click's tracking link does not exist")]
    UnknownClick,
    #[error("the click belongs to another brand's campaign")]
    ClickOfAnotherBrand,
    #[error("no click of this customer's e-mail within the cookie window")]
    NoMatchingTouch,
}

pub(crate) struct Job {
    conversion: NewConversion,
    enqueued_at: Instant,
    reply: oneshot::Sender<Result<Arc<Conversion>, PipelineError>>,
}

/// The handle handlers submit through; cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    sender: Sender<Job>,
    closing: Arc<AtomicBool>,
    metrics: PipelineMetrics,
}

/// The worker threads, to be joined at shutdown after [`Pipeline::close`].
pub struct PipelineWorkers {
    threads: Vec<JoinHandle<()>>,
}

/// What the workers need besides their configuration.
pub struct PipelineParts<S> {
    pub store: S,
    pub catalog: Arc<Catalog>,
    pub clock: Clock,
    pub metrics: PipelineMetrics,
}

impl Pipeline {
    pub fn start<S: ConversionSink>(
        config: PipelineConfig,
        parts: PipelineParts<S>,
    ) -> (Pipeline, PipelineWorkers) {
        let (sender, receiver) = crossbeam_channel::bounded(config.queue_capacity.max(1));
        let closing = Arc::new(AtomicBool::new(false));
        let pacer = Arc::new(InsertPacer::new(
            config.inserts_per_second,
            config.insert_burst,
        ));
        let threads = (0..config.workers.max(1))
            .map(|n| {
                let worker = worker::Worker {
                    receiver: receiver.clone(),
                    closing: Arc::clone(&closing),
                    pacer: Arc::clone(&pacer),
                    config: config.clone(),
                    store: parts.store.for_worker(),
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

    /// Queues the conversion and waits until it is stored (or refused). Never blocks the
    /// calling thread: a full queue is an immediate `QueueFull`.
    pub async fn submit(
        &self,
        conversion: NewConversion,
    ) -> Result<Arc<Conversion>, PipelineError> {
        if self.closing.load(Ordering::Acquire) {
            return Err(PipelineError::ShuttingDown);
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            conversion,
            enqueued_at: Instant::now(),
            reply,
        };
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

    /// Conversions waiting for a worker right now.
    pub fn queue_depth(&self) -> usize {
        self.sender.len()
    }

    /// Stops taking submissions; the workers write what is queued and then exit.
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
