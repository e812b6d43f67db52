use std::future::Future;

use crate::domain::EmailHash;
use crate::store::{CommissionRow, ConversionRow, EmailTouch, Store, StoreError};

/// Where attribution workers read and write. ClickHouse ([`Store`]) in the service; the
/// benches put a sink that only counts behind the same workers, to measure the pipeline
/// without the database.
pub trait ConversionSink: Send + Sync + 'static {
    /// A handle for one worker thread; it is driven by that thread's own runtime.
    fn for_worker(&self) -> Self
    where
        Self: Sized;

    /// The latest touch of each e-mail hash, per brand (cross-device attribution).
    fn email_touches(
        &self,
        emails: &[EmailHash],
    ) -> impl Future<Output = Result<Vec<EmailTouch>, StoreError>> + Send;

    fn insert_commissions(
        &self,
        rows: &[CommissionRow],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn insert_conversions(
        &self,
        rows: &[ConversionRow],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl ConversionSink for Store {
    fn for_worker(&self) -> Self {
        self.with_own_pool()
    }

    fn email_touches(
        &self,
        emails: &[EmailHash],
    ) -> impl Future<Output = Result<Vec<EmailTouch>, StoreError>> + Send {
        Store::email_touches(self, emails)
    }

    fn insert_commissions(
        &self,
        rows: &[CommissionRow],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        Store::insert_commissions(self, rows)
    }

    fn insert_conversions(
        &self,
        rows: &[ConversionRow],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        Store::insert_conversions(self, rows)
    }
}
