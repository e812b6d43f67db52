use clickhouse::Row;
use serde::Deserialize;
use time::OffsetDateTime;

use super::deadline::Exchange;
use super::{Store, StoreError};
use crate::domain::{BrandId, ClickId, EmailHash, LinkId};

/// The most recent click a customer (by e-mail hash) was credited with at one brand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailTouch {
    pub email: EmailHash,
    pub brand: BrandId,
    pub link: LinkId,
    pub click_id: ClickId,
    pub click_time: OffsetDateTime,
}

#[derive(Row, Deserialize)]
struct TouchRow {
    email_sha256: String,
    brand_id: String,
    link_id: String,
    click_id: String,
    #[serde(with = "clickhouse::serde::time::datetime")]
    last_click_time: OffsetDateTime,
}

impl Store {
    /// The latest touch of each of these e-mail hashes, per brand.
    pub async fn email_touches(&self, emails: &[EmailHash]) -> Result<Vec<EmailTouch>, StoreError> {
        if emails.is_empty() {
            return Ok(Vec::new());
        }
        let hashes: Vec<String> = emails.iter().map(|e| e.to_hex()).collect();
        // The aggregates are not aliased to column names: ClickHouse would resolve the
        // other aggregates' `click_time` to the alias.
        let query = self
            .read_client()
            .query(
                "SELECT email_sha256, brand_id, \
                        argMax(link_id, click_time) AS link_id, \
                        argMax(click_id, click_time) AS click_id, \
                        max(click_time) AS last_click_time \
                 FROM email_touches \
                 WHERE email_sha256 IN (SELECT arrayJoin(?)) \
                 GROUP BY email_sha256, brand_id",
            )
            .bind(hashes)
            .fetch_all::<TouchRow>();
        let rows = self
            .within(Exchange::Read, "e-mail touch look-up", query)
            .await?;
        rows.into_iter()
            .map(|row| {
                let corrupt = || {
                    StoreError::Corrupt(format!("email touch of {} is unreadable", row.brand_id))
                };
                Ok(EmailTouch {
                    email: EmailHash::from_hex(&row.email_sha256).ok_or_else(corrupt)?,
                    brand: BrandId::parse(&row.brand_id).map_err(|_| corrupt())?,
                    link: LinkId::parse(&row.link_id).map_err(|_| corrupt())?,
                    click_id: ClickId::from_stored(&row.click_id).map_err(|_| corrupt())?,
                    click_time: row.last_click_time,
                })
            })
            .collect()
    }
}
