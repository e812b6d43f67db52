//! Reads of `conversion_stamps`: orders that two nodes took at once and wrote with two
//! creation stamps, and whether their listing copies still hold both.

use clickhouse::Row;
use serde::Deserialize;
use time::OffsetDateTime;

use super::check::{COPIES, STATUS_COPY, rows_in_other_months};
use super::deadline::Exchange;
use super::rows::{CommissionRow, ConversionRow};
use super::{Store, StoreError};
use crate::domain::{AffiliateId, BrandId, ConversionId};

fn month(at: OffsetDateTime) -> (i32, time::Month) {
    (at.year(), at.month())
}

/// The most races one read returns; the rest come with the next.
const MOST_RACES: u64 = 10_000;
/// Races confirmed per query: each is a clause of the query's text, which ClickHouse
/// bounds (256 KiB by default).
const CONFIRM_CHUNK: usize = 500;

/// The copies sorted by `created_at`, each with the column that leads its sort key and
/// what else a row must meet to count.
const RACED_COPIES: [(&str, &str, &str); 4] = [
    ("conversions_by_brand", "brand_id", ""),
    ("conversions_by_affiliate", "affiliate_id", ""),
    ("commissions", "affiliate_id", ""),
    // Its key has the status between; read without, over the stamps' granules. A
    // status change leaves a tombstone under the old status, as listings read it.
    ("conversions_by_status", "brand_id", " AND live = 1"),
];

/// An order written with more than one creation stamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StampRace {
    pub conversion: ConversionId,
    pub brand: BrandId,
    pub affiliate: AffiliateId,
    /// Unix seconds, each stamp once.
    pub stamps: Vec<u32>,
}

#[derive(Row, Deserialize)]
struct RaceRow {
    conversion_id: String,
    brand_id: String,
    affiliate_id: String,
    stamps: Vec<u32>,
}

#[derive(Row, Deserialize)]
struct StampedVersion {
    conversion_id: String,
    stamp: u32,
    version: u64,
}

impl Store {
    /// Orders logged at or after `recent_since` (server seconds) whose log, from
    /// `compare_since` on, holds more than one creation stamp.
    pub async fn stamp_races(
        &self,
        recent_since: u32,
        compare_since: u32,
    ) -> Result<Vec<StampRace>, StoreError> {
        // Found by the 64-bit key and the stamp, two narrow columns; the ids and owners are
        // read only for the orders found (PREWHERE), not for five minutes of the log.
        let rows = self
            .within(
                Exchange::Bulk,
                "conversion stamp log read",
                self.read_client()
                    .query(
                        "SELECT any(conversion_id) AS conversion_id, any(brand_id) AS brand_id, \
                                any(affiliate_id) AS affiliate_id, \
                                groupUniqArray(toUInt32(created_at)) AS stamps \
                         FROM conversion_stamps \
                         PREWHERE dedup_key IN \
                               (SELECT dedup_key FROM conversion_stamps \
                                WHERE written_at >= toDateTime(?) AND dedup_key IN \
                                      (SELECT dedup_key FROM conversion_stamps \
                                       WHERE written_at >= toDateTime(?)) \
                                GROUP BY dedup_key HAVING min(created_at) != max(created_at) \
                                LIMIT ?) \
                         WHERE written_at >= toDateTime(?) \
                         GROUP BY dedup_key",
                    )
                    .bind(compare_since)
                    .bind(recent_since)
                    .bind(MOST_RACES)
                    .bind(compare_since)
                    .fetch_all::<RaceRow>(),
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let mut stamps = row.stamps;
                stamps.sort_unstable();
                Some(StampRace {
                    conversion: ConversionId::parse(&row.conversion_id).ok()?,
                    brand: BrandId::parse(&row.brand_id).ok()?,
                    affiliate: AffiliateId::parse(&row.affiliate_id).ok()?,
                    stamps,
                })
            })
            .collect())
    }

    /// The races whose copies do not each hold exactly the conversion's surviving version
    /// (one row, of the stamp and version `conversions` keeps): those to repair. A repair
    /// writes the conversion again, which logs its stamp again, so a mended race is read
    /// again for a while; and a shipment's commissions are an INSERT of their own, which may
    /// end after the log showed the race. Look-ups by each copy's sort key, and by id.
    pub async fn races_left_in_copies(
        &self,
        races: &[StampRace],
    ) -> Result<Vec<StampRace>, StoreError> {
        let mut left = Vec::new();
        for chunk in races.chunks(CONFIRM_CHUNK) {
            let ids: Vec<String> = chunk
                .iter()
                .map(|race| format!("'{}'", race.conversion))
                .collect();
            let surviving = self
                .stamped_versions(
                    "conversions FINAL",
                    &format!("conversion_id IN ({})", ids.join(", ")),
                )
                .await?;
            let mut copies = Vec::new();
            for (copy, owner, counted) in RACED_COPIES {
                // Ids and stamps were parsed when read: hex with a prefix, and numbers.
                let clauses: Vec<String> = chunk
                    .iter()
                    .map(|race| {
                        let stamps: Vec<String> = race
                            .stamps
                            .iter()
                            .map(|stamp| format!("toDateTime({stamp})"))
                            .collect();
                        let owner_id = match owner {
                            "brand_id" => race.brand.to_string(),
                            _ => race.affiliate.to_string(),
                        };
                        format!(
                            "({owner} = '{owner_id}' AND created_at IN ({}) \
                             AND conversion_id = '{}')",
                            stamps.join(", "),
                            race.conversion
                        )
                    })
                    .collect();
                copies.push(
                    self.stamped_versions(
                        &format!("{copy} FINAL"),
                        &format!("({}){counted}", clauses.join(" OR ")),
                    )
                    .await?,
                );
            }
            let of = |rows: &[StampedVersion], race: &StampRace| -> Vec<(u32, u64)> {
                let mut found: Vec<(u32, u64)> = rows
                    .iter()
                    .filter(|row| row.conversion_id == race.conversion.as_str())
                    .map(|row| (row.stamp, row.version))
                    .collect();
                found.sort_unstable();
                found
            };
            left.extend(chunk.iter().filter(|race| {
                let survivor = of(&surviving, race);
                survivor.len() != 1 || copies.iter().any(|copy| of(copy, race) != survivor)
            }));
        }
        Ok(left.into_iter().cloned().collect())
    }

    /// Mends `races`: writes each conversion's surviving version again (its commission, and
    /// through the materialized views its copies), then deletes the rows of every other
    /// stamp from the copies, the commissions and `conversions` (a loser's latest row in
    /// another month's partition), and waits for the deletes. The survivor is never among
    /// what is deleted, so a repair cut short leaves at worst both rows, as before it, and
    /// a newer version of the conversion written meanwhile is kept. Returns how many
    /// conversions were mended.
    pub async fn repair_races(&self, races: &[StampRace]) -> Result<usize, StoreError> {
        if races.is_empty() {
            return Ok(0);
        }
        // Parsed ids: hex with a prefix.
        let list: Vec<String> = races
            .iter()
            .map(|race| format!("'{}'", race.conversion))
            .collect();
        let survivors = self.latest_rows(&list.join(", ")).await?;
        if survivors.is_empty() {
            return Ok(0);
        }
        let commissions: Vec<CommissionRow> = survivors.iter().map(CommissionRow::from).collect();
        self.insert_rows("commissions", &commissions).await?;
        self.insert_rows("conversions", &survivors).await?;
        let others = |row: &ConversionRow| {
            format!(
                "(conversion_id = '{}' AND created_at != toDateTime({}))",
                row.conversion_id,
                row.created_at.unix_timestamp()
            )
        };
        let in_copies: Vec<String> = survivors.iter().map(others).collect();
        // In `conversions` a loser's row collapses into the survivor, unless a stamp put it
        // in another month's partition: only those are worth rewriting the main table's
        // parts for (months as the managed server, in UTC, partitions them).
        let in_conversions: Vec<String> = survivors
            .iter()
            .filter(|row| {
                races.iter().any(|race| {
                    race.conversion.as_str() == row.conversion_id
                        && race.stamps.iter().any(|&stamp| {
                            OffsetDateTime::from_unix_timestamp(i64::from(stamp))
                                .is_ok_and(|at| month(at) != month(row.created_at))
                        })
                })
            })
            .map(rows_in_other_months)
            .collect();
        // On a cluster, mutations run on the local tables (ON CLUSTER).
        let copies = COPIES.map(|(table, _)| table);
        let deletes = [STATUS_COPY]
            .into_iter()
            .chain(copies)
            .map(|table| (table, &in_copies))
            .chain(Some(("conversions", &in_conversions)));
        for (table, rows) in deletes.filter(|(_, rows)| !rows.is_empty()) {
            let delete = format!("DELETE WHERE {}", rows.join(" OR "));
            self.mutate(&self.alter_local(table, &delete)).await?;
        }
        self.wait_for_mutations().await?;
        Ok(survivors.len())
    }

    /// (id, stamp, version) of the rows of `from` (a table, with FINAL) that meet
    /// `condition`.
    async fn stamped_versions(
        &self,
        from: &str,
        condition: &str,
    ) -> Result<Vec<StampedVersion>, StoreError> {
        self.within(
            Exchange::Bulk,
            "copies of raced orders",
            self.read_client()
                .query(&format!(
                    "SELECT conversion_id, toUInt32(created_at) AS stamp, version \
                     FROM {from} WHERE {condition}"
                ))
                .fetch_all::<StampedVersion>(),
        )
        .await
    }
}
