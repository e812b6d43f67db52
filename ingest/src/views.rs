//! How conversions look in responses. Field order follows the original API document:
//! its seven fields first, then what the design adds.

use std::collections::BTreeMap;

use attributor::Conversion;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

/// A conversion as every answer shows it (its latest version). The schema in the OpenAPI
/// document is derived from this type, so the two cannot drift apart. A conversion of a
/// campaign with a hold period also carries `scheduled_approval_at` in reads.
#[derive(Serialize, ToSchema)]
#[schema(as = Conversion)]
pub struct ConversionView<'a> {
    conversion_id: &'a str,
    /// Null for cross-device conversions attributed by e-mail.
    click_id: Option<&'a str>,
    affiliate_id: &'a str,
    campaign_id: &'a str,
    /// Decimal text in `commission_currency`.
    commission_amount: String,
    #[schema(value_type = Status)]
    status: &'static str,
    /// RFC 3339, UTC, whole seconds.
    created_at: String,
    order_id: &'a str,
    /// Decimal text in `currency`, with its minor digits.
    amount: String,
    currency: &'static str,
    #[schema(value_type = EventType)]
    event_type: &'static str,
    commission_currency: &'static str,
    #[schema(value_type = Source)]
    source: &'static str,
    /// Why a conversion was stored as rejected (e.g. outside the cookie window).
    status_reason: Option<&'a str>,
    note: Option<&'a str>,
    updated_at: String,
    #[schema(value_type = Option<AttributionView>)]
    attribution: Option<AttributionView>,
    #[schema(value_type = BTreeMap<String, String>)]
    metadata: BTreeMap<&'a str, &'a str>,
}

/// How the conversion was tied to its click.
#[derive(Serialize, ToSchema)]
#[schema(as = Attribution)]
pub struct AttributionView {
    #[schema(value_type = AttributionMethod)]
    method: &'static str,
    click_time: String,
    seconds_from_click: u32,
}

impl<'a> From<&'a Conversion> for ConversionView<'a> {
    fn from(c: &'a Conversion) -> Self {
        let non_empty = |text: &'a str| (!text.is_empty()).then_some(text);
        ConversionView {
            conversion_id: c.id.as_str(),
            click_id: Some(c.click_id.as_str()),
            affiliate_id: c.affiliate.as_str(),
            campaign_id: c.campaign.as_str(),
            commission_amount: c.commission_currency.format(c.commission_amount),
            status: c.status.as_str(),
            created_at: timestamp(c.created_at),
            order_id: c.order_id.as_str(),
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

// The closed sets of strings the answers use, for the OpenAPI document (the domain types
// that produce them live in the attributor, which knows nothing of the document).

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Sale,
    Lead,
    Signup,
    Trial,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Approved,
    Rejected,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Api,
    Postback,
    Pixel,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttributionMethod {
    ClickId,
    Cookie,
    Email,
}
