//! Fixtures shared by the criterion benches in `benches/`: a one-brand [`Network`] whose
//! tracking link the catalog knows, so conversions reported against it attribute; a
//! [`CountingSink`] that stands where ClickHouse stands behind the attribution workers;
//! and a [`DiscardingClickHouse`] for code that must speak HTTP to a server.

mod discarding_clickhouse;
mod network;
mod sink;

pub use discarding_clickhouse::DiscardingClickHouse;
pub use network::{Network, unique_order_id, unreachable_store};
pub use sink::{CountingPipeline, CountingSink, unpaced_config};
