use clickhouse::Row;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Store, StoreError};

/// One click on a tracking link, as the clicks table keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct ClickRow {
    pub click_id: String,
    #[serde(with = "clickhouse::serde::time::datetime")]
    pub clicked_at: OffsetDateTime,
    pub link_id: String,
    pub campaign_id: String,
    pub affiliate_id: String,
    pub brand_id: String,
    pub ip: String,
    pub forwarded_for: String,
    pub user_agent: String,
    pub referer: String,
    pub sub1: String,
    pub sub2: String,
    pub sub3: String,
    pub sub4: String,
    pub sub5: String,
}

impl Store {
    pub async fn insert_clicks(&self, rows: &[ClickRow]) -> Result<(), StoreError> {
        self.insert_rows("clicks", rows).await
    }
}
