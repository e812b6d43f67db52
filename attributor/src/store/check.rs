//! Reconciliation: does every table agree with `conversions`, the authority? For each
//! conversion in scope (latest version): exactly one commission row, of the same version and
//! amount; exactly one row of the same version in each listing copy; and no commission or
//! listing row of a conversion that does not exist. What disagrees can be repaired: the
//! stray rows are deleted (a mutation) and the conversion's latest row is written again,
//! which writes its commission and, through the materialized views, its copies. Both steps
//! are idempotent, so a repair can be run again.

use clickhouse::Row;
use serde::Deserialize;
use time::OffsetDateTime;

use super::deadline::Exchange;
use super::rows::{CommissionRow, ConversionRow};
use super::{Store, StoreError};
use crate::domain::BrandId;

/// The most problems one check reports (and one repair mends); run again for more.
const MOST_PROBLEMS: u64 = 10_000;

/// Which conversions to check: a brand, a range of `created_at`, or both (or everything).
#[derive(Debug, Clone, Default)]
pub struct CheckScope {
    pub brand: Option<BrandId>,
    pub from: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
}

/// One disagreement, by the table it was found in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub table: &'static str,
    pub conversion_id: String,
    pub what: String,
}

/// The tables checked against `conversions`, and the column each holds the commission in.
pub(super) const COPIES: [(&str, &str); 3] = [
    ("commissions", "amount"),
    ("conversions_by_brand", "commission_amount"),
    ("conversions_by_affiliate", "commission_amount"),
];

/// A DELETE condition for the rows of `latest`'s conversion in another monthly partition
/// than `latest`'s: merges never collapse those into it.
pub(super) fn rows_in_other_months(latest: &ConversionRow) -> String {
    format!(
        "(conversion_id = '{}' AND toYYYYMM(created_at) != toYYYYMM(toDateTime({})))",
        latest.conversion_id,
        latest.created_at.unix_timestamp()
    )
}

/// The copy sorted by status, deleted from by a repair with the others.
pub(super) const STATUS_COPY: &str = "conversions_by_status";

#[derive(Row, Deserialize)]
struct Disagreement {
    conversion_id: String,
    version: u64,
    amount: String,
    copies: u64,
    copy_version: u64,
    copy_amount: String,
}

#[derive(Row, Deserialize)]
struct Orphan {
    conversion_id: String,
}

#[derive(Row, Deserialize)]
struct Pending {
    pending: u64,
}

impl CheckScope {
    /// The WHERE clause for a table with `brand_id` and `created_at`.
    fn condition(&self) -> String {
        let mut parts = vec!["1".to_owned()];
        if let Some(brand) = &self.brand {
            // Brand ids are checked to be `brd_` and hex digits: nothing to escape.
            parts.push(format!("brand_id = '{brand}'"));
        }
        if let Some(from) = self.from {
            parts.push(format!(
                "created_at >= toDateTime({})",
                from.unix_timestamp()
            ));
        }
        if let Some(until) = self.until {
            parts.push(format!(
                "created_at < toDateTime({})",
                until.unix_timestamp()
            ));
        }
        parts.join(" AND ")
    }
}

impl Store {
    /// Every disagreement between `conversions` and the tables derived from it, in scope
    /// (at most `MOST_PROBLEMS` of each kind).
    pub async fn check(&self, scope: &CheckScope) -> Result<Vec<Problem>, StoreError> {
        let within = scope.condition();
        let mut problems = Vec::new();
        // Without FINAL: FINAL collapses a conversion's rows across partitions, but merges
        // never do, so a row left in another month (a stamp from another node) stays for
        // every reader that does not ask for FINAL.
        let duplicated: Vec<Orphan> = self
            .bulk_rows(&format!(
                "SELECT conversion_id FROM conversions WHERE {within} GROUP BY conversion_id \
                 HAVING uniqExact(toYYYYMM(created_at)) > 1 LIMIT {MOST_PROBLEMS}"
            ))
            .await?;
        problems.extend(duplicated.into_iter().map(|row| Problem {
            table: "conversions",
            conversion_id: row.conversion_id,
            what: "rows in more than one monthly partition".into(),
        }));
        for (table, amount) in COPIES {
            let disagreements: Vec<Disagreement> = self
                .bulk_rows(&format!(
                    "SELECT conversion_id, latest AS version, amount, \
                            copies, copy_version, copy_amount \
                     FROM (SELECT conversion_id, max(version) AS latest, \
                                  toString(argMax(commission_amount, version)) AS amount \
                           FROM conversions FINAL WHERE {within} GROUP BY conversion_id) \
                     ANY LEFT JOIN \
                          (SELECT conversion_id, count() AS copies, \
                                  max(version) AS copy_version, \
                                  toString(argMax({amount}, version)) AS copy_amount \
                           FROM {table} FINAL WHERE {within} GROUP BY conversion_id) \
                     USING conversion_id \
                     WHERE copies != 1 OR copy_version != latest OR copy_amount != amount \
                     LIMIT {MOST_PROBLEMS}"
                ))
                .await?;
            problems.extend(disagreements.into_iter().map(|row| Problem {
                table,
                what: if row.copies == 0 {
                    "missing".to_owned()
                } else {
                    format!(
                        "{} rows, version {} commission {}; the conversion has version {} commission {}",
                        row.copies, row.copy_version, row.copy_amount, row.version, row.amount
                    )
                },
                conversion_id: row.conversion_id,
            }));
            let orphans: Vec<Orphan> = self
                .bulk_rows(&format!(
                    "SELECT DISTINCT conversion_id FROM {table} WHERE {within} \
                     AND conversion_id NOT IN (SELECT conversion_id FROM conversions) \
                     LIMIT {MOST_PROBLEMS}"
                ))
                .await?;
            problems.extend(orphans.into_iter().map(|row| Problem {
                table,
                conversion_id: row.conversion_id,
                what: "no such conversion".into(),
            }));
        }
        Ok(problems)
    }

    /// Mends `problems`: deletes every derived row of the conversions concerned (and the
    /// rows of a conversion in `conversions` in another partition than its latest), waits
    /// for the deletes, then writes each conversion's latest row again. Returns how many
    /// conversions were rewritten.
    pub async fn repair(&self, problems: &[Problem]) -> Result<usize, StoreError> {
        let mut ids: Vec<&str> = problems.iter().map(|p| p.conversion_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(0);
        }
        // Conversion ids are checked hex with a prefix before they are stored, and these
        // come from the tables: quoting is enough.
        let list = ids
            .iter()
            .map(|id| format!("'{}'", id.replace('\'', "")))
            .collect::<Vec<_>>()
            .join(",");
        let newest = self.latest_rows(&list).await?;
        // On a cluster, mutations run on the local tables (ON CLUSTER), not the Distributed
        // ones, which ClickHouse refuses to mutate. The status copy is not checked (its
        // tombstones make counting it a different question) but is mended with the rest:
        // an order written with two creation stamps has a row under each there too.
        for table in COPIES
            .map(|(table, _)| table)
            .into_iter()
            .chain([STATUS_COPY])
        {
            let delete = format!("DELETE WHERE conversion_id IN ({list})");
            self.mutate(&self.alter_local(table, &delete)).await?;
        }
        // A conversion with rows in two partitions keeps the newest's.
        let older: Vec<String> = newest
            .iter()
            .filter(|row| {
                problems
                    .iter()
                    .any(|p| p.table == "conversions" && p.conversion_id == row.conversion_id)
            })
            .map(rows_in_other_months)
            .collect();
        if !older.is_empty() {
            let delete = format!("DELETE WHERE {}", older.join(" OR "));
            self.mutate(&self.alter_local("conversions", &delete))
                .await?;
        }
        self.wait_for_mutations().await?;
        let commissions: Vec<CommissionRow> = newest.iter().map(CommissionRow::from).collect();
        // Commissions first: a repair cut short after them leaves the listing copy empty,
        // which the next check (or race repair) sees, rather than a missing commission
        // behind a mended listing.
        self.insert_rows("commissions", &commissions).await?;
        self.insert_rows("conversions", &newest).await?;
        Ok(newest.len())
    }

    /// The latest row of each conversion in `list` (quoted ids, comma-separated), one per
    /// conversion, in id order.
    pub(super) async fn latest_rows(&self, list: &str) -> Result<Vec<ConversionRow>, StoreError> {
        let rows: Vec<ConversionRow> = self
            .bulk_rows(&format!(
                "SELECT ?fields FROM conversions FINAL WHERE conversion_id IN ({list}) \
                 ORDER BY conversion_id, version"
            ))
            .await?;
        // Should FINAL keep a row per partition (servers may be set not to merge across
        // them), the higher version is the latest.
        let mut latest: Vec<ConversionRow> = Vec::with_capacity(rows.len());
        for row in rows {
            match latest.last_mut() {
                Some(last) if last.conversion_id == row.conversion_id => *last = row,
                _ => latest.push(row),
            }
        }
        Ok(latest)
    }

    pub(super) async fn bulk_rows<R>(&self, sql: &str) -> Result<Vec<R>, StoreError>
    where
        R: clickhouse::RowOwned + clickhouse::RowRead,
    {
        // On a cluster the client computes Distributed subqueries globally (see
        // `ClusterSettings::apply`).
        let query = self.client().query(sql);
        self.within(
            Exchange::Bulk,
            "reconciliation query",
            query.fetch_all::<R>(),
        )
        .await
    }

    pub(super) async fn mutate(&self, sql: &str) -> Result<(), StoreError> {
        if self.cluster().is_some() {
            return self.ddl(sql).await;
        }
        self.within(
            Exchange::Bulk,
            "reconciliation delete",
            self.client().query(sql).execute(),
        )
        .await
    }

    /// Mutations run in the background; repairs write only once the deletes are done, or
    /// they would delete what they write.
    pub(super) async fn wait_for_mutations(&self) -> Result<(), StoreError> {
        let deadline = std::time::Instant::now() + self.timeout(Exchange::Bulk);
        loop {
            let pending: Vec<Pending> = self
                .bulk_rows(&format!(
                    "SELECT count() AS pending FROM {} \
                     WHERE database = '{}' AND is_done = 0",
                    self.every_shard("system", "mutations"),
                    self.database()
                ))
                .await?;
            if pending.first().is_none_or(|row| row.pending == 0) {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(StoreError::Unavailable(
                    "the repair's deletes did not finish in time".into(),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}
