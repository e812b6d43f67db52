//! Every conversion a listing's filters match, streamed row by row for export: memory
//! stays at the HTTP client's buffer whatever the size.
//!
//! A FINAL read streams (it merges the sorted parts as it goes), where collapsing by
//! `argMax` would hold every conversion of the range in a hash table. Conditions that
//! ClickHouse would move to PREWHERE run before FINAL collapses versions; with that move
//! off they filter the latest versions only, so a status filter sees current statuses.

use clickhouse::query::RowCursor;

use super::deadline::Exchange;
use super::rows::ConversionRow;
use super::{ListFilter, ListOwner, Store, StoreError};
use crate::conversion::Conversion;

/// An export under way; [`ConversionExport::next`] until `None`.
pub struct ConversionExport {
    store: Store,
    cursor: RowCursor<ConversionRow>,
}

impl ConversionExport {
    /// The next conversion, within the read timeout (a ClickHouse that stops sending ends
    /// the export with `Unavailable`).
    pub async fn next(&mut self) -> Result<Option<Conversion>, StoreError> {
        let store = self.store.clone();
        let row = store
            .within(Exchange::Read, "export", self.cursor.next())
            .await?;
        row.map(Conversion::try_from).transpose()
    }
}

impl Store {
    /// Starts streaming the conversions `filter` matches, each in its latest version, in
    /// the order of the owner's copy (by month, then time, mostly).
    pub fn export_conversions(&self, filter: &ListFilter) -> Result<ConversionExport, StoreError> {
        let (table, owner, id) = match &filter.owner {
            ListOwner::Brand(brand) => ("conversions_by_brand", "brand_id", brand.to_string()),
            ListOwner::Affiliate(affiliate) => (
                "conversions_by_affiliate",
                "affiliate_id",
                affiliate.to_string(),
            ),
        };
        let mut conditions = format!("{owner} = ?");
        let mut binds = vec![id];
        if let Some(from) = filter.from {
            conditions.push_str(&format!(
                " AND created_at >= toDateTime({})",
                from.unix_timestamp()
            ));
        }
        if let Some(until) = filter.until {
            conditions.push_str(&format!(
                " AND created_at < toDateTime({})",
                until.unix_timestamp()
            ));
        }
        for (column, value) in [
            (
                "campaign_id",
                filter.campaign.as_ref().map(|c| c.to_string()),
            ),
            (
                "affiliate_id",
                filter.affiliate.as_ref().map(|a| a.to_string()),
            ),
            ("status", filter.status.map(|s| s.to_string())),
        ] {
            if let Some(value) = value {
                conditions.push_str(&format!(" AND {column} = ?"));
                binds.push(value);
            }
        }
        let sql = format!("SELECT ?fields FROM {table} FINAL WHERE {conditions}");
        let mut query = self
            .client()
            .query(&sql)
            .with_setting("optimize_move_to_prewhere", "0");
        for bind in &binds {
            query = query.bind(bind);
        }
        Ok(ConversionExport {
            store: self.clone(),
            cursor: query.fetch::<ConversionRow>()?,
        })
    }
}
