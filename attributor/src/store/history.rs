//! The status history of conversions: one row per change (a brand's PATCH or bulk call,
//! or an automatic approval), journaled beside the conversion version it produced and
//! shipped with it. A row is keyed by that version, so a record shipped twice, or the
//! same automatic approval journaled by two nodes, collapses into one row.

use clickhouse::Row;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::deadline::Exchange;
use super::{Store, StoreError};
use crate::conversion::Conversion;
use crate::domain::{ConversionId, Status};

#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct StatusChangeRow {
    pub conversion_id: String,
    pub brand_id: String,
    /// The conversion version this change produced.
    pub version: u64,
    /// The conversion's: where its rows sort in the listing copies.
    #[serde(with = "clickhouse::serde::time::datetime")]
    pub created_at: OffsetDateTime,
    #[serde(with = "clickhouse::serde::time::datetime")]
    pub changed_at: OffsetDateTime,
    pub from_status: String,
    pub to_status: String,
    /// Who decided: `key:<key prefix>` for a brand's key, `system:hold` for an approval
    /// at the end of a hold period.
    pub actor: String,
    pub note: String,
}

impl StatusChangeRow {
    /// The change that turned a conversion of status `from` into `next`.
    pub fn of(next: &Conversion, from: Status, actor: &str) -> Self {
        Self {
            conversion_id: next.id.to_string(),
            brand_id: next.brand.to_string(),
            version: next.version,
            created_at: next.created_at,
            changed_at: next.updated_at,
            from_status: from.to_string(),
            to_status: next.status.to_string(),
            actor: actor.to_owned(),
            note: next.note.clone(),
        }
    }

    pub fn approximate_bytes(&self) -> usize {
        [
            &self.conversion_id,
            &self.brand_id,
            &self.from_status,
            &self.to_status,
            &self.actor,
            &self.note,
        ]
        .iter()
        .map(|text| text.len() + 2)
        .sum::<usize>()
            + 8
            + 4
            + 4
    }
}

impl Store {
    /// One INSERT for the rows; a row sent twice collapses on its conversion and version.
    pub async fn insert_status_changes(&self, rows: &[StatusChangeRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.insert_rows("status_changes", rows).await
    }

    /// Every shipped status change of a conversion, oldest first.
    pub async fn status_history(
        &self,
        id: &ConversionId,
    ) -> Result<Vec<StatusChangeRow>, StoreError> {
        self.within(
            Exchange::Read,
            "status history",
            self.read_client()
                .query(
                    "SELECT ?fields FROM status_changes FINAL \
                     WHERE conversion_id = ? ORDER BY version",
                )
                .bind(id.as_str())
                .fetch_all::<StatusChangeRow>(),
        )
        .await
    }
}
