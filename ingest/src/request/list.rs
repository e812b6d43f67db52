use attributor::catalog::Principal;
use attributor::domain::{AffiliateId, CampaignId, Status};
use attributor::store::{ListFilter, ListOwner, PageRequest};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime};

use crate::error::ApiError;

pub const DEFAULT_PER_PAGE: u32 = 50;
pub const MAX_PER_PAGE: u32 = 1_000;

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
}

impl ListParams {
    pub fn from_query(query: &str) -> Self {
        let mut params = Self::default();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match key.as_ref() {
                "date_from" => &mut params.date_from,
                "date_to" => &mut params.date_to,
                "campaign_id" => &mut params.campaign_id,
                "affiliate_id" => &mut params.affiliate_id,
                "status" => &mut params.status,
                "page" => &mut params.page,
                "per_page" => &mut params.per_page,
                _ => continue,
            };
            if slot.is_none() && !value.is_empty() {
                *slot = Some(value.into_owned());
            }
        }
        params
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
        };
        Ok((filter, PageRequest { page, per_page }))
    }
}

/// An ISO 8601 date (the whole day) or date-time (UTC unless it says otherwise). An upper
/// bound includes its day or its second, so the result is exclusive.
fn parse_bound(text: &str, field: &str, upper: bool) -> Result<OffsetDateTime, ApiError> {
    let invalid = || {
        ApiError::invalid(
            field,
            "must be an ISO 8601 date (2026-03-31) or date-time (2026-03-31T12:00:00Z)",
        )
    };
    if let Ok(date) = Date::parse(text, format_description!("[year]-[month]-[day]")) {
        let start = date.midnight().assume_utc();
        return Ok(if upper {
            start + Duration::days(1)
        } else {
            start
        });
    }
    let instant = OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| {
            PrimitiveDateTime::parse(
                text,
                format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
            )
            .map(PrimitiveDateTime::assume_utc)
        })
        .map_err(|_| invalid())?;
    let instant = instant.to_offset(time::UtcOffset::UTC);
    Ok(if upper {
        instant.replace_nanosecond(0).unwrap_or(instant) + Duration::seconds(1)
    } else {
        instant
    })
}

fn parse_number(
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
        ListParams::from_query(query).into_filter(&Principal::Brand(BrandId::generate()))
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
        let params = ListParams::from_query(&format!("affiliate_id={other}"));
        assert!(matches!(
            params.into_filter(&Principal::Affiliate(me.clone())),
            Err(ApiError::Forbidden(_))
        ));
        let params = ListParams::from_query(&format!("affiliate_id={me}"));
        let (f, _) = params
            .into_filter(&Principal::Affiliate(me.clone()))
            .unwrap();
        assert_eq!(f.owner, ListOwner::Affiliate(me));
    }
}
