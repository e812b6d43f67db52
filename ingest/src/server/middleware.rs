//! What wraps every request: counting and timing it.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

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
    let method = request.method().as_str().to_owned();
    let metrics = request
        .app_data::<web::Data<AppState>>()
        .map(|state| state.metrics.clone());
    let response = next.call(request).await?;
    if let Some(metrics) = metrics {
        let status = response.status().as_str().to_owned();
        metrics
            .requests_total
            .with_label_values(&[&route, &method, &status])
            .inc();
        metrics
            .request_seconds
            .with_label_values(&[&route, &status])
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
