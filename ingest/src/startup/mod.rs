//! What the `affilync` binary does before it serves: take its data directory, start a
//! private ClickHouse when none is configured, load or make the click secret, and, for
//! `demo`, seed a network through its own admin API.

pub mod click_secret;
pub mod clickhouse_server;
pub mod data_dir;
pub mod demo;
pub mod listener;
