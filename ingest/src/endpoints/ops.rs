//! `/metrics`, `/healthz` and `/readyz`.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use prometheus::{Encoder, TextEncoder};
use serde_json::json;

use crate::state::AppState;

const READY_TIMEOUT: Duration = Duration::from_secs(1);
/// Shipping runs once a second; a record older than this means it is not keeping up.
const BEHIND_AFTER_SECONDS: f64 = 5.0;

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String))
)]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    // Sampled here as well, so an idle pipeline reports 0 rather than its last value.
    state
        .pipeline_metrics
        .queue_depth
        .set(state.pipeline.queue_depth() as i64);
    state.dedup.sample_metrics();
    state.journal.sample_metrics();
    let nodes = state.store.node_states();
    for (url, up) in &nodes {
        state
            .metrics
            .clickhouse_node_up
            .with_label_values(&[url])
            .set(i64::from(*up));
    }
    let any_up = nodes.iter().any(|(_, up)| *up);
    state.metrics.clickhouse_up.set(i64::from(any_up));
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
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "Up", body = Object))
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The service can take conversions: they are journaled here whether ClickHouse answers or
/// not, so it stays ready while ClickHouse is away, and says how far behind shipping is.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses((status = 200, description = "Ready to take conversions; ClickHouse's reachability, the bloom filter's seeding and the journal's shipping lag", body = Object))
)]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let pinged = state.store.ping_nodes(READY_TIMEOUT).await;
    let in_use = state.store.node_in_use().to_owned();
    let nodes: Vec<_> = pinged
        .into_iter()
        .map(|(url, answer)| {
            let used = url == in_use;
            match answer {
                Ok(()) => json!({"url": url, "status": "reachable", "in_use": used}),
                Err(error) => json!({
                    "url": url, "status": "unreachable", "in_use": used, "error": error.to_string(),
                }),
            }
        })
        .collect();
    let clickhouse = match nodes.iter().find(|node| node["status"] == "reachable") {
        Some(_) => json!({"status": "reachable", "nodes": nodes}),
        None => json!({
            "status": "unreachable",
            "error": nodes.first().map(|node| node["error"].clone()),
            "nodes": nodes,
        }),
    };
    let pending = state.journal.pending_records();
    let lag_seconds = state.journal.lag_seconds();
    HttpResponse::Ok().json(json!({
        "status": "ready",
        "dedup_bloom_seeded": state.dedup.bloom().is_seeded(),
        "clickhouse": clickhouse,
        "journal": {
            "pending_records": pending,
            "lag_seconds": lag_seconds,
            "shipping": if pending == 0 { "caught_up" } else if lag_seconds > BEHIND_AFTER_SECONDS { "behind" } else { "in_progress" },
        },
    }))
}
