//! Turning a reported conversion and the click it is tied to into a stored conversion:
//! the cookie window, the commission and the status. Pure: no I/O and no clock of its own.

use time::OffsetDateTime;

use crate::catalog::ResolvedLink;
use crate::conversion::{Attribution, Conversion, NewConversion, version_at};
use crate::domain::{AttributionMethod, ClickId, Status};

/// The click a conversion is credited to, however it was found.
#[derive(Debug, Clone)]
pub struct Touch {
    pub resolved: ResolvedLink,
    pub click_id: ClickId,
    pub clicked_at: OffsetDateTime,
    pub method: AttributionMethod,
}

/// Builds the first version of a conversion. Outside the campaign's cookie window it is
/// still stored, so the brand can see it, but as rejected with a reason and no commission.
pub fn attribute(new: &NewConversion, touch: &Touch, now: OffsetDateTime) -> Conversion {
    let campaign = &touch.resolved.campaign;
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let age = now - touch.clicked_at;
    let commission = campaign
        .commission
        .commission(new.event_type, new.amount, campaign.currency);
    let outside_window = age > campaign.cookie_window();
    let (status, status_reason, commission_amount) = if outside_window {
        let reason = format!(
            "click is {} days old, outside the campaign's {}-day cookie window",
            age.whole_days(),
            campaign.cookie_window_days
        );
        (Status::Rejected, reason, rust_decimal::Decimal::ZERO)
    } else {
        (Status::Pending, String::new(), commission.amount)
    };

    Conversion {
        id: new.id.clone(),
        brand: new.brand.clone(),
        order_id: new.order_id.clone(),
        version: version_at(now),
        created_at: now,
        updated_at: now,
        source: new.source,
        campaign: campaign.id.clone(),
        affiliate: touch.resolved.link.affiliate.clone(),
        link: touch.resolved.link.id.clone(),
        click_id: touch.click_id.clone(),
        attribution: Some(Attribution {
            method: touch.method,
            click_time: touch.clicked_at,
            // A click stamped slightly in the future by another node's clock counts as 0.
            seconds_from_click: u32::try_from(age.whole_seconds().max(0)).unwrap_or(u32::MAX),
        }),
        event_type: new.event_type,
        amount: new.amount.value(),
        currency: new.amount.currency(),
        commission_amount,
        commission_currency: commission.currency,
        commission_rule: commission
            .rule
            .map_or_else(|| "none".to_owned(), |rule| rule.to_string()),
        status,
        status_reason,
        note: String::new(),
        email_hash: new.email,
        metadata: new.metadata.clone(),
    }
}

#[cfg(test)]
mod tests {

    use time::Duration;

    use super::*;
    use crate::conversion::ReportedClick;
    use crate::domain::*;
    use crate::fixtures::SampleNetwork;

    /// A sale of 99.99 USD on the sample network, its click made at `clicked_at`.
    fn touch(clicked_at: OffsetDateTime) -> (NewConversion, Touch) {
        let network = SampleNetwork::new();
        let click = network.signer.issue(&network.link.id, clicked_at);
        let mut new = network.report("order_456", "99.99");
        new.click = Some(ReportedClick {
            id: click.clone(),
            method: AttributionMethod::ClickId,
        });
        let touch = Touch {
            click_id: click.clone(),
            clicked_at: click.clicked_at(),
            ..network.touch()
        };
        (new, touch)
    }

    #[test]
    fn inside_the_window_the_conversion_is_pending_with_its_commission() {
        let clicked = OffsetDateTime::from_unix_timestamp(1_774_000_000).unwrap();
        let (new, touch) = touch(clicked);
        let now = clicked + Duration::days(29);
        let conversion = attribute(&new, &touch, now);
        assert_eq!(conversion.status, Status::Pending);
        assert_eq!(conversion.commission_amount.to_string(), "10.00");
        assert_eq!(conversion.commission_rule, "percent:10");
        let attribution = conversion.attribution.unwrap();
        assert_eq!(attribution.seconds_from_click, 29 * 86_400);
        assert_eq!(attribution.method, AttributionMethod::ClickId);
    }

    #[test]
    fn outside_the_window_it_is_rejected_with_a_reason_and_no_commission() {
        let clicked = OffsetDateTime::from_unix_timestamp(1_774_000_000).unwrap();
        let (new, touch) = touch(clicked);
        let conversion = attribute(&new, &touch, clicked + Duration::days(31));
        assert_eq!(conversion.status, Status::Rejected);
        assert!(conversion.commission_amount.is_zero());
        assert!(
            conversion.status_reason.contains("30-day cookie window"),
            "{}",
            conversion.status_reason
        );
    }

    #[test]
    fn the_window_edge_is_inclusive() {
        let clicked = OffsetDateTime::from_unix_timestamp(1_774_000_000).unwrap();
        let (new, touch) = touch(clicked);
        let conversion = attribute(&new, &touch, clicked + Duration::days(30));
        assert_eq!(conversion.status, Status::Pending);
    }
}
