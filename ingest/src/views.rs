//! How conversions look in responses. Field order follows the original API document:
//! its seven fields first, then what the design adds.

use std::collections::BTreeMap;

use attributor::Conversion;
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};
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
    #[schema(value_type = String)]
    commission_amount: Money,
    #[schema(value_type = Status)]
    status: &'static str,
    /// RFC 3339, UTC, whole seconds.
    #[schema(value_type = String)]
    created_at: Timestamp,
    order_id: &'a str,
    /// Decimal text in `currency`, with its minor digits.
    #[schema(value_type = String)]
    amount: Money,
    currency: &'static str,
    #[schema(value_type = EventType)]
    event_type: &'static str,
    commission_currency: &'static str,
    #[schema(value_type = Source)]
    source: &'static str,
    /// Why a conversion was stored as rejected (e.g. outside the cookie window).
    status_reason: Option<&'a str>,
    note: Option<&'a str>,
    #[schema(value_type = String)]
    updated_at: Timestamp,
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
    #[schema(value_type = String)]
    click_time: Timestamp,
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
            commission_amount: Money(c.commission_currency.with_minor_digits(c.commission_amount)),
            status: c.status.as_str(),
            created_at: Timestamp(c.created_at),
            order_id: c.order_id.as_str(),
            amount: Money(c.currency.with_minor_digits(c.amount)),
            currency: c.currency.code(),
            event_type: c.event_type.as_str(),
            commission_currency: c.commission_currency.code(),
            source: c.source.as_str(),
            status_reason: non_empty(&c.status_reason),
            note: non_empty(&c.note),
            updated_at: Timestamp(c.updated_at),
            attribution: c.attribution.map(|a| AttributionView {
                method: a.method.as_str(),
                click_time: Timestamp(a.click_time),
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
    whole_seconds_utc(at)
        .format(&Rfc3339)
        .expect("UTC times format as RFC 3339")
}

fn whole_seconds_utc(at: OffsetDateTime) -> OffsetDateTime {
    let at = at.to_offset(time::UtcOffset::UTC);
    at.replace_nanosecond(0).unwrap_or(at)
}

/// The views' times and amounts are written straight into the answer as they serialize,
/// rather than first each into a `String` of its own: five allocations and copies per
/// conversion, on every 201, every replay's first answer and every listed row.
///
/// A time as [`timestamp`] writes it.
struct Timestamp(OffsetDateTime);

/// The longest [`timestamp`]: a four-digit year, whole seconds, `Z`.
const TIMESTAMP_BYTES: usize = "2026-03-20T14:30:00Z".len();

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut text = [0u8; TIMESTAMP_BYTES];
        let mut cursor = std::io::Cursor::new(&mut text[..]);
        whole_seconds_utc(self.0)
            .format_into(&mut cursor, &Rfc3339)
            .map_err(serde::ser::Error::custom)?;
        let written = usize::try_from(cursor.position()).unwrap_or(TIMESTAMP_BYTES);
        let text = std::str::from_utf8(&text[..written]).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(text)
    }
}

/// An amount already carrying its currency's minor digits, as text: "10.00".
struct Money(Decimal);

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
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

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use attributor::domain::Currency;
    use time::macros::datetime;

    use super::*;

    #[test]
    fn times_serialize_as_timestamp_writes_them() {
        for at in [
            datetime!(2026-03-20 14:30:00 UTC),
            datetime!(2026-03-20 14:30:59.999_999 UTC),
            datetime!(2026-03-20 16:30:00.5 +02:00),
            datetime!(0999-01-01 00:00:00 UTC),
            datetime!(9999-12-31 23:59:59.9 UTC),
        ] {
            let json = serde_json::to_string(&Timestamp(at)).unwrap();
            assert_eq!(json, format!("\"{}\"", timestamp(at)), "{at}");
        }
        assert_eq!(
            serde_json::to_string(&Timestamp(datetime!(2026-03-20 16:30:00.5 +02:00))).unwrap(),
            "\"2026-03-20T14:30:00Z\""
        );
    }

    #[test]
    fn amounts_serialize_as_their_currency_formats_them() {
        for (code, value) in [
            ("USD", "10"),
            ("USD", "10.005"),
            ("JPY", "1500.4"),
            ("BHD", "1.25"),
            ("USD", "0"),
        ] {
            let currency = Currency::from_str(code).unwrap();
            let value = Decimal::from_str(value).unwrap();
            let json = serde_json::to_string(&Money(currency.with_minor_digits(value))).unwrap();
            assert_eq!(
                json,
                format!("\"{}\"", currency.format(value)),
                "{code} {value}"
            );
        }
    }
}
