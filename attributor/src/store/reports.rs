//! The two reads behind a report: clicks grouped by the click dimensions asked for, and
//! conversions grouped by every dimension asked for and by currency.
//!
//! Exact under change: a conversion's versions (status changes, rows shipped twice) are
//! collapsed (FINAL, see [`FINAL_CONVERSIONS`]) before anything is counted, so each
//! conversion counts once with its latest status and commission; a status filter applies
//! to that latest status. Clicks are counted with `uniqExact(click_id)`, so a click
//! shipped twice counts once. Reads go to the copies sorted by owner and time, narrowed by
//! the owner and the time range on their primary key.
//!
//! The same reads run over the rollups (see `report_rollups.rs`) when the caller asks for
//! them: the rollup rows are renamed to the columns the raw rows have, and the outer query
//! is the same.

use std::time::Duration;

use clickhouse::Row;
use rust_decimal::Decimal;
use serde::Deserialize;

use super::deadline::Exchange;
use super::report_rollups::{
    Generation, ROLLUP_KEYS, days_moved_hours_disagree, generations_sql, rollup_clicks,
    rollup_conversions,
};
use super::{Store, StoreError};
use crate::reports::{
    ClickGroup, ConversionGroup, Dimension, Granularity, ReportScope, ReportSource, ReportSpec,
    RollupGrains,
};

/// How many times a report is read from the rollups while they keep being recomputed under
/// it (see [`Store::rollup_groups`]); a pass takes well under a second and runs every few.
const ROLLUP_ATTEMPTS: usize = 3;

/// The pauses before reading a day's generations again while its daily and hourly rollups
/// are a recompute's two INSERTs apart (see [`Store::rollup_groups`]): longer, together,
/// than the INSERT of a day's daily rows takes.
const DISAGREEMENT_WAITS: [Duration; 5] = [
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(20),
    Duration::from_millis(40),
    Duration::from_millis(80),
];

/// The longest report query ClickHouse parses (see `Store::report_query`): about 200,000
/// generations of an affiliate's report.
const REPORT_QUERY_BYTES: usize = 16 << 20;
const REPORT_QUERY_ELEMENTS: usize = 1_000_000;

/// Each conversion of `{table}` matching `{conditions}` once, in its latest version, by a
/// FINAL read, under names that do not shadow the stored columns (which the WHERE reads).
/// The copies sorted by owner and time keep a conversion's versions under one key (its
/// `created_at` is fixed when it is journaled), so FINAL collapses them. FINAL merges the
/// sorted parts as it streams, where `argMax` per conversion id would hold a hash table of
/// every conversion in the range (over 3 GiB for ten million; for a rollup recompute of
/// one busy day, three times FINAL's time). Queries using it run with
/// `optimize_move_to_prewhere` off: a condition moved to PREWHERE would filter versions
/// before FINAL collapses them.
pub(super) const FINAL_CONVERSIONS: &str = "SELECT toUInt64(1) AS n, \
       toUInt64(status = 'pending') AS n_pending, \
       toUInt64(status = 'approved') AS n_approved, \
       toUInt64(status = 'rejected') AS n_rejected, \
       created_at AS latest_created_at, \
       campaign_id AS latest_campaign_id, \
       affiliate_id AS latest_affiliate_id, \
       link_id AS latest_link_id, \
       event_type AS latest_event_type, \
       status AS latest_status, \
       currency AS latest_currency, \
       amount AS latest_amount, \
       commission_currency AS latest_commission_currency, \
       commission_amount AS latest_commission \
FROM {table} FINAL WHERE {conditions}";

#[derive(Row, Deserialize)]
struct ClickCount {
    dims: Vec<String>,
    clicks: u64,
}

#[derive(Row, Deserialize)]
struct ConversionSums {
    dims: Vec<String>,
    currency: String,
    commission_currency: String,
    conversions: u64,
    pending: u64,
    approved: u64,
    rejected: u64,
    amount: String,
    commission: String,
}

/// Where each dimension is in the latest-version rows of conversions (aliases that do not
/// shadow the stored columns, which the inner WHERE reads) and in clicks.
pub(super) struct Columns {
    pub(super) time: &'static str,
    pub(super) campaign: &'static str,
    pub(super) affiliate: &'static str,
    pub(super) link: &'static str,
    pub(super) event_type: &'static str,
    pub(super) status: &'static str,
    pub(super) currency: &'static str,
}

const LATEST: Columns = Columns {
    time: "latest_created_at",
    campaign: "latest_campaign_id",
    affiliate: "latest_affiliate_id",
    link: "latest_link_id",
    event_type: "latest_event_type",
    status: "latest_status",
    currency: "latest_currency",
};

const CLICKS: Columns = Columns {
    time: "clicked_at",
    campaign: "campaign_id",
    affiliate: "affiliate_id",
    link: "link_id",
    event_type: "''",
    status: "''",
    currency: "''",
};

/// `[expr, …]` of the dimensions as strings. Time buckets: the hour as the Unix time of
/// its start (its label needs the zone's offset then), the others as their first day.
pub(super) fn dims_sql(dimensions: &[Dimension], columns: &Columns, zone: &str) -> String {
    if dimensions.is_empty() {
        return "emptyArrayString()".into();
    }
    let parts: Vec<String> = dimensions
        .iter()
        .map(|dimension| match dimension {
            Dimension::Time(granularity) => {
                let t = columns.time;
                match granularity {
                    Granularity::Hour => {
                        format!("toString(toUnixTimestamp(toStartOfHour({t}, {zone})))")
                    }
                    Granularity::Day => format!("toString(toDate({t}, {zone}))"),
                    Granularity::Week => format!("toString(toMonday({t}, {zone}))"),
                    Granularity::Month => format!("toString(toStartOfMonth({t}, {zone}))"),
                }
            }
            Dimension::Campaign => columns.campaign.to_owned(),
            Dimension::Affiliate => columns.affiliate.to_owned(),
            Dimension::Link => columns.link.to_owned(),
            Dimension::EventType => columns.event_type.to_owned(),
            Dimension::Status => columns.status.to_owned(),
            Dimension::Currency => columns.currency.to_owned(),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// A zone name as an SQL literal. Names come from the zone database (letters, digits,
/// `/`, `_`, `-`, `+`); anything else is refused rather than escaped.
fn zone_literal(name: &str) -> Result<String, StoreError> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_-+".contains(&b))
    {
        return Err(StoreError::Refused(format!("{name:?} is not a zone name")));
    }
    Ok(format!("'{name}'"))
}

/// The WHERE of both reads: owner, time range and the filters both tables have.
pub(super) struct Conditions {
    pub(super) sql: String,
    pub(super) binds: Vec<String>,
}

/// `column` within any of the half-open ranges of Unix seconds.
pub(super) fn time_ranges(column: &str, ranges: &[(i64, i64)]) -> String {
    if ranges.is_empty() {
        return "0".into();
    }
    let each: Vec<String> = ranges
        .iter()
        .map(|(from, until)| {
            format!("({column} >= toDateTime({from}) AND {column} < toDateTime({until}))")
        })
        .collect();
    format!("({})", each.join(" OR "))
}

impl Conditions {
    /// `time` is the condition on the rows' time, such as [`time_ranges`] makes.
    pub(super) fn new(spec: &ReportSpec, time: String, conversions: bool) -> Self {
        let (owner, id) = match &spec.scope {
            ReportScope::Brand(brand) => ("brand_id", brand.to_string()),
            ReportScope::Affiliate(affiliate) => ("affiliate_id", affiliate.to_string()),
        };
        let mut conditions = Conditions {
            sql: format!("{owner} = ? AND {time}"),
            binds: vec![id],
        };
        let filter = &spec.filter;
        conditions.push(
            "campaign_id",
            filter.campaign.as_ref().map(|c| c.to_string()),
        );
        conditions.push(
            "affiliate_id",
            filter.affiliate.as_ref().map(|a| a.to_string()),
        );
        conditions.push("link_id", filter.link.as_ref().map(|l| l.to_string()));
        if conversions {
            // Never change between versions, so they may narrow the rows before collapsing.
            conditions.push("event_type", filter.event_type.map(|e| e.to_string()));
            conditions.push("currency", filter.currency.map(|c| c.to_string()));
        }
        conditions
    }

    fn push(&mut self, column: &str, value: Option<String>) {
        if let Some(value) = value {
            self.sql.push_str(&format!(" AND {column} = ?"));
            self.binds.push(value);
        }
    }
}

impl Store {
    /// The click and conversion groups of a report, in no order, and which figures
    /// answered them.
    ///
    /// `source` is the caller's choice: rollups are exact only where
    /// [`ReportSpec::rollups_apply`]. When they cannot be read consistently (see
    /// [`Store::rollup_groups`]) the raw rows answer: exact, only slower.
    pub async fn report_groups(
        &self,
        spec: &ReportSpec,
        source: ReportSource,
    ) -> Result<(Vec<ClickGroup>, Vec<ConversionGroup>, ReportSource), StoreError> {
        let zone = zone_literal(&spec.time_zone_name)?;
        if source == ReportSource::Rollups
            && let Some((clicks, conversions)) = self.rollup_groups(spec, &zone).await?
        {
            return Ok((clicks, conversions, ReportSource::Rollups));
        }
        let (clicks, conversions) = tokio::try_join!(
            self.click_groups(spec, &zone, None),
            self.conversion_groups(spec, &zone, None)
        )?;
        Ok((clicks, conversions, ReportSource::Raw))
    }

    /// A report from the rollups, or none when they kept changing under it.
    ///
    /// Each (brand, UTC day)'s latest generation is read first and the report reads exactly
    /// those; then the generations are read again. Unchanged, no newer generation stood at
    /// any moment in between (a newer version, once written, stays the latest until a newer
    /// one still), so none of the named ones can have been merged away while the report
    /// read them. Changed, the report is read again with the new ones, at most
    /// [`ROLLUP_ATTEMPTS`] times. A day whose moved hours are of another generation than
    /// its daily rows ([`days_moved_hours_disagree`]) is waited for, a recompute's two
    /// INSERTs apart, for at most [`DISAGREEMENT_WAITS`]; still apart, the day is marked for
    /// the refresher to recompute whole.
    async fn rollup_groups(
        &self,
        spec: &ReportSpec,
        zone: &str,
    ) -> Result<Option<(Vec<ClickGroup>, Vec<ConversionGroup>)>, StoreError> {
        let grains = spec.rollup_grains();
        let mut generations = self.rollup_generations(spec, &grains).await?;
        let mut waits = DISAGREEMENT_WAITS.iter();
        let mut reads = 0;
        loop {
            let apart = days_moved_hours_disagree(&grains, &generations);
            if !apart.is_empty() {
                let Some(wait) = waits.next() else {
                    tracing::warn!(
                        days = apart.len(),
                        "daily and hourly report rollups disagree; the days are recomputed"
                    );
                    self.mark_report_days(&apart).await?;
                    return Ok(None);
                };
                tokio::time::sleep(*wait).await;
                generations = self.rollup_generations(spec, &grains).await?;
                continue;
            }
            if reads == ROLLUP_ATTEMPTS {
                tracing::info!("report rollups were recomputed during every read");
                return Ok(None);
            }
            reads += 1;
            let (clicks, conversions) = tokio::try_join!(
                self.click_groups(spec, zone, Some(&generations)),
                self.conversion_groups(spec, zone, Some(&generations))
            )?;
            let after = self.rollup_generations(spec, &grains).await?;
            if after == generations {
                return Ok(Some((clicks, conversions)));
            }
            generations = after;
        }
    }

    /// A read of a report. On a cluster every read of one goes to the same replica of each
    /// shard while it is up (the first in the cluster's order): the generations a report
    /// names are then those of the replica it reads, not of one that may lag behind.
    ///
    /// A report names every generation it reads, one `(brand, day, version)` per UTC day
    /// and brand: an affiliate's 400-day report over a dozen brands is more than
    /// ClickHouse parses by default (256 KiB, 50,000 syntax tree elements), so reports may
    /// be up to [`REPORT_QUERY_BYTES`] and [`REPORT_QUERY_ELEMENTS`].
    fn report_query(&self, sql: &str) -> clickhouse::query::Query {
        let query = self
            .read_client()
            .query(sql)
            .with_setting("max_query_size", REPORT_QUERY_BYTES.to_string())
            .with_setting("max_ast_elements", REPORT_QUERY_ELEMENTS.to_string())
            .with_setting(
                "max_expanded_ast_elements",
                REPORT_QUERY_ELEMENTS.to_string(),
            );
        if self.cluster().is_some() {
            query.with_setting("load_balancing", "in_order")
        } else {
            query
        }
    }

    /// Each (brand, UTC day)'s latest rollup generation in every part of the report, in
    /// one order.
    async fn rollup_generations(
        &self,
        spec: &ReportSpec,
        grains: &RollupGrains,
    ) -> Result<Vec<Generation>, StoreError> {
        let read = generations_sql(spec, grains);
        let mut query = self.report_query(&read.sql);
        for bind in &read.binds {
            query = query.bind(bind);
        }
        let mut generations = self
            .within(
                Exchange::Read,
                "report rollup generations",
                query.fetch_all::<Generation>(),
            )
            .await?;
        generations.sort_unstable();
        Ok(generations)
    }

    async fn click_groups(
        &self,
        spec: &ReportSpec,
        zone: &str,
        generations: Option<&[Generation]>,
    ) -> Result<Vec<ClickGroup>, StoreError> {
        let dimensions = spec.click_dimensions();
        let (sql, binds) = match generations {
            None => {
                let range = time_ranges(
                    "clicked_at",
                    &[(spec.from.unix_timestamp(), spec.until.unix_timestamp())],
                );
                let conditions = Conditions::new(spec, range, false);
                let sql = format!(
                    "SELECT {} AS dims, uniqExact(click_id) AS clicks FROM clicks \
                     WHERE {} GROUP BY dims",
                    dims_sql(dimensions, &CLICKS, zone),
                    conditions.sql
                );
                (sql, conditions.binds)
            }
            Some(generations) => {
                let rows = rollup_clicks(spec, &spec.rollup_grains(), generations);
                let sql = format!(
                    // Moved hours add and take away: a bucket they emptied is no row.
                    "SELECT {} AS dims, toUInt64(sum(signed_clicks)) AS clicks FROM ({}) \
                     GROUP BY dims HAVING sum(signed_clicks) != 0",
                    dims_sql(dimensions, &ROLLUP_KEYS, zone),
                    rows.sql
                );
                (sql, rows.binds)
            }
        };
        let mut query = self.report_query(&sql);
        for bind in &binds {
            query = query.bind(bind);
        }
        let rows = self
            .within(
                Exchange::Read,
                "report clicks",
                query.fetch_all::<ClickCount>(),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| ClickGroup {
                dims: sortable(dimensions, row.dims),
                clicks: row.clicks,
            })
            .collect())
    }

    async fn conversion_groups(
        &self,
        spec: &ReportSpec,
        zone: &str,
        generations: Option<&[Generation]>,
    ) -> Result<Vec<ConversionGroup>, StoreError> {
        let (from, binds) = match generations {
            None => {
                let table = match &spec.scope {
                    ReportScope::Brand(_) => "conversions_by_brand",
                    ReportScope::Affiliate(_) => "conversions_by_affiliate",
                };
                let range = time_ranges(
                    "created_at",
                    &[(spec.from.unix_timestamp(), spec.until.unix_timestamp())],
                );
                let conditions = Conditions::new(spec, range, true);
                let from = FINAL_CONVERSIONS
                    .replace("{table}", table)
                    .replace("{conditions}", &conditions.sql);
                (from, conditions.binds)
            }
            Some(generations) => {
                let per_status =
                    spec.filter.status.is_some() || spec.group_by.contains(&Dimension::Status);
                let rows = rollup_conversions(spec, &spec.rollup_grains(), generations, per_status);
                (rows.sql, rows.binds)
            }
        };
        let status = spec
            .filter
            .status
            .map(|status| format!(" WHERE latest_status = '{}'", status.as_str()))
            .unwrap_or_default();
        let sql = format!(
            "SELECT {dims} AS dims, latest_currency AS currency, \
                    latest_commission_currency AS commission_currency, \
                    toUInt64(sum(n)) AS conversions, \
                    toUInt64(sum(n_pending)) AS pending, \
                    toUInt64(sum(n_approved)) AS approved, \
                    toUInt64(sum(n_rejected)) AS rejected, \
                    toString(sum(latest_amount)) AS amount, \
                    toString(sum(latest_commission)) AS commission \
             FROM ({from}){status} \
             GROUP BY dims, currency, commission_currency \
             HAVING sum(n) != 0",
            dims = dims_sql(&spec.group_by, &LATEST, zone),
        );
        let mut query = self
            .report_query(&sql)
            .with_setting("optimize_move_to_prewhere", "0");
        for bind in &binds {
            query = query.bind(bind);
        }
        let rows = self
            .within(
                Exchange::Read,
                "report conversions",
                query.fetch_all::<ConversionSums>(),
            )
            .await?;
        rows.into_iter()
            .map(|row| {
                let decimal = |text: &str, what: &str| {
                    text.parse::<Decimal>().map_err(|_| {
                        StoreError::Refused(format!("a report's {what} reads {text:?}"))
                    })
                };
                Ok(ConversionGroup {
                    dims: sortable(&spec.group_by, row.dims),
                    amount: decimal(&row.amount, "amount")?,
                    commission: decimal(&row.commission, "commission")?,
                    currency: row.currency,
                    commission_currency: row.commission_currency,
                    conversions: row.conversions,
                    pending: row.pending,
                    approved: row.approved,
                    rejected: row.rejected,
                })
            })
            .collect()
    }
}

/// Hour buckets arrive as Unix times; padded to one width they sort as they are ordered
/// in time (which their local labels, across a DST change, would not).
fn sortable(dimensions: &[Dimension], mut dims: Vec<String>) -> Vec<String> {
    for (dimension, value) in dimensions.iter().zip(dims.iter_mut()) {
        if *dimension == Dimension::Time(Granularity::Hour) {
            *value = format!("{value:0>12}");
        }
    }
    dims
}
