//! Writes and reads of conversions and commissions.

use clickhouse::Row;
use serde::Deserialize;

use super::deadline::Exchange;
use super::rows::{CommissionRow, ConversionRow};
use super::{Store, StoreError};
use crate::conversion::Conversion;
use crate::domain::ConversionId;

#[derive(Row, Deserialize)]
pub(super) struct Count {
    pub(super) total: u64,
}

#[derive(Row, Deserialize)]
struct Id {
    conversion_id: String,
}

#[derive(Row, Deserialize)]
struct DedupKey {
    dedup_key: u64,
}

impl Store {
    /// One INSERT for the whole batch. The rows stay with the caller, so a failed INSERT
    /// can be sent again as it was: conversion rows collapse on their id and version.
    pub async fn insert_conversions(&self, rows: &[ConversionRow]) -> Result<(), StoreError> {
        self.insert_rows("conversions", rows).await
    }

    pub async fn insert_commissions(&self, rows: &[CommissionRow]) -> Result<(), StoreError> {
        self.insert_rows("commissions", rows).await
    }

    /// The latest version of each of these conversions that exists, in no order.
    ///
    /// Two steps: which ids exist (one narrow column, no FINAL), then the full latest rows
    /// of those only. Most asks are for orders that are new, and reading every column of
    /// every granule an id could be in, FINAL, would cost far more than the answer.
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
        let existing = self
            .within(
                Exchange::Read,
                "look-up by id",
                self.read_client()
                    .query(
                        "SELECT DISTINCT conversion_id FROM conversions \
                         WHERE conversion_id IN (SELECT arrayJoin(?))",
                    )
                    .bind(ids)
                    .fetch_all::<Id>(),
            )
            .await?;
        if existing.is_empty() {
            return Ok(Vec::new());
        }
        let existing: Vec<String> = existing.into_iter().map(|row| row.conversion_id).collect();
        let rows = self
            .within(
                Exchange::Read,
                "look-up by id",
                self.read_client()
                    .query(
                        "SELECT ?fields FROM conversions FINAL \
                         WHERE conversion_id IN (SELECT arrayJoin(?))",
                    )
                    .bind(existing)
                    .fetch_all::<ConversionRow>(),
            )
            .await?;
        rows.into_iter().map(Conversion::try_from).collect()
    }

    pub async fn conversion(&self, id: &ConversionId) -> Result<Option<Conversion>, StoreError> {
        let mut found = self.conversions_by_id(std::slice::from_ref(id)).await?;
        Ok(found.pop())
    }

    /// Calls `each` with the dedup key of every stored conversion version (versions of one
    /// conversion share a key, which a bloom filter does not mind); returns how many.
    pub async fn for_each_dedup_key(&self, mut each: impl FnMut(u64)) -> Result<u64, StoreError> {
        self.within(Exchange::Bulk, "dedup key scan", async {
            let mut cursor = self
                .client()
                .query("SELECT dedup_key FROM conversions")
                .fetch::<DedupKey>()?;
            let mut seen = 0;
            while let Some(row) = cursor.next().await? {
                each(row.dedup_key);
                seen += 1;
            }
            Ok::<u64, clickhouse::error::Error>(seen)
        })
        .await
    }
}

impl Store {
    /// Rows in the conversions table, versions included; sizes the dedup bloom filter.
    pub async fn count_conversion_versions(&self) -> Result<u64, StoreError> {
        let count = self
            .within(
                Exchange::Bulk,
                "count of stored versions",
                self.client()
                    .query("SELECT count() AS total FROM conversions")
                    .fetch_one::<Count>(),
            )
            .await?;
        Ok(count.total)
    }
}
