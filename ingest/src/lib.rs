//! The HTTP tier of Affilync ingestion.
//!
//! A conversion report's path: [`endpoints`] routes it to its handler, which names the
//! caller ([`auth`]), reads the body within its size limit and turns it into checked
//! domain values ([`request`]); anything wrong is answered 4xx naming the field
//! ([`error`]). The [`dedup`] front then answers replays and conflicts from its cache, its
//! bloom filter or ClickHouse, and hands new conversions to the attributor's pipeline,
//! waiting until their rows are stored before the handler answers 201 ([`views`]).
//! [`serve`] wires it together; [`clickhouse_server`] runs a private ClickHouse when none
//! is configured.

pub mod auth;
pub mod clickhouse_server;
pub mod config;
pub mod dedup;
pub mod demo;
pub mod endpoints;
pub mod error;
pub mod list_totals;
pub mod metrics;
pub mod request;
pub mod secrets;
mod server;
pub mod state;
pub mod views;

pub use config::Config;
pub use server::serve;
