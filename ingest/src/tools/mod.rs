//! The `affilync` subcommands besides `serve`: operators' tools run against a database.

pub mod check;
