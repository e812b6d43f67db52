//! The attribution pipeline's metrics. Declared once here, registered on the registry the
//! service exposes at /metrics. Label values are closed sets, listed beside each metric.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    exponential_buckets,
};

#[derive(Clone)]
pub struct PipelineMetrics {
    /// Conversions waiting in the channel for an attribution worker.
    pub queue_depth: IntGauge,
    /// Time from enqueue to the start of the batch that took the conversion.
    pub queue_wait_seconds: Histogram,
    /// Conversions per batch.
    pub batch_rows: Histogram,
    /// Approximate RowBinary bytes per INSERT; `table`: conversions | commissions | clicks.
    pub batch_bytes: HistogramVec,
    /// Store round trips of the workers that succeeded; `table`: conversions | commissions |
    /// clicks for INSERTs, email_touches_lookup for a batch's cross-device read.
    pub insert_seconds: HistogramVec,
    /// Failed attempts of the same; `table` as above, `kind`: retryable | refused.
    pub insert_errors_total: IntCounterVec,
    /// Conversions stored; `status`: pending | rejected, `source`: api | postback | pixel.
    pub conversions_stored_total: IntCounterVec,
    /// Conversions answered without being stored; `reason`: unknown_click |
    /// click_of_another_brand | no_matching_touch | store_unavailable | store_refused.
    pub conversions_failed_total: IntCounterVec,
    /// Clicks waiting to be written.
    pub click_queue_depth: IntGauge,
    /// Clicks written, and clicks lost; `outcome`: stored | dropped_queue_full |
    /// dropped_store_error.
    pub clicks_total: IntCounterVec,
}

impl PipelineMetrics {
    pub fn new(registry: &Registry) -> Self {
        let metrics = Self {
            queue_depth: IntGauge::new(
                "affilync_attribution_queue_depth",
                "Conversions waiting for an attribution worker",
            )
            .expect("valid metric"),
            queue_wait_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "affilync_attribution_queue_wait_seconds",
                    "Time a conversion waits in the queue before its batch starts",
                )
                .buckets(exponential_buckets(0.0005, 2.0, 14).expect("valid buckets")),
            )
            .expect("valid metric"),
            batch_rows: Histogram::with_opts(
                HistogramOpts::new("affilync_batch_rows", "Conversions per attribution batch")
                    .buckets(exponential_buckets(1.0, 2.0, 16).expect("valid buckets")),
            )
            .expect("valid metric"),
            batch_bytes: HistogramVec::new(
                HistogramOpts::new("affilync_batch_bytes", "Approximate bytes per INSERT")
                    .buckets(exponential_buckets(256.0, 4.0, 10).expect("valid buckets")),
                &["table"],
            )
            .expect("valid metric"),
            insert_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "affilync_clickhouse_insert_seconds",
                    "Duration of successful ClickHouse INSERTs",
                )
                .buckets(exponential_buckets(0.001, 2.0, 14).expect("valid buckets")),
                &["table"],
            )
            .expect("valid metric"),
            insert_errors_total: IntCounterVec::new(
                Opts::new(
                    "affilync_clickhouse_insert_errors_total",
                    "Failed ClickHouse INSERT attempts",
                ),
                &["table", "kind"],
            )
            .expect("valid metric"),
            conversions_stored_total: IntCounterVec::new(
                Opts::new("affilync_conversions_stored_total", "Conversions written"),
                &["status", "source"],
            )
            .expect("valid metric"),
            conversions_failed_total: IntCounterVec::new(
                Opts::new(
                    "affilync_conversions_failed_total",
                    "Conversions that reached a worker and were not stored",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            click_queue_depth: IntGauge::new(
                "affilync_click_queue_depth",
                "Clicks waiting to be written to ClickHouse",
            )
            .expect("valid metric"),
            clicks_total: IntCounterVec::new(
                Opts::new("affilync_clicks_total", "Clicks by what became of them"),
                &["outcome"],
            )
            .expect("valid metric"),
        };
        for collector in metrics.collectors() {
            registry
                .register(collector)
                .expect("pipeline metrics are registered once per registry");
        }
        metrics
    }

    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.queue_depth.clone()),
            Box::new(self.queue_wait_seconds.clone()),
            Box::new(self.batch_rows.clone()),
            Box::new(self.batch_bytes.clone()),
            Box::new(self.insert_seconds.clone()),
            Box::new(self.insert_errors_total.clone()),
            Box::new(self.conversions_stored_total.clone()),
            Box::new(self.conversions_failed_total.clone()),
            Box::new(self.click_queue_depth.clone()),
            Box::new(self.clicks_total.clone()),
        ]
    }
}
