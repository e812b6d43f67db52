//! Load generator for Affilync ingestion, and the do-nothing baseline it is measured against.
//!
//! A run's path: [`setup`] creates its own brand, affiliates, campaigns, links, a brand key
//! and a pool of real click ids through the admin API and the click redirect; [`pool`]
//! stores the conversions that replays and conflicts repeat; [`drive`] sends the
//! [`scenario`]'s requests over kept-alive connections ([`connection`]), flat out or at a fixed
//! rate, and records latency, statuses and every conversion's answer; [`drain`] waits until
//! the service's journal has reached ClickHouse, and [`verify`] then reads ClickHouse and
//! checks each acknowledged conversion is stored exactly once as acknowledged; [`report`] prints all of it as a table or JSON. [`fill`] writes history
//! straight through the store, and [`baseline`] is the fixed-answer server that shows what
//! the generator and the HTTP stack alone can do.

pub mod baseline;
pub mod cli;
pub mod clickhouse_http;
pub mod connection;
pub mod drain;
pub mod drive;
pub mod fill;
pub mod history;
pub mod judge;
pub mod pool;
pub mod report;
pub mod run;
pub mod scenario;
pub mod setup;
pub mod target;
pub mod verify;
