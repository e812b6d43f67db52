//! What a report asks for, as checked values: the scope, the time range and zone, the
//! filters, the grouping and the order.

use std::fmt;
use std::str::FromStr;

use jiff::tz::TimeZone;
use time::OffsetDateTime;

use crate::domain::{AffiliateId, BrandId, CampaignId, Currency, EventType, LinkId, Status};

/// Whose traffic a report counts: a brand's, or one affiliate's across brands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportScope {
    Brand(BrandId),
    Affiliate(AffiliateId),
}

/// The length of a time bucket; day, week (from Monday) and month follow the report's
/// time zone, and so does the hour where a zone's offset is not whole hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Granularity {
    Hour,
    Day,
    Week,
    Month,
}

/// What a report can be grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    Time(Granularity),
    Campaign,
    Affiliate,
    Link,
    EventType,
    Status,
    Currency,
}

impl Dimension {
    pub const NAMES: [&'static str; 10] = [
        "hour",
        "day",
        "week",
        "month",
        "campaign",
        "affiliate",
        "link",
        "event_type",
        "status",
        "currency",
    ];

    /// The name a row's field (and a CSV column) has: `day`, `campaign_id`, `currency`.
    pub fn column(self) -> &'static str {
        match self {
            Dimension::Time(Granularity::Hour) => "hour",
            Dimension::Time(Granularity::Day) => "day",
            Dimension::Time(Granularity::Week) => "week",
            Dimension::Time(Granularity::Month) => "month",
            Dimension::Campaign => "campaign_id",
            Dimension::Affiliate => "affiliate_id",
            Dimension::Link => "link_id",
            Dimension::EventType => "event_type",
            Dimension::Status => "status",
            Dimension::Currency => "currency",
        }
    }

    /// Whether clicks have this dimension too.
    pub fn applies_to_clicks(self) -> bool {
        matches!(
            self,
            Dimension::Time(_) | Dimension::Campaign | Dimension::Affiliate | Dimension::Link
        )
    }
}

impl FromStr for Dimension {
    type Err = ();

    fn from_str(name: &str) -> Result<Self, ()> {
        Ok(match name {
            "hour" => Dimension::Time(Granularity::Hour),
            "day" => Dimension::Time(Granularity::Day),
            "week" => Dimension::Time(Granularity::Week),
            "month" => Dimension::Time(Granularity::Month),
            "campaign" => Dimension::Campaign,
            "affiliate" => Dimension::Affiliate,
            "link" => Dimension::Link,
            "event_type" => Dimension::EventType,
            "status" => Dimension::Status,
            "currency" => Dimension::Currency,
            _ => return Err(()),
        })
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.column())
    }
}

/// Filters; event type, status and currency narrow conversions only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportFilter {
    pub campaign: Option<CampaignId>,
    pub affiliate: Option<AffiliateId>,
    pub link: Option<LinkId>,
    pub event_type: Option<EventType>,
    /// Matches each conversion's latest status.
    pub status: Option<Status>,
    pub currency: Option<Currency>,
}

/// What rows are ordered by; ties are broken by the dimensions in order, ascending, so
/// that pages never overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Dimension(Dimension),
    Clicks,
    Conversions,
    Pending,
    Approved,
    Rejected,
    ConversionRate,
    /// The money metrics, where each row has one currency (grouped or filtered by it).
    Amount,
    Commission,
    Epc,
}

impl SortKey {
    pub const METRICS: [&'static str; 9] = [
        "clicks",
        "conversions",
        "pending",
        "approved",
        "rejected",
        "conversion_rate",
        "amount",
        "commission",
        "epc",
    ];

    pub fn metric(name: &str) -> Option<SortKey> {
        Some(match name {
            "clicks" => SortKey::Clicks,
            "conversions" => SortKey::Conversions,
            "pending" => SortKey::Pending,
            "approved" => SortKey::Approved,
            "rejected" => SortKey::Rejected,
            "conversion_rate" => SortKey::ConversionRate,
            "amount" => SortKey::Amount,
            "commission" => SortKey::Commission,
            "epc" => SortKey::Epc,
            _ => return None,
        })
    }

    pub fn is_money(self) -> bool {
        matches!(self, SortKey::Amount | SortKey::Commission | SortKey::Epc)
    }
}

/// A whole report request, checked.
#[derive(Debug, Clone)]
pub struct ReportSpec {
    pub scope: ReportScope,
    /// Inclusive.
    pub from: OffsetDateTime,
    /// Exclusive.
    pub until: OffsetDateTime,
    pub time_zone: TimeZone,
    /// The zone's IANA name, as ClickHouse is given it.
    pub time_zone_name: String,
    pub filter: ReportFilter,
    /// Distinct dimensions, in the order asked.
    pub group_by: Vec<Dimension>,
    /// Keys with `true` for descending.
    pub sort: Vec<(SortKey, bool)>,
}

impl ReportSpec {
    /// The dimensions clicks are grouped by: all of them, or none when any is one clicks
    /// do not have (the clicks then only make the totals).
    pub fn click_dimensions(&self) -> &[Dimension] {
        if self.rows_have_clicks() {
            &self.group_by
        } else {
            &[]
        }
    }

    pub fn rows_have_clicks(&self) -> bool {
        self.group_by.iter().all(|d| d.applies_to_clicks())
    }

    /// Whether the hourly rollups (UTC hours) answer this report exactly: its range starts
    /// and ends on whole hours, and its zone is a whole number of hours from UTC all
    /// through it, so every local bucket is a union of UTC hours.
    pub fn rollups_apply(&self) -> bool {
        let whole_hour = |seconds: i64| seconds.rem_euclid(3600) == 0;
        if !whole_hour(self.from.unix_timestamp()) || !whole_hour(self.until.unix_timestamp()) {
            return false;
        }
        let (Ok(from), Ok(until)) = (
            jiff::Timestamp::from_second(self.from.unix_timestamp()),
            jiff::Timestamp::from_second(self.until.unix_timestamp()),
        ) else {
            return false;
        };
        let whole_offset = |offset: jiff::tz::Offset| offset.seconds() % 3600 == 0;
        whole_offset(self.time_zone.to_offset(from))
            && self
                .time_zone
                .following(from)
                .take_while(|transition| transition.timestamp() < until)
                .all(|transition| whole_offset(transition.offset()))
    }
}

/// Where a report's figures are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportSource {
    /// Every conversion and click of the range, collapsed to their latest versions.
    Raw,
    /// The hourly rollups; exact where [`ReportSpec::rollups_apply`], and as fresh as
    /// their last refresh.
    Rollups,
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn spec(zone: &str, from: OffsetDateTime, until: OffsetDateTime) -> ReportSpec {
        ReportSpec {
            scope: ReportScope::Brand(BrandId::generate()),
            from,
            until,
            time_zone: TimeZone::get(zone).unwrap(),
            time_zone_name: zone.into(),
            filter: ReportFilter::default(),
            group_by: vec![Dimension::Time(Granularity::Day)],
            sort: vec![],
        }
    }

    #[test]
    fn rollups_answer_whole_hour_ranges_in_whole_hour_zones() {
        // Berlin's days across its spring change: 23 whole UTC hours.
        let berlin = spec(
            "Europe/Berlin",
            datetime!(2026-03-28 23:00 UTC),
            datetime!(2026-03-29 22:00 UTC),
        );
        assert!(berlin.rollups_apply());
        let minutes = spec(
            "UTC",
            datetime!(2026-03-28 23:30 UTC),
            datetime!(2026-03-29 22:00 UTC),
        );
        assert!(!minutes.rollups_apply());
        let kolkata = spec(
            "Asia/Kolkata",
            datetime!(2026-03-28 18:30 UTC),
            datetime!(2026-03-29 18:30 UTC),
        );
        assert!(!kolkata.rollups_apply());
        // Lord Howe is +11:00 until 2026-04-05, then +10:30.
        let before = datetime!(2026-03-01 13:00 UTC);
        assert!(
            spec(
                "Australia/Lord_Howe",
                before,
                datetime!(2026-04-01 13:00 UTC)
            )
            .rollups_apply()
        );
        assert!(
            !spec(
                "Australia/Lord_Howe",
                before,
                datetime!(2026-04-10 13:00 UTC)
            )
            .rollups_apply()
        );
    }
}
