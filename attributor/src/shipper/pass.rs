//! One pass over a shipment: its records read from the journal a chunk at a time and
//! streamed into one INSERT per table, side by side. Memory stays at a chunk of records
//! and the INSERTs' send buffers, whatever the backlog.

use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use clickhouse::insert::Insert;
use clickhouse::{RowOwned, RowWrite};

use crate::journal::{Entry, Journal, JournalError};
use crate::store::{CommissionRow, ShippedTable as Table, Store, StoreError};

/// Records read from the journal at a time: a few MB decoded.
const CHUNK_RECORDS: usize = 4096;

/// An acknowledged INSERT.
pub(super) struct Shipped {
    pub rows: u64,
    pub took: Duration,
}

#[derive(Default)]
pub(super) struct Outcome {
    pub shipped: Vec<(Table, Shipped)>,
    pub failed: Vec<(Table, StoreError)>,
}

/// Streams the records of `seqs` into the `tables` asked for. A table with no rows in the
/// range is not written to and counts as shipped.
pub(super) async fn run(
    store: &Store,
    journal: &Journal,
    seqs: RangeInclusive<u64>,
    tables: &[Table],
) -> Result<Outcome, JournalError> {
    let mut conversions = Stream::new(Table::Conversions, tables);
    let mut commissions = Stream::new(Table::Commissions, tables);
    let mut clicks = Stream::new(Table::Clicks, tables);
    let mut changes = Stream::new(Table::StatusChanges, tables);
    let mut from = *seqs.start();
    while from <= *seqs.end() {
        // An error here drops the streams unended: ClickHouse aborts those INSERTs.
        let chunk = journal.read(from..=*seqs.end(), CHUNK_RECORDS)?;
        let Some(read_through) = chunk.read_through else {
            break;
        };
        for (_, entry) in &chunk.records {
            match entry {
                Entry::Conversion(row) => {
                    conversions.write(store, row).await;
                    if commissions.wanted {
                        commissions.write(store, &CommissionRow::from(row)).await;
                    }
                }
                Entry::Click(row) => clicks.write(store, row).await,
                Entry::StatusChange(row) => changes.write(store, row).await,
            }
        }
        from = read_through + 1;
    }
    let mut outcome = Outcome::default();
    conversions.end(store, &mut outcome).await;
    commissions.end(store, &mut outcome).await;
    clicks.end(store, &mut outcome).await;
    changes.end(store, &mut outcome).await;
    Ok(outcome)
}

/// One table's INSERT, begun at its first row.
struct Stream<R: RowOwned + RowWrite> {
    table: Table,
    wanted: bool,
    insert: Option<Insert<R>>,
    rows: u64,
    started: Option<Instant>,
    failed: Option<StoreError>,
}

impl<R: RowOwned + RowWrite> Stream<R> {
    fn new(table: Table, wanted: &[Table]) -> Self {
        Self {
            table,
            wanted: wanted.contains(&table),
            insert: None,
            rows: 0,
            started: None,
            failed: None,
        }
    }

    async fn write(&mut self, store: &Store, row: &R) {
        if !self.wanted || self.failed.is_some() {
            return;
        }
        let insert = match &mut self.insert {
            Some(insert) => insert,
            None => {
                self.started = Some(Instant::now());
                match store.begin_insert::<R>(self.table.name()).await {
                    Ok(insert) => self.insert.insert(insert),
                    Err(error) => {
                        self.failed = Some(error);
                        return;
                    }
                }
            }
        };
        match insert.write(row).await {
            Ok(()) => self.rows += 1,
            Err(error) => {
                // A failed INSERT cannot take more rows; dropping it aborts it.
                self.insert = None;
                let error = error.into();
                store.exchange_failed(&error);
                self.failed = Some(error);
            }
        }
    }

    async fn end(self, store: &Store, outcome: &mut Outcome) {
        if !self.wanted {
            return;
        }
        if let Some(error) = self.failed {
            outcome.failed.push((self.table, error));
            return;
        }
        let result = match self.insert {
            Some(insert) => insert.end().await.map_err(StoreError::from),
            None => Ok(()),
        };
        match result {
            Ok(()) => outcome.shipped.push((
                self.table,
                Shipped {
                    rows: self.rows,
                    took: self.started.map_or(Duration::ZERO, |at| at.elapsed()),
                },
            )),
            Err(error) => {
                store.exchange_failed(&error);
                outcome.failed.push((self.table, error));
            }
        }
    }
}
