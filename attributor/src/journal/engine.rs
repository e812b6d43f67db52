//! The journal's storage: SQLite in WAL mode, one table of records keyed by sequence
//! number. `benches/benches/journal_engines.rs` says why SQLite (its numbers against redb,
//! fjall and a bare file); in short: one fdatasync per commit, a torn or failed write is
//! rolled back by SQLite itself and never buried under later ones, and a full or read-only
//! disk fails one transaction and leaves the file usable when space returns.
//!
//! Three connections, each behind its own lock. The writer takes every write: the group
//! commits of appends and the shipper's deletes, in short turns under a fair lock. (With a
//! second writing connection, whichever found the other's write lock would sleep in
//! SQLite's busy handler for milliseconds at a time; with an unfair lock, back-to-back
//! appends kept a delete waiting for up to 150 ms.) The shipper reads ranges on its own
//! connection and point reads (dedup, GET by id) have theirs; WAL mode lets readers run
//! beside the writer.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};

use rusqlite::{Connection, ErrorCode, OpenFlags, params};

const FILE_NAME: &str = "journal.sqlite";
/// How long a connection waits for another's lock (a delete, a checkpoint) before the
/// statement fails; far longer than any of them takes.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Deletes go in chunks of about a millisecond, so an append never waits long behind one.
const DELETE_CHUNK: u64 = 500;
/// After a checkpoint SQLite reuses the WAL from its start; past this it also truncates it.
const WAL_SIZE_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

pub(super) struct Engine {
    path: PathBuf,
    writer: Mutex<Connection>,
    shipper: Mutex<Connection>,
    reader: Mutex<Connection>,
}

/// What opening found besides the records.
#[derive(Debug, Default)]
pub(super) struct OpenReport {
    /// Bytes of a partial frame at the end of the write-ahead log: the append being written
    /// when the process stopped, never acknowledged; SQLite discards it.
    pub torn_tail_bytes: Option<u64>,
    /// Where a journal SQLite could not read was moved, with the records that could still
    /// be read copied into the new one.
    pub set_aside: Option<(PathBuf, usize)>,
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

impl Engine {
    /// Opens (or creates) the journal in `dir`, calling `each` with every stored record in
    /// sequence order. A file SQLite reports as damaged is moved aside after its readable
    /// records are copied into a fresh one: a bad journal is logged, never a crash loop.
    pub fn open(
        dir: &Path,
        mut each: impl FnMut(u64, &[u8]),
    ) -> Result<(Engine, OpenReport), EngineError> {
        fs::create_dir_all(dir).map_err(|source| EngineError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(FILE_NAME);
        let mut report = OpenReport {
            torn_tail_bytes: torn_wal_tail(&path),
            set_aside: None,
        };
        let mut records: Vec<(u64, Vec<u8>)> = Vec::new();
        let engine = match Self::open_and_scan(&path, &mut records) {
            Ok(engine) => engine,
            Err(error) if error.is_corruption() => {
                let aside = set_aside(&path)?;
                tracing::error!(
                    path = %path.display(),
                    moved_to = %aside.display(),
                    salvaged = records.len(),
                    %error,
                    "the journal file is damaged; moved it aside and kept the records that could be read"
                );
                let engine = Self::open_and_scan(&path, &mut Vec::new())?;
                engine.insert(records.iter().map(|(seq, value)| (*seq, value.as_slice())))?;
                report.set_aside = Some((aside, records.len()));
                engine
            }
            Err(error) => return Err(error),
        };
        for (seq, value) in &records {
            each(*seq, value);
        }
        Ok((engine, report))
    }

    fn open_and_scan(
        path: &Path,
        records: &mut Vec<(u64, Vec<u8>)>,
    ) -> Result<Engine, EngineError> {
        let writer = connect(path)?;
        // Before the first table exists: freed pages can then be given back to the file
        // system once a backlog has drained.
        writer.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: every commit fdatasyncs the write-ahead log. This is the durability point.
        writer.pragma_update(None, "synchronous", "FULL")?;
        // Checkpoints run on the shipper's connection, not in the middle of an append.
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        writer.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT_BYTES)?;
        writer.execute_batch(
            "CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY, value BLOB NOT NULL)",
        )?;
        let shipper = connect(path)?;
        let reader = connect(path)?;
        {
            let mut statement = shipper.prepare("SELECT seq, value FROM records ORDER BY seq")?;
            let mut rows = statement.query([])?;
            while let Some(row) = rows.next()? {
                records.push((seq_from(row.get(0)?), row.get(1)?));
            }
        }
        Ok(Engine {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            shipper: Mutex::new(shipper),
            reader: Mutex::new(reader),
        })
    }

    /// Writes `values` under `first_seq`, `first_seq + 1`, … in one transaction: on return
    /// they are fdatasync'd, all of them, or none is stored.
    pub fn append<'a>(
        &self,
        first_seq: u64,
        values: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), EngineError> {
        self.insert((first_seq..).zip(values))
    }

    fn insert<'a>(
        &self,
        records: impl IntoIterator<Item = (u64, &'a [u8])>,
    ) -> Result<(), EngineError> {
        let mut writer = self.writer.lock();
        let written = (|| {
            let transaction = writer.transaction()?;
            {
                let mut insert = transaction
                    .prepare_cached("INSERT INTO records (seq, value) VALUES (?1, ?2)")?;
                for (seq, value) in records {
                    insert.execute(params![seq_to(seq), value])?;
                }
            }
            transaction.commit()
        })();
        MutexGuard::unlock_fair(writer);
        Ok(written?)
    }

    /// Calls `each` with the records from `first` through `last`, in order.
    pub fn scan(
        &self,
        first: u64,
        last: u64,
        mut each: impl FnMut(u64, &[u8]),
    ) -> Result<(), EngineError> {
        let shipper = self.shipper.lock();
        let mut statement = shipper.prepare_cached(
            "SELECT seq, value FROM records WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq",
        )?;
        let mut rows = statement.query(params![seq_to(first), seq_to(last)])?;
        while let Some(row) = rows.next()? {
            let value = row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
            each(seq_from(row.get(0)?), value);
        }
        Ok(())
    }

    pub fn get(&self, seq: u64) -> Result<Option<Vec<u8>>, EngineError> {
        let reader = self.reader.lock();
        let mut statement = reader.prepare_cached("SELECT value FROM records WHERE seq = ?1")?;
        let mut rows = statement.query(params![seq_to(seq)])?;
        Ok(match rows.next()? {
            Some(row) => Some(row.get(0)?),
            None => None,
        })
    }

    /// Removes the records from `first` through `last`, in short turns on the writer, then
    /// lets SQLite copy its log into the file so the log can start over.
    pub fn delete_through(&self, first: u64, last: u64) -> Result<(), EngineError> {
        let mut from = first;
        while from <= last {
            let to = last.min(from.saturating_add(DELETE_CHUNK - 1));
            let writer = self.writer.lock();
            // A delete need not be durable on its own: lost in a crash, it only means the
            // records are shipped once more, harmlessly. The next append's sync covers it.
            let deleted = writer
                .pragma_update(None, "synchronous", "OFF")
                .and_then(|()| {
                    writer
                        .prepare_cached("DELETE FROM records WHERE seq BETWEEN ?1 AND ?2")?
                        .execute(params![seq_to(from), seq_to(to)])
                })
                .and(writer.pragma_update(None, "synchronous", "FULL"));
            MutexGuard::unlock_fair(writer);
            deleted?;
            from = to + 1;
        }
        // A passive checkpoint takes no write lock: appends go on beside it.
        let shipper = self.shipper.lock();
        shipper.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Gives the pages of shipped records back to the file system; worth it once a
    /// backlog has drained, pointless while records keep coming.
    pub fn shrink(&self) -> Result<(), EngineError> {
        let writer = self.writer.lock();
        let vacuumed = writer.execute_batch("PRAGMA incremental_vacuum");
        MutexGuard::unlock_fair(writer);
        vacuumed?;
        let shipper = self.shipper.lock();
        shipper.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Bytes of the database file and its write-ahead log.
    pub fn disk_bytes(&self) -> u64 {
        [self.path.clone(), wal_path(&self.path)]
            .iter()
            .filter_map(|path| fs::metadata(path).ok())
            .map(|metadata| metadata.len())
            .sum()
    }
}

/// Sequence numbers are SQLite integers: they start at 1 and grow by one per record, so
/// they stay far below 2^63.
fn seq_to(seq: u64) -> i64 {
    i64::try_from(seq).expect("sequence numbers stay below 2^63")
}

fn seq_from(seq: i64) -> u64 {
    u64::try_from(seq).unwrap_or(0)
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
    Ok(connection)
}

fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// A write-ahead log is a 32-byte header and frames of 24 bytes plus a page; a length off
/// that grid means the last frame was cut short by a crash.
fn torn_wal_tail(path: &Path) -> Option<u64> {
    use std::io::Read;
    const HEADER: u64 = 32;
    const FRAME_HEADER: u64 = 24;
    let mut file = fs::File::open(wal_path(path)).ok()?;
    let length = file.metadata().ok()?.len();
    let mut header = [0u8; HEADER as usize];
    if length < HEADER || file.read_exact(&mut header).is_err() {
        return (length > 0).then_some(length);
    }
    let page_size = u64::from(u32::from_be_bytes(header[8..12].try_into().ok()?));
    if page_size == 0 {
        return None;
    }
    let torn = (length - HEADER) % (FRAME_HEADER + page_size);
    (torn != 0).then_some(torn)
}

fn set_aside(path: &Path) -> Result<PathBuf, EngineError> {
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let aside = path.with_extension(format!("sqlite.damaged-{stamp}"));
    for (from, to) in [
        (path.to_owned(), aside.clone()),
        (wal_path(path), wal_path(&aside)),
    ] {
        if from.exists() {
            fs::rename(&from, &to).map_err(|source| EngineError::Io { path: from, source })?;
        }
    }
    let mut shm = path.as_os_str().to_owned();
    shm.push("-shm");
    let _ = fs::remove_file(PathBuf::from(shm));
    Ok(aside)
}
