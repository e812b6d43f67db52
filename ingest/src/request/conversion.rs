//! The fields of a reported conversion, from a JSON body (track) or query and form pairs
//! (postback), and their conversion into a checked [`NewConversion`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use attributor::domain::{
    Amount, AttributionMethod, BrandId, ClickId, ClickSigner, ConversionId, Currency, EmailHash,
    EventType, OrderId, Source,
};
use attributor::{NewConversion, ReportedClick};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::QueryPairs;
use crate::error::ApiError;

const MAX_METADATA_KEYS: usize = 64;
const MAX_METADATA_KEY_BYTES: usize = 128;
const MAX_METADATA_VALUE_BYTES: usize = 1024;
const MAX_EMAIL_BYTES: usize = 320;
const MAX_CLICK_ID_BYTES: usize = 256;

/// A conversion's fields as sent: present or not, not yet checked.
#[derive(Debug, Default, Clone)]
pub struct ConversionInput {
    pub click_id: Option<String>,
    pub order_id: Option<String>,
    /// The amount's text: a JSON string's contents or a JSON number's literal digits, so a
    /// number is read exactly as written, never through a float.
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub event_type: Option<String>,
    pub customer_email: Option<String>,
    pub metadata: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct RawConversion<'a> {
    #[serde(borrow)]
    click_id: Option<&'a RawValue>,
    #[serde(borrow)]
    order_id: Option<&'a RawValue>,
    #[serde(borrow)]
    amount: Option<&'a RawValue>,
    #[serde(borrow)]
    currency: Option<&'a RawValue>,
    #[serde(borrow)]
    event_type: Option<&'a RawValue>,
    #[serde(borrow)]
    customer_email: Option<&'a RawValue>,
    #[serde(borrow)]
    metadata: Option<&'a RawValue>,
}

impl ConversionInput {
    /// Reads a JSON object. Unknown fields are ignored; known fields of the wrong type
    /// are named in the error.
    pub fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if first.is_none() {
            return Err(ApiError::BadRequest(
                "the body is empty; send a JSON object".into(),
            ));
        }
        let raw: RawConversion = serde_json::from_slice(body).map_err(|error| {
            if first == Some(&b'{') || error.is_syntax() || error.is_eof() {
                ApiError::BadRequest(format!("the body is not valid JSON: {error}"))
            } else {
                ApiError::BadRequest("the body must be a JSON object".into())
            }
        })?;
        Ok(Self {
            click_id: json_string(raw.click_id, "click_id")?,
            order_id: json_string(raw.order_id, "order_id")?,
            amount: json_amount(raw.amount)?,
            currency: json_string(raw.currency, "currency")?,
            event_type: json_string(raw.event_type, "event_type")?,
            customer_email: json_string(raw.customer_email, "customer_email")?,
            metadata: json_metadata(raw.metadata)?,
        })
    }

    /// Reads postback parameters; parameters other than the conversion's are ignored
    /// (platforms add their own). The first occurrence of a repeated parameter counts.
    pub fn from_pairs(pairs: &QueryPairs) -> Self {
        let mut input = Self::default();
        for (key, value) in pairs.iter() {
            let slot = match key {
                "click_id" => &mut input.click_id,
                "order_id" => &mut input.order_id,
                "amount" => &mut input.amount,
                "currency" => &mut input.currency,
                "event_type" => &mut input.event_type,
                "customer_email" => &mut input.customer_email,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value.to_owned());
            }
        }
        input
    }

    /// Checks every field, in the order a reader would (click, order, currency, amount,
    /// event type, e-mail), and reports the first that is wrong. A click id is required,
    /// unless a customer_email asks for cross-device attribution instead.
    pub fn into_conversion(
        mut self,
        brand: &BrandId,
        signer: &ClickSigner,
        source: Source,
    ) -> Result<NewConversion, ApiError> {
        let click = match present(self.click_id.take()) {
            Some(text) => Some(ReportedClick {
                id: verify_click(signer, &text)?,
                method: AttributionMethod::ClickId,
            }),
            None if present(self.customer_email.clone()).is_some() => None,
            None => {
                return Err(ApiError::invalid(
                    "click_id",
                    "is required (or customer_email, for cross-device attribution)",
                ));
            }
        };
        self.into_attributable(brand, click, source)
    }

    /// Checks every field but the click, which the caller has decided.
    pub fn into_attributable(
        self,
        brand: &BrandId,
        click: Option<ReportedClick>,
        source: Source,
    ) -> Result<NewConversion, ApiError> {
        let order_id = OrderId::parse(&required(self.order_id, "order_id")?)
            .map_err(|error| ApiError::invalid("order_id", error))?;
        let currency = match present(self.currency) {
            Some(code) => code
                .parse::<Currency>()
                .map_err(|error| ApiError::invalid("currency", error))?,
            None => Currency::USD,
        };
        let amount = Amount::parse(&required(self.amount, "amount")?, currency)
            .map_err(|error| ApiError::invalid("amount", error))?;
        let event_type = match present(self.event_type) {
            Some(name) => name
                .parse::<EventType>()
                .map_err(|error| ApiError::invalid("event_type", error))?,
            None => EventType::Sale,
        };
        let email = match present(self.customer_email) {
            Some(address) if address.len() > MAX_EMAIL_BYTES => {
                return Err(ApiError::invalid(
                    "customer_email",
                    format!("must be at most {MAX_EMAIL_BYTES} bytes"),
                ));
            }
            Some(address) => EmailHash::of_address(&address),
            None => None,
        };
        Ok(NewConversion {
            id: ConversionId::derive(brand, order_id.as_str()),
            brand: brand.clone(),
            order_id,
            click,
            amount,
            event_type,
            email,
            metadata: self.metadata,
            source,
        })
    }
}

/// A click id issued by this network (its MAC verifies), or 422 naming click_id.
pub fn verify_click(signer: &ClickSigner, text: &str) -> Result<ClickId, ApiError> {
    if text.len() > MAX_CLICK_ID_BYTES {
        return Err(ApiError::invalid("click_id", "is not an Affilync click id"));
    }
    signer
        .verify(text)
        .map_err(|error| ApiError::invalid("click_id", error))
}

/// Postback URLs are often pasted from pages that turned `&curren` into the currency sign,
/// leaving `...&order_id=1¤cy=USD`. Read that as the `&currency=` it was.
pub fn repair_postback_query(query: &str) -> Cow<'_, str> {
    let encoded = ["%C2%A4cy=", "%c2%a4cy=", "%C2%a4cy=", "%c2%A4cy="];
    if !query.contains("¤cy=") && !encoded.iter().any(|e| query.contains(e)) {
        return Cow::Borrowed(query);
    }
    let mut repaired = query.replace("¤cy=", "&currency=");
    for mangled in encoded {
        repaired = repaired.replace(mangled, "&currency=");
    }
    Cow::Owned(repaired)
}

fn present(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn required(value: Option<String>, field: &str) -> Result<String, ApiError> {
    present(value).ok_or_else(|| ApiError::required(field))
}

fn json_string(raw: Option<&RawValue>, field: &str) -> Result<Option<String>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    if !raw.get().starts_with('"') {
        return Err(ApiError::invalid(field, "must be a string"));
    }
    serde_json::from_str::<String>(raw.get())
        .map(Some)
        .map_err(|_| ApiError::invalid(field, "must be a string"))
}

fn json_amount(raw: Option<&RawValue>) -> Result<Option<String>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => json_string(Some(raw), "amount"),
        Some(b'-' | b'0'..=b'9') => Ok(Some(text.to_owned())),
        _ => Err(ApiError::invalid(
            "amount",
            "must be a decimal string like \"99.99\" or a number",
        )),
    }
}

fn json_metadata(raw: Option<&RawValue>) -> Result<Vec<(String, String)>, ApiError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let entries: BTreeMap<String, &RawValue> = serde_json::from_str(raw.get()).map_err(|_| {
        ApiError::invalid("metadata", "must be an object of string keys and values")
    })?;
    if entries.len() > MAX_METADATA_KEYS {
        return Err(ApiError::invalid(
            "metadata",
            format!("must have at most {MAX_METADATA_KEYS} keys"),
        ));
    }
    let mut metadata = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let field = format!("metadata.{key}");
        if key.is_empty() || key.len() > MAX_METADATA_KEY_BYTES {
            return Err(ApiError::invalid(
                "metadata",
                format!("keys must be 1 to {MAX_METADATA_KEY_BYTES} bytes"),
            ));
        }
        let text = value.get();
        let value = match text.as_bytes().first() {
            Some(b'"') => serde_json::from_str::<String>(text)
                .map_err(|_| ApiError::invalid(&field, "must be a string"))?,
            Some(b'{' | b'[') => {
                return Err(ApiError::invalid(
                    field,
                    "must be a string, number or boolean: metadata is one level deep",
                ));
            }
            _ if text == "null" => continue,
            // Numbers and booleans are kept as written.
            _ => text.to_owned(),
        };
        if value.len() > MAX_METADATA_VALUE_BYTES {
            return Err(ApiError::invalid(
                field,
                format!("must be at most {MAX_METADATA_VALUE_BYTES} bytes"),
            ));
        }
        metadata.push((key, value));
    }
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(result: Result<ConversionInput, ApiError>) -> String {
        match result {
            Err(ApiError::Invalid { field, .. }) => field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn json_numbers_are_read_as_written() {
        let input = ConversionInput::from_json(br#"{"amount": 99.99}"#).unwrap();
        assert_eq!(input.amount.as_deref(), Some("99.99"));
        let input = ConversionInput::from_json(br#"{"amount": 0.1}"#).unwrap();
        assert_eq!(input.amount.as_deref(), Some("0.1"));
    }

    #[test]
    fn wrong_types_are_named() {
        assert_eq!(
            field_of(ConversionInput::from_json(br#"{"order_id": 5}"#)),
            "order_id"
        );
        assert_eq!(
            field_of(ConversionInput::from_json(br#"{"amount": true}"#)),
            "amount"
        );
        assert_eq!(
            field_of(ConversionInput::from_json(br#"{"metadata": "x"}"#)),
            "metadata"
        );
        assert_eq!(
            field_of(ConversionInput::from_json(
                br#"{"metadata": {"a": {"b": "c"}}}"#
            )),
            "metadata.a"
        );
    }

    #[test]
    fn unknown_fields_are_ignored_and_metadata_kept_flat() {
        let input = ConversionInput::from_json(
            br#"{"order_id": "o", "extra": [1, 2], "metadata": {"n": 2, "ok": true, "s": "x", "z": null}}"#,
        )
        .unwrap();
        assert_eq!(input.order_id.as_deref(), Some("o"));
        assert_eq!(
            input.metadata,
            vec![
                ("n".to_owned(), "2".to_owned()),
                ("ok".to_owned(), "true".to_owned()),
                ("s".to_owned(), "x".to_owned())
            ]
        );
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_bad_requests() {
        for body in [&b"not json"[..], b"[1]", b"\"x\"", b"", b"{\"a\":"] {
            assert!(
                matches!(
                    ConversionInput::from_json(body),
                    Err(ApiError::BadRequest(_))
                ),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn the_mangled_currency_parameter_is_repaired() {
        assert_eq!(
            repair_postback_query("click_id=c&amount=5&order_id=o¤cy=EUR"),
            "click_id=c&amount=5&order_id=o&currency=EUR"
        );
        assert_eq!(
            repair_postback_query("order_id=o%C2%A4cy=EUR"),
            "order_id=o&currency=EUR"
        );
        assert!(matches!(
            repair_postback_query("order_id=o&currency=EUR"),
            Cow::Borrowed(_)
        ));
    }
}
