//! What the OpenAPI document says that has no Rust type of its own: request bodies the
//! handlers read field by field, the error body, and the error answers operations share.
//! The document itself is assembled beside the routes (`endpoints/docs.rs`).

pub mod responses;
pub mod schemas;
