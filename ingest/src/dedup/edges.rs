//! The dedup front's two edges, as traits, so its logic (coalescing, replays, conflicts,
//! failing look-ups) is tested against in-memory fakes: where a bloom "maybe" is confirmed,
//! and where a new conversion goes. The service uses [`StoredLookup`] and [`Pipeline`].

use std::future::Future;
use std::sync::Arc;

use attributor::domain::ConversionId;
use attributor::{Conversion, NewConversion, Pipeline, PipelineError, StoreError};

use super::StoredLookup;

/// Conversions already stored (this node's journal, then ClickHouse), by id.
pub trait StoredOrders: Send + Sync + 'static {
    fn find(
        &self,
        id: ConversionId,
    ) -> impl Future<Output = Result<Option<Conversion>, StoreError>>;

    /// Look-ups waiting for their query.
    fn queue_depth(&self) -> usize;
}

/// Where a first report goes to be attributed and made durable.
pub trait NewOrders: Send + Sync + 'static {
    fn submit(
        &self,
        new: NewConversion,
    ) -> impl Future<Output = Result<Arc<Conversion>, PipelineError>>;
}

impl StoredOrders for StoredLookup {
    fn find(
        &self,
        id: ConversionId,
    ) -> impl Future<Output = Result<Option<Conversion>, StoreError>> {
        StoredLookup::find(self, id)
    }

    fn queue_depth(&self) -> usize {
        StoredLookup::queue_depth(self)
    }
}

impl NewOrders for Pipeline {
    fn submit(
        &self,
        new: NewConversion,
    ) -> impl Future<Output = Result<Arc<Conversion>, PipelineError>> {
        Pipeline::submit(self, new)
    }
}
