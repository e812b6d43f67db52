//! Reads of `conversion_stamps`: orders that two nodes took at once and wrote with two
//! creation stamps, and whether their listing copies still hold both.

use clickhouse::Row;
use serde::Deserialize;

use super::check::Problem;
use super::deadline::Exchange;
use super::{Store, StoreError};
use crate::domain::{AffiliateId, BrandId, ConversionId};

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

impl StampRace {
    pub fn problem(&self) -> Problem {
        Problem {
            table: "conversions_by_brand",
            conversion_id: self.conversion.to_string(),
            what: format!("written with {} creation stamps", self.stamps.len()),
        }
    }
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
