//! Every error the HTTP surface answers with, and its status, in one place. Bodies are
//! `{"error": {"code", "message", "field"?}}`; a conflicting order also carries the
//! original conversion in `data`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use attributor::{PipelineError, StoreError};
use serde_json::{Value, json};

/// Seconds a client is told to wait before retrying a 503.
const RETRY_AFTER_SECONDS: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        data: Option<Value>,
    },
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{field} {message}")]
    Invalid { field: String, message: String },
    /// The caller's token bucket is empty: `whose` is "this API key" or "this address".
    #[error("too many requests from {whose}; retry in {retry_after_seconds} s")]
    RateLimited {
        whose: &'static str,
        retry_after_seconds: u64,
    },
    #[error("{message}")]
    Unavailable {
        reason: &'static str,
        message: String,
    },
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl ToString) -> Self {
        ApiError::Invalid {
            field: field.into(),
            message: message.to_string(),
        }
    }

    pub fn required(field: &str) -> Self {
        Self::invalid(field, "is required")
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "invalid_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict { code, .. } => code,
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Invalid { .. } => "invalid_field",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::Invalid { field, message } => format!("{field} {message}"),
            other => other.to_string(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %self, "request refused");
        }
        let mut error = json!({"code": self.code(), "message": self.message()});
        if let ApiError::Invalid { field, .. } = self {
            error["field"] = Value::String(field.clone());
        }
        let mut body = json!({ "error": error });
        if let ApiError::Conflict {
            data: Some(data), ..
        } = self
        {
            body["data"] = data.clone();
        }
        let mut response = HttpResponse::build(status);
        if let ApiError::Unavailable { reason, .. } = self {
            response.insert_header((
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            ));
            // Machine-readable: why nothing was stored (queue_full, journal_full,
            // journal_unwritable, store_unavailable, shutting_down).
            response.insert_header(("X-Affilync-Unavailable", *reason));
        }
        if let ApiError::RateLimited {
            retry_after_seconds,
            ..
        } = self
        {
            response.insert_header((header::RETRY_AFTER, retry_after_seconds.to_string()));
        }
        if matches!(self, ApiError::Unauthorized(_)) {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        response.json(body)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(message) => ApiError::Unavailable {
                reason: "store_unavailable",
                message: format!(
                    "ClickHouse did not answer in time and nothing was stored; retry later \
                     ({message})"
                ),
            },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<PipelineError> for ApiError {
    fn from(error: PipelineError) -> Self {
        let reason = error.label();
        match error {
            PipelineError::QueueFull => ApiError::Unavailable {
                reason,
                message: "the service is at capacity and nothing was stored; retry later".into(),
            },
            PipelineError::ShuttingDown => ApiError::Unavailable {
                reason,
                message:
                    "the service is shutting down and nothing was stored; retry on another node"
                        .into(),
            },
            PipelineError::JournalFull => ApiError::Unavailable {
                reason,
                message: "this node's journal is full while ClickHouse catches up; nothing was \
                          stored; retry later"
                    .into(),
            },
            PipelineError::JournalUnwritable(message) => ApiError::Unavailable {
                reason,
                message: format!(
                    "this node cannot write its journal and nothing was stored; retry later \
                     ({message})"
                ),
            },
            PipelineError::StoreUnavailable(message) => {
                ApiError::from(StoreError::Unavailable(message))
            }
            PipelineError::StoreRefused(message) => ApiError::Internal(message),
            PipelineError::UnknownClick => {
                ApiError::invalid("click_id", "does not belong to an active tracking link")
            }
            PipelineError::ClickOfAnotherBrand => {
                ApiError::invalid("click_id", "belongs to another brand's campaign")
            }
            PipelineError::NoMatchingTouch => ApiError::invalid(
                "click_id",
                "is missing, and no click of this customer_email is within the campaign's cookie window",
            ),
        }
    }
}

impl ApiError {
    /// Every reason a 503 is given for, for the metric that counts them.
    pub const UNAVAILABLE_REASONS: [&'static str; 5] = [
        "queue_full",
        "shutting_down",
        "journal_full",
        "journal_unwritable",
        "store_unavailable",
    ];

    /// The label `affilync_unavailable_total` counts a 503 under.
    pub fn unavailable_reason(&self) -> Option<&'static str> {
        match self {
            ApiError::Unavailable { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use attributor::PipelineError;
    use attributor::store::StoreError;

    use super::ApiError;

    /// A 503 under a reason the metric was not declared with would be a series that
    /// appears only after the first outage, too late for a dashboard or an alert.
    #[test]
    fn every_unavailable_reason_is_declared() {
        let errors = [
            PipelineError::QueueFull,
            PipelineError::ShuttingDown,
            PipelineError::JournalFull,
            PipelineError::JournalUnwritable("disk".into()),
            PipelineError::StoreUnavailable("gone".into()),
            PipelineError::StoreRefused("bad".into()),
            PipelineError::UnknownClick,
            PipelineError::ClickOfAnotherBrand,
            PipelineError::NoMatchingTouch,
        ]
        .map(ApiError::from)
        .into_iter()
        .chain([ApiError::from(StoreError::Unavailable("gone".into()))]);
        let mut reasons: Vec<&str> = errors
            .filter_map(|error| error.unavailable_reason())
            .collect();
        reasons.sort_unstable();
        reasons.dedup();
        let mut declared = ApiError::UNAVAILABLE_REASONS.to_vec();
        declared.sort_unstable();
        assert_eq!(reasons, declared);
    }
}
