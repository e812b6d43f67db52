//! Keeps the report rollups (hourly and daily) fresh: every `interval`, the (brand, UTC
//! day)s that an INSERT touched since their last recompute are recomputed whole.
//!
//! Freshness: a row in ClickHouse is in the rollups after at most `interval` plus a pass's
//! work, so rollup reports lag the journal by the shipping interval (1 s) plus that: about
//! 6 s with the defaults, well inside the 60 s target. Every node may run a refresher: two
//! recomputing the same day write whole generations, and readers take the latest.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, Sender};

use crate::metrics::ReportMetrics;

/// A pass's generation: the server's second, times a million, plus a random part, and
/// always above this node's previous one. Ordered by time across nodes (one clock); two
/// nodes recomputing the same day in the same second mostly draw different random parts,
/// and when they tie, readers still count each key of the generation once.
fn generation(started: u32, previous: u64) -> u64 {
    let candidate = u64::from(started) * 1_000_000 + rand::random_range(0..1_000_000u64);
    candidate.max(previous + 1)
}
use crate::runtime::spawn_background;
use crate::store::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct RollupConfig {
    /// Off: no refresher, and reports read the raw rows.
    pub enabled: bool,
    /// Time between refresh passes.
    pub interval: Duration,
    /// A day is recomputed again by every pass until this long after its latest mark, so
    /// that rows of an INSERT still being written when the mark became readable are
    /// counted (see [`Store::dirty_report_days`]). Longer than any INSERT takes.
    pub margin: Duration,
    /// Time between deletions of the marks every pass has dealt with (a mutation each).
    pub trim_interval: Duration,
}

impl Default for RollupConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(5),
            margin: Duration::from_secs(120),
            trim_interval: Duration::from_secs(600),
        }
    }
}

/// The running refresher; [`RollupRefresher::stop`] ends it.
pub struct RollupRefresher {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl RollupRefresher {
    pub fn start(config: RollupConfig, store: &Store, metrics: ReportMetrics) -> Self {
        let (stop, stop_requested) = crossbeam_channel::bounded(1);
        let store = store.with_own_pool();
        let thread = spawn_background("report-rollups", move || async move {
            let margin = u32::try_from(config.margin.as_secs()).unwrap_or(u32::MAX);
            // The first pass looks at every mark; later ones from the previous pass's
            // start less the margin (older marks were dealt with by then).
            let mut since = 0;
            let mut last_version = 0;
            let mut trimmed = Instant::now();
            loop {
                let started = Instant::now();
                match pass(&store, since, margin, &mut last_version, &metrics).await {
                    Ok(pass_start) => {
                        since = pass_start.saturating_sub(margin);
                        metrics
                            .rollup_complete_through_seconds
                            .set(i64::from(since));
                        if trimmed.elapsed() >= config.trim_interval {
                            trimmed = Instant::now();
                            if let Err(error) = store.trim_report_marks(since).await {
                                tracing::warn!(%error, "report mark trim failed");
                            }
                        }
                    }
                    Err(error) => {
                        metrics.rollup_errors_total.inc();
                        tracing::warn!(%error, "report rollup refresh failed");
                    }
                }
                metrics
                    .rollup_pass_seconds
                    .observe(started.elapsed().as_secs_f64());
                match stop_requested.recv_timeout(config.interval) {
                    Err(RecvTimeoutError::Timeout) => continue,
                    _ => break,
                }
            }
        });
        Self { stop, thread }
    }

    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// Recomputes every dirty day; returns the server's clock when the pass began.
async fn pass(
    store: &Store,
    since: u32,
    margin: u32,
    last_version: &mut u64,
    metrics: &ReportMetrics,
) -> Result<u32, StoreError> {
    let started = store.server_now().await?;
    let version = generation(started, *last_version);
    *last_version = version;
    for day in store.dirty_report_days(since, margin).await? {
        store.refresh_report_day(&day, started, version).await?;
        metrics.rollup_recomputes_total.inc();
    }
    Ok(started)
}
