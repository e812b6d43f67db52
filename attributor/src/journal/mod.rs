//! The node's journal: where a conversion is durable before ClickHouse has it.
//!
//! Attribution workers [`Journal::append`] each batch of conversion versions (new ones and
//! status changes) with one fdatasync, and only then answer the waiting requests; clicks are
//! appended in the background. The [`crate::shipper`] reads records oldest first, writes
//! them to ClickHouse and [`Journal::release`]s what ClickHouse acknowledged. Until then the
//! records are also indexed in memory ([`Unshipped`]), so this node answers replays, GETs
//! and PATCHes of conversions ClickHouse has not seen yet.
//!
//! Appends are refused, not queued, when the journal holds `max_bytes` of unshipped records
//! or the disk will not take them: the caller answers 503 and nothing is acknowledged.

mod engine;
mod entry;
mod group_commit;
mod pending;
mod unshipped;

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

pub use entry::{DecodeError, Decoded, Entry};
pub use unshipped::Unshipped;

use engine::{Engine, EngineError};
use group_commit::GroupCommit;
use pending::{Batch, Pending};
use unshipped::Indexed;

use crate::clock::Clock;
use crate::domain::ConversionId;
use crate::metrics::JournalMetrics;
use crate::store::ConversionRow;

#[derive(Debug, Clone)]
pub struct JournalConfig {
    /// Directory of the journal's files.
    pub dir: PathBuf,
    /// Encoded bytes of unshipped records past which appends are refused.
    pub max_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    #[error(
        "the journal is full: {pending_bytes} bytes wait for ClickHouse, the limit is {max_bytes}"
    )]
    Full { pending_bytes: u64, max_bytes: u64 },
    #[error("the journal cannot be written: {0}")]
    Unwritable(String),
    #[error("the journal cannot be read: {0}")]
    Unreadable(String),
    #[error("the journal in {dir} cannot be opened: {reason}")]
    CannotOpen { dir: PathBuf, reason: String },
}

/// What [`Journal::open`] found.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Records waiting to be shipped.
    pub records: u64,
    /// The latest version of the most recently journaled of them (at most
    /// `RECENT_CONVERSIONS_KEPT`), oldest first: for the dedup cache, so that a replay
    /// right after a restart is answered from memory, whether or not ClickHouse is there.
    pub recent_conversions: Vec<ConversionRow>,
    /// Damaged records dropped, by sequence number.
    pub dropped: Vec<u64>,
    /// Bytes of an append cut short by a crash (never acknowledged), dropped.
    pub torn_tail_bytes: Option<u64>,
    /// Whole log frames SQLite did not take back: an append cut short by a crash, or a
    /// damaged frame and those after it in its segment.
    pub discarded_frames: u64,
}

/// How many recovered conversions are handed back for the dedup cache.
const RECENT_CONVERSIONS_KEPT: usize = 30_000;

pub struct Journal {
    engine: Engine,
    config: JournalConfig,
    /// Appends from all threads, written in groups.
    commit: GroupCommit<Append, Result<RangeInclusive<u64>, JournalError>>,
    /// The next sequence number; only the group's writer takes it.
    next_seq: Mutex<u64>,
    pending: Pending,
    unshipped: Unshipped,
    clock: Clock,
    metrics: JournalMetrics,
}

/// One caller's append, encoded before it joins a group.
struct Append {
    encoded: Vec<Vec<u8>>,
    bytes: u64,
    /// The conversions among the entries, by offset, as the index keeps them.
    indexed: Vec<(u64, Indexed)>,
    journaled_at_ms: u64,
}

/// Records read for shipping: up to a chunk of a range, oldest first.
pub struct ShipChunk {
    pub records: Vec<(u64, Entry)>,
    /// The last sequence number read, damaged records included: the next chunk starts
    /// after it. `None` when the range holds nothing more.
    pub read_through: Option<u64>,
}

impl Journal {
    /// Opens the journal, dropping (and logging) what a crash or damage left unreadable,
    /// and indexes every unshipped record.
    pub fn open(
        config: JournalConfig,
        clock: Clock,
        metrics: JournalMetrics,
    ) -> Result<(Journal, Recovery), JournalError> {
        let cannot_open = |error: EngineError| JournalError::CannotOpen {
            dir: config.dir.clone(),
            reason: error.to_string(),
        };
        let mut found: Vec<(u64, u64, Decoded)> = Vec::new();
        let mut dropped = Vec::new();
        let (engine, report) = Engine::open(&config.dir, |seq, bytes| match Entry::decode(bytes) {
            Ok(decoded) => found.push((seq, bytes.len() as u64, decoded)),
            Err(error) => {
                tracing::error!(seq, %error, "dropping a damaged journal record");
                dropped.push(seq);
            }
        })
        .map_err(cannot_open)?;
        metrics.corrupt_records_total.inc_by(dropped.len() as u64);
        if let Some(bytes) = report.torn_tail_bytes {
            tracing::warn!(
                bytes,
                "the journal ended in a partial write: the append in progress when the process stopped was never acknowledged and is dropped"
            );
        }
        for (path, frames) in &report.discarded_frames {
            tracing::warn!(
                path = %path.display(),
                frames,
                "log frames of a journal segment were not taken back: an append cut short by a crash (never acknowledged), or a damaged frame and those after it"
            );
        }
        for (path, salvaged) in &report.set_aside {
            tracing::error!(path = %path.display(), salvaged, "damaged journal segment set aside");
        }

        let unshipped = Unshipped::default();
        let pending = Pending::default();
        let mut recent = std::collections::VecDeque::new();
        let mut next_seq = engine.next_seq_floor();
        for (seq, bytes, decoded) in &found {
            if let Entry::Conversion(row) = &decoded.entry {
                unshipped.note(Indexed::of(row).map(|indexed| (*seq, indexed)));
                if recent.len() == RECENT_CONVERSIONS_KEPT {
                    recent.pop_front();
                }
                recent.push_back(row.clone());
            }
            pending.push(Batch {
                seqs: *seq..=*seq,
                bytes: *bytes,
                journaled_at_ms: decoded.journaled_at_ms,
            });
            next_seq = next_seq.max(seq + 1);
        }
        let recovery = Recovery {
            records: found.len() as u64,
            recent_conversions: recent.into(),
            dropped,
            torn_tail_bytes: report.torn_tail_bytes,
            discarded_frames: report.discarded_frames.iter().map(|(_, n)| n).sum(),
        };
        tracing::info!(
            dir = %config.dir.display(),
            pending = recovery.records,
            dropped = recovery.dropped.len(),
            "journal opened"
        );
        metrics
            .max_bytes
            .set(i64::try_from(config.max_bytes).unwrap_or(i64::MAX));
        let journal = Journal {
            engine,
            config,
            commit: GroupCommit::new(),
            next_seq: Mutex::new(next_seq),
            pending,
            unshipped,
            clock,
            metrics,
        };
        journal.sample_metrics();
        Ok((journal, recovery))
    }

    /// Writes `entries` durably and returns their sequence numbers: either every entry is
    /// journaled or none is. Appends from several threads at once share one fdatasync
    /// ([`GroupCommit`]).
    pub fn append(&self, entries: &[Entry]) -> Result<RangeInclusive<u64>, JournalError> {
        let journaled_at = self.clock.now();
        let encoded: Vec<Vec<u8>> = entries
            .iter()
            .map(|entry| entry.encode(journaled_at))
            .collect();
        let request = Append {
            bytes: encoded.iter().map(|value| value.len() as u64).sum(),
            encoded,
            indexed: entries
                .iter()
                .enumerate()
                .filter_map(|(offset, entry)| match entry {
                    Entry::Conversion(row) => Some((offset as u64, Indexed::of(row)?)),
                    Entry::Click(_) | Entry::StatusChange(_) => None,
                })
                .collect(),
            journaled_at_ms: entry::unix_ms(journaled_at),
        };
        self.commit.submit(request, |group| self.write(group))
    }

    /// Writes one group of appends in one transaction; refuses, in order, those that would
    /// take the journal past its limit.
    fn write(&self, group: Vec<Append>) -> Vec<Result<RangeInclusive<u64>, JournalError>> {
        let mut outcomes: Vec<Option<Result<RangeInclusive<u64>, JournalError>>> =
            (0..group.len()).map(|_| None).collect();
        let mut next_seq = self.next_seq.lock().expect("journal lock poisoned");
        let mut pending_bytes = self.pending.bytes();
        let mut accepted = Vec::with_capacity(group.len());
        let mut seq = *next_seq;
        for (index, append) in group.into_iter().enumerate() {
            if pending_bytes + append.bytes > self.config.max_bytes {
                self.metrics
                    .refusals_total
                    .with_label_values(&["full"])
                    .inc();
                outcomes[index] = Some(Err(JournalError::Full {
                    pending_bytes,
                    max_bytes: self.config.max_bytes,
                }));
                continue;
            }
            pending_bytes += append.bytes;
            let seqs = seq..=seq + append.encoded.len() as u64 - 1;
            seq = seqs.end() + 1;
            accepted.push((index, seqs, append));
        }
        let values: Vec<&[u8]> = accepted
            .iter()
            .flat_map(|(_, _, append)| append.encoded.iter().map(Vec::as_slice))
            .collect();
        let started = Instant::now();
        let written = if values.is_empty() {
            Ok(())
        } else {
            self.engine.append(*next_seq, values.iter().copied())
        };
        match written {
            Ok(()) => {
                if !values.is_empty() {
                    self.metrics
                        .append_seconds
                        .observe(started.elapsed().as_secs_f64());
                    self.metrics.append_records.observe(values.len() as f64);
                }
                *next_seq = seq;
                for (index, seqs, append) in accepted {
                    // Indexed before the group is answered and before `pending` lists it:
                    // the shipper only ships what `pending` lists, so nothing can be shipped
                    // and forgotten before it is noted here.
                    let first = *seqs.start();
                    self.unshipped.note(
                        append
                            .indexed
                            .into_iter()
                            .map(|(offset, indexed)| (first + offset, indexed)),
                    );
                    self.pending.push(Batch {
                        seqs: seqs.clone(),
                        bytes: append.bytes,
                        journaled_at_ms: append.journaled_at_ms,
                    });
                    outcomes[index] = Some(Ok(seqs));
                }
            }
            Err(error) => {
                let error = JournalError::Unwritable(error.to_string());
                for (index, _, _) in accepted {
                    self.metrics
                        .refusals_total
                        .with_label_values(&["unwritable"])
                        .inc();
                    outcomes[index] = Some(Err(error.clone()));
                }
            }
        }
        outcomes
            .into_iter()
            .map(|outcome| outcome.expect("every append has an outcome"))
            .collect()
    }

    /// The sequence numbers of the oldest unshipped records, whole appends of them, up to
    /// about `max_records`.
    pub fn oldest_unshipped(&self, max_records: usize) -> Option<RangeInclusive<u64>> {
        self.pending.oldest(max_records as u64)
    }

    /// Up to `limit` records of `seqs`, oldest first: a shipment reads its range in chunks,
    /// so that its memory does not grow with the backlog. Damaged records are dropped and
    /// logged on the way.
    pub fn read(&self, seqs: RangeInclusive<u64>, limit: usize) -> Result<ShipChunk, JournalError> {
        let mut records = Vec::with_capacity(limit.min(1 << 16));
        let mut damaged = 0;
        let mut read_through = None;
        self.engine
            .scan(*seqs.start(), *seqs.end(), limit, |seq, bytes| {
                read_through = Some(seq);
                match Entry::decode(bytes) {
                    Ok(decoded) => records.push((seq, decoded.entry)),
                    Err(error) => {
                        tracing::error!(seq, %error, "dropping a damaged journal record");
                        damaged += 1;
                    }
                }
            })
            .map_err(|error| JournalError::Unreadable(error.to_string()))?;
        self.metrics.corrupt_records_total.inc_by(damaged);
        Ok(ShipChunk {
            records,
            read_through,
        })
    }

    /// ClickHouse has every record through `last`: forget them, then let the engine drop
    /// them.
    pub fn release_through(&self, last: u64) -> Result<(), JournalError> {
        self.unshipped.forget_through(last);
        self.pending.release_through(last);
        self.engine
            .release_through(last)
            .map_err(|error| JournalError::Unwritable(error.to_string()))
    }

    /// The latest unshipped version of a conversion this node journaled, if any.
    pub fn conversion(&self, id: &ConversionId) -> Result<Option<ConversionRow>, JournalError> {
        let Some(seq) = self.unshipped.seq_of(id) else {
            return Ok(None);
        };
        // Shipped and deleted since the index was read: ClickHouse has it now.
        let Some(bytes) = self
            .engine
            .get(seq)
            .map_err(|error| JournalError::Unreadable(error.to_string()))?
        else {
            return Ok(None);
        };
        match Entry::decode(&bytes) {
            Ok(Decoded {
                entry: Entry::Conversion(row),
                ..
            }) => Ok(Some(row)),
            Ok(_) => Ok(None),
            Err(error) => Err(JournalError::Unreadable(format!("record {seq}: {error}"))),
        }
    }

    pub fn unshipped(&self) -> &Unshipped {
        &self.unshipped
    }

    pub fn pending_records(&self) -> u64 {
        self.pending.records()
    }

    /// Refreshes the gauges; called when /metrics is scraped and by the shipper.
    pub fn sample_metrics(&self) {
        let now_ms = entry::unix_ms(self.clock.now());
        let metrics = &self.metrics;
        metrics
            .pending_records
            .set(i64::try_from(self.pending.records()).unwrap_or(i64::MAX));
        metrics
            .pending_bytes
            .set(i64::try_from(self.pending.bytes()).unwrap_or(i64::MAX));
        metrics
            .disk_bytes
            .set(i64::try_from(self.engine.disk_bytes()).unwrap_or(i64::MAX));
        let lag_ms = self
            .pending
            .oldest_journaled_at_ms()
            .map_or(0, |oldest| now_ms.saturating_sub(oldest));
        metrics.lag_seconds.set(lag_ms as f64 / 1000.0);
    }

    /// Seconds since the oldest unshipped record was journaled (0 when none waits).
    pub fn lag_seconds(&self) -> f64 {
        let now_ms = entry::unix_ms(self.clock.now());
        self.pending
            .oldest_journaled_at_ms()
            .map_or(0.0, |oldest| now_ms.saturating_sub(oldest) as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests;
