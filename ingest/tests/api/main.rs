//! The integration suite: the real `serve` (and, for the kill tests, the real `affilync`
//! binary) against one private ClickHouse for the whole run, one database per test, driven
//! over HTTP. One binary, so the server starts once and the helpers compile once.

mod browser_support;
mod common;

mod attribution;
mod bad_input;
mod browser;
mod catalog_and_clicks;
mod cluster;
mod cross_device;
mod demo;
mod durability;
mod export;
mod golden;
mod hardening;
mod idempotency;
mod logs;
mod operations;
mod pixel_script;
mod rate_limits;
mod reports;
mod reports_reconciliation;
mod reports_rollups;
mod review_workflow;
mod tenancy;
