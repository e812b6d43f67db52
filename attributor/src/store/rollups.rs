//! The report rollups (hourly by link, `sql/0008_report_rollups.sql`; daily without it,
//! `sql/0013_report_daily_rollups.sql`): which (brand, UTC day)s an INSERT touched since
//! they were last recomputed, and the recompute of one of them.

use clickhouse::Row;
use serde::Deserialize;
use time::Date;
use time::macros::format_description;

use super::deadline::Exchange;
use super::{Store, StoreError};

/// The figures of a rollup row, in the order [`SUMS`] computes them.
const FIGURES: &str = "pending, approved, rejected, amount_pending, amount_approved, \
    amount_rejected, commission_pending, commission_approved, commission_rejected";

/// [`FIGURES`] summed over rollup rows.
const FIGURE_SUMS: &str = "sum(pending), sum(approved), sum(rejected), sum(amount_pending), \
    sum(amount_approved), sum(amount_rejected), sum(commission_pending), \
    sum(commission_approved), sum(commission_rejected)";

/// [`FIGURES`] from latest versions of conversions.
const SUMS: &str = "countIf(latest_status = 'pending'), countIf(latest_status = 'approved'), \
    countIf(latest_status = 'rejected'), sumIf(latest_amount, latest_status = 'pending'), \
    sumIf(latest_amount, latest_status = 'approved'), \
    sumIf(latest_amount, latest_status = 'rejected'), \
    sumIf(latest_commission, latest_status = 'pending'), \
    sumIf(latest_commission, latest_status = 'approved'), \
    sumIf(latest_commission, latest_status = 'rejected')";

/// A brand's UTC day whose rollup rows must be recomputed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DirtyDay {
    pub brand_id: String,
    pub day: Date,
}

#[derive(Row, Deserialize)]
struct DirtyRow {
    brand_id: String,
    day_text: String,
}

impl Store {
    /// Days marked at or after `since` whose latest mark is not older than their last
    /// recompute by more than `margin_seconds` (or that were never recomputed).
    ///
    /// The margin covers an INSERT still being written when its mark is already readable:
    /// its day is recomputed again by every pass until `margin_seconds` after its mark.
    pub async fn dirty_report_days(
        &self,
        since: u32,
        margin_seconds: u32,
    ) -> Result<Vec<DirtyDay>, StoreError> {
        let sql = "SELECT brand_id, toString(day) AS day_text FROM ( \
                SELECT brand_id, day, max(marked_at) AS marked FROM report_dirty_days \
                WHERE marked_at >= toDateTime(?) GROUP BY brand_id, day \
            ) ANY LEFT JOIN ( \
                SELECT brand_id, day, max(refreshed_at) AS refreshed FROM report_refreshes \
                GROUP BY brand_id, day \
            ) USING (brand_id, day) \
            WHERE toUInt32(marked) + ? >= toUInt32(refreshed) \
            ORDER BY day, brand_id";
        let rows = self
            .within(
                Exchange::Read,
                "dirty report days",
                self.read_client()
                    .query(sql)
                    .bind(since)
                    .bind(margin_seconds)
                    .fetch_all::<DirtyRow>(),
            )
            .await?;
        rows.into_iter()
            .map(|row| {
                let day = Date::parse(&row.day_text, format_description!("[year]-[month]-[day]"))
                    .map_err(|_| {
                    StoreError::Refused(format!("a dirty day reads {:?}", row.day_text))
                })?;
                Ok(DirtyDay {
                    brand_id: row.brand_id,
                    day,
                })
            })
            .collect()
    }

    /// Marks (brand, UTC day)s for the refresher to recompute, as an INSERT into the
    /// conversions would: `days` are `(brand_id, "YYYY-MM-DD")`.
    pub async fn mark_report_days(&self, days: &[(String, String)]) -> Result<(), StoreError> {
        if days.is_empty() {
            return Ok(());
        }
        let values = vec!["(?, toDate(?), now())"; days.len()].join(", ");
        let mut query = self.client().query(&format!(
            "INSERT INTO report_dirty_days (brand_id, day, marked_at) VALUES {values}"
        ));
        for (brand, day) in days {
            query = query.bind(brand).bind(day);
        }
        self.within(Exchange::Write, "report day marks", query.execute())
            .await
    }

    /// Deletes the marks older than `before`, the start of the latest complete refresh pass
    /// less its margin (see [`crate::reports::RollupRefresher`]): the day of each of them
    /// was recomputed by a recompute that began more than the margin after the mark, so
    /// the rollups have its rows and no pass reads the mark again. A day marked again
    /// after its recompute began has a mark newer than `before`, which stays.
    ///
    /// A mutation, left to run in the background: nothing waits for it, and a mark it has
    /// not deleted yet is only read as already dealt with.
    pub async fn trim_report_marks(&self, before: u32) -> Result<(), StoreError> {
        let sql = self.alter_local(
            "report_dirty_days",
            &format!("DELETE WHERE marked_at < toDateTime({before})"),
        );
        if self.cluster().is_some() {
            return self.ddl(&sql).await;
        }
        self.within(
            Exchange::Write,
            "report mark trim",
            self.client().query(&sql).execute(),
        )
        .await
    }

    /// Rewrites the rollup rows of one brand's UTC day from the latest version of each of
    /// its conversions and its distinct clicks as a new generation `version`, then records
    /// the recompute as of `started_at` (the server's clock when the pass began).
    ///
    /// Each table's generation is one `INSERT … SELECT`, written as one part (ClickHouse
    /// squashes it into blocks of a million rows, more than a brand's day has keys), so a
    /// generation is seen whole or not at all; and it holds every key the day ever had.
    /// Readers therefore take, per brand and day, the rows of the highest version there
    /// is, without FINAL, as they are (two nodes draw the same generation with a chance of
    /// 2^-32, see the refresher); merges only drop rows of older generations.
    pub async fn refresh_report_day(
        &self,
        dirty: &DirtyDay,
        started_at: u32,
        version: u64,
    ) -> Result<(), StoreError> {
        let from = dirty.day.midnight().assume_utc().unix_timestamp();
        let until = from + 86_400;
        let latest = super::reports::FINAL_CONVERSIONS
            .replace("{table}", "conversions_by_brand")
            .replace(
                "{conditions}",
                &format!(
                    "brand_id = ? AND created_at >= toDateTime({from}) \
                     AND created_at < toDateTime({until})"
                ),
            );
        let clicks_of_the_day = format!(
            "FROM clicks WHERE brand_id = ? AND clicked_at >= toDateTime({from}) \
             AND clicked_at < toDateTime({until})"
        );
        let day = dirty.day.to_string();
        // The hourly rows are read from the day's rows; the daily ones are the hourly
        // generation just written, summed without the link and hour, right after it. So a
        // day's daily and hourly rows of one generation agree to the unit (readers that
        // take some hours of a day from each rely on it, and wait out the moment between
        // the two), and the day's conversions are read once.
        let generation_of_the_day = |table: &str| {
            format!(
                "FROM {table} WHERE brand_id = ? AND hour >= toDateTime({from}) \
                 AND hour < toDateTime({until}) AND version = {version}"
            )
        };
        let statements = [
            (
                "conversion rollup refresh",
                format!(
                    "INSERT INTO report_conversions_hourly (brand_id, hour, campaign_id, \
                         affiliate_id, link_id, event_type, currency, commission_currency, \
                         version, {FIGURES}) \
                     SELECT ?, toStartOfHour(latest_created_at, 'UTC') AS h, latest_campaign_id, \
                            latest_affiliate_id, latest_link_id, latest_event_type, \
                            latest_currency, latest_commission_currency, {version}, {SUMS} \
                     FROM ({latest}) \
                     GROUP BY h, latest_campaign_id, latest_affiliate_id, latest_link_id, \
                              latest_event_type, latest_currency, latest_commission_currency"
                ),
            ),
            (
                "daily conversion rollup refresh",
                format!(
                    "INSERT INTO report_conversions_daily (brand_id, day, campaign_id, \
                         affiliate_id, event_type, currency, commission_currency, version, \
                         {FIGURES}) \
                     SELECT brand_id, toDate('{day}'), campaign_id, affiliate_id, event_type, \
                            currency, commission_currency, {version}, {FIGURE_SUMS} \
                     {generation_of_the_day} \
                     GROUP BY brand_id, campaign_id, affiliate_id, event_type, currency, \
                              commission_currency",
                    generation_of_the_day = generation_of_the_day("report_conversions_hourly"),
                ),
            ),
            (
                "click rollup refresh",
                format!(
                    "INSERT INTO report_clicks_hourly (brand_id, hour, campaign_id, \
                         affiliate_id, link_id, version, clicks) \
                     SELECT brand_id, toStartOfHour(clicked_at, 'UTC') AS h, campaign_id, \
                            affiliate_id, link_id, {version}, uniqExact(click_id) \
                     {clicks_of_the_day} \
                     GROUP BY brand_id, h, campaign_id, affiliate_id, link_id"
                ),
            ),
            (
                "daily click rollup refresh",
                format!(
                    "INSERT INTO report_clicks_daily (brand_id, day, campaign_id, \
                         affiliate_id, version, clicks) \
                     SELECT brand_id, toDate('{day}'), campaign_id, affiliate_id, {version}, \
                            sum(clicks) \
                     {generation_of_the_day} \
                     GROUP BY brand_id, campaign_id, affiliate_id",
                    generation_of_the_day = generation_of_the_day("report_clicks_hourly"),
                ),
            ),
        ];
        let brand = dirty.brand_id.as_str();
        for (what, sql) in &statements {
            // Every placeholder is the brand.
            let mut query = self
                .client()
                .query(sql)
                .with_setting("optimize_move_to_prewhere", "0");
            for _ in 0..sql.matches('?').count() {
                query = query.bind(brand);
            }
            if self.cluster().is_some() {
                // The daily rows read the hourly generation just written: from the replica
                // it was written to (the first up, for both), not one still fetching it.
                query = query.with_setting("load_balancing", "in_order");
            }
            self.within(Exchange::Bulk, what, query.execute()).await?;
        }
        self.within(
            Exchange::Write,
            "rollup refresh record",
            self.client()
                .query(
                    "INSERT INTO report_refreshes (brand_id, day, refreshed_at) \
                     VALUES (?, toDate(?), ?)",
                )
                .bind(brand)
                .bind(dirty.day.to_string())
                .bind(started_at)
                .execute(),
        )
        .await
    }
}
