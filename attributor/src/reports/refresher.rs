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

/// A pass's generation: the server's second in the high 32 bits and a random low half, and
/// always above this node's previous one. Ordered by time across nodes (one clock); two
/// nodes recomputing the same day in the same second draw the same generation with a
/// chance of 2^-32. Readers rely on that: they take each day's latest generation as it is,
/// without deduplicating its rows (a GROUP BY over every key, most of a 90-day report's
/// time), so a tie would count that day's keys twice until the day's next recompute, which
/// every pass within the margin of its latest mark makes.
fn generation(started: u32, previous: u64) -> u64 {
    let candidate = (u64::from(started) << 32) | u64::from(rand::random::<u32>());
    candidate.max(previous + 1)
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

#[cfg(test)]
mod tests {
    use super::generation;

    #[test]
    fn generations_order_by_second_and_differ_within_one() {
        let later = generation(1_800_000_001, 0);
        let mut same_second: Vec<u64> = (0..1000).map(|_| generation(1_800_000_000, 0)).collect();
        assert!(same_second.iter().all(|g| *g < later));
        same_second.sort_unstable();
        same_second.dedup();
        assert_eq!(
            same_second.len(),
            1000,
            "a thousand draws in one second, all distinct"
        );
        // Never below this node's previous generation, whatever the clock says.
        assert_eq!(generation(1_700_000_000, later), later + 1);
        // Above every generation of the earlier scheme (seconds times a million).
        assert!(generation(1_800_000_000, 0) > 2_000_000_000u64 * 1_000_000);
    }
}
