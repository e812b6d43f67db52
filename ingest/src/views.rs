//! How conversions look in responses. Field order follows the original API document:
//! its seven fields first, then what the design adds.

use std::collections::BTreeMap;

use attributor::Conversion;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Serialize)]
pub struct ConversionView<'a> {
    conversion_id: &'a str,
    click_id: Option<&'a str>,
    affiliate_id: &'a str,
    campaign_id: &'a str,
    commission_amount: String,
    status: &'static str,
    created_at: String,
    order_id: &'a str,
    amount: String,
    currency: &'static str,
    event_type: &'static str,
    commission_currency: &'static str,
    source: &'static str,
    status_reason: Option<&'a str>,
    note: Option<&'a str>,
    updated_at: String,
    attribution: Option<AttributionView>,
    metadata: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
struct AttributionView {
    method: &'static str,
    click_time: String,
    seconds_from_click: u32,
}

impl<'a> From<&'a Conversion> for ConversionView<'a> {
    fn from(c: &'a Conversion) -> Self {
        let non_empty = |text: &'a str| (!text.is_empty()).then_some(text);
        ConversionView {
            conversion_id: c.id.as_str(),
            click_id: non_empty(&c.click_id),
            affiliate_id: c.affiliate.as_str(),
            campaign_id: c.campaign.as_str(),
            commission_amount: c.commission_currency.format(c.commission_amount),
            status: c.status.as_str(),
            created_at: timestamp(c.created_at),
            order_id: &c.order_id,
            amount: c.currency.format(c.amount),
            currency: c.currency.code(),
            event_type: c.event_type.as_str(),
            commission_currency: c.commission_currency.code(),
            source: c.source.as_str(),
            status_reason: non_empty(&c.status_reason),
            note: non_empty(&c.note),
            updated_at: timestamp(c.updated_at),
            attribution: c.attribution.map(|a| AttributionView {
                method: a.method.as_str(),
                click_time: timestamp(a.click_time),
                seconds_from_click: a.seconds_from_click,
            }),
            metadata: c
                .metadata
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        }
    }
}

/// `{"data": <conversion>}`, serialized straight from the view.
#[derive(Serialize)]
pub struct Data<'a> {
    data: ConversionView<'a>,
}

pub fn data(conversion: &Conversion) -> Data<'_> {
    Data {
        data: ConversionView::from(conversion),
    }
}

/// The view as a JSON value, for bodies that embed it (a conflict's `data`).
pub fn value(conversion: &Conversion) -> serde_json::Value {
    serde_json::to_value(ConversionView::from(conversion)).expect("views serialize to JSON")
}

/// UTC, RFC 3339, whole seconds, `Z`: 2026-03-20T14:30:00Z.
pub fn timestamp(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    at.replace_nanosecond(0)
        .unwrap_or(at)
        .format(&Rfc3339)
        .expect("UTC times format as RFC 3339")
}
