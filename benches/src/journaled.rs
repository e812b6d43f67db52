use std::future::{Future, ready};
use std::sync::Arc;

use attributor::domain::EmailHash;
use attributor::metrics::{JournalMetrics, PipelineMetrics};
use attributor::pipeline::TouchSource;
use attributor::store::EmailTouch;
use attributor::{
    Clock, Journal, JournalConfig, Pipeline, PipelineConfig, PipelineParts, PipelineWorkers,
    StoreError,
};
use prometheus::Registry;
use tempfile::TempDir;

use crate::network::Network;

/// No customer e-mail has ever been credited with a click: the benches report click ids.
#[derive(Clone, Default)]
pub struct NoTouches;

impl TouchSource for NoTouches {
    fn for_worker(&self) -> Self {
        NoTouches
    }

    fn email_touches(
        &self,
        _emails: &[EmailHash],
    ) -> impl Future<Output = Result<Vec<EmailTouch>, StoreError>> + Send {
        ready(Ok(Vec::new()))
    }
}

/// The service's pipeline settings with `workers` and `batch_max_rows` set: no wait for
/// company, so batches are as large as the queue is deep when a worker takes one.
pub fn bench_config(workers: usize, batch_max_rows: usize) -> PipelineConfig {
    PipelineConfig {
        workers,
        batch_max_rows,
        ..PipelineConfig::default()
    }
}

/// A running pipeline whose workers attribute against `network` and append to a real
/// journal (SQLite, fdatasync per batch) in a temporary directory under `target/`, on the
/// same disk a service's data directory would be. Nothing ships: the journal only grows.
pub struct JournaledPipeline {
    pub pipeline: Pipeline,
    pub journal: Arc<Journal>,
    pub metrics: PipelineMetrics,
    pub journal_metrics: JournalMetrics,
    workers: PipelineWorkers,
    _dir: TempDir,
}

impl JournaledPipeline {
    pub fn start(network: &Network, config: PipelineConfig) -> Self {
        let dir = bench_dir();
        let registry = Registry::new();
        let journal_metrics = JournalMetrics::new(&registry);
        let (journal, _) = Journal::open(
            JournalConfig {
                dir: dir.path().to_owned(),
                max_bytes: u64::MAX / 2,
            },
            Clock::system(),
            journal_metrics.clone(),
        )
        .expect("opening the bench journal");
        let journal = Arc::new(journal);
        let metrics = PipelineMetrics::new(&registry);
        let parts = PipelineParts {
            touches: NoTouches,
            journal: Arc::clone(&journal),
            catalog: Arc::new(network.catalog(attributor::Store::detached())),
            clock: Clock::system(),
            metrics: metrics.clone(),
        };
        let (pipeline, workers) = Pipeline::start(config, parts);
        Self {
            pipeline,
            journal,
            metrics,
            journal_metrics,
            workers,
            _dir: dir,
        }
    }

    /// Jobs per batch so far, on average.
    pub fn mean_batch_jobs(&self) -> f64 {
        let batches = self.metrics.batch_jobs.get_sample_count();
        self.metrics.batch_jobs.get_sample_sum() / batches.max(1) as f64
    }

    /// Journal appends (fdatasyncs) so far.
    pub fn appends(&self) -> u64 {
        self.journal_metrics.append_seconds.get_sample_count()
    }

    /// Lets the workers drain the queue and waits for them to exit.
    pub fn stop(self) {
        self.pipeline.close();
        self.workers.join();
    }
}

/// A fresh directory under the workspace's `target/`: on the disk a data directory would be
/// on (a system temp directory may be memory, where fdatasync costs nothing).
pub fn bench_dir() -> TempDir {
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    std::fs::create_dir_all(&target).expect("creating target/");
    tempfile::tempdir_in(target).expect("a temporary directory under target/")
}
