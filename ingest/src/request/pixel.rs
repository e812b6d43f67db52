//! What the browser pixel sends: a conversion's fields, plus where its click id was found
//! and, for cross-device reports without any click, the brand the page belongs to.

use serde::Deserialize;

use super::{ConversionInput, QueryPairs};
use crate::error::ApiError;

#[derive(Debug, Default)]
pub struct PixelInput {
    pub conversion: ConversionInput,
    /// option | url | first_party_cookie, as pixel.js found the click id.
    pub click_source: Option<String>,
    pub brand_id: Option<String>,
    /// The image fallback asks for a 1x1 GIF back.
    pub wants_image: bool,
}

#[derive(Deserialize, Default)]
struct PixelExtras {
    click_source: Option<String>,
    brand_id: Option<String>,
}

impl PixelInput {
    /// The image fallback: everything in the query string.
    pub fn from_query(query: &str) -> Result<Self, ApiError> {
        Self::from_pairs(query.as_bytes())
    }

    fn from_pairs(encoded: &[u8]) -> Result<Self, ApiError> {
        let pairs = QueryPairs::parse(encoded)?;
        let find = |name: &str| {
            pairs
                .first(name)
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
        };
        Ok(Self {
            click_source: find("click_source"),
            brand_id: find("brand_id"),
            wants_image: find("format").as_deref() == Some("gif"),
            conversion: ConversionInput::from_pairs(&pairs),
        })
    }

    /// Whether a query asks for the image answer, read without decoding it: an image
    /// request gets an image back even when its fields are refused.
    pub fn query_wants_image(query: &str) -> bool {
        query.split('&').any(|pair| pair == "format=gif")
    }

    /// A beacon or fetch body: JSON sent as text/plain (which needs no CORS preflight),
    /// or a form.
    pub fn from_body(body: &[u8]) -> Result<Self, ApiError> {
        let is_json = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        if !is_json {
            return Self::from_pairs(body);
        }
        let extras: PixelExtras = serde_json::from_slice(body).unwrap_or_default();
        Ok(Self {
            conversion: ConversionInput::from_json(body)?,
            click_source: extras.click_source,
            brand_id: extras.brand_id,
            wants_image: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beacons_and_images_carry_the_same_fields() {
        let beacon = PixelInput::from_body(
            br#"{"order_id": "o", "amount": 99.99, "click_id": "clk_x", "click_source": "url", "brand_id": "brd_1"}"#,
        )
        .unwrap();
        assert_eq!(beacon.conversion.amount.as_deref(), Some("99.99"));
        assert_eq!(beacon.click_source.as_deref(), Some("url"));
        assert_eq!(beacon.brand_id.as_deref(), Some("brd_1"));
        assert!(!beacon.wants_image);

        let image = PixelInput::from_query(
            "order_id=o&amount=99.99&click_id=clk_x&click_source=url&format=gif",
        )
        .unwrap();
        assert_eq!(image.conversion.order_id.as_deref(), Some("o"));
        assert_eq!(image.click_source.as_deref(), Some("url"));
        assert!(image.wants_image);
    }
}
