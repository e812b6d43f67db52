//! The HTTP tier's metrics, declared once. Label values are closed sets: `route` is the
//! matched route pattern (or "unmatched"), `method` an HTTP method, `status` a status code.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    exponential_buckets,
};

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Clone)]
pub struct HttpMetrics {
    /// Requests answered; `route`, `method`, `status`.
    pub requests_total: IntCounterVec,
    /// Time to answer; `route`, `status`.
    pub request_seconds: HistogramVec,
    /// How the dedup front answered a conversion; `outcome`: cache_hit | bloom_negative |
    /// store_hit | store_miss | coalesced.
    pub dedup_total: IntCounterVec,
    /// Conversion answers; `outcome`: created | replayed | conflict.
    pub conversion_answers_total: IntCounterVec,
    /// 503 answers; `reason`: queue_full | store_unavailable | shutting_down.
    pub unavailable_total: IntCounterVec,
    /// Conversion reports received and not yet answered.
    pub conversions_in_flight: IntGauge,
    /// Bloom "maybe"s waiting for their batched ClickHouse look-up (sampled at scrape).
    pub dedup_lookup_queue_depth: IntGauge,
    /// Reads of the dedup log that brought other nodes' conversions into the bloom filter.
    pub bloom_syncs_total: IntCounter,
    /// Larger bloom filters seeded to replace one holding more than it was sized for.
    pub bloom_rebuilds_total: IntCounter,
    /// Memory of the bloom filter answering now.
    pub bloom_bytes: IntGauge,
    /// Browser pixel reports by outcome; `outcome`: stored | replayed | conflict | no_click
    /// | forged_click | unknown_click | no_matching_email | invalid | unavailable.
    pub pixel_reports_total: IntCounterVec,
    /// Whether each configured ClickHouse node answered its last ping (1) or not (0),
    /// sampled at scrape; `url`: one of AFFILYNC_CLICKHOUSE_URL's URLs.
    pub clickhouse_node_up: IntGaugeVec,
}

impl HttpMetrics {
    pub fn new(registry: &Registry) -> Self {
        let metrics = Self {
            requests_total: IntCounterVec::new(
                Opts::new("affilync_http_requests_total", "HTTP requests answered"),
                &["route", "method", "status"],
            )
            .expect("valid metric"),
            request_seconds: HistogramVec::new(
                HistogramOpts::new("affilync_http_request_seconds", "Time to answer a request")
                    .buckets(exponential_buckets(0.0002, 2.0, 16).expect("valid buckets")),
                &["route", "status"],
            )
            .expect("valid metric"),
            dedup_total: IntCounterVec::new(
                Opts::new("affilync_dedup_total", "Dedup front outcomes"),
                &["outcome"],
            )
            .expect("valid metric"),
            conversion_answers_total: IntCounterVec::new(
                Opts::new(
                    "affilync_conversion_answers_total",
                    "Conversion submissions by answer",
                ),
                &["outcome"],
            )
            .expect("valid metric"),
            unavailable_total: IntCounterVec::new(
                Opts::new(
                    "affilync_unavailable_total",
                    "Requests answered 503, by reason",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            dedup_lookup_queue_depth: IntGauge::new(
                "affilync_dedup_lookup_queue_depth",
                "Bloom maybes waiting for their ClickHouse look-up",
            )
            .expect("valid metric"),
            bloom_syncs_total: IntCounter::new(
                "affilync_dedup_bloom_syncs_total",
                "Reads of the dedup log into this node's bloom filter",
            )
            .expect("valid metric"),
            bloom_rebuilds_total: IntCounter::new(
                "affilync_dedup_bloom_rebuilds_total",
                "Larger bloom filters seeded to replace a full one",
            )
            .expect("valid metric"),
            bloom_bytes: IntGauge::new(
                "affilync_dedup_bloom_bytes",
                "Memory of this node's dedup bloom filter",
            )
            .expect("valid metric"),
            pixel_reports_total: IntCounterVec::new(
                Opts::new(
                    "affilync_pixel_reports_total",
                    "Browser pixel reports by outcome",
                ),
                &["outcome"],
            )
            .expect("valid metric"),
            conversions_in_flight: IntGauge::new(
                "affilync_conversions_in_flight",
                "Conversion reports received and not yet answered",
            )
            .expect("valid metric"),
            clickhouse_node_up: IntGaugeVec::new(
                Opts::new(
                    "affilync_clickhouse_node_up",
                    "Whether each configured ClickHouse node answered its last ping",
                ),
                &["url"],
            )
            .expect("valid metric"),
        };
        for collector in [
            Box::new(metrics.requests_total.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(metrics.request_seconds.clone()),
            Box::new(metrics.dedup_total.clone()),
            Box::new(metrics.conversion_answers_total.clone()),
            Box::new(metrics.unavailable_total.clone()),
            Box::new(metrics.conversions_in_flight.clone()),
            Box::new(metrics.pixel_reports_total.clone()),
            Box::new(metrics.bloom_syncs_total.clone()),
            Box::new(metrics.bloom_rebuilds_total.clone()),
            Box::new(metrics.bloom_bytes.clone()),
            Box::new(metrics.dedup_lookup_queue_depth.clone()),
            Box::new(metrics.clickhouse_node_up.clone()),
        ] {
            registry
                .register(collector)
                .expect("http metrics are registered once per registry");
        }
        metrics
    }
}

/// Middleware: counts and times every request by route pattern and status.
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
