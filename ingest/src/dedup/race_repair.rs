//! Orders two nodes took at once. A node answers an order it has not heard of as new; in
//! the second or two before one node's copy reaches ClickHouse and the other node's bloom
//! filter, a retry of the same order sent to another node is new there too. Both write it
//! under the one id its (brand, order_id) derives, each stamped by its own clock.
//! `conversions` keeps one row (the higher version), but the listing copies, the status
//! copy and `commissions` sort by `created_at`: with two stamps they keep two rows, and the
//! listing, the reports and the commissions owed would count the order twice.
//!
//! So every node reads `conversion_stamps` every `interval`: orders logged since its last
//! read that the log holds with more than one stamp over the last `window` (reaching
//! further back by as long as this node's journal was behind, for an order it shipped
//! late) and whose copies do not hold exactly the surviving version are repaired
//! ([`Store::repair_races`]: the surviving version written again, then the rows of every
//! other stamp deleted), and this node's cache takes the surviving version, so replays
//! answer with it. Every node may repair the same order; repairs are idempotent.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use attributor::runtime::spawn_background;
use attributor::store::StampRace;
use attributor::{Journal, Store, StoreError};
use time::OffsetDateTime;

use super::{DedupFront, DedupMetrics};

#[derive(Debug, Clone)]
pub struct RaceRepairConfig {
    /// Time between two reads of the stamp log: how long a raced order may be counted
    /// twice, plus the shipping interval.
    pub interval: Duration,
    /// How far apart in the log two stamps of one order are compared. Races happen within
    /// seconds of each other; nodes that shipped late are covered by their journal's lag.
    pub window: Duration,
}

impl Default for RaceRepairConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            window: Duration::from_secs(300),
        }
    }
}

/// Each read starts this far before the start of the previous one: an INSERT's rows become
/// visible some time after the log stamped them, and the log's row of an order may be
/// visible before its listing copy (one INSERT fills them one after the other). Longer
/// than the longest INSERT the shipper waits for (30 s), so every race is read at least
/// once after its INSERTs ended.
const VISIBILITY_MARGIN_SECONDS: u32 = 35;
const RETRY_CLOCK_AFTER: Duration = Duration::from_secs(5);
/// Days of the stamp log kept, and how often older ones are dropped.
const LOG_KEPT: time::Duration = time::Duration::days(2);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Starts the checks; they end when `front` is dropped.
pub fn start_race_repair(
    store: &Store,
    journal: Arc<Journal>,
    front: &Arc<DedupFront>,
    config: RaceRepairConfig,
    metrics: DedupMetrics,
) {
    let checks = RaceChecks {
        store: store.with_own_pool(),
        journal,
        front: Arc::downgrade(front),
        config,
        metrics,
        handled: HashMap::new(),
    };
    spawn_background("race-repair", move || checks.run());
}

struct RaceChecks {
    store: Store,
    journal: Arc<Journal>,
    front: Weak<DedupFront>,
    config: RaceRepairConfig,
    metrics: DedupMetrics,
    /// Races seen settled lately (counted, and this node's cache refreshed), by
    /// conversion and stamps, and when.
    handled: HashMap<(u128, Vec<u32>), Instant>,
}

/// Every (brand, UTC day) the races' stamps fall on, as the report rollups mark them.
fn stamped_days(races: &[StampRace]) -> Vec<(String, String)> {
    let mut days: Vec<(String, String)> = races
        .iter()
        .flat_map(|race| {
            race.stamps.iter().filter_map(|&stamp| {
                let day = OffsetDateTime::from_unix_timestamp(i64::from(stamp))
                    .ok()?
                    .date();
                Some((race.brand.to_string(), day.to_string()))
            })
        })
        .collect();
    days.sort_unstable();
    days.dedup();
    days
}

fn handled_key(race: &StampRace) -> (u128, Vec<u32>) {
    (race.conversion.key(), race.stamps.clone())
}

impl RaceChecks {
    async fn run(mut self) {
        // A start checks the last window again: a node stopped mid-repair finishes it.
        let mut checked_until = loop {
            match self.store.server_now().await {
                Ok(now) => break now.saturating_sub(self.window_seconds()),
                Err(error) => {
                    tracing::warn!(%error, "reading the clickhouse clock failed; retrying");
                    tokio::time::sleep(RETRY_CLOCK_AFTER).await;
                }
            }
        };
        // What the journal held at the previous check may be shipped by this one; its
        // stamps compare with the log from when it was journaled.
        let mut journal_behind = self.journal.lag_seconds().ceil() as u32;
        let mut pruned_at: Option<Instant> = None;
        loop {
            tokio::time::sleep(self.config.interval).await;
            let Some(front) = self.front.upgrade() else {
                return;
            };
            let behind_now = self.journal.lag_seconds().ceil() as u32;
            match self.check(&front, checked_until, journal_behind).await {
                Ok(now) => {
                    checked_until = now;
                    journal_behind = behind_now;
                }
                Err(error) => {
                    self.metrics.race_check_errors_total.inc();
                    tracing::warn!(%error, "checking for orders two nodes wrote at once failed; will retry");
                    journal_behind = journal_behind.max(behind_now);
                }
            }
            if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                pruned_at = Some(Instant::now());
                // The wall clock, as for the dedup log: the log's days are ClickHouse's.
                let keep_since = OffsetDateTime::now_utc() - LOG_KEPT;
                if let Err(error) = self
                    .store
                    .drop_log_days_before("conversion_stamps", keep_since)
                    .await
                {
                    tracing::warn!(%error, "dropping old days of the conversion stamp log failed");
                }
            }
        }
    }

    /// One check of what was logged since `checked_until` (server seconds); returns the
    /// server time it covered up to.
    async fn check(
        &mut self,
        front: &DedupFront,
        checked_until: u32,
        journal_behind: u32,
    ) -> Result<u32, StoreError> {
        let now = self.store.server_now().await?;
        // A journal behind by L seconds ships now what it took L seconds ago: a stamp
        // logged then (a shipment whose conversions went in and whose commissions are
        // still being retried) or another node's stamp of the same order from then.
        let recent_since = checked_until
            .saturating_sub(VISIBILITY_MARGIN_SECONDS)
            .saturating_sub(journal_behind);
        let compare_since = recent_since.saturating_sub(self.window_seconds());
        let races = self.store.stamp_races(recent_since, compare_since).await?;
        if races.is_empty() {
            return Ok(now);
        }
        // Reads overlap, and a repair logs the stamp it keeps again: a race is read again
        // for a while after it was mended (here or by another node). Each read confirms
        // against the copies, so one whose second copy was still being written when an
        // earlier read found it settled is repaired now.
        let left = self.store.races_left_in_copies(&races).await?;
        if !left.is_empty() {
            let repaired = self.store.repair_races(&left).await?;
            // The repair's INSERT marks the survivor's day for the report rollups; a stamp
            // that lost may have counted on another day (the race straddled midnight).
            self.store.mark_report_days(&stamped_days(&left)).await?;
            self.metrics.races_repaired_total.inc_by(repaired as u64);
            tracing::warn!(
                conversions = repaired,
                "repaired conversions that two nodes wrote with different creation stamps"
            );
        }
        // Settled races, new to this node: whichever node repaired them, this one's cache
        // may hold the stamp that lost.
        let settled_now = Instant::now();
        self.handled
            .retain(|_, at| settled_now.duration_since(*at) <= self.config.window * 2);
        let settled: Vec<&StampRace> = races
            .iter()
            .filter(|race| !left.contains(race) && !self.handled.contains_key(&handled_key(race)))
            .collect();
        if settled.is_empty() {
            return Ok(now);
        }
        let ids: Vec<_> = settled.iter().map(|race| race.conversion.clone()).collect();
        for stored in self.store.conversions_by_id(&ids).await? {
            front.refresh(Arc::new(stored)).await;
        }
        for race in settled {
            self.handled.insert(handled_key(race), settled_now);
        }
        self.metrics.races_found_total.inc_by(ids.len() as u64);
        Ok(now)
    }

    fn window_seconds(&self) -> u32 {
        u32::try_from(self.config.window.as_secs()).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use attributor::domain::{AffiliateId, BrandId, ConversionId};

    #[test]
    fn a_race_across_midnight_marks_both_days_of_its_brand() {
        let brand = BrandId::parse("brd_0000000000000001").unwrap();
        let race = |order: &str, stamps: Vec<u32>| StampRace {
            conversion: ConversionId::derive(&brand, order),
            brand: brand.clone(),
            affiliate: AffiliateId::parse("usr_0000000000000001").unwrap(),
            stamps,
        };
        // 2026-12-01 23:59:59 and 2026-12-02 00:00:01 UTC; another race on the 2nd.
        let days = stamped_days(&[
            race("o-1", vec![1_796_169_599, 1_796_169_601]),
            race("o-2", vec![1_796_169_700, 1_796_169_705]),
        ]);
        assert_eq!(
            days,
            [
                (brand.to_string(), "2026-12-01".to_owned()),
                (brand.to_string(), "2026-12-02".to_owned()),
            ]
        );
    }
}
