//! The HTTP tier of Affilync ingestion.
//!
//! A conversion report's path: [`endpoints`] routes it to its handler, which names the
//! caller ([`auth`]), reads the body within its size limit and turns it into checked
//! domain values ([`request`]); anything wrong is answered 4xx naming the field
//! ([`error`]). The [`dedup`] front then answers replays and conflicts from its cache, its
//! bloom filter or ClickHouse, and hands new conversions to the attributor's pipeline,
//! waiting until their rows are stored before the handler answers 201 ([`views`]).
//! [`serve`] wires it together; [`startup`] holds what the binary does before serving (the
//! data directory's lock, a private ClickHouse when none is configured, the click secret,
//! the demo); [`seeding`] makes brands, affiliates, campaigns, links and keys through a
//! running service's admin API, for the demo, the integration tests and the load generator.

pub mod auth;
pub mod config;
pub mod dedup;
pub mod endpoints;
pub mod error;
pub mod hold_approver;
pub mod list_totals;
pub mod metrics;
pub mod openapi;
pub mod pixel_script;
pub mod rate_limit;
pub mod request;
pub mod secret;
pub mod seeding;
mod server;
pub mod startup;
pub mod state;
pub mod tools;
pub mod views;

pub use config::Config;
pub use server::serve;
