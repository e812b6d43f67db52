//! The HTTP tier's metrics. Label values are closed sets: `route` is the matched route
//! pattern (or "unmatched"), `method` an HTTP method, `status` a status code; the rest are
//! listed beside each metric and declared at 0 from the start. The dedup front's metrics
//! live beside it ([`crate::dedup::DedupMetrics`]).

use attributor::metrics::{counter_vec, gauge, histogram_vec, registered};
use prometheus::{HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::error::ApiError;

/// 0.2 ms to about 6.5 s: a replay from memory to a read that runs into its deadline.
const REQUEST_SECONDS: (f64, f64, usize) = (0.0002, 2.0, 16);

#[derive(Clone)]
pub struct HttpMetrics {
    /// Requests answered; `route`, `method`, `status`.
    pub requests_total: IntCounterVec,
    /// Time to answer; `route`, `status`.
    pub request_seconds: HistogramVec,
    /// Conversion answers; `outcome`: created | replayed | conflict.
    pub conversion_answers_total: IntCounterVec,
    /// 503 answers; `reason`, one of [`ApiError::UNAVAILABLE_REASONS`].
    pub unavailable_total: IntCounterVec,
    /// Conversion reports received and not yet answered.
    pub conversions_in_flight: IntGauge,
    /// 1 while at least one ClickHouse node answered its last ping (sampled at scrape from
    /// the store's node pings).
    pub clickhouse_up: IntGauge,
    /// Whether each configured ClickHouse node answered its last ping (1) or not (0),
    /// sampled at scrape; `url`: one of AFFILYNC_CLICKHOUSE_URL's URLs.
    pub clickhouse_node_up: IntGaugeVec,
}

impl HttpMetrics {
    pub fn new(registry: &Registry) -> Self {
        let no_series: [[&str; 0]; 0] = [];
        Self {
            requests_total: counter_vec(
                registry,
                "affilync_http_requests_total",
                "HTTP requests answered",
                &["route", "method", "status"],
                no_series,
            ),
            request_seconds: histogram_vec(
                registry,
                "affilync_http_request_seconds",
                "Time to answer a request",
                REQUEST_SECONDS,
                &["route", "status"],
                no_series,
            ),
            conversion_answers_total: counter_vec(
                registry,
                "affilync_conversion_answers_total",
                "Conversion submissions by answer",
                &["outcome"],
                [["created"], ["replayed"], ["conflict"]],
            ),
            unavailable_total: counter_vec(
                registry,
                "affilync_unavailable_total",
                "Requests answered 503, by reason",
                &["reason"],
                ApiError::UNAVAILABLE_REASONS.map(|reason| [reason]),
            ),
            conversions_in_flight: gauge(
                registry,
                "affilync_conversions_in_flight",
                "Conversion reports received and not yet answered",
            ),
            clickhouse_up: gauge(
                registry,
                "affilync_clickhouse_up",
                "1 while ClickHouse answers this node's pings in time",
            ),
            clickhouse_node_up: registered(
                registry,
                IntGaugeVec::new(
                    Opts::new(
                        "affilync_clickhouse_node_up",
                        "Whether each configured ClickHouse node answered its last ping",
                    ),
                    &["url"],
                )
                .expect("valid metric"),
            ),
        }
    }
}

/// The browser pixel's reports.
#[derive(Clone)]
pub struct PixelMetrics {
    /// Reports by outcome; `outcome`, one of [`PixelMetrics::OUTCOMES`].
    pub reports_total: IntCounterVec,
}

impl PixelMetrics {
    pub const OUTCOMES: [&'static str; 10] = [
        "stored",
        "replayed",
        "conflict",
        "no_click",
        "forged_click",
        "unknown_click",
        "no_matching_email",
        "invalid",
        "unavailable",
        "rate_limited",
    ];

    pub fn new(registry: &Registry) -> Self {
        Self {
            reports_total: counter_vec(
                registry,
                "affilync_pixel_reports_total",
                "Browser pixel reports by outcome",
                &["outcome"],
                Self::OUTCOMES.map(|outcome| [outcome]),
            ),
        }
    }
}
