//! Writes and reads of conversions and commissions.

use std::time::Duration;

use clickhouse::Row;
use serde::Deserialize;
use time::OffsetDateTime;

use super::rows::{CommissionRow, ConversionRow};
use super::{Store, StoreError};
use crate::conversion::Conversion;
use crate::domain::{AffiliateId, BrandId, CampaignId, ConversionId, Status};

/// An INSERT that has not been acknowledged in this long is treated as failed (and
/// retried by the caller); ClickHouse answers small INSERTs in milliseconds.
const INSERT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whose conversions a listing shows: a brand's, or an affiliate's across brands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListOwner {
    Brand(BrandId),
    Affiliate(AffiliateId),
}

/// The filters of `GET /api/conversions`.
#[derive(Debug, Clone)]
pub struct ListFilter {
    pub owner: ListOwner,
    /// Inclusive lower bound on created_at.
    pub from: Option<OffsetDateTime>,
    /// Exclusive upper bound on created_at.
    pub until: Option<OffsetDateTime>,
    pub campaign: Option<CampaignId>,
    pub affiliate: Option<AffiliateId>,
    pub status: Option<Status>,
    /// Counted from 1.
    pub page: u32,
    pub per_page: u32,
}

/// One page of a listing, newest first, and how many conversions match in all.
#[derive(Debug, Clone)]
pub struct ListPage {
    pub conversions: Vec<Conversion>,
    pub total: u64,
}

#[derive(Row, Deserialize)]
struct Count {
    total: u64,
}

#[derive(Row, Deserialize)]
struct DedupKey {
    dedup_key: u64,
}

impl Store {
    /// One INSERT for the whole batch. The rows stay with the caller, so a failed INSERT
    /// can be sent again as it was: conversion rows collapse on their id and version.
    pub async fn insert_conversions(&self, rows: &[ConversionRow]) -> Result<(), StoreError> {
        let mut insert = self
            .client
            .insert::<ConversionRow>("conversions")
            .await?
            .with_timeouts(Some(INSERT_TIMEOUT), Some(INSERT_TIMEOUT));
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await?;
        Ok(())
    }

    pub async fn insert_commissions(&self, rows: &[CommissionRow]) -> Result<(), StoreError> {
        let mut insert = self
            .client
            .insert::<CommissionRow>("commissions")
            .await?
            .with_timeouts(Some(INSERT_TIMEOUT), Some(INSERT_TIMEOUT));
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await?;
        Ok(())
    }

    /// The latest version of each of these conversions that exists, in no order.
    pub async fn conversions_by_id(
        &self,
        ids: &[ConversionId],
    ) -> Result<Vec<Conversion>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = ids.iter().map(ConversionId::as_str).collect();
        // `IN (SELECT arrayJoin(?))` rather than `IN ?`: servers before 19 do not take an
        // array literal on the right of IN, and the set still narrows the primary key.
        let rows = self
            .client
            .query(
                "SELECT ?fields FROM conversions FINAL \
                 WHERE conversion_id IN (SELECT arrayJoin(?))",
            )
            .bind(ids)
            .fetch_all::<ConversionRow>()
            .await?;
        rows.into_iter().map(Conversion::try_from).collect()
    }

    pub async fn conversion(&self, id: &ConversionId) -> Result<Option<Conversion>, StoreError> {
        let mut found = self.conversions_by_id(std::slice::from_ref(id)).await?;
        Ok(found.pop())
    }

    /// A page of conversions, newest first, from the copy sorted for the owner.
    pub async fn list_conversions(&self, filter: &ListFilter) -> Result<ListPage, StoreError> {
        let (table, owner_column, owner_id) = match &filter.owner {
            ListOwner::Brand(brand) => ("conversions_by_brand", "brand_id", brand.to_string()),
            ListOwner::Affiliate(affiliate) => (
                "conversions_by_affiliate",
                "affiliate_id",
                affiliate.to_string(),
            ),
        };
        // WHERE on a FINAL read filters the collapsed rows, so a status filter sees only
        // each conversion's latest status.
        let mut conditions = format!("{owner_column} = ?");
        let mut binds: Vec<Bound> = vec![Bound::Text(owner_id)];
        if let Some(from) = filter.from {
            conditions.push_str(" AND created_at >= toDateTime(?)");
            binds.push(Bound::Seconds(from.unix_timestamp()));
        }
        if let Some(until) = filter.until {
            conditions.push_str(" AND created_at < toDateTime(?)");
            binds.push(Bound::Seconds(until.unix_timestamp()));
        }
        if let Some(campaign) = &filter.campaign {
            conditions.push_str(" AND campaign_id = ?");
            binds.push(Bound::Text(campaign.to_string()));
        }
        if let Some(affiliate) = &filter.affiliate {
            conditions.push_str(" AND affiliate_id = ?");
            binds.push(Bound::Text(affiliate.to_string()));
        }
        if let Some(status) = filter.status {
            conditions.push_str(" AND status = ?");
            binds.push(Bound::Text(status.to_string()));
        }

        let offset = u64::from(filter.page.saturating_sub(1)) * u64::from(filter.per_page);
        let page_sql = format!(
            "SELECT ?fields FROM {table} FINAL WHERE {conditions} \
             ORDER BY created_at DESC, conversion_id DESC LIMIT {offset}, {}",
            filter.per_page
        );
        let count_sql = format!("SELECT count() AS total FROM {table} FINAL WHERE {conditions}");
        let page = bind_all(self.client.query(&page_sql), &binds).fetch_all::<ConversionRow>();
        let count = bind_all(self.client.query(&count_sql), &binds).fetch_one::<Count>();
        let (rows, count) = tokio::try_join!(page, count)?;
        Ok(ListPage {
            conversions: rows
                .into_iter()
                .map(Conversion::try_from)
                .collect::<Result<_, _>>()?,
            total: count.total,
        })
    }

    /// Calls `each` with the dedup key of every stored conversion version (versions of one
    /// conversion share a key, which a bloom filter does not mind); returns how many.
    pub async fn for_each_dedup_key(&self, mut each: impl FnMut(u64)) -> Result<u64, StoreError> {
        let mut cursor = self
            .client
            .query("SELECT dedup_key FROM conversions")
            .fetch::<DedupKey>()?;
        let mut seen = 0;
        while let Some(row) = cursor.next().await? {
            each(row.dedup_key);
            seen += 1;
        }
        Ok(seen)
    }
}

enum Bound {
    Text(String),
    Seconds(i64),
}

fn bind_all(mut query: clickhouse::query::Query, binds: &[Bound]) -> clickhouse::query::Query {
    for bound in binds {
        query = match bound {
            Bound::Text(text) => query.bind(text),
            Bound::Seconds(seconds) => query.bind(seconds),
        };
    }
    query
}

impl Store {
    /// Rows in the conversions table, versions included; sizes the dedup bloom filter.
    pub async fn count_conversion_versions(&self) -> Result<u64, StoreError> {
        let count = self
            .client
            .query("SELECT count() AS total FROM conversions")
            .fetch_one::<Count>()
            .await?;
        Ok(count.total)
    }
}
