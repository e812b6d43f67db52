//! Fixtures shared by the criterion benches in `benches/`: a one-brand [`Network`] whose
//! tracking link the catalog knows, so conversions reported against it attribute; a
//! [`JournaledPipeline`], the attribution workers in front of a real journal on disk; and
//! a [`DiscardingClickHouse`] for code that must speak HTTP to a server.

mod discarding_clickhouse;
mod journaled;
mod network;

pub use discarding_clickhouse::DiscardingClickHouse;
pub use journaled::{JournaledPipeline, NoTouches, bench_config, bench_dir};
pub use network::{Network, unique_order_id};
