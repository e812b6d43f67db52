//! Listing a brand's or an affiliate's conversions, newest first, from the copies sorted
//! by owner and time.
//!
//! Only a conversion's latest version counts, so reads are FINAL; FINAL over a big brand's
//! whole history costs seconds on the servers this runs on. A page therefore looks at the
//! newest hour first and widens the window eightfold until it holds the page: every row
//! outside a window is older than every row in it, so a window that holds `offset +
//! per_page` rows holds exactly the page the whole history would give.
//!
//! The windows are read narrow (the page's ids and times: a few columns instead of every
//! column of every row in the window, about five times cheaper), then the page's full
//! rows are read from the same copy, in the few granules between its oldest and newest
//! time. Reading them by id from the authoritative table instead would cost seconds: ids
//! of one page are scattered across every part of it.

use time::{Duration, OffsetDateTime};

use super::conversions::Count;
use super::cursor::ListCursor;
use super::deadline::Exchange;
use super::rows::ConversionRow;
use super::{Store, StoreError};
use crate::conversion::Conversion;
use crate::domain::{AffiliateId, BrandId, CampaignId, Status};

const FIRST_WINDOW: Duration = Duration::hours(1);
/// The copy sorted by (brand, status, created_at) that a brand's status filter reads.
const STATUS_COPY: &str = "conversions_by_status";
const WIDENING: i32 = 8;
/// Past this the window is dropped: the whole history is read.
const WIDEST_WINDOW: Duration = Duration::days(400);

/// Where a listed conversion sorts: what the narrow read of a window returns.
#[derive(clickhouse::Row, serde::Deserialize)]
struct Listed {
    conversion_id: String,
    #[serde(with = "clickhouse::serde::time::datetime")]
    created_at: OffsetDateTime,
}

/// A page's rows may change between its two reads (a status change leaves the status
/// copy's page a row short); the page is then read again, this many times at most.
const PAGE_READS: usize = 3;

/// Whose conversions a listing shows: a brand's, or an affiliate's across brands.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListOwner {
    Brand(BrandId),
    Affiliate(AffiliateId),
}

/// The filters of `GET /api/conversions`, without the page.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListFilter {
    pub owner: ListOwner,
    /// Inclusive lower bound on created_at.
    pub from: Option<OffsetDateTime>,
    /// Exclusive upper bound on created_at.
    pub until: Option<OffsetDateTime>,
    pub campaign: Option<CampaignId>,
    pub affiliate: Option<AffiliateId>,
    pub status: Option<Status>,
    /// Only conversions of campaigns with a hold whose scheduled approval falls in these
    /// ranges (one per campaign); an empty list matches nothing.
    pub scheduled: Option<Vec<ScheduledRange>>,
}

/// Conversions of `campaign` created in `[created_from, created_until)`: for a hold of
/// `d` days, the ones whose approval is scheduled in `[from, until)` are created in
/// `[from − d, until − d)`, a range of the listing copy's sort key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScheduledRange {
    pub campaign: CampaignId,
    pub created_from: Option<OffsetDateTime>,
    pub created_until: Option<OffsetDateTime>,
}

/// Which page, counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub per_page: u32,
}

enum Bound {
    Text(String),
    Seconds(i64),
}

/// A WHERE clause and its bound values.
struct Conditions {
    table: &'static str,
    sql: String,
    binds: Vec<Bound>,
}

impl Conditions {
    fn of(filter: &ListFilter) -> Self {
        let (table, owner_column, owner_id) = match &filter.owner {
            // A brand's status filter reads that status's rows only (the pending queue).
            ListOwner::Brand(brand) if filter.status.is_some() => {
                (STATUS_COPY, "brand_id", brand.to_string())
            }
            ListOwner::Brand(brand) => ("conversions_by_brand", "brand_id", brand.to_string()),
            ListOwner::Affiliate(affiliate) => (
                "conversions_by_affiliate",
                "affiliate_id",
                affiliate.to_string(),
            ),
        };
        let mut conditions = Conditions {
            table,
            sql: format!("{owner_column} = ?"),
            binds: vec![Bound::Text(owner_id)],
        };
        if let Some(from) = filter.from {
            conditions.since(from);
        }
        if let Some(until) = filter.until {
            conditions.push(
                " AND created_at < toDateTime(?)",
                Bound::Seconds(until.unix_timestamp()),
            );
        }
        if let Some(campaign) = &filter.campaign {
            conditions.push(" AND campaign_id = ?", Bound::Text(campaign.to_string()));
        }
        if let Some(affiliate) = &filter.affiliate {
            conditions.push(" AND affiliate_id = ?", Bound::Text(affiliate.to_string()));
        }
        // WHERE on a FINAL read filters the collapsed rows, so a status filter sees only
        // each conversion's latest status.
        if let Some(status) = filter.status {
            conditions.push(" AND status = ?", Bound::Text(status.to_string()));
            if table == STATUS_COPY {
                // A row left under a status the conversion no longer has is a tombstone.
                conditions.sql.push_str(" AND live = 1");
            }
        }
        if let Some(ranges) = &filter.scheduled {
            conditions.scheduled(ranges);
        }
        conditions
    }

    fn scheduled(&mut self, ranges: &[ScheduledRange]) {
        if ranges.is_empty() {
            self.sql.push_str(" AND 0");
            return;
        }
        let seconds = |at: OffsetDateTime| Bound::Seconds(at.unix_timestamp().max(0));
        self.sql.push_str(" AND (");
        for (n, range) in ranges.iter().enumerate() {
            if n > 0 {
                self.sql.push_str(" OR ");
            }
            self.push("(campaign_id = ?", Bound::Text(range.campaign.to_string()));
            if let Some(from) = range.created_from {
                self.push(" AND created_at >= toDateTime(?)", seconds(from));
            }
            if let Some(until) = range.created_until {
                self.push(" AND created_at < toDateTime(?)", seconds(until));
            }
            self.sql.push(')');
        }
        self.sql.push(')');
    }

    fn after(&mut self, cursor: &ListCursor) {
        let seconds = cursor.created_at.unix_timestamp();
        self.push(" AND (created_at < toDateTime(?)", Bound::Seconds(seconds));
        self.push(" OR (created_at = toDateTime(?)", Bound::Seconds(seconds));
        self.push(
            " AND conversion_id < ?))",
            Bound::Text(cursor.conversion_id.to_string()),
        );
    }

    fn since(&mut self, from: OffsetDateTime) {
        self.push(
            " AND created_at >= toDateTime(?)",
            Bound::Seconds(from.unix_timestamp()),
        );
    }

    fn push(&mut self, sql: &str, bound: Bound) {
        self.sql.push_str(sql);
        self.binds.push(bound);
    }

    fn query(&self, store: &Store, sql: &str) -> clickhouse::query::Query {
        let mut query = store.read_client().query(sql);
        for bound in &self.binds {
            query = match bound {
                Bound::Text(text) => query.bind(text),
                Bound::Seconds(seconds) => query.bind(seconds),
            };
        }
        query
    }
}

impl Store {
    /// One page of conversions, newest first, as of `now`.
    pub async fn list_conversions(
        &self,
        filter: &ListFilter,
        page: PageRequest,
        now: OffsetDateTime,
    ) -> Result<Vec<Conversion>, StoreError> {
        self.list_page(filter, page, None, now).await
    }

    /// `per_page` conversions that sort after `cursor` (older, or as old with a smaller
    /// id), newest first: the page after the one `cursor` ended.
    pub async fn list_conversions_after(
        &self,
        filter: &ListFilter,
        per_page: u32,
        cursor: &ListCursor,
        now: OffsetDateTime,
    ) -> Result<Vec<Conversion>, StoreError> {
        let page = PageRequest { page: 1, per_page };
        self.list_page(filter, page, Some(cursor), now).await
    }

    async fn list_page(
        &self,
        filter: &ListFilter,
        page: PageRequest,
        after: Option<&ListCursor>,
        now: OffsetDateTime,
    ) -> Result<Vec<Conversion>, StoreError> {
        let mut reads = 0;
        loop {
            reads += 1;
            let listed = self.list_keys(filter, page, after, now).await?;
            let rows = self.rows_of(filter, &listed).await?;
            if rows.len() == listed.len() || reads == PAGE_READS {
                return rows.into_iter().map(Conversion::try_from).collect();
            }
        }
    }

    /// The ids and times of one page, newest first, through the widening windows.
    async fn list_keys(
        &self,
        filter: &ListFilter,
        page: PageRequest,
        after: Option<&ListCursor>,
        now: OffsetDateTime,
    ) -> Result<Vec<Listed>, StoreError> {
        let offset = u64::from(page.page.saturating_sub(1)) * u64::from(page.per_page);
        // Nothing is created after now: a window that starts in the future is empty. (Rows
        // stamped a little ahead by another node's clock are still read: the window has no
        // upper end but `until`.) After a cursor, nothing is newer than the cursor's second.
        let mut newest = filter.until.map_or(now, |until| until.min(now));
        if let Some(after) = after {
            newest = newest.min(after.created_at + Duration::seconds(1));
        }
        let mut window = FIRST_WINDOW;
        loop {
            // Never below what a DateTime holds: a window reaching past 1970 is the whole
            // history anyway.
            let lower = newest
                .checked_sub(window)
                .filter(|lower| *lower > OffsetDateTime::UNIX_EPOCH);
            let whole_range = window > WIDEST_WINDOW
                || lower.is_none_or(|lower| filter.from.is_some_and(|from| from >= lower));
            let mut conditions = Conditions::of(filter);
            if let (false, Some(lower)) = (whole_range, lower) {
                conditions.since(lower);
            }
            if let Some(after) = after {
                conditions.after(after);
            }
            let sql = format!(
                "SELECT conversion_id, created_at FROM {} FINAL WHERE {} \
                 ORDER BY created_at DESC, conversion_id DESC LIMIT {offset}, {}",
                conditions.table, conditions.sql, page.per_page
            );
            let listed = self
                .within(
                    Exchange::Read,
                    "listing",
                    conditions.query(self, &sql).fetch_all::<Listed>(),
                )
                .await?;
            if whole_range || listed.len() == page.per_page as usize {
                return Ok(listed);
            }
            window *= WIDENING;
        }
    }

    /// The full rows of a page found by [`Self::list_keys`], in its order, read under the
    /// same conditions (so still each conversion's latest version, and still matching).
    async fn rows_of(
        &self,
        filter: &ListFilter,
        listed: &[Listed],
    ) -> Result<Vec<ConversionRow>, StoreError> {
        let (Some(newest), Some(oldest)) = (listed.first(), listed.last()) else {
            return Ok(Vec::new());
        };
        let mut conditions = Conditions::of(filter);
        conditions.since(oldest.created_at);
        conditions.push(
            " AND created_at <= toDateTime(?)",
            Bound::Seconds(newest.created_at.unix_timestamp()),
        );
        let ids: Vec<&str> = listed
            .iter()
            .map(|row| row.conversion_id.as_str())
            .collect();
        // `IN (SELECT arrayJoin(?))`: servers before 19 take no array literal after IN.
        let sql = format!(
            "SELECT ?fields FROM {} FINAL WHERE {} AND conversion_id IN (SELECT arrayJoin(?)) \
             ORDER BY created_at DESC, conversion_id DESC",
            conditions.table, conditions.sql
        );
        self.within(
            Exchange::Read,
            "listing",
            conditions
                .query(self, &sql)
                .bind(ids)
                .fetch_all::<ConversionRow>(),
        )
        .await
    }

    /// How many conversions match, counting each once in its latest status.
    pub async fn count_conversions(&self, filter: &ListFilter) -> Result<u64, StoreError> {
        self.count_matching(filter, "FINAL").await
    }

    /// About how many conversions match, cheaply: the same count without FINAL, so a
    /// version not yet merged away counts too (a recent status change, a row shipped
    /// twice), and the figure may run over by what ClickHouse has not merged yet. In the
    /// status copy a decided conversion's old row and its tombstone merge into the
    /// tombstone, which `live = 1` leaves out.
    pub async fn estimate_conversions(&self, filter: &ListFilter) -> Result<u64, StoreError> {
        self.count_matching(filter, "").await
    }

    async fn count_matching(&self, filter: &ListFilter, modifier: &str) -> Result<u64, StoreError> {
        let conditions = Conditions::of(filter);
        let sql = format!(
            "SELECT count() AS total FROM {} {modifier} WHERE {}",
            conditions.table, conditions.sql
        );
        let count = self
            .within(
                Exchange::Read,
                "listing count",
                conditions.query(self, &sql).fetch_one::<Count>(),
            )
            .await?;
        Ok(count.total)
    }
}
