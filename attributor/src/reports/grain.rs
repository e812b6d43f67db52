//! Which rollup grain answers which part of a report's range.
//!
//! The daily rollups (`sql/0013_report_daily_rollups.sql`) hold whole UTC days without the
//! link, a small fraction of the hourly rows over a long range. A UTC day can be read from
//! them only when every second of it lands in the same row of the report: the report
//! neither groups nor filters by link nor groups by hour, the day lies inside the range,
//! and it does not straddle a local day, week or month boundary of a time dimension asked
//! for. Everything else of the range (the hours at its ends, local days that start
//! off UTC midnight) is read from the hourly rollups, so the answer stays exact in every
//! zone the hourly rollups serve.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::spec::{Dimension, Granularity, ReportSpec};

const DAY_SECONDS: i64 = 86_400;

/// Half-open ranges of Unix seconds, in order, read from each grain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollupGrains {
    /// Whole UTC days (each range starts and ends at UTC midnight).
    pub daily: Vec<(i64, i64)>,
    /// Whole hours.
    pub hourly: Vec<(i64, i64)>,
}

impl RollupGrains {
    /// What the answer's `X-Affilync-Report-Grain` header says.
    pub fn name(&self) -> &'static str {
        match (self.daily.is_empty(), self.hourly.is_empty()) {
            (false, true) => "daily",
            (false, false) => "daily+hourly",
            _ => "hourly",
        }
    }
}

impl ReportSpec {
    /// How the rollups answer this report; meaningful where [`ReportSpec::rollups_apply`].
    pub fn rollup_grains(&self) -> RollupGrains {
        let (from, until) = (self.from.unix_timestamp(), self.until.unix_timestamp());
        let everything_hourly = RollupGrains {
            daily: vec![],
            hourly: vec![(from, until)],
        };
        let needs_hours = self.filter.link.is_some()
            || self
                .group_by
                .iter()
                .any(|d| matches!(d, Dimension::Link | Dimension::Time(Granularity::Hour)));
        if needs_hours {
            return everything_hourly;
        }
        let buckets: Vec<Granularity> = self
            .group_by
            .iter()
            .filter_map(|d| match d {
                Dimension::Time(granularity) => Some(*granularity),
                _ => None,
            })
            .collect();
        let mut grains = RollupGrains::default();
        let mut covered = from;
        let mut day = from.div_euclid(DAY_SECONDS) * DAY_SECONDS;
        if day < from {
            day += DAY_SECONDS;
        }
        while day + DAY_SECONDS <= until {
            let end = day + DAY_SECONDS;
            if one_bucket(&self.time_zone, &buckets, day, end - 1) {
                if covered < day {
                    push(&mut grains.hourly, covered, day);
                }
                push(&mut grains.daily, day, end);
                covered = end;
            }
            day = end;
        }
        if covered < until {
            push(&mut grains.hourly, covered, until);
        }
        grains
    }
}

/// Appends `[from, until)`, joined to the last range where they meet.
fn push(ranges: &mut Vec<(i64, i64)>, from: i64, until: i64) {
    match ranges.last_mut() {
        Some(last) if last.1 == from => last.1 = until,
        _ => ranges.push((from, until)),
    }
}

/// Whether instants `a` and `b` fall in the same local bucket of every granularity.
fn one_bucket(zone: &TimeZone, buckets: &[Granularity], a: i64, b: i64) -> bool {
    let local = |seconds: i64| {
        Timestamp::from_second(seconds)
            .ok()
            .map(|t| t.to_zoned(zone.clone()).date())
    };
    let (Some(a), Some(b)) = (local(a), local(b)) else {
        return false;
    };
    buckets.iter().all(|granularity| match granularity {
        Granularity::Hour => false,
        Granularity::Day => a == b,
        Granularity::Week => {
            let monday = |d: jiff::civil::Date| {
                d.checked_sub(
                    jiff::Span::new().days(i64::from(d.weekday().to_monday_zero_offset())),
                )
                .ok()
            };
            monday(a) == monday(b)
        }
        Granularity::Month => a.first_of_month() == b.first_of_month(),
    })
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;
    use time::macros::datetime;

    use super::*;
    use crate::domain::{BrandId, LinkId};
    use crate::reports::{ReportFilter, ReportScope};

    fn spec(
        zone: &str,
        group_by: &[&str],
        from: OffsetDateTime,
        until: OffsetDateTime,
    ) -> ReportSpec {
        ReportSpec {
            scope: ReportScope::Brand(BrandId::generate()),
            from,
            until,
            time_zone: TimeZone::get(zone).unwrap(),
            time_zone_name: zone.into(),
            filter: ReportFilter::default(),
            group_by: group_by.iter().map(|d| d.parse().unwrap()).collect(),
            sort: vec![],
        }
    }

    fn at(t: OffsetDateTime) -> i64 {
        t.unix_timestamp()
    }

    #[test]
    fn utc_days_come_whole_from_the_daily_rollups() {
        let (from, until) = (
            datetime!(2026-01-01 0:00 UTC),
            datetime!(2026-04-01 0:00 UTC),
        );
        for group_by in [
            &[][..],
            &["day", "campaign"],
            &["affiliate"],
            &["week"],
            &["month"],
        ] {
            let grains = spec("UTC", group_by, from, until).rollup_grains();
            assert_eq!(grains.daily, [(at(from), at(until))], "{group_by:?}");
            assert!(grains.hourly.is_empty());
        }
        let hours = spec("UTC", &["hour"], from, until).rollup_grains();
        assert_eq!(hours.hourly, [(at(from), at(until))]);
        let mut by_link = spec("UTC", &["day"], from, until);
        by_link.filter.link = Some(LinkId::generate());
        assert_eq!(by_link.rollup_grains().name(), "hourly");
    }

    #[test]
    fn other_zones_read_hours_where_a_utc_day_straddles_their_buckets() {
        // Berlin, March 2026 (+01:00, +02:00 from the 29th): local days never start at
        // UTC midnight, so grouped by day everything is hourly.
        let (from, until) = (
            datetime!(2026-02-28 23:00 UTC),
            datetime!(2026-03-31 22:00 UTC),
        );
        let by_day = spec("Europe/Berlin", &["day"], from, until).rollup_grains();
        assert_eq!(by_day.name(), "hourly");
        // Without a time dimension only the ends are hours.
        let total = spec("Europe/Berlin", &["affiliate"], from, until).rollup_grains();
        let (first, last) = (
            datetime!(2026-03-01 0:00 UTC),
            datetime!(2026-03-31 0:00 UTC),
        );
        assert_eq!(total.daily, [(at(first), at(last))]);
        assert_eq!(total.hourly, [(at(from), at(first)), (at(last), at(until))]);
        // By week: the UTC day holding each local Monday's midnight is hourly.
        let weeks = spec("Europe/Berlin", &["week"], from, until).rollup_grains();
        let sunday = datetime!(2026-03-08 0:00 UTC);
        assert!(
            weeks
                .hourly
                .contains(&(at(sunday), at(sunday) + DAY_SECONDS))
        );
        assert!(weeks.daily.len() > 3);
    }
}
