//! Campaign hold periods, and the conversions whose hold is over.

use clickhouse::Row;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::deadline::Exchange;
use super::{Store, StoreError};
use crate::domain::{BrandId, CampaignId, ConversionId};

#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct CampaignHoldRow {
    pub campaign_id: String,
    pub brand_id: String,
    pub hold_days: u16,
    #[serde(with = "clickhouse::serde::time::datetime")]
    pub created_at: OffsetDateTime,
    pub version: u64,
}

#[derive(Row, Deserialize)]
struct DueRow {
    conversion_id: String,
    #[serde(with = "clickhouse::serde::time::datetime")]
    created: OffsetDateTime,
}

/// A conversion due for approval, and where it stands in the oldest-first walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuePosition {
    pub id: ConversionId,
    pub created_at: OffsetDateTime,
}

impl Store {
    pub async fn insert_campaign_hold(&self, row: &CampaignHoldRow) -> Result<(), StoreError> {
        self.insert_rows("campaign_holds", std::slice::from_ref(row))
            .await
    }

    /// Every campaign's latest hold.
    pub async fn campaign_holds(&self) -> Result<Vec<CampaignHoldRow>, StoreError> {
        self.within(
            Exchange::Read,
            "campaign holds",
            self.read_client()
                .query("SELECT ?fields FROM campaign_holds FINAL")
                .fetch_all::<CampaignHoldRow>(),
        )
        .await
    }

    /// Up to `limit` conversions of the campaign created before `created_before` whose
    /// latest version is still pending, oldest first (by creation, then id), after
    /// `after` when given: the position of the last one of the previous page, so that a
    /// round walks a backlog page by page even while its approvals are not shipped yet.
    ///
    /// argMax rather than FINAL: only the brand's range of the listing copy is read, and a
    /// status decided in a version not yet merged still counts.
    pub async fn pending_created_before(
        &self,
        brand: &BrandId,
        campaign: &CampaignId,
        created_before: OffsetDateTime,
        after: Option<&DuePosition>,
        limit: u64,
    ) -> Result<Vec<DuePosition>, StoreError> {
        // created_at is the same in every version of a conversion, so the position can be
        // tested on rows before they are grouped.
        let (after_time, after_id) = after.map_or((i64::MIN, ""), |position| {
            (position.created_at.unix_timestamp(), position.id.as_str())
        });
        let rows = self
            .within(
                Exchange::Read,
                "conversions due for approval",
                self.read_client()
                    .query(
                        "SELECT conversion_id, min(created_at) AS created \
                         FROM conversions_by_brand \
                         WHERE brand_id = ? AND campaign_id = ? AND created_at <= toDateTime(?) \
                           AND (toInt64(created_at) > ? \
                                OR (toInt64(created_at) = ? AND conversion_id > ?)) \
                         GROUP BY conversion_id \
                         HAVING argMax(status, version) = 'pending' \
                         ORDER BY created, conversion_id LIMIT ?",
                    )
                    .bind(brand.as_str())
                    .bind(campaign.as_str())
                    .bind(created_before.unix_timestamp())
                    .bind(after_time)
                    .bind(after_time)
                    .bind(after_id)
                    .bind(limit)
                    .fetch_all::<DueRow>(),
            )
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(DuePosition {
                    id: ConversionId::parse(&row.conversion_id).map_err(|_| {
                        StoreError::Corrupt(format!(
                            "conversion id {} is unreadable",
                            row.conversion_id
                        ))
                    })?,
                    created_at: row.created,
                })
            })
            .collect()
    }
}
