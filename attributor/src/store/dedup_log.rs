//! Reads of `dedup_log`, through which a node's bloom filter learns what other nodes store.

use clickhouse::Row;
use serde::Deserialize;
use time::OffsetDateTime;

use super::deadline::Exchange;
use super::{Store, StoreError};

#[derive(Row, Deserialize)]
struct Logged {
    dedup_key: u64,
    written: u32,
}

#[derive(Row, Deserialize)]
struct Now {
    now: u32,
}

#[derive(Row, Deserialize)]
struct Partition {
    partition: String,
}

impl Store {
    /// ClickHouse's clock, in unix seconds: the log's timestamps are read by it.
    pub async fn server_now(&self) -> Result<u32, StoreError> {
        let row = self
            .within(
                Exchange::Read,
                "clock query",
                self.read_client()
                    .query("SELECT toUInt32(now()) AS now")
                    .fetch_one::<Now>(),
            )
            .await?;
        Ok(row.now)
    }

    /// The dedup keys logged at or after `since` (server seconds), and the latest time seen.
    pub async fn dedup_keys_logged_since(
        &self,
        since: u32,
    ) -> Result<(Vec<u64>, Option<u32>), StoreError> {
        let rows = self
            .within(
                Exchange::Read,
                "dedup log read",
                self.read_client()
                    .query(
                        "SELECT dedup_key, toUInt32(written_at) AS written FROM dedup_log \
                         WHERE written_at >= toDateTime(?)",
                    )
                    .bind(since)
                    .fetch_all::<Logged>(),
            )
            .await?;
        let latest = rows.iter().map(|row| row.written).max();
        Ok((rows.into_iter().map(|row| row.dedup_key).collect(), latest))
    }

    /// Drops the days before `keep_since` of a log partitioned by day (`dedup_log`,
    /// `conversion_stamps`); the logs only bridge the time between a write and the reads of
    /// it by every node.
    pub async fn drop_log_days_before(
        &self,
        log: &str,
        keep_since: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let date = keep_since.date();
        let first_kept = format!(
            "{:04}{:02}{:02}",
            date.year(),
            u8::from(date.month()),
            date.day()
        );
        let partitions = self
            .within(
                Exchange::Read,
                "dedup log partitions",
                self.read_client()
                    .query(
                        "SELECT DISTINCT partition FROM system.parts \
                         WHERE database = ? AND table = ? AND active",
                    )
                    .bind(self.database())
                    .bind(self.local_name(log))
                    .fetch_all::<Partition>(),
            )
            .await?;
        for old in partitions.iter().filter(|p| p.partition < first_kept) {
            let drop = self.alter_local(log, &format!("DROP PARTITION {}", old.partition));
            self.ddl(&drop).await?;
        }
        Ok(())
    }
}
