use std::future::Future;

use crate::domain::EmailHash;
use crate::store::{EmailTouch, Store, StoreError};

/// Where attribution workers ask which click a customer e-mail last came through, for
/// cross-device attribution: ClickHouse ([`Store`]) in the service; unit tests and benches
/// put an in-memory table behind the same workers.
pub trait TouchSource: Send + Sync + 'static {
    /// A handle for one worker thread; it is driven by that thread's own runtime.
    fn for_worker(&self) -> Self
    where
        Self: Sized;

    /// The latest touch of each e-mail hash, per brand.
    fn email_touches(
        &self,
        emails: &[EmailHash],
    ) -> impl Future<Output = Result<Vec<EmailTouch>, StoreError>> + Send;
}

impl TouchSource for Store {
    fn for_worker(&self) -> Self {
        self.with_own_pool()
    }

    fn email_touches(
        &self,
        emails: &[EmailHash],
    ) -> impl Future<Output = Result<Vec<EmailTouch>, StoreError>> + Send {
        Store::email_touches(self, emails)
    }
}
