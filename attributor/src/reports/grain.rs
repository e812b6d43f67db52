//! Which rollup grain answers which part of a report's range.
//!
//! The daily rollups (`sql/0013_report_daily_rollups.sql`) hold whole UTC days without the
//! link, a small fraction of the hourly rows over a long range. A UTC day inside the range
//! is read from them when the report neither groups nor filters by link nor groups by hour.
//! Its rows stand at the day's UTC noon, so they land in the local day (week, month) that
//! holds most of it; when the day straddles a local boundary of a time dimension asked for
//! (every day of a zone off UTC), the hours that belong to the neighbouring bucket are
//! moved there: read from the hourly rollups once as they are and once, negated, at the
//! day's noon. The hours at the range's ends are read from the hourly rollups. So the
//! answer stays exact in every whole-hour zone, and a 90-day report in Berlin reads 90
//! days and about 90 hours rather than 2,160 hours of every link.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::spec::{Dimension, Granularity, ReportSpec};

const DAY_SECONDS: i64 = 86_400;
const HOUR_SECONDS: i64 = 3_600;

/// Half-open ranges of Unix seconds, in order, read from each grain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollupGrains {
    /// Whole UTC days (each range starts and ends at UTC midnight).
    pub daily: Vec<(i64, i64)>,
    /// Whole hours.
    pub hourly: Vec<(i64, i64)>,
    /// Whole hours of days in `daily` that belong to another local bucket than their
    /// day's noon: added at their own time and taken away at their UTC day's noon.
    pub moved: Vec<(i64, i64)>,
}

impl RollupGrains {
    /// What the answer's `X-Affilync-Report-Grain` header says.
    pub fn name(&self) -> &'static str {
        match (
            self.daily.is_empty(),
            self.hourly.is_empty() && self.moved.is_empty(),
        ) {
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
            hourly: vec![(from, until)],
            ..RollupGrains::default()
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
            if covered < day {
                push(&mut grains.hourly, covered, day);
            }
            push(&mut grains.daily, day, end);
            let noon = day + DAY_SECONDS / 2;
            for hour in (day..end).step_by(HOUR_SECONDS as usize) {
                if !one_bucket(&self.time_zone, &buckets, hour, noon) {
                    push(&mut grains.moved, hour, hour + HOUR_SECONDS);
                }
            }
            covered = end;
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
    fn other_zones_move_the_hours_of_a_utc_day_that_belong_to_the_next_bucket() {
        // Berlin, March 2026 (+01:00, +02:00 from the 29th): each UTC day's last hour (two
        // from the 29th) is the next local day's.
        let (from, until) = (
            datetime!(2026-02-28 23:00 UTC),
            datetime!(2026-03-31 22:00 UTC),
        );
        let (first, last) = (
            datetime!(2026-03-01 0:00 UTC),
            datetime!(2026-03-31 0:00 UTC),
        );
        let by_day = spec("Europe/Berlin", &["day"], from, until).rollup_grains();
        assert_eq!(by_day.name(), "daily+hourly");
        assert_eq!(by_day.daily, [(at(first), at(last))]);
        assert_eq!(
            by_day.hourly,
            [(at(from), at(first)), (at(last), at(until))]
        );
        let moved = |day: OffsetDateTime| {
            by_day
                .moved
                .iter()
                .filter(|(from, until)| *from >= at(day) && *until <= at(day) + DAY_SECONDS)
                .map(|(from, until)| (until - from) / HOUR_SECONDS)
                .sum::<i64>()
        };
        assert_eq!(moved(datetime!(2026-03-10 0:00 UTC)), 1);
        assert_eq!(moved(datetime!(2026-03-30 0:00 UTC)), 2);
        assert_eq!(by_day.moved.len(), 30);
        // New York (-05:00, -04:00 from March 8th): the first hours are the previous day's.
        let new_york = spec("America/New_York", &["day"], from, until).rollup_grains();
        let early = datetime!(2026-03-03 0:00 UTC);
        assert!(
            new_york
                .moved
                .contains(&(at(early), at(early) + 5 * HOUR_SECONDS))
        );
        // Without a time dimension nothing moves; only the ends are hours.
        let total = spec("Europe/Berlin", &["affiliate"], from, until).rollup_grains();
        assert_eq!(total.daily, [(at(first), at(last))]);
        assert_eq!(total.hourly, [(at(from), at(first)), (at(last), at(until))]);
        assert!(total.moved.is_empty());
        // By week: only the hour holding each local Monday's midnight moves.
        let weeks = spec("Europe/Berlin", &["week"], from, until).rollup_grains();
        let sunday = datetime!(2026-03-08 23:00 UTC);
        assert!(
            weeks
                .moved
                .contains(&(at(sunday), at(sunday) + HOUR_SECONDS))
        );
        assert_eq!(weeks.moved.len(), 5, "one a Monday: March 2nd to 30th");
    }
}
