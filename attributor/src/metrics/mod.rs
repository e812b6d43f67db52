//! The attributor's metrics, one struct per concern, each declared once and registered on
//! the registry the service exposes at /metrics. Label values are closed sets, listed
//! beside each metric. The helpers below are the one way metrics are declared here and in
//! the HTTP tier.

mod catalog;
mod clicks;
mod journal;
mod pipeline;
mod reports;
mod shipper;

pub use catalog::CatalogMetrics;
pub use clicks::ClickMetrics;
pub use journal::JournalMetrics;
pub use pipeline::PipelineMetrics;
pub use reports::ReportMetrics;
pub use shipper::ShipperMetrics;

use prometheus::core::Collector;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    exponential_buckets,
};

/// Registers `collector` and hands it back. A name registered twice on one registry is a
/// programming error, caught by the first test that builds the service.
pub fn registered<C: Collector + Clone + 'static>(registry: &Registry, collector: C) -> C {
    registry
        .register(Box::new(collector.clone()))
        .expect("each metric is registered once per registry");
    collector
}

pub fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    registered(registry, IntGauge::new(name, help).expect("valid metric"))
}

pub fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    registered(registry, IntCounter::new(name, help).expect("valid metric"))
}

/// A labelled counter with every series of `series` (label values, in `labels` order)
/// present from the start at 0: a dashboard or an alert over a series that has not
/// happened yet reads 0, not "no data".
pub fn counter_vec<S: AsRef<[&'static str]>>(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    series: impl IntoIterator<Item = S>,
) -> IntCounterVec {
    let vec = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    for values in series {
        vec.with_label_values(values.as_ref());
    }
    registered(registry, vec)
}

/// A histogram whose buckets start at `first` and grow `factor`-fold, `count` of them.
pub fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: (f64, f64, usize),
) -> Histogram {
    let (first, factor, count) = buckets;
    let opts = HistogramOpts::new(name, help)
        .buckets(exponential_buckets(first, factor, count).expect("valid buckets"));
    registered(registry, Histogram::with_opts(opts).expect("valid metric"))
}

/// A labelled histogram with every series of `series` present from the start.
pub fn histogram_vec<S: AsRef<[&'static str]>>(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: (f64, f64, usize),
    labels: &[&str],
    series: impl IntoIterator<Item = S>,
) -> HistogramVec {
    let (first, factor, count) = buckets;
    let opts = HistogramOpts::new(name, help)
        .buckets(exponential_buckets(first, factor, count).expect("valid buckets"));
    let vec = HistogramVec::new(opts, labels).expect("valid metric");
    for values in series {
        vec.with_label_values(values.as_ref());
    }
    registered(registry, vec)
}

/// Every pair of label values, for a metric with two closed sets.
pub fn pairs(first: &[&'static str], second: &[&'static str]) -> Vec<[&'static str; 2]> {
    first
        .iter()
        .flat_map(|a| second.iter().map(move |b| [*a, *b]))
        .collect()
}

/// Seconds from 0.1 ms to about 1.6 s.
pub const FAST_SECONDS: (f64, f64, usize) = (0.0001, 2.0, 15);
/// Seconds from 1 ms to about 16 s.
pub const SLOW_SECONDS: (f64, f64, usize) = (0.001, 2.0, 15);
/// Counts from 1 to 65536.
pub const COUNTS: (f64, f64, usize) = (1.0, 2.0, 17);
