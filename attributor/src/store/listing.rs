//! Listing a brand's or an affiliate's conversions, newest first, from the copies sorted
//! by owner and time.
//!
//! Only a conversion's latest version counts, so reads are FINAL; FINAL over a big brand's
//! whole history costs seconds on the servers this runs on. A page therefore looks at the
//! newest hour first and widens the window eightfold until it holds the page: every row
//! outside a window is older than every row in it, so a window that holds `offset +
//! per_page` rows holds exactly the page the whole history would give.

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

#[derive(clickhouse::Row, serde::Deserialize)]
struct Newest {
    newest: u32,
}

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
        let mut query = store.client().query(sql);
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
        let offset = u64::from(page.page.saturating_sub(1)) * u64::from(page.per_page);
        // Nothing is created after now: a window that starts in the future is empty. (Rows
        // stamped a little ahead by another node's clock are still read: the window has no
        // upper end but `until`.) After a cursor, nothing is newer than the cursor's second.
        let mut newest = filter.until.map_or(now, |until| until.min(now));
        if let Some(after) = after {
            newest = newest.min(after.created_at + Duration::seconds(1));
        }
        if Conditions::of(filter).table == STATUS_COPY {
            newest = newest.min(self.newest_of_status(filter).await? + Duration::seconds(1));
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
                "SELECT ?fields FROM {} FINAL WHERE {} \
                 ORDER BY created_at DESC, conversion_id DESC LIMIT {offset}, {}",
                conditions.table, conditions.sql, page.per_page
            );
            let rows = self
                .within(
                    Exchange::Read,
                    "listing",
                    conditions.query(self, &sql).fetch_all::<ConversionRow>(),
                )
                .await?;
            if whole_range || rows.len() == page.per_page as usize {
                return rows.into_iter().map(Conversion::try_from).collect();
            }
            window *= WIDENING;
        }
    }

    /// The newest creation time of the filter's status (as read without FINAL, so perhaps
    /// of a row that has since left it): a status decided days after the conversions came
    /// in has no rows in the newest hours, and the first window starts here instead.
    async fn newest_of_status(&self, filter: &ListFilter) -> Result<OffsetDateTime, StoreError> {
        let conditions = Conditions::of(filter);
        let sql = format!(
            "SELECT toUInt32(max(created_at)) AS newest FROM {} WHERE {}",
            conditions.table, conditions.sql
        );
        let found = self
            .within(
                Exchange::Read,
                "listing",
                conditions.query(self, &sql).fetch_one::<Newest>(),
            )
            .await?;
        Ok(OffsetDateTime::from_unix_timestamp(found.newest.into())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH))
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
