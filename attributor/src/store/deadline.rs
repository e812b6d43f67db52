//! Every exchange with ClickHouse has a deadline: a server that stops answering (frozen,
//! half-dead, behind a broken network) must turn into a prompt "unavailable", never into a
//! request, a shutdown or a background loop that waits forever.

use std::future::Future;
use std::time::Duration;

use super::{Store, StoreError};

/// How long each kind of exchange may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreTimeouts {
    /// Queries someone waits on: look-ups by id, listings and their counts, catalog reads,
    /// e-mail touches, the dedup log, pings.
    pub read: Duration,
    /// INSERTs: the shipper's batches and the admin API's creates.
    pub write: Duration,
    /// Work on whole tables, done at start or by tools: migrations, loading the catalog,
    /// seeding the bloom filter with every stored key.
    pub bulk: Duration,
}

impl Default for StoreTimeouts {
    fn default() -> Self {
        Self {
            read: Duration::from_secs(5),
            write: Duration::from_secs(30),
            bulk: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Exchange {
    Read,
    Write,
    Bulk,
}

impl Store {
    /// Runs one exchange within its kind's deadline; past it the exchange is dropped (its
    /// connection with it) and the caller gets `Unavailable`, naming `what` was asked. A node
    /// that fails an exchange is not used again until it answers a ping: the caller's retry
    /// goes to the next node.
    pub(crate) async fn within<T, E: Into<StoreError>>(
        &self,
        kind: Exchange,
        what: &str,
        exchange: impl Future<Output = Result<T, E>>,
    ) -> Result<T, StoreError> {
        let limit = self.timeout(kind);
        let node = self.nodes.current();
        let result = match tokio::time::timeout(limit, exchange).await {
            Ok(result) => result.map_err(Into::into),
            Err(_) => Err(StoreError::Unavailable(format!(
                "ClickHouse did not answer the {what} within {limit:?}"
            ))),
        };
        if let Err(error) = &result
            && error.is_node_failure()
        {
            self.nodes.failed(node);
        }
        result
    }

    pub(crate) fn timeout(&self, kind: Exchange) -> Duration {
        let timeouts = &self.settings.timeouts;
        match kind {
            Exchange::Read => timeouts.read,
            Exchange::Write => timeouts.write,
            Exchange::Bulk => timeouts.bulk,
        }
    }
}
