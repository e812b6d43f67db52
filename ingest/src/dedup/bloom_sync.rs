//! Filling the dedup bloom filter: seeded with every stored conversion at start, then kept
//! up with what every node stores, from `dedup_log`, once a second. Until seeded the filter
//! answers "maybe" to everything, so a node is correct from its first request, only slower.
//!
//! An order another node stored reaches this filter within a second or two. Inside that
//! window a repeat sent to this node is taken for new: it is written again under the same
//! conversion id, and ClickHouse keeps one row.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use attributor::runtime::spawn_background;
use attributor::{Store, StoreError};
use time::OffsetDateTime;

use attributor::Journal;

use super::DedupMetrics;
use super::bloom::HEADROOM;
use super::{DedupConfig, SeededBloom};

const SYNC_EVERY: Duration = Duration::from_secs(1);
/// Each read starts this far before the latest time seen: rows stamped in the same second
/// as the last ones read may not have been visible yet.
const SAME_SECOND_MARGIN_SECONDS: u32 = 1;
/// An INSERT's rows become visible some time after the log stamped them; every
/// `SWEEP_EVERY`th read goes this far back, past the longest INSERT the shipper waits for.
/// Reaching back this far on every read cost a few percent of the service's CPU at 20k
/// conversions a second: each key was read fifteen times.
const VISIBILITY_MARGIN_SECONDS: u32 = 15;
const SWEEP_EVERY: u32 = 10;
const RETRY_SEEDING_AFTER: Duration = Duration::from_secs(5);
/// Days of log kept: enough for any node's next read.
const LOG_KEPT: time::Duration = time::Duration::days(2);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Sizes the filter for what is stored and journaled (with [`HEADROOM`], at least the
/// configured capacity), adds the journaled keys, and starts the thread that fills it with
/// what ClickHouse holds, keeps it current, and replaces it with a larger one when it
/// outgrows its size. The thread ends when the filter is dropped.
pub async fn start_bloom(
    store: &Store,
    config: &DedupConfig,
    journal: Arc<Journal>,
    metrics: DedupMetrics,
) -> Result<Arc<SeededBloom>, StoreError> {
    let stored = store.count_conversion_versions().await?;
    // This node's unshipped conversions, which ClickHouse cannot tell about yet.
    let journaled = journal.unshipped().dedup_keys();
    let wanted = (stored + journaled.len() as u64) as f64 * HEADROOM;
    let bloom = Arc::new(SeededBloom::with_capacity(
        config.bloom_capacity.max(wanted as u64),
    ));
    for key in journaled {
        bloom.insert(key);
    }
    metrics.bloom_bytes.set(bloom.size_bytes() as i64);
    let filling = Arc::downgrade(&bloom);
    let store = store.with_own_pool();
    spawn_background("bloom-sync", move || fill(store, filling, journal, metrics));
    Ok(bloom)
}

async fn fill(
    store: Store,
    bloom: Weak<SeededBloom>,
    journal: Arc<Journal>,
    metrics: DedupMetrics,
) {
    // Taken before seeding, so that what is stored while the seed runs comes with the sync.
    let mut logged_until = loop {
        match store.server_now().await {
            Ok(now) => break now,
            Err(error) => {
                tracing::warn!(%error, "reading the clickhouse clock failed; retrying");
                tokio::time::sleep(RETRY_SEEDING_AFTER).await;
            }
        }
    };
    loop {
        let Some(filter) = bloom.upgrade() else {
            return;
        };
        let started = Instant::now();
        match store.for_each_dedup_key(|key| filter.insert(key)).await {
            Ok(keys) => {
                filter.mark_seeded();
                tracing::info!(keys, bytes = filter.size_bytes(), elapsed = ?started.elapsed(), "dedup bloom filter seeded");
                break;
            }
            Err(error) => {
                tracing::error!(%error, "seeding the dedup bloom filter failed; retrying");
                drop(filter);
                tokio::time::sleep(RETRY_SEEDING_AFTER).await;
            }
        }
    }
    let mut last_prune: Option<Instant> = None;
    for read in 1u32.. {
        tokio::time::sleep(SYNC_EVERY).await;
        let Some(filter) = bloom.upgrade() else {
            return;
        };
        let margin = if read % SWEEP_EVERY == 0 {
            VISIBILITY_MARGIN_SECONDS
        } else {
            SAME_SECOND_MARGIN_SECONDS
        };
        let since = logged_until.saturating_sub(margin);
        match store.dedup_keys_logged_since(since).await {
            Ok((keys, latest)) => {
                for key in keys {
                    filter.insert(key);
                }
                logged_until = latest.unwrap_or(logged_until).max(logged_until);
                metrics.bloom_syncs_total.inc();
            }
            Err(error) => tracing::warn!(%error, "reading the dedup log failed"),
        }
        if filter.is_over_capacity() {
            // The sync waits meanwhile; its next read reaches back to before the scan.
            rebuild(&store, &filter, &journal, &metrics).await;
        }
        if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            last_prune = Some(Instant::now());
            // The wall clock, not the service's Clock: the log's days are ClickHouse's, and
            // a test clock moved ahead must not drop days other nodes still read.
            let keep_since = OffsetDateTime::now_utc() - LOG_KEPT;
            if let Err(error) = store.drop_log_days_before("dedup_log", keep_since).await {
                tracing::warn!(%error, "dropping old days of the dedup log failed");
            }
        }
    }
}

/// Seeds a larger filter beside the full one, which keeps answering until it is replaced.
async fn rebuild(store: &Store, bloom: &SeededBloom, journal: &Journal, metrics: &DedupMetrics) {
    let started = Instant::now();
    let next = bloom.begin_rebuild();
    // Taken after every insert began to reach `next`: an order acknowledged before is
    // here, or was shipped first and is in ClickHouse when the scan reads it.
    for key in journal.unshipped().dedup_keys() {
        next.insert(key);
    }
    match store.for_each_dedup_key(|key| next.insert(key)).await {
        Ok(keys) => {
            bloom.finish_rebuild(next);
            metrics.bloom_rebuilds_total.inc();
            metrics.bloom_bytes.set(bloom.size_bytes() as i64);
            tracing::info!(keys, bytes = bloom.size_bytes(), elapsed = ?started.elapsed(), "dedup bloom filter outgrew its size and was rebuilt larger");
        }
        Err(error) => {
            bloom.abandon_rebuild();
            tracing::warn!(%error, "rebuilding the full dedup bloom filter failed; it answers \"maybe\" more often until the next try");
        }
    }
}
