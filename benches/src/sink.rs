use std::future::{Future, ready};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use attributor::domain::EmailHash;
use attributor::metrics::PipelineMetrics;
use attributor::pipeline::ConversionSink;
use attributor::store::{CommissionRow, ConversionRow, EmailTouch};
use attributor::{Clock, Pipeline, PipelineConfig, PipelineParts, PipelineWorkers, StoreError};
use prometheus::Registry;

use crate::network::{Network, unreachable_store};

/// Stores nothing and has nothing stored: every order is new, every write succeeds at
/// once, and the rows written are counted so a bench can check they all arrived.
#[derive(Clone, Default)]
pub struct CountingSink {
    conversion_rows: Arc<AtomicU64>,
    conversion_inserts: Arc<AtomicU64>,
}

impl CountingSink {
    pub fn conversion_rows(&self) -> u64 {
        self.conversion_rows.load(Ordering::Relaxed)
    }

    pub fn conversion_inserts(&self) -> u64 {
        self.conversion_inserts.load(Ordering::Relaxed)
    }
}

impl ConversionSink for CountingSink {
    fn for_worker(&self) -> Self {
        self.clone()
    }

    fn email_touches(
        &self,
        _emails: &[EmailHash],
    ) -> impl Future<Output = Result<Vec<EmailTouch>, StoreError>> + Send {
        ready(Ok(Vec::new()))
    }

    fn insert_commissions(
        &self,
        _rows: &[CommissionRow],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        ready(Ok(()))
    }

    fn insert_conversions(
        &self,
        rows: &[ConversionRow],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.conversion_rows
            .fetch_add(rows.len() as u64, Ordering::Relaxed);
        self.conversion_inserts.fetch_add(1, Ordering::Relaxed);
        ready(Ok(()))
    }
}

/// The service's pipeline settings with pacing off and no wait for company, so a bench
/// measures the work per conversion rather than the pauses that make batches grow under
/// load; batches here are as large as the queue is deep, up to `batch_max_rows`.
pub fn unpaced_config(workers: usize, batch_max_rows: usize) -> PipelineConfig {
    PipelineConfig {
        workers,
        batch_max_rows,
        batch_max_wait: Duration::ZERO,
        inserts_per_second: 0.0,
        ..PipelineConfig::default()
    }
}

/// A running pipeline whose workers attribute against `network` and write to a
/// [`CountingSink`].
pub struct CountingPipeline {
    pub pipeline: Pipeline,
    pub sink: CountingSink,
    pub metrics: PipelineMetrics,
    workers: PipelineWorkers,
}

impl CountingPipeline {
    pub fn start(network: &Network, config: PipelineConfig) -> Self {
        let sink = CountingSink::default();
        let metrics = PipelineMetrics::new(&Registry::new());
        let parts = PipelineParts {
            store: sink.clone(),
            catalog: Arc::new(network.catalog(unreachable_store())),
            clock: Clock::system(),
            metrics: metrics.clone(),
        };
        let (pipeline, workers) = Pipeline::start(config, parts);
        Self {
            pipeline,
            sink,
            metrics,
            workers,
        }
    }

    /// Conversions per batch so far, on average.
    pub fn mean_batch_rows(&self) -> f64 {
        let batches = self.metrics.batch_rows.get_sample_count();
        self.metrics.batch_rows.get_sample_sum() / batches.max(1) as f64
    }

    /// Lets the workers drain the queue and waits for them to exit.
    pub fn stop(self) {
        self.pipeline.close();
        self.workers.join();
    }
}
