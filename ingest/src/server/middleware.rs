//! What wraps every request: an id for following it through the logs, and counting and
//! timing it.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use rand::RngCore;
use tracing::Instrument;

use crate::error::ApiError;
use crate::state::AppState;

/// Counts and times every request by route pattern and status, and counts 503s by reason.
pub async fn record_request(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    // Standard methods clone without allocating; the label is borrowed from it below.
    let method = request.method().clone();
    let metrics = request
        .app_data::<web::Data<AppState>>()
        .map(|state| state.metrics.clone());
    let response = next.call(request).await?;
    if let Some(metrics) = metrics {
        let status = response.status();
        let status = status.as_str();
        metrics
            .requests_total
            .with_label_values(&[&route, method.as_str(), status])
            .inc();
        metrics
            .request_seconds
            .with_label_values(&[&route, status])
            .observe(started.elapsed().as_secs_f64());
        let reason = response
            .response()
            .error()
            .and_then(|error| error.as_error::<ApiError>())
            .and_then(ApiError::unavailable_reason);
        if let Some(reason) = reason {
            metrics.unavailable_total.with_label_values(&[reason]).inc();
        }
    }
    Ok(response)
}

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming `X-Request-Id` kept; a longer one (or one that is not plain visible
/// ASCII) is replaced, so a client cannot put anything it likes into the logs.
const MAX_REQUEST_ID_BYTES: usize = 128;

/// Gives every request an id: the caller's `X-Request-Id` when it is sane (a load balancer
/// or the shop's platform chose it, and will search its own logs for it), else a new one.
/// It is echoed in the answer and is a field of every log line written while answering.
pub async fn request_id(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .filter(|value| is_sane_id(value.as_bytes()))
        .cloned()
        .unwrap_or_else(new_request_id);
    let span = tracing::info_span!(
        "request",
        request_id = id.to_str().unwrap_or_default(),
        method = %request.method(),
        path = request.path(),
    );
    let mut response = next.call(request).instrument(span.clone()).await?;
    let status = response.status();
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), "answered with a server error");
        } else {
            tracing::debug!(status = status.as_u16(), "answered");
        }
    });
    response.headers_mut().insert(REQUEST_ID, id);
    Ok(response)
}

fn is_sane_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_BYTES
        && id.iter().all(|byte| byte.is_ascii_graphic())
}

fn new_request_id() -> HeaderValue {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    HeaderValue::from_str(&attributor::domain::lower_hex(&bytes))
        .expect("hex is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::{is_sane_id, new_request_id};

    #[test]
    fn only_plain_bounded_ids_are_kept() {
        assert!(is_sane_id(b"lb-4f1c2a/7"));
        assert!(!is_sane_id(b""));
        assert!(!is_sane_id(b"two words"));
        assert!(!is_sane_id("caf\u{e9}".as_bytes()));
        assert!(!is_sane_id(&[b'a'; 129]));
        assert!(is_sane_id(&[b'a'; 128]));
    }

    #[test]
    fn new_ids_are_distinct_hex() {
        let (a, b) = (new_request_id(), new_request_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.as_bytes().iter().all(u8::is_ascii_hexdigit));
    }
}
