//! The journal's storage: a directory of segments, each an SQLite database in WAL mode that
//! holds a run of records keyed by sequence number. `benches/benches/journal_engines.rs`
//! says why SQLite (its numbers against redb, fjall and a bare file): one fdatasync per
//! commit, a torn or failed write rolled back by SQLite itself and never buried under later
//! ones, and a full or read-only disk that fails one transaction and leaves the file
//! usable when space returns.
//!
//! Why segments: a journal is a queue, written at one end and shipped from the other. In
//! one database the shipper's deletes and SQLite's checkpoints (copying the log into the
//! file, and syncing that) compete with the appends for the disk: measured at 10k
//! conversions a second, the checkpoints alone tripled the p99 of a 201. Here a segment's
//! records live in its write-ahead log and are never checkpointed or deleted: appends go to
//! the newest segment until it holds `SEGMENT_BYTES` (or has been shipped and is older than
//! `SEGMENT_MAX_AGE`), and a segment whose every record is in ClickHouse is removed whole,
//! its files unlinked. How far shipping got is kept in `shipped` beside the segments, so a
//! restart does not ship again what the active segment held before (if that note is lost,
//! the records are shipped again, harmlessly).
//!
//! Why a shipped segment's log is kept as the next one's (as PostgreSQL recycles its WAL
//! files): a commit that lengthens a file must also commit the file's new size, and on
//! ext4 that is a filesystem journal commit shared with every other file being created or
//! grown, ClickHouse's parts included; a commit into blocks the file already has is a
//! data write and a cache flush. Measured beside a service taking 5,000 conversions a
//! second, an 8 KB fdatasync had a p99 of 4.2-4.6 ms and a maximum of 9-54 ms appending,
//! and 1.5-1.8 ms and 6-11 ms overwriting. The kept log's header is zeroed (and synced)
//! first, so SQLite reads it as an empty log; the old frames after the new ones carry the
//! old log's salts, which is how SQLite itself tells a reused log's stale frames.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags, params};

/// Write-ahead log bytes past which appends move to a new segment.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// A segment whose records are all shipped is closed this long after it was opened, so
/// that a quiet node does not keep shipped records on disk for long.
const SEGMENT_MAX_AGE: Duration = Duration::from_secs(30);
/// How long a connection waits for another's lock before the statement fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const SHIPPED_FILE: &str = "shipped";
/// The next segment, prepared in a shipped segment's write-ahead log (`spare.sqlite-wal`).
const SPARE: &str = "spare.sqlite";
const PREFIX: &str = "segment-";
const SUFFIX: &str = ".sqlite";

pub(super) struct Engine {
    dir: PathBuf,
    /// Segments by first sequence number, oldest first.
    segments: Mutex<BTreeMap<u64, Arc<Segment>>>,
    /// The segment appends go to; `None` until the first append after opening a new one.
    active: Mutex<Option<Active>>,
    /// The last sequence number ClickHouse has.
    shipped_through: AtomicU64,
    /// Record bytes past which appends move to a new segment (`SEGMENT_BYTES`; smaller in
    /// tests).
    segment_bytes: u64,
    /// Held while the spare segment is prepared: a rotation never takes one half made.
    spare: Mutex<()>,
}

struct Segment {
    path: PathBuf,
    /// For the shipper's scans and for point reads.
    reader: Mutex<Connection>,
    /// The last sequence number written to it (0 while empty).
    last_seq: AtomicU64,
}

struct Active {
    segment: Arc<Segment>,
    writer: Connection,
    bytes: u64,
    opened: Instant,
}

/// What opening found besides the records.
#[derive(Debug, Default)]
pub(super) struct OpenReport {
    /// Bytes of partial frames at the ends of write-ahead logs: appends being written when
    /// the process stopped, never acknowledged; SQLite discards them.
    pub torn_tail_bytes: Option<u64>,
    /// Whole frames of write-ahead logs that SQLite did not take back, with the segment:
    /// a frame that fails its checksum ends the log's recovery there (the checksums are
    /// cumulative), so these are a damaged frame and whatever followed it.
    pub discarded_frames: Vec<(PathBuf, u64)>,
    /// Segments SQLite could not read, moved aside, with how many of their records could
    /// still be read and were kept.
    pub set_aside: Vec<(PathBuf, usize)>,
}

#[derive(Debug, thiserror::Error)]
pub(super) enum EngineError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl EngineError {
    fn is_corruption(&self) -> bool {
        matches!(
            self,
            EngineError::Sqlite(error) if matches!(
                error.sqlite_error_code(),
                Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
            )
        )
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
    move |source| EngineError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Engine {
    /// Opens (or creates) the journal in `dir`, calling `each` with every record not yet
    /// shipped, in sequence order. A segment SQLite reports as damaged is moved aside after
    /// its readable records are copied into a fresh one: a bad journal is logged, never a
    /// crash loop.
    pub fn open(
        dir: &Path,
        mut each: impl FnMut(u64, &[u8]),
    ) -> Result<(Engine, OpenReport), EngineError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        // A prepared segment is only a head start; one a stop interrupted is not worth
        // judging.
        remove_files(&dir.join(SPARE));
        let shipped_through = read_shipped(dir);
        let mut report = OpenReport::default();
        let mut segments = BTreeMap::new();
        for (first_seq, path) in segment_files(dir)? {
            let log = wal_shape(&path);
            if log.torn_bytes > 0 {
                *report.torn_tail_bytes.get_or_insert(0) += log.torn_bytes;
            }
            let mut records = Vec::new();
            // Only what is unshipped is read into memory: a segment that was being shipped
            // when the node stopped may hold hundreds of MB of records ClickHouse has.
            let segment = match Segment::recover(
                &path,
                log.frames,
                shipped_through,
                &mut report,
                &mut records,
            ) {
                Ok(segment) => segment,
                Err(error) if error.is_corruption() => {
                    let aside = set_aside(&path)?;
                    tracing::error!(
                        path = %path.display(),
                        moved_to = %aside.display(),
                        salvaged = records.len(),
                        %error,
                        "a journal segment is damaged; moved it aside and kept the records that could be read"
                    );
                    report.set_aside.push((aside, records.len()));
                    let segment = Segment::open(&path)?;
                    let mut writer = segment_writer(&path)?;
                    insert(
                        &mut writer,
                        records.iter().map(|(seq, value)| (*seq, value.as_slice())),
                    )?;
                    let last = records.last().map_or(0, |(seq, _)| *seq);
                    segment.last_seq.store(last, Ordering::Release);
                    segment
                }
                Err(error) => return Err(error),
            };
            // Empty too: a segment made just before a stop, or one whose log was being
            // handed to the next segment (its header already zeroed).
            let last = segment.last_seq.load(Ordering::Acquire);
            if last <= shipped_through {
                remove_files(&path);
                continue;
            }
            for (seq, value) in &records {
                each(*seq, value);
            }
            segments.insert(first_seq, Arc::new(segment));
        }
        let engine = Engine {
            dir: dir.to_owned(),
            segments: Mutex::new(segments),
            active: Mutex::new(None),
            shipped_through: AtomicU64::new(shipped_through),
            segment_bytes: SEGMENT_BYTES,
            spare: Mutex::new(()),
        };
        Ok((engine, report))
    }

    /// Writes `values` under `first_seq`, `first_seq + 1`, … in one transaction: on return
    /// they are fdatasync'd, all of them, or none is stored.
    pub fn append<'a>(
        &self,
        first_seq: u64,
        values: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), EngineError> {
        let mut active = self.active.lock();
        if active.as_ref().is_none_or(|a| self.should_rotate(a)) {
            *active = Some(self.new_segment(first_seq)?);
        }
        let current = active.as_mut().expect("a segment was just opened");
        let mut bytes = 0;
        let mut last = first_seq;
        let values = values.into_iter().inspect(|value| {
            bytes += value.len() as u64;
        });
        insert(
            &mut current.writer,
            (first_seq..).zip(values).inspect(|(seq, _)| last = *seq),
        )?;
        current.bytes += bytes;
        current.segment.last_seq.store(last, Ordering::Release);
        Ok(())
    }

    /// Full, or all shipped and old enough: appends move on to a new segment, and the
    /// shipper removes this one once it has shipped it.
    fn should_rotate(&self, active: &Active) -> bool {
        let last = active.segment.last_seq.load(Ordering::Acquire);
        active.bytes >= self.segment_bytes
            || (last != 0
                && last <= self.shipped_through.load(Ordering::Acquire)
                && active.opened.elapsed() >= SEGMENT_MAX_AGE)
    }

    fn new_segment(&self, first_seq: u64) -> Result<Active, EngineError> {
        let path = segment_path(&self.dir, first_seq);
        self.take_spare(&path)?;
        let writer = segment_writer(&path)?;
        let segment = Arc::new(Segment::open(&path)?);
        self.segments.lock().insert(first_seq, Arc::clone(&segment));
        Ok(Active {
            segment,
            writer,
            bytes: 0,
            opened: Instant::now(),
        })
    }

    /// Calls `each` with the records from `first` through `last`, in order, at most `limit`
    /// of them.
    pub fn scan(
        &self,
        first: u64,
        last: u64,
        limit: usize,
        mut each: impl FnMut(u64, &[u8]),
    ) -> Result<(), EngineError> {
        let mut left = limit;
        for segment in self.segments_overlapping(first, last) {
            if left == 0 {
                break;
            }
            let reader = segment.reader.lock();
            let mut statement = reader.prepare_cached(
                "SELECT seq, value FROM records WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq LIMIT ?3",
            )?;
            let mut rows = statement.query(params![
                seq_to(first),
                seq_to(last),
                i64::try_from(left).unwrap_or(i64::MAX)
            ])?;
            while let Some(row) = rows.next()? {
                let value = row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
                each(seq_from(row.get(0)?), value);
                left -= 1;
            }
        }
        Ok(())
    }

    pub fn get(&self, seq: u64) -> Result<Option<Vec<u8>>, EngineError> {
        let Some(segment) = self.segments_overlapping(seq, seq).pop() else {
            return Ok(None);
        };
        let reader = segment.reader.lock();
        let mut statement = reader.prepare_cached("SELECT value FROM records WHERE seq = ?1")?;
        let mut rows = statement.query(params![seq_to(seq)])?;
        Ok(match rows.next()? {
            Some(row) => Some(row.get(0)?),
            None => None,
        })
    }

    /// ClickHouse has every record through `last`: notes it, and removes the segments that
    /// hold nothing else (never the one appends go to).
    pub fn release_through(&self, last: u64) -> Result<(), EngineError> {
        self.shipped_through.fetch_max(last, Ordering::AcqRel);
        write_shipped(&self.dir, last)?;
        let active_first = self.active.lock().as_ref().map(|a| a.segment.path.clone());
        let removed: Vec<Arc<Segment>> = {
            let mut segments = self.segments.lock();
            let done: Vec<u64> = segments
                .iter()
                .filter(|(_, segment)| {
                    let segment_last = segment.last_seq.load(Ordering::Acquire);
                    segment_last != 0
                        && segment_last <= last
                        && active_first.as_ref() != Some(&segment.path)
                })
                .map(|(first, _)| *first)
                .collect();
            done.iter()
                .filter_map(|first| segments.remove(first))
                .collect()
        };
        // Outside the lock, which a rotation takes: preparing a segment waits on the disk.
        for segment in removed {
            let path = segment.path.clone();
            // Out of the map, nothing can take a new reference; with none left, no reader
            // can see the log change under it.
            let unread = Arc::strong_count(&segment) == 1;
            drop(segment);
            if unread {
                self.prepare_spare(&path);
            }
            remove_files(&path);
        }
        Ok(())
    }

    /// Prepares the next segment from a shipped one's log, unless one is prepared already:
    /// its database file, and the log with its header zeroed (and synced: a kept log must
    /// never be read as holding records) and the records table written into it. Done here,
    /// on the shipper's thread, because making files and their first commits each wait for
    /// a filesystem-journal commit: done at rotation, they held every append 50-100 ms.
    /// Best effort: a log that cannot be kept is removed with its segment.
    fn prepare_spare(&self, segment: &Path) {
        let _preparing = self.spare.lock();
        let spare = self.dir.join(SPARE);
        if spare.exists() {
            return;
        }
        let prepared = (|| {
            // SQLite deletes a log it finds beside an empty file: the file comes first.
            let database = connect(&spare)?;
            database.pragma_update(None, "journal_mode", "WAL")?;
            drop(database);
            let log = wal_path(segment);
            zero_header(&log)
                .and_then(|()| fs::rename(&log, wal_path(&spare)))
                .map_err(io(&log))?;
            drop(segment_writer(&spare)?);
            Ok::<_, EngineError>(())
        })();
        if let Err(error) = prepared {
            tracing::debug!(%error, "could not prepare the next journal segment");
            remove_files(&spare);
        }
    }

    /// Moves the prepared segment, if there is one, to `path`. The database file moves
    /// first: a stop between the two leaves an empty segment, removed at start.
    fn take_spare(&self, path: &Path) -> Result<(), EngineError> {
        // One being prepared is left for the next rotation rather than waited for.
        let Some(_prepared) = self.spare.try_lock() else {
            return Ok(());
        };
        let spare = self.dir.join(SPARE);
        if !spare.exists() || !wal_path(&spare).exists() {
            return Ok(());
        }
        let _ = fs::remove_file(shm_path(&spare));
        for (from, to) in [
            (spare.clone(), path.to_owned()),
            (wal_path(&spare), wal_path(path)),
        ] {
            if let Err(error) = fs::rename(&from, &to) {
                tracing::debug!(path = %from.display(), %error, "could not take the prepared journal segment");
                remove_files(path);
                remove_files(&spare);
                return Ok(());
            }
        }
        // The log's first commit will not sync its new name (the file does not grow, so
        // fdatasync writes no metadata): the directory is synced here, or a power cut could
        // leave acknowledged records in a file no longer called a segment.
        fs::File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io(&self.dir))
    }

    /// The lowest sequence number new records may take: above everything shipped, so that
    /// the note of what was shipped never covers a record that was not.
    pub fn next_seq_floor(&self) -> u64 {
        self.shipped_through.load(Ordering::Acquire) + 1
    }

    /// Bytes of every segment's files.
    pub fn disk_bytes(&self) -> u64 {
        self.segments
            .lock()
            .values()
            .flat_map(|segment| [segment.path.clone(), wal_path(&segment.path)])
            .chain([self.dir.join(SPARE), wal_path(&self.dir.join(SPARE))])
            .filter_map(|path| fs::metadata(path).ok())
            .map(|metadata| metadata.len())
            .sum()
    }

    fn segments_overlapping(&self, first: u64, last: u64) -> Vec<Arc<Segment>> {
        let segments = self.segments.lock();
        // The segment holding `first` starts at or before it; the others start within.
        let start = segments
            .range(..=first)
            .next_back()
            .map_or(first, |(start, _)| *start);
        segments
            .range(start..=last)
            .map(|(_, segment)| Arc::clone(segment))
            .collect()
    }
}

impl Segment {
    /// Opens a segment left by an earlier run: takes its log into the database file, where
    /// each record's own checksum guards it from here on, noting any frames SQLite
    /// discarded, then reads its records.
    fn recover(
        path: &Path,
        frames_on_disk: u64,
        shipped_through: u64,
        report: &mut OpenReport,
        records: &mut Vec<(u64, Vec<u8>)>,
    ) -> Result<Segment, EngineError> {
        let segment = Segment::open(path)?;
        {
            let reader = segment.reader.lock();
            // A passive checkpoint answers with the frames SQLite took back; a truncating
            // one answers after the log is emptied, with nothing to compare.
            let frames_recovered: i64 =
                reader.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))?;
            reader.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            let recovered = u64::try_from(frames_recovered).unwrap_or(0);
            if frames_on_disk > recovered {
                report
                    .discarded_frames
                    .push((path.to_owned(), frames_on_disk - recovered));
            }
        }
        drop(segment);
        Segment::open_and_scan(path, shipped_through, records)
    }

    /// Opens the segment, reads its records after `shipped_through` into `records`, and
    /// notes its last sequence number.
    fn open_and_scan(
        path: &Path,
        shipped_through: u64,
        records: &mut Vec<(u64, Vec<u8>)>,
    ) -> Result<Segment, EngineError> {
        let segment = Segment::open(path)?;
        {
            let reader = segment.reader.lock();
            let mut statement =
                reader.prepare("SELECT seq, value FROM records WHERE seq > ?1 ORDER BY seq")?;
            let mut rows = statement.query(params![seq_to(shipped_through)])?;
            while let Some(row) = rows.next()? {
                records.push((seq_from(row.get(0)?), row.get(1)?));
            }
            let last: Option<i64> =
                reader.query_row("SELECT max(seq) FROM records", [], |row| row.get(0))?;
            segment
                .last_seq
                .store(last.map_or(0, seq_from), Ordering::Release);
        }
        Ok(segment)
    }

    fn open(path: &Path) -> Result<Segment, EngineError> {
        let reader = connect(path)?;
        reader.pragma_update(None, "journal_mode", "WAL")?;
        reader.execute_batch(
            "CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY, value BLOB NOT NULL)",
        )?;
        Ok(Segment {
            path: path.to_owned(),
            reader: Mutex::new(reader),
            last_seq: AtomicU64::new(0),
        })
    }
}

/// The connection that appends to a segment. FULL: every commit fdatasyncs the
/// write-ahead log, and that is the durability point. The log is never checkpointed: the
/// records live in it until the segment is removed.
fn segment_writer(path: &Path) -> Result<Connection, EngineError> {
    let writer = connect(path)?;
    writer.pragma_update(None, "journal_mode", "WAL")?;
    writer.pragma_update(None, "synchronous", "FULL")?;
    writer.pragma_update(None, "wal_autocheckpoint", 0)?;
    writer.execute_batch(
        "CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY, value BLOB NOT NULL)",
    )?;
    Ok(writer)
}

fn insert<'a>(
    writer: &mut Connection,
    records: impl IntoIterator<Item = (u64, &'a [u8])>,
) -> Result<(), EngineError> {
    let transaction = writer.transaction()?;
    {
        let mut insert =
            transaction.prepare_cached("INSERT INTO records (seq, value) VALUES (?1, ?2)")?;
        for (seq, value) in records {
            insert.execute(params![seq_to(seq), value])?;
        }
    }
    transaction.commit()?;
    Ok(())
}

fn connect(path: &Path) -> Result<Connection, EngineError> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.set_prepared_statement_cache_capacity(8);
    // Closing the last connection would otherwise copy the log into the file: the very
    // checkpoint segments exist to avoid.
    connection.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    Ok(connection)
}

/// Segment files in `dir`, by first sequence number.
fn segment_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>, EngineError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(first) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.strip_suffix(SUFFIX))
            .and_then(|digits| digits.parse::<u64>().ok())
        {
            found.push((first, path));
        }
    }
    found.sort();
    Ok(found)
}

fn read_shipped(dir: &Path) -> u64 {
    fs::read_to_string(dir.join(SHIPPED_FILE))
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

/// Replaced by rename, not synced: a note lost in a crash only means shipping again.
fn write_shipped(dir: &Path, last: u64) -> Result<(), EngineError> {
    let temporary = dir.join(format!("{SHIPPED_FILE}.new"));
    fs::write(&temporary, last.to_string()).map_err(io(&temporary))?;
    let path = dir.join(SHIPPED_FILE);
    fs::rename(&temporary, &path).map_err(io(&path))
}

/// Sequence numbers are SQLite integers: they start at 1 and grow by one per record, so
/// they stay far below 2^63.
fn seq_to(seq: u64) -> i64 {
    i64::try_from(seq).expect("sequence numbers stay below 2^63")
}

fn seq_from(seq: i64) -> u64 {
    u64::try_from(seq).unwrap_or(0)
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{PREFIX}{first_seq:020}{SUFFIX}"))
}

fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

fn shm_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-shm");
    PathBuf::from(name)
}

fn remove_files(path: &Path) {
    for file in [path.to_owned(), wal_path(path), shm_path(path)] {
        if let Err(error) = fs::remove_file(&file)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %file.display(), %error, "removing a shipped journal segment failed");
        }
    }
}

/// The frames a write-ahead log holds on disk, and the bytes of a last frame cut short.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct WalShape {
    frames: u64,
    torn_bytes: u64,
}

/// Bytes of a write-ahead log's header; zeroed, the log reads as empty.
const WAL_HEADER_BYTES: usize = 32;

/// Makes the write-ahead log at `log` read as empty, durably.
fn zero_header(log: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let file = fs::OpenOptions::new().write(true).open(log)?;
    file.write_all_at(&[0u8; WAL_HEADER_BYTES], 0)?;
    file.sync_data()
}

/// A write-ahead log is a 32-byte header and frames of 24 bytes plus a page. The frames
/// written since the header carry its two salts; a reused log's older frames do not, and
/// end the count. A length off the frame grid after the last of them means the last frame
/// was cut short by a crash.
fn wal_shape(path: &Path) -> WalShape {
    use std::os::unix::fs::FileExt;
    const FRAME_HEADER: u64 = 24;
    const HEADER: u64 = WAL_HEADER_BYTES as u64;
    let Ok(file) = fs::File::open(wal_path(path)) else {
        return WalShape::default();
    };
    let length = file.metadata().map_or(0, |metadata| metadata.len());
    let mut header = [0u8; WAL_HEADER_BYTES];
    if length < HEADER || file.read_exact_at(&mut header, 0).is_err() {
        return WalShape {
            frames: 0,
            torn_bytes: length,
        };
    }
    let page_size = u64::from(u32::from_be_bytes(
        header[8..12].try_into().expect("4 bytes"),
    ));
    if page_size == 0 {
        return WalShape::default();
    }
    let salts = &header[16..24];
    let frame = FRAME_HEADER + page_size;
    let mut frames = 0;
    let mut offset = HEADER;
    let mut frame_header = [0u8; FRAME_HEADER as usize];
    while offset + frame <= length {
        if file.read_exact_at(&mut frame_header, offset).is_err() || &frame_header[8..16] != salts {
            return WalShape {
                frames,
                torn_bytes: 0,
            };
        }
        frames += 1;
        offset += frame;
    }
    WalShape {
        frames,
        torn_bytes: length - offset,
    }
}

fn set_aside(path: &Path) -> Result<PathBuf, EngineError> {
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let aside = path.with_extension(format!("sqlite.damaged-{stamp}"));
    for (from, to) in [
        (path.to_owned(), aside.clone()),
        (wal_path(path), wal_path(&aside)),
    ] {
        if from.exists() {
            fs::rename(&from, &to).map_err(io(&from))?;
        }
    }
    let _ = fs::remove_file(shm_path(path));
    Ok(aside)
}

#[cfg(test)]
mod recycling_tests {
    use super::*;

    fn open(dir: &Path) -> (Engine, OpenReport, Vec<(u64, Vec<u8>)>) {
        let mut records = Vec::new();
        let (mut engine, report) =
            Engine::open(dir, |seq, value| records.push((seq, value.to_vec()))).unwrap();
        // Every append after the first opens a new segment.
        engine.segment_bytes = 1;
        (engine, report, records)
    }

    /// Record 1 (`first`) in one segment and record 2 (`second`) in the next, shipped
    /// through `shipped`.
    fn two_segments(dir: &Path, first: &[u8], shipped: u64) -> Engine {
        let (engine, _, _) = open(dir);
        engine.append(1, [first]).unwrap();
        engine.append(2, [b"second".as_slice()]).unwrap();
        engine.release_through(shipped).unwrap();
        engine
    }

    fn scan(engine: &Engine, first: u64, last: u64) -> Vec<(u64, Vec<u8>)> {
        let mut found = Vec::new();
        engine
            .scan(first, last, 100, |seq, value| {
                found.push((seq, value.to_vec()))
            })
            .unwrap();
        found
    }

    #[test]
    fn a_shipped_segments_log_is_reused_and_its_records_never_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![7u8; 64 * 1024];
        let engine = two_segments(dir.path(), &big, 1);
        let spare = wal_path(&dir.path().join(SPARE));
        assert!(spare.exists(), "the shipped segment's log is kept");
        let first_log = fs::metadata(&spare).unwrap().len();
        assert!(
            first_log > big.len() as u64,
            "it is the first segment's whole log"
        );

        engine.append(3, [b"third".as_slice()]).unwrap();
        assert!(!spare.exists(), "the next segment took the kept log");
        let third = segment_path(dir.path(), 3);
        let reused = fs::metadata(wal_path(&third)).unwrap().len();
        assert_eq!(
            reused, first_log,
            "the new records were written into the old blocks"
        );
        assert!(
            wal_shape(&third).frames * 4_000 < reused,
            "the old frames are still on disk behind the new ones"
        );
        assert_eq!(
            scan(&engine, 1, 3),
            [(2, b"second".to_vec()), (3, b"third".to_vec())]
        );
        drop(engine);

        let (engine, report, records) = open(dir.path());
        assert_eq!(records, [(2, b"second".to_vec()), (3, b"third".to_vec())]);
        assert!(
            report.discarded_frames.is_empty(),
            "an old log's frames are not damage: {:?}",
            report.discarded_frames
        );
        assert_eq!(report.torn_tail_bytes, None);
        assert_eq!(scan(&engine, 1, 3).len(), 2);
    }

    #[test]
    fn a_segment_left_empty_by_a_stop_mid_hand_over_is_removed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        drop(two_segments(dir.path(), b"first", 2));
        // The stop came after the active segment's header was zeroed for reuse.
        let second = segment_path(dir.path(), 2);
        zero_header(&wal_path(&second)).unwrap();

        let (engine, report, records) = open(dir.path());
        assert!(records.is_empty());
        assert!(report.discarded_frames.is_empty());
        assert!(!second.exists(), "the empty segment is gone");
        engine.append(3, [b"third".as_slice()]).unwrap();
        assert_eq!(scan(&engine, 1, 3), [(3, b"third".to_vec())]);
    }

    #[test]
    fn a_spare_left_by_a_stop_is_removed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let engine = two_segments(dir.path(), b"first", 1);
        let spare = dir.path().join(SPARE);
        assert!(spare.exists() && wal_path(&spare).exists());
        drop(engine);

        let (engine, report, records) = open(dir.path());
        assert!(!spare.exists() && !wal_path(&spare).exists());
        assert_eq!(records, [(2, b"second".to_vec())]);
        assert!(report.discarded_frames.is_empty());
        engine.append(3, [b"third".as_slice()]).unwrap();
        assert_eq!(scan(&engine, 2, 3).len(), 2);
    }
}
