//! Everything behind the ingest tier's handlers.
//!
//! A conversion reaches this crate as a [`NewConversion`]: every field already parsed into
//! a [`domain`] type. [`Pipeline::submit`] queues it on a bounded crossbeam channel; an
//! attribution worker ([`pipeline`]) takes it with others in a batch, resolves its click
//! through the in-memory [`catalog`], checks the campaign's cookie window, computes the
//! [`commission`] with rust_decimal, and appends the batch to the node's [`journal`] with
//! one fdatasync before answering: an answer means the conversion is durable here. The
//! [`shipper`] then writes the journal into ClickHouse through the [`store`] in large
//! batches, in the background. Clicks ([`clicks`]) are answered first and journaled after.

pub mod catalog;
pub mod clicks;
pub mod clock;
pub mod commission;
pub mod conversion;
pub mod domain;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod hold;
pub mod journal;
pub mod metrics;
pub mod pipeline;
pub mod reports;
pub mod runtime;
pub mod shipper;
pub mod store;

pub use clock::Clock;
pub use conversion::{Attribution, Conversion, NewConversion, ReportedClick};
pub use journal::{Journal, JournalConfig, JournalError};
pub use pipeline::{Pipeline, PipelineConfig, PipelineError, PipelineParts, PipelineWorkers};
pub use shipper::{Shipper, ShipperConfig};
pub use store::{Store, StoreError, StoreSettings};
