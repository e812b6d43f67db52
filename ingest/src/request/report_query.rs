//! The query string of `GET /api/reports`, checked into a [`ReportSpec`] and how to page
//! and render it. Every refusal names its parameter.

use attributor::catalog::Principal;
use attributor::domain::{AffiliateId, CampaignId, Currency, EventType, LinkId, Status};
use attributor::reports::{Dimension, ReportFilter, ReportScope, ReportSpec, SortKey};
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::QueryPairs;
use super::list::parse_number;
use crate::error::ApiError;

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 10_000;
/// Days a report covers when `date_from` is not given: this many up to `date_to`.
pub const DEFAULT_DAYS: i64 = 30;

/// The times ClickHouse's `DateTime` holds, as the listing's bounds.
const EARLIEST: i64 = 0;
const LATEST: i64 = 4_291_747_199; // 2105-12-31T23:59:59Z

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Json,
    Csv,
}

/// Which rows of the sorted report to answer: all of them, or a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportPage {
    pub page: u32,
    pub limit: Option<u32>,
}

impl ReportPage {
    pub fn range(self, rows: usize) -> std::ops::Range<usize> {
        match self.limit {
            None => 0..rows,
            Some(limit) => {
                let start = (self.page as usize - 1).saturating_mul(limit as usize);
                start.min(rows)..start.saturating_add(limit as usize).min(rows)
            }
        }
    }
}

#[derive(Debug)]
pub struct ReportRequest {
    pub spec: ReportSpec,
    pub page: ReportPage,
    pub format: ReportFormat,
}

/// Parses `query` for `principal`; `wants_csv` is whether the Accept header asks for CSV;
/// `today_ends` is now, for the default range.
pub fn parse_report_query(
    query: &str,
    principal: &Principal,
    wants_csv: bool,
    now: OffsetDateTime,
    max_days: u32,
) -> Result<ReportRequest, ApiError> {
    let pairs = QueryPairs::parse(query.as_bytes())?;
    let param = |name: &str| pairs.first(name).filter(|value| !value.is_empty());

    let zone_name = param("timezone").unwrap_or("UTC");
    let time_zone = zone(zone_name)?;
    let until = param("date_to")
        .map(|text| bound(text, "date_to", &time_zone, true))
        .transpose()?
        .unwrap_or_else(|| {
            let today = jiff_date(now, &time_zone);
            start_of(today.tomorrow().unwrap_or(today), &time_zone)
        });
    let from = match param("date_from") {
        Some(text) => bound(text, "date_from", &time_zone, false)?,
        None => {
            let last_day = jiff_date(until - time::Duration::seconds(1), &time_zone);
            let first = last_day
                .checked_sub(jiff::Span::new().days(DEFAULT_DAYS - 1))
                .unwrap_or(last_day);
            start_of(first, &time_zone).max(OffsetDateTime::UNIX_EPOCH)
        }
    };
    if until <= from {
        return Err(ApiError::invalid("date_to", "must not be before date_from"));
    }
    // An hour of slack: a range of whole local days across a DST change is an hour longer.
    if until - from > time::Duration::days(i64::from(max_days)) + time::Duration::hours(1) {
        return Err(ApiError::invalid(
            "date_to",
            format!("must be within {max_days} days of date_from"),
        ));
    }

    let filter = ReportFilter {
        campaign: parsed(param("campaign_id"), "campaign_id", CampaignId::parse)?,
        affiliate: parsed(param("affiliate_id"), "affiliate_id", AffiliateId::parse)?,
        link: parsed(param("link_id"), "link_id", LinkId::parse)?,
        event_type: parsed(param("event_type"), "event_type", str::parse::<EventType>)?,
        status: parsed(param("status"), "status", str::parse::<Status>)?,
        currency: parsed(param("currency"), "currency", str::parse::<Currency>)?,
    };
    let scope = match principal {
        Principal::Brand(brand) => ReportScope::Brand(brand.clone()),
        Principal::Affiliate(me) => {
            if filter.affiliate.as_ref().is_some_and(|asked| asked != me) {
                return Err(ApiError::Forbidden(
                    "affiliates can only report on their own traffic".into(),
                ));
            }
            ReportScope::Affiliate(me.clone())
        }
    };
    let group_by = group_by(param("group_by"))?;
    let sort = sort(param("sort"), &group_by, &filter)?;
    let limit = parse_number(param("limit"), "limit", 1, MAX_LIMIT)?;
    let page = parse_number(param("page"), "page", 1, u32::MAX)?.unwrap_or(1);
    let format = match param("format") {
        Some("csv") => ReportFormat::Csv,
        Some("json") => ReportFormat::Json,
        Some(_) => return Err(ApiError::invalid("format", "must be json or csv")),
        None if wants_csv => ReportFormat::Csv,
        None => ReportFormat::Json,
    };
    // A JSON answer is always a page; CSV is every row unless a page is asked for.
    let limit = match (format, limit) {
        (ReportFormat::Json, None) => Some(DEFAULT_LIMIT),
        (_, limit) => limit,
    };
    Ok(ReportRequest {
        spec: ReportSpec {
            scope,
            from,
            until,
            time_zone,
            time_zone_name: zone_name.to_owned(),
            filter,
            group_by,
            sort,
        },
        page: ReportPage { page, limit },
        format,
    })
}

/// An IANA zone name the zone database knows. Only the characters zone names are made of
/// pass, so no name reaches the file system or ClickHouse as anything else.
fn zone(name: &str) -> Result<TimeZone, ApiError> {
    let plausible = name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_-+".contains(&b))
        && !name.starts_with('/');
    plausible
        .then(|| TimeZone::get(name).ok())
        .flatten()
        .ok_or_else(|| {
            ApiError::invalid(
                "timezone",
                format!("{name:?} is not an IANA time zone name like Europe/Berlin"),
            )
        })
}

fn jiff_date(at: OffsetDateTime, zone: &TimeZone) -> Date {
    jiff::Timestamp::from_second(at.unix_timestamp())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned(zone.clone())
        .date()
}

fn start_of(date: Date, zone: &TimeZone) -> OffsetDateTime {
    let second = date
        .to_zoned(zone.clone())
        .map_or(0, |start| start.timestamp().as_second());
    OffsetDateTime::from_unix_timestamp(second).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A date (the whole local day), a local date-time, or a date-time with an offset; an
/// upper bound includes its day or its second, so the result is exclusive.
fn bound(
    text: &str,
    field: &str,
    zone: &TimeZone,
    upper: bool,
) -> Result<OffsetDateTime, ApiError> {
    let invalid = || {
        ApiError::invalid(
            field,
            "must be an ISO 8601 date (2026-03-31) or date-time (2026-03-31T12:00:00, local to timezone, or with an offset)",
        )
    };
    let date = (text.len() == 10)
        .then(|| text.parse::<Date>().ok())
        .flatten();
    let second = if let Some(date) = date {
        let day = if upper {
            date.tomorrow().map_err(|_| invalid())?
        } else {
            date
        };
        date_start(day, zone).ok_or_else(invalid)?
    } else if let Ok(instant) = OffsetDateTime::parse(text, &Rfc3339) {
        instant.unix_timestamp() + i64::from(upper)
    } else {
        let local: DateTime = text.parse().map_err(|_| invalid())?;
        let zoned = local.to_zoned(zone.clone()).map_err(|_| invalid())?;
        zoned.timestamp().as_second() + i64::from(upper)
    };
    let last = LATEST + 1;
    if !(EARLIEST..=last).contains(&second) || (!upper && second == last) {
        return Err(ApiError::invalid(
            field,
            "must be between 1970-01-01 and 2105-12-31",
        ));
    }
    OffsetDateTime::from_unix_timestamp(second).map_err(|_| invalid())
}

fn date_start(date: Date, zone: &TimeZone) -> Option<i64> {
    date.to_zoned(zone.clone())
        .ok()
        .map(|start| start.timestamp().as_second())
}

fn parsed<T, E: std::fmt::Display>(
    text: Option<&str>,
    field: &str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<Option<T>, ApiError> {
    text.map(|text| parse(text).map_err(|error| ApiError::invalid(field, error)))
        .transpose()
}

fn group_by(text: Option<&str>) -> Result<Vec<Dimension>, ApiError> {
    let mut dimensions = Vec::new();
    for name in text.unwrap_or("").split(',').map(str::trim) {
        if name.is_empty() {
            continue;
        }
        let dimension: Dimension = name.parse().map_err(|()| {
            ApiError::invalid(
                "group_by",
                format!(
                    "has an unknown dimension {name:?}; dimensions are {}",
                    Dimension::NAMES.join(", ")
                ),
            )
        })?;
        if dimensions.contains(&dimension) {
            return Err(ApiError::invalid("group_by", format!("names {name} twice")));
        }
        dimensions.push(dimension);
    }
    Ok(dimensions)
}

/// `sort=-clicks,day`: metrics or grouped dimensions, `-` for descending.
fn sort(
    text: Option<&str>,
    group_by: &[Dimension],
    filter: &ReportFilter,
) -> Result<Vec<(SortKey, bool)>, ApiError> {
    let mut keys = Vec::new();
    for item in text.unwrap_or("").split(',').map(str::trim) {
        if item.is_empty() {
            continue;
        }
        let (descending, name) = match item.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, item.strip_prefix('+').unwrap_or(item)),
        };
        let key = match SortKey::metric(name) {
            Some(key) => key,
            None => match name.parse::<Dimension>() {
                Ok(dimension) if group_by.contains(&dimension) => SortKey::Dimension(dimension),
                Ok(_) => {
                    return Err(ApiError::invalid(
                        "sort",
                        format!("names {name}, which the report is not grouped by"),
                    ));
                }
                Err(()) => {
                    return Err(ApiError::invalid(
                        "sort",
                        format!(
                            "has an unknown key {name:?}; sort by a grouped dimension or by {}",
                            SortKey::METRICS.join(", ")
                        ),
                    ));
                }
            },
        };
        if key.is_money() && filter.currency.is_none() && !group_by.contains(&Dimension::Currency) {
            return Err(ApiError::invalid(
                "sort",
                format!(
                    "by {name} needs one currency per row: group_by currency or filter by currency"
                ),
            ));
        }
        keys.push((key, descending));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use attributor::domain::BrandId;
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-03-29 12:00 UTC);

    fn brand(query: &str) -> Result<ReportRequest, ApiError> {
        parse_report_query(
            query,
            &Principal::Brand(BrandId::generate()),
            false,
            NOW,
            400,
        )
    }

    fn field(query: &str) -> String {
        match brand(query) {
            Err(ApiError::Invalid { field, .. }) => field,
            other => panic!("{query}: {other:?}"),
        }
    }

    #[test]
    fn dates_are_local_days_of_the_zone() {
        let request =
            brand("date_from=2026-03-29&date_to=2026-03-29&timezone=Europe/Berlin").unwrap();
        // The day the clocks go forward is 23 hours long.
        assert_eq!(request.spec.from, datetime!(2026-03-28 23:00 UTC));
        assert_eq!(request.spec.until, datetime!(2026-03-29 22:00 UTC));
        let request = brand(
            "date_from=2026-03-01T10:00:00&date_to=2026-03-01T12:00:00Z&timezone=Asia/Kolkata",
        )
        .unwrap();
        assert_eq!(request.spec.from, datetime!(2026-03-01 04:30 UTC));
        assert_eq!(request.spec.until, datetime!(2026-03-01 12:00:01 UTC));
    }

    #[test]
    fn the_default_range_is_the_last_thirty_local_days() {
        let request = brand("timezone=America/New_York").unwrap();
        assert_eq!(request.spec.until, datetime!(2026-03-30 04:00 UTC));
        assert_eq!(request.spec.from, datetime!(2026-02-28 05:00 UTC));
        assert_eq!(
            request.page,
            ReportPage {
                page: 1,
                limit: Some(DEFAULT_LIMIT)
            }
        );
        assert_eq!(request.format, ReportFormat::Json);
    }

    #[test]
    fn bad_parameters_are_refused_naming_them() {
        for (query, expected) in [
            ("group_by=day,planet", "group_by"),
            ("group_by=day,day", "group_by"),
            ("timezone=Mars/Olympus", "timezone"),
            ("timezone=../../etc/passwd", "timezone"),
            ("date_from=2026-03-05&date_to=2026-03-01", "date_to"),
            ("date_from=2024-01-01&date_to=2026-03-01", "date_to"),
            ("date_from=yesterday", "date_from"),
            ("date_to=2106-01-01", "date_to"),
            ("campaign_id=x", "campaign_id"),
            ("link_id=x", "link_id"),
            ("event_type=purchase", "event_type"),
            ("status=done", "status"),
            ("currency=usd", "currency"),
            ("sort=planet", "sort"),
            ("sort=day", "sort"),
            ("sort=amount&group_by=day", "sort"),
            ("limit=0", "limit"),
            ("limit=10001", "limit"),
            ("page=0", "page"),
            ("format=xml", "format"),
        ] {
            assert_eq!(field(query), expected, "{query}");
        }
    }

    #[test]
    fn grouping_sorting_and_format_parse() {
        let request = brand("group_by=day,campaign&sort=-clicks,campaign&format=csv").unwrap();
        assert_eq!(request.spec.group_by.len(), 2);
        assert_eq!(
            request.spec.sort,
            vec![
                (SortKey::Clicks, true),
                (SortKey::Dimension(Dimension::Campaign), false)
            ]
        );
        assert_eq!(request.format, ReportFormat::Csv);
        assert_eq!(request.page.limit, None, "CSV is every row by default");
        assert!(brand("sort=-amount&group_by=currency").is_ok());
        assert!(brand("sort=epc&currency=EUR").is_ok());
    }

    #[test]
    fn affiliates_report_only_on_themselves() {
        let me = AffiliateId::generate();
        let other = AffiliateId::generate();
        let ask = |query: String| {
            parse_report_query(&query, &Principal::Affiliate(me.clone()), false, NOW, 400)
        };
        assert!(matches!(
            ask(format!("affiliate_id={other}")),
            Err(ApiError::Forbidden(_))
        ));
        let request = ask(format!("affiliate_id={me}")).unwrap();
        assert_eq!(request.spec.scope, ReportScope::Affiliate(me.clone()));
    }

    #[test]
    fn pages_cut_the_sorted_rows() {
        let page = ReportPage {
            page: 2,
            limit: Some(3),
        };
        assert_eq!(page.range(7), 3..6);
        assert_eq!(
            ReportPage {
                page: 3,
                limit: Some(3)
            }
            .range(7),
            6..7
        );
        assert_eq!(
            ReportPage {
                page: 9,
                limit: Some(3)
            }
            .range(7),
            7..7
        );
        assert_eq!(
            ReportPage {
                page: 1,
                limit: None
            }
            .range(7),
            0..7
        );
    }
}
