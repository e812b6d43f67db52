//! Row types as ClickHouse stores them (RowBinary), and their mapping to domain types.
//! Decimal(18, 4) columns travel as the i64 mantissa at scale 4.

use clickhouse::Row;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::StoreError;
use crate::conversion::{Attribution, Conversion};
use crate::domain::{
    AffiliateId, BrandId, CampaignId, ClickId, ConversionId, Currency, EmailHash, LinkId, OrderId,
};

const DECIMAL_SCALE: u32 = 4;

pub fn decimal_to_column(value: Decimal) -> i64 {
    let mut value = value;
    value.rescale(DECIMAL_SCALE);
    i64::try_from(value.mantissa()).expect("amounts are bounded far below Decimal(18, 4)")
}

pub fn decimal_from_column(mantissa: i64) -> Decimal {
    Decimal::new(mantissa, DECIMAL_SCALE).normalize()
}

#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct ConversionRow {
    pub conversion_id: String,
    pub dedup_key: u64,
    pub brand_id: String,
    pub order_id: String,
    pub version: u64,
    #[serde(with = "clickhouse::serde::time::datetime")]
    pub created_at: OffsetDateTime,
    #[serde(with = "clickhouse::serde::time::datetime")]
    pub updated_at: OffsetDateTime,
    pub source: String,
    pub campaign_id: String,
    pub affiliate_id: String,
    pub link_id: String,
    pub click_id: String,
    pub attribution_method: String,
    #[serde(with = "clickhouse::serde::time::datetime::option")]
    pub click_time: Option<OffsetDateTime>,
    pub seconds_from_click: Option<u32>,
    pub event_type: String,
    pub amount: i64,
    pub currency: String,
    pub commission_amount: i64,
    pub commission_currency: String,
    pub commission_rule: String,
    pub status: String,
    pub status_reason: String,
    pub note: String,
    pub customer_email_sha256: String,
    #[serde(rename = "metadata.key")]
    pub metadata_key: Vec<String>,
    #[serde(rename = "metadata.value")]
    pub metadata_value: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct CommissionRow {
    pub conversion_id: String,
    pub brand_id: String,
    pub affiliate_id: String,
    pub campaign_id: String,
    pub version: u64,
    #[serde(with = "clickhouse::serde::time::datetime")]
    pub created_at: OffsetDateTime,
    #[serde(with = "clickhouse::serde::time::datetime")]
    pub updated_at: OffsetDateTime,
    pub event_type: String,
    pub status: String,
    pub amount: i64,
    pub currency: String,
    pub rule: String,
    pub base_amount: i64,
    pub base_currency: String,
}

/// Approximate RowBinary size, for the batch-bytes metric: strings are a length byte or
/// two and their bytes; numbers and dates their width.
fn text_bytes<'a>(texts: impl IntoIterator<Item = &'a String>) -> usize {
    texts.into_iter().map(|t| t.len() + 2).sum()
}

impl ConversionRow {
    pub fn approximate_bytes(&self) -> usize {
        let texts = [
            &self.conversion_id,
            &self.brand_id,
            &self.order_id,
            &self.source,
            &self.campaign_id,
            &self.affiliate_id,
            &self.link_id,
            &self.click_id,
            &self.attribution_method,
            &self.event_type,
            &self.currency,
            &self.commission_currency,
            &self.commission_rule,
            &self.status,
            &self.status_reason,
            &self.note,
            &self.customer_email_sha256,
        ];
        text_bytes(texts)
            + text_bytes(&self.metadata_key)
            + text_bytes(&self.metadata_value)
            + 8 * 5
            + 4 * 3
            + 2
    }
}

impl CommissionRow {
    pub fn approximate_bytes(&self) -> usize {
        let texts = [
            &self.conversion_id,
            &self.brand_id,
            &self.affiliate_id,
            &self.campaign_id,
            &self.event_type,
            &self.status,
            &self.currency,
            &self.rule,
            &self.base_currency,
        ];
        text_bytes(texts) + 8 * 3 + 4 * 2
    }
}

impl From<&Conversion> for ConversionRow {
    fn from(c: &Conversion) -> Self {
        let (metadata_key, metadata_value) = c.metadata.iter().cloned().unzip();
        ConversionRow {
            conversion_id: c.id.to_string(),
            dedup_key: c.id.dedup_key(),
            brand_id: c.brand.to_string(),
            order_id: c.order_id.to_string(),
            version: c.version,
            created_at: c.created_at,
            updated_at: c.updated_at,
            source: c.source.to_string(),
            campaign_id: c.campaign.to_string(),
            affiliate_id: c.affiliate.to_string(),
            link_id: c.link.to_string(),
            click_id: c.click_id.to_string(),
            attribution_method: c
                .attribution
                .map_or(String::new(), |a| a.method.to_string()),
            click_time: c.attribution.map(|a| a.click_time),
            seconds_from_click: c.attribution.map(|a| a.seconds_from_click),
            event_type: c.event_type.to_string(),
            amount: decimal_to_column(c.amount),
            currency: c.currency.to_string(),
            commission_amount: decimal_to_column(c.commission_amount),
            commission_currency: c.commission_currency.to_string(),
            commission_rule: c.commission_rule.clone(),
            status: c.status.to_string(),
            status_reason: c.status_reason.clone(),
            note: c.note.clone(),
            customer_email_sha256: c.email_hash.map_or(String::new(), EmailHash::to_hex),
            metadata_key,
            metadata_value,
        }
    }
}

impl From<&Conversion> for CommissionRow {
    fn from(c: &Conversion) -> Self {
        CommissionRow {
            conversion_id: c.id.to_string(),
            brand_id: c.brand.to_string(),
            affiliate_id: c.affiliate.to_string(),
            campaign_id: c.campaign.to_string(),
            version: c.version,
            created_at: c.created_at,
            updated_at: c.updated_at,
            event_type: c.event_type.to_string(),
            status: c.status.to_string(),
            amount: decimal_to_column(c.commission_amount),
            currency: c.commission_currency.to_string(),
            rule: c.commission_rule.clone(),
            base_amount: decimal_to_column(c.amount),
            base_currency: c.currency.to_string(),
        }
    }
}

impl From<&ConversionRow> for CommissionRow {
    /// The commission row of a conversion version: the journal keeps conversion rows only,
    /// and the shipper derives each one's commission row from it, so the two always agree.
    fn from(c: &ConversionRow) -> Self {
        CommissionRow {
            conversion_id: c.conversion_id.clone(),
            brand_id: c.brand_id.clone(),
            affiliate_id: c.affiliate_id.clone(),
            campaign_id: c.campaign_id.clone(),
            version: c.version,
            created_at: c.created_at,
            updated_at: c.updated_at,
            event_type: c.event_type.clone(),
            status: c.status.clone(),
            amount: c.commission_amount,
            currency: c.commission_currency.clone(),
            rule: c.commission_rule.clone(),
            base_amount: c.amount,
            base_currency: c.currency.clone(),
        }
    }
}

impl TryFrom<ConversionRow> for Conversion {
    type Error = StoreError;

    fn try_from(row: ConversionRow) -> Result<Self, StoreError> {
        let corrupt = |column: &str| {
            StoreError::Corrupt(format!(
                "conversion {} has an unreadable {column}",
                row.conversion_id
            ))
        };
        let attribution = match (row.attribution_method.as_str(), row.click_time) {
            ("", _) | (_, None) => None,
            (method, Some(click_time)) => Some(Attribution {
                method: method.parse().map_err(|_| corrupt("attribution_method"))?,
                click_time,
                seconds_from_click: row.seconds_from_click.unwrap_or(0),
            }),
        };
        Ok(Conversion {
            id: ConversionId::parse(&row.conversion_id).map_err(|_| corrupt("conversion_id"))?,
            brand: BrandId::parse(&row.brand_id).map_err(|_| corrupt("brand_id"))?,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
            source: row.source.parse().map_err(|_| corrupt("source"))?,
            campaign: CampaignId::parse(&row.campaign_id).map_err(|_| corrupt("campaign_id"))?,
            affiliate: AffiliateId::parse(&row.affiliate_id)
                .map_err(|_| corrupt("affiliate_id"))?,
            link: LinkId::parse(&row.link_id).map_err(|_| corrupt("link_id"))?,
            attribution,
            event_type: row.event_type.parse().map_err(|_| corrupt("event_type"))?,
            amount: decimal_from_column(row.amount),
            currency: row
                .currency
                .parse::<Currency>()
                .map_err(|_| corrupt("currency"))?,
            commission_amount: decimal_from_column(row.commission_amount),
            commission_currency: row
                .commission_currency
                .parse::<Currency>()
                .map_err(|_| corrupt("commission_currency"))?,
            status: row.status.parse().map_err(|_| corrupt("status"))?,
            email_hash: match row.customer_email_sha256.as_str() {
                "" => None,
                hex => {
                    Some(EmailHash::from_hex(hex).ok_or_else(|| corrupt("customer_email_sha256"))?)
                }
            },
            metadata: row
                .metadata_key
                .into_iter()
                .zip(row.metadata_value)
                .collect(),
            order_id: OrderId::parse(&row.order_id).map_err(|_| corrupt("order_id"))?,
            click_id: ClickId::from_stored(&row.click_id).map_err(|_| corrupt("click_id"))?,
            commission_rule: row.commission_rule,
            status_reason: row.status_reason,
            note: row.note,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_travel_as_mantissa_at_scale_four() {
        let value: Decimal = "99.99".parse().unwrap();
        assert_eq!(decimal_to_column(value), 999_900);
        assert_eq!(decimal_from_column(999_900), value);
        let big: Decimal = "1000000000000".parse().unwrap();
        assert_eq!(decimal_from_column(decimal_to_column(big)), big);
    }
}
