//! Everything behind the ingest tier's handlers.
//!
//! A conversion reaches this crate as a [`NewConversion`]: every field already parsed into
//! a [`domain`] type. [`Pipeline::submit`] queues it on a bounded crossbeam channel; an
//! attribution worker ([`pipeline`]) takes it with others in a batch, resolves its click
//! through the in-memory [`catalog`], checks the campaign's cookie window, computes the
//! [`commission`] with rust_decimal, and writes the batch's commission and conversion rows
//! through the [`store`] — one INSERT per table — before answering. Clicks take the
//! opposite trade ([`clicks`]): answered first, written in the background.

pub mod catalog;
pub mod clicks;
pub mod clock;
pub mod commission;
pub mod conversion;
pub mod domain;
pub mod metrics;
pub mod pipeline;
pub mod store;

pub use clock::Clock;
pub use conversion::{Attribution, Conversion, NewConversion, ReportedClick};
pub use pipeline::{Pipeline, PipelineConfig, PipelineError, PipelineParts, PipelineWorkers};
pub use store::{Store, StoreError, StoreSettings};
