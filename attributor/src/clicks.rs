//! Clicks are answered first and written after: the redirect must be fast, and nothing
//! the service promises depends on the clicks table (click ids carry their own link and
//! time). A bounded queue feeds one writer thread that INSERTs in batches; if the queue is
//! full or ClickHouse stays down, clicks are dropped and counted, never waited for.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::metrics::PipelineMetrics;
use crate::store::{ClickRow, Store};

#[derive(Debug, Clone)]
pub struct ClickWriterConfig {
    pub queue_capacity: usize,
    pub batch_max_rows: usize,
    /// How long a click may wait for its batch to be written.
    pub flush_interval: Duration,
}

impl Default for ClickWriterConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 100_000,
            batch_max_rows: 20_000,
            flush_interval: Duration::from_millis(200),
        }
    }
}

/// The handle the click endpoint records through; cheap to clone.
#[derive(Clone)]
pub struct ClickRecorder {
    sender: Sender<ClickRow>,
    closing: Arc<AtomicBool>,
    metrics: PipelineMetrics,
}

pub struct ClickWriter {
    thread: JoinHandle<()>,
}

impl ClickRecorder {
    pub fn start(
        config: ClickWriterConfig,
        store: &Store,
        metrics: PipelineMetrics,
    ) -> (ClickRecorder, ClickWriter) {
        let (sender, receiver) = crossbeam_channel::bounded(config.queue_capacity.max(1));
        let closing = Arc::new(AtomicBool::new(false));
        let store = store.with_own_pool();
        let writer_closing = Arc::clone(&closing);
        let writer_metrics = metrics.clone();
        let thread = std::thread::Builder::new()
            .name("click-writer".into())
            .spawn(move || write_clicks(config, receiver, writer_closing, store, writer_metrics))
            .expect("spawning the click writer thread");
        (
            ClickRecorder {
                sender,
                closing,
                metrics,
            },
            ClickWriter { thread },
        )
    }

    /// Queues a click for writing; never waits.
    pub fn record(&self, click: ClickRow) {
        match self.sender.try_send(click) {
            Ok(()) => self.metrics.click_queue_depth.set(self.sender.len() as i64),
            Err(_) => self
                .metrics
                .clicks_total
                .with_label_values(&["dropped_queue_full"])
                .inc(),
        }
    }

    /// Writes what is queued and stops the writer.
    pub fn close(&self) {
        self.closing.store(true, Ordering::Release);
    }
}

impl ClickWriter {
    pub fn join(self) {
        if self.thread.join().is_err() {
            tracing::error!("the click writer panicked");
        }
    }
}

fn write_clicks(
    config: ClickWriterConfig,
    receiver: Receiver<ClickRow>,
    closing: Arc<AtomicBool>,
    store: Store,
    metrics: PipelineMetrics,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building the click writer runtime");
    loop {
        let first = match receiver.recv_timeout(config.flush_interval) {
            Ok(click) => click,
            Err(RecvTimeoutError::Timeout) if !closing.load(Ordering::Acquire) => continue,
            Err(_) => return,
        };
        // Let the batch gather without waiting on the channel: a waiting receiver is woken
        // by every click sent, tens of thousands of wake-ups a second under load.
        if !closing.load(Ordering::Acquire) {
            std::thread::sleep(config.flush_interval);
        }
        let mut batch = vec![first];
        batch.extend(receiver.try_iter().take(config.batch_max_rows - 1));
        metrics.click_queue_depth.set(receiver.len() as i64);
        let started = Instant::now();
        // One retry covers a dropped connection; longer outages drop clicks rather than
        // let the queue, and the redirect's memory, grow.
        let mut result = runtime.block_on(store.insert_clicks(&batch));
        if matches!(&result, Err(error) if error.is_retryable()) {
            std::thread::sleep(Duration::from_millis(200));
            result = runtime.block_on(store.insert_clicks(&batch));
        }
        match result {
            Ok(()) => {
                metrics
                    .insert_seconds
                    .with_label_values(&["clicks"])
                    .observe(started.elapsed().as_secs_f64());
                metrics
                    .clicks_total
                    .with_label_values(&["stored"])
                    .inc_by(batch.len() as u64);
            }
            Err(error) => {
                tracing::error!(rows = batch.len(), %error, "click batch dropped");
                metrics
                    .insert_errors_total
                    .with_label_values(&[
                        "clicks",
                        if error.is_retryable() {
                            "retryable"
                        } else {
                            "refused"
                        },
                    ])
                    .inc();
                metrics
                    .clicks_total
                    .with_label_values(&["dropped_store_error"])
                    .inc_by(batch.len() as u64);
            }
        }
    }
}
