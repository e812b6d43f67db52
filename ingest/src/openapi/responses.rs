//! The error answers operations share, each with the shared error body, declared once per
//! family of operations. `Retry-After` comes with 429 and 503.

#![allow(dead_code)] // Types for the document only: never built, only described.

use utoipa::IntoResponses;

use super::schemas::ErrorBody;

/// Reporting a conversion (track, postback).
#[derive(IntoResponses)]
pub enum ReportErrors {
    /// The body is not a JSON object, or a form body cannot be read.
    #[response(status = 400)]
    BadRequest(#[to_schema] ErrorBody),
    /// No key, or a key this network does not know.
    #[response(status = 401, headers(("WWW-Authenticate" = String)))]
    Unauthorized(#[to_schema] ErrorBody),
    /// An affiliate key: only brands report conversions.
    #[response(status = 403)]
    Forbidden(#[to_schema] ErrorBody),
    /// The order was reported before with another click, amount, currency or event type;
    /// `data` is the conversion as stored, and nothing was written.
    #[response(status = 409)]
    Conflict(#[to_schema] ErrorBody),
    /// The body is over 64 KiB.
    #[response(status = 413)]
    TooLarge(#[to_schema] ErrorBody),
    /// A body that is not JSON.
    #[response(status = 415)]
    UnsupportedMediaType(#[to_schema] ErrorBody),
    /// A field is missing or invalid; `error.field` names it. Nothing was stored.
    #[response(status = 422)]
    Invalid(#[to_schema] ErrorBody),
    /// This key's rate limit; nothing was stored.
    #[response(status = 429, headers(("Retry-After" = u64, description = "Seconds")))]
    RateLimited(#[to_schema] ErrorBody),
    /// Nothing was stored (queue or journal full, journal unwritable, shutting down, or
    /// ClickHouse needed for a look-up and not answering); retry.
    #[response(status = 503, headers(
        ("Retry-After" = u64, description = "Seconds"),
        ("X-Affilync-Unavailable" = String, description = "The reason")
    ))]
    Unavailable(#[to_schema] ErrorBody),
}

/// Reading conversions (listing, one conversion).
#[derive(IntoResponses)]
pub enum ReadErrors {
    #[response(status = 401, headers(("WWW-Authenticate" = String)))]
    Unauthorized(#[to_schema] ErrorBody),
    /// No such conversion, or one the caller may not see.
    #[response(status = 404)]
    NotFound(#[to_schema] ErrorBody),
    /// A filter or page parameter is invalid; `error.field` names it.
    #[response(status = 422)]
    Invalid(#[to_schema] ErrorBody),
    #[response(status = 429, headers(("Retry-After" = u64, description = "Seconds")))]
    RateLimited(#[to_schema] ErrorBody),
    /// ClickHouse did not answer in time.
    #[response(status = 503, headers(
        ("Retry-After" = u64, description = "Seconds"),
        ("X-Affilync-Unavailable" = String, description = "The reason")
    ))]
    Unavailable(#[to_schema] ErrorBody),
}

/// A brand's status change.
#[derive(IntoResponses)]
pub enum ChangeErrors {
    #[response(status = 400)]
    BadRequest(#[to_schema] ErrorBody),
    #[response(status = 401, headers(("WWW-Authenticate" = String)))]
    Unauthorized(#[to_schema] ErrorBody),
    /// An affiliate key.
    #[response(status = 403)]
    Forbidden(#[to_schema] ErrorBody),
    #[response(status = 404)]
    NotFound(#[to_schema] ErrorBody),
    /// The transition is not allowed (e.g. a rejected conversion approved); `data` is the
    /// conversion as it is.
    #[response(status = 409)]
    Conflict(#[to_schema] ErrorBody),
    #[response(status = 413)]
    TooLarge(#[to_schema] ErrorBody),
    #[response(status = 415)]
    UnsupportedMediaType(#[to_schema] ErrorBody),
    #[response(status = 422)]
    Invalid(#[to_schema] ErrorBody),
    #[response(status = 429, headers(("Retry-After" = u64, description = "Seconds")))]
    RateLimited(#[to_schema] ErrorBody),
    #[response(status = 503, headers(
        ("Retry-After" = u64, description = "Seconds"),
        ("X-Affilync-Unavailable" = String, description = "The reason")
    ))]
    Unavailable(#[to_schema] ErrorBody),
}

/// The admin API.
#[derive(IntoResponses)]
pub enum AdminErrors {
    #[response(status = 400)]
    BadRequest(#[to_schema] ErrorBody),
    /// No admin token, or the wrong one.
    #[response(status = 401, headers(("WWW-Authenticate" = String)))]
    Unauthorized(#[to_schema] ErrorBody),
    /// The admin API is off: no AFFILYNC_ADMIN_TOKEN is set.
    #[response(status = 404)]
    Off(#[to_schema] ErrorBody),
    #[response(status = 413)]
    TooLarge(#[to_schema] ErrorBody),
    #[response(status = 415)]
    UnsupportedMediaType(#[to_schema] ErrorBody),
    /// A field is missing or invalid (or names something that does not exist).
    #[response(status = 422)]
    Invalid(#[to_schema] ErrorBody),
    /// ClickHouse did not take the new row.
    #[response(status = 503, headers(
        ("Retry-After" = u64, description = "Seconds"),
        ("X-Affilync-Unavailable" = String, description = "The reason")
    ))]
    Unavailable(#[to_schema] ErrorBody),
}
