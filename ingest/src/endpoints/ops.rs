//! `/metrics`, `/healthz` and `/readyz`.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use prometheus::{Encoder, TextEncoder};
use serde_json::json;

use crate::state::AppState;

const READY_TIMEOUT: Duration = Duration::from_secs(1);

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    // Sampled here as well, so an idle pipeline reports 0 rather than its last value.
    state
        .pipeline_metrics
        .queue_depth
        .set(state.pipeline.queue_depth() as i64);
    state
        .metrics
        .dedup_lookup_queue_depth
        .set(state.dedup.lookup_queue_depth() as i64);
    let mut text = Vec::new();
    let encoder = TextEncoder::new();
    match encoder.encode(&state.registry.gather(), &mut text) {
        Ok(()) => HttpResponse::Ok()
            .content_type(encoder.format_type())
            .body(text),
        Err(error) => HttpResponse::InternalServerError().body(error.to_string()),
    }
}

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The service can take conversions: ClickHouse answers.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.store.ping(READY_TIMEOUT).await {
        Ok(()) => HttpResponse::Ok().json(json!({
            "status": "ready",
            "dedup_bloom_seeded": state.dedup.bloom().is_seeded(),
        })),
        Err(error) => HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(json!({"error": {"code": "unavailable", "message": error.to_string()}})),
    }
}
