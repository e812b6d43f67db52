use attributor::catalog::Principal;
use attributor::domain::{AffiliateId, CampaignId, Status};
use attributor::store::{ListCursor, ListFilter, ListOwner, PageRequest};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime};

use super::QueryPairs;
use crate::error::ApiError;

pub const DEFAULT_PER_PAGE: u32 = 50;
pub const MAX_PER_PAGE: u32 = 1_000;

/// `[from, until)`, either end open.
pub type TimeRange = (Option<OffsetDateTime>, Option<OffsetDateTime>);

/// The query string of `GET /api/conversions`, as sent.
#[derive(Debug, Default)]
pub struct ListParams {
    pub date_from: Option<String>,
    pub date_to: Option<String>,
    pub campaign_id: Option<String>,
    pub affiliate_id: Option<String>,
    pub status: Option<String>,
    pub page: Option<String>,
    pub per_page: Option<String>,
    pub scheduled_approval_from: Option<String>,
    pub scheduled_approval_to: Option<String>,
    pub cursor: Option<String>,
}

impl ListParams {
    pub fn from_query(query: &str) -> Result<Self, ApiError> {
        let mut params = Self::default();
        for (key, value) in QueryPairs::parse(query.as_bytes())?.iter() {
            let slot = match key {
                "date_from" => &mut params.date_from,
                "date_to" => &mut params.date_to,
                "campaign_id" => &mut params.campaign_id,
                "affiliate_id" => &mut params.affiliate_id,
                "status" => &mut params.status,
                "page" => &mut params.page,
                "per_page" => &mut params.per_page,
                "scheduled_approval_from" => &mut params.scheduled_approval_from,
                "scheduled_approval_to" => &mut params.scheduled_approval_to,
                "cursor" => &mut params.cursor,
                _ => continue,
            };
            if slot.is_none() && !value.is_empty() {
                *slot = Some(value.to_owned());
            }
        }
        Ok(params)
    }

    /// The asked range of `scheduled_approval_at` (`[from, until)`), if any bound was sent.
    /// Which conversions it means depends on the campaigns' holds, so the handler turns
    /// it into the filter's `scheduled` ranges.
    pub fn scheduled_approval(&self) -> Result<Option<TimeRange>, ApiError> {
        let from = self
            .scheduled_approval_from
            .as_deref()
            .map(|text| parse_bound(text, "scheduled_approval_from", false))
            .transpose()?;
        let until = self
            .scheduled_approval_to
            .as_deref()
            .map(|text| parse_bound(text, "scheduled_approval_to", true))
            .transpose()?;
        if let (Some(from), Some(until)) = (from, until)
            && until <= from
        {
            return Err(ApiError::invalid(
                "scheduled_approval_to",
                "must not be before scheduled_approval_from",
            ));
        }
        Ok((from.is_some() || until.is_some()).then_some((from, until)))
    }

    /// The page to continue after (`meta.next_cursor` of the previous page), if any; it
    /// takes the place of `page`.
    pub fn cursor(&self) -> Result<Option<ListCursor>, ApiError> {
        self.cursor
            .as_deref()
            .map(|text| ListCursor::parse(text).map_err(|e| ApiError::invalid("cursor", e)))
            .transpose()
    }

    /// The filter for `principal`: brands list their own brand's conversions, affiliates
    /// their own, and an affiliate may not ask for another affiliate's.
    pub fn into_filter(self, principal: &Principal) -> Result<(ListFilter, PageRequest), ApiError> {
        let from = self
            .date_from
            .as_deref()
            .map(|text| parse_bound(text, "date_from", false))
            .transpose()?;
        let until = self
            .date_to
            .as_deref()
            .map(|text| parse_bound(text, "date_to", true))
            .transpose()?;
        if let (Some(from), Some(until)) = (from, until)
            && until <= from
        {
            return Err(ApiError::invalid("date_to", "must not be before date_from"));
        }
        let campaign = self
            .campaign_id
            .as_deref()
            .map(|id| CampaignId::parse(id).map_err(|e| ApiError::invalid("campaign_id", e)))
            .transpose()?;
        let affiliate = self
            .affiliate_id
            .as_deref()
            .map(|id| AffiliateId::parse(id).map_err(|e| ApiError::invalid("affiliate_id", e)))
            .transpose()?;
        let status = self
            .status
            .as_deref()
            .map(|s| {
                s.parse::<Status>()
                    .map_err(|e| ApiError::invalid("status", e))
            })
            .transpose()?;
        let page = parse_number(self.page.as_deref(), "page", 1, u32::MAX)?.unwrap_or(1);
        let per_page = parse_number(self.per_page.as_deref(), "per_page", 1, MAX_PER_PAGE)?
            .unwrap_or(DEFAULT_PER_PAGE);

        let owner = match principal {
            Principal::Brand(brand) => ListOwner::Brand(brand.clone()),
            Principal::Affiliate(me) => {
                if affiliate.as_ref().is_some_and(|asked| asked != me) {
                    return Err(ApiError::Forbidden(
                        "affiliates can only list their own conversions".into(),
                    ));
                }
                ListOwner::Affiliate(me.clone())
            }
        };
        let affiliate = match owner {
            ListOwner::Brand(_) => affiliate,
            ListOwner::Affiliate(_) => None,
        };
        let filter = ListFilter {
            owner,
            from,
            until,
            campaign,
            affiliate,
            status,
            scheduled: None,
        };
        Ok((filter, PageRequest { page, per_page }))
    }
}

/// The times ClickHouse's `DateTime` holds (unsigned seconds since 1970), as far as a
/// listing may ask: a bound outside them is refused, never wrapped or overflowed.
const EARLIEST: OffsetDateTime = time::macros::datetime!(1970-01-01 00:00:00 UTC);
const LATEST: OffsetDateTime = time::macros::datetime!(2105-12-31 23:59:59 UTC);

/// An ISO 8601 date (the whole day) or date-time (UTC unless it says otherwise), from 1970
/// through 2105. An upper bound includes its day or its second, so the result is exclusive.
pub fn parse_bound(text: &str, field: &str, upper: bool) -> Result<OffsetDateTime, ApiError> {
    let invalid = || {
        ApiError::invalid(
            field,
            "must be an ISO 8601 date (2026-03-31) or date-time (2026-03-31T12:00:00Z)",
        )
    };
    let (instant, span) =
        if let Ok(date) = Date::parse(text, format_description!("[year]-[month]-[day]")) {
            (date.midnight().assume_utc(), Duration::days(1))
        } else {
            let instant = OffsetDateTime::parse(text, &Rfc3339)
                .or_else(|_| {
                    PrimitiveDateTime::parse(
                        text,
                        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
                    )
                    .map(PrimitiveDateTime::assume_utc)
                })
                .map_err(|_| invalid())?;
            let instant = instant
                .checked_to_offset(time::UtcOffset::UTC)
                .ok_or_else(invalid)?;
            (
                instant.replace_nanosecond(0).unwrap_or(instant),
                Duration::seconds(1),
            )
        };
    if !(EARLIEST..=LATEST).contains(&instant) {
        return Err(ApiError::invalid(
            field,
            "must be between 1970-01-01 and 2105-12-31",
        ));
    }
    if upper {
        instant.checked_add(span).ok_or_else(invalid)
    } else {
        Ok(instant)
    }
}

/// A whole number from `min` to `max`, or a 422 naming `field`.
pub(crate) fn parse_number(
    text: Option<&str>,
    field: &str,
    min: u32,
    max: u32,
) -> Result<Option<u32>, ApiError> {
    text.map(|text| {
        text.parse::<u32>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(field, format!("must be a whole number from {min} to {max}"))
            })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use attributor::domain::BrandId;
    use time::macros::datetime;

    use super::*;

    fn filter(query: &str) -> Result<ListFilter, ApiError> {
        Ok(page_and_filter(query)?.0)
    }

    fn page_and_filter(query: &str) -> Result<(ListFilter, PageRequest), ApiError> {
        ListParams::from_query(query)?.into_filter(&Principal::Brand(BrandId::generate()))
    }

    #[test]
    fn dates_cover_whole_days_and_date_times_their_second() {
        let f = filter("date_from=2026-03-01&date_to=2026-03-31").unwrap();
        assert_eq!(f.from, Some(datetime!(2026-03-01 00:00 UTC)));
        assert_eq!(f.until, Some(datetime!(2026-04-01 00:00 UTC)));
        let f =
            filter("date_from=2026-03-01T10:00:00%2B02:00&date_to=2026-03-01T12:00:00Z").unwrap();
        assert_eq!(f.from, Some(datetime!(2026-03-01 08:00 UTC)));
        assert_eq!(f.until, Some(datetime!(2026-03-01 12:00:01 UTC)));
    }

    #[test]
    fn dates_clickhouse_cannot_hold_are_refused_naming_the_field() {
        for (query, field) in [
            ("date_to=9999-12-31", "date_to"),
            ("date_to=9999-12-31T23:59:59Z", "date_to"),
            ("date_from=-9999-01-01", "date_from"),
            ("date_from=1969-12-31", "date_from"),
            ("date_to=2106-01-01", "date_to"),
            ("date_from=1970-01-01T00:00:00+01:00", "date_from"),
        ] {
            match filter(query) {
                Err(ApiError::Invalid { field: named, .. }) => assert_eq!(named, field, "{query}"),
                other => panic!("{query}: {other:?}"),
            }
        }
        let last = filter("date_to=2105-12-31").unwrap();
        assert_eq!(last.until, Some(datetime!(2106-01-01 0:00 UTC)));
        let first = filter("date_from=1970-01-01").unwrap();
        assert_eq!(first.from, Some(datetime!(1970-01-01 0:00 UTC)));
    }

    proptest::proptest! {
        /// Whatever a client sends as a bound, parsing ends in a bound ClickHouse can hold
        /// or a 422 naming the field; it never panics.
        #[test]
        fn any_bound_parses_into_range_or_is_refused(text in "\\PC{0,40}", upper: bool) {
            check_bound(&text, upper);
        }

        #[test]
        fn any_date_shaped_bound_parses_into_range_or_is_refused(
            year in -9999i32..=9999,
            month in 0u8..=13,
            day in 0u8..=32,
            time in proptest::option::of((0u8..=24, 0u8..=60, 0u8..=60, -23i8..=23)),
            upper: bool,
        ) {
            let mut text = format!("{year:04}-{month:02}-{day:02}");
            if let Some((hour, minute, second, offset)) = time {
                text.push_str(&format!("T{hour:02}:{minute:02}:{second:02}{offset:+03}:00"));
            }
            check_bound(&text, upper);
        }
    }

    fn check_bound(text: &str, upper: bool) {
        match parse_bound(text, "date_to", upper) {
            Ok(bound) => assert!(
                (EARLIEST..=datetime!(2106-01-01 0:00 UTC)).contains(&bound),
                "{text}: {bound}"
            ),
            Err(ApiError::Invalid { field, .. }) => assert_eq!(field, "date_to"),
            Err(other) => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn paging_has_defaults_and_bounds() {
        let (_, page) = page_and_filter("").unwrap();
        assert_eq!(
            page,
            PageRequest {
                page: 1,
                per_page: 50
            }
        );
        for (query, field) in [
            ("per_page=1001", "per_page"),
            ("per_page=0", "per_page"),
            ("page=0", "page"),
            ("page=x", "page"),
            ("status=done", "status"),
            ("campaign_id=abc", "campaign_id"),
            ("date_from=yesterday", "date_from"),
            ("date_from=2026-03-05&date_to=2026-03-01", "date_to"),
        ] {
            match filter(query) {
                Err(ApiError::Invalid { field: got, .. }) => assert_eq!(got, field, "{query}"),
                other => panic!("{query}: {other:?}"),
            }
        }
    }

    #[test]
    fn affiliates_cannot_ask_for_other_affiliates() {
        let me = AffiliateId::generate();
        let other = AffiliateId::generate();
        let params = ListParams::from_query(&format!("affiliate_id={other}")).unwrap();
        assert!(matches!(
            params.into_filter(&Principal::Affiliate(me.clone())),
            Err(ApiError::Forbidden(_))
        ));
        let params = ListParams::from_query(&format!("affiliate_id={me}")).unwrap();
        let (f, _) = params
            .into_filter(&Principal::Affiliate(me.clone()))
            .unwrap();
        assert_eq!(f.owner, ListOwner::Affiliate(me));
    }
}
