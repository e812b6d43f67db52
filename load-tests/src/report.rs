//! What a run found, as a table for people and as JSON for tools: rate, latency
//! percentiles, answers by status, whether answers kept the API's promises, and the store
//! check. A comparison puts the service's rate beside the baseline's.

use std::collections::BTreeMap;
use std::fmt::Write;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::drive::Tally;
use crate::verify::Verification;

#[derive(Debug, Serialize)]
pub struct RunReport {
    pub scenario: String,
    /// "service" or "baseline".
    pub role: &'static str,
    pub target: String,
    pub brand_id: String,
    pub connections: usize,
    /// Requests per second asked for; absent when flat out.
    pub rate_limit: Option<f64>,
    pub duration_limit_s: Option<f64>,
    pub request_limit: Option<u64>,
    pub pool: usize,
    /// Requests sent, answered or not.
    pub requests: u64,
    /// Requests that got an HTTP answer, whatever its status.
    pub answered: u64,
    pub elapsed_s: f64,
    /// Answered requests per second: a request that failed to connect costs the server
    /// nothing and would flatter the rate.
    pub requests_per_second: f64,
    pub latency_us: Latency,
    pub statuses: BTreeMap<String, u64>,
    pub timeouts: u64,
    pub transport_errors: u64,
    pub transport_examples: Vec<String>,
    /// Absent for the baseline, whose fixed answers promise nothing.
    pub answers: Option<Answers>,
    pub verification: Option<Verification>,
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

#[derive(Debug, Serialize)]
pub struct Answers {
    pub as_expected: u64,
    /// 503 or 429 with nothing stored: allowed under load.
    pub backpressure: u64,
    pub wrong: u64,
    pub wrong_examples: Vec<String>,
}

/// The whole invocation: the service's run and, in a comparison, the baseline's.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub service: RunReport,
    pub baseline: Option<RunReport>,
    /// The service's requests per second over the baseline's.
    pub service_to_baseline: Option<f64>,
    pub passed: bool,
}

impl Latency {
    pub fn of(histogram: &Histogram<u64>) -> Self {
        let at = |q: f64| histogram.value_at_quantile(q);
        Self {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: histogram.max(),
            mean: histogram.mean(),
        }
    }
}

impl RunReport {
    pub fn statuses_of(tally: &Tally) -> BTreeMap<String, u64> {
        tally
            .statuses
            .iter()
            .map(|(status, count)| (status.to_string(), *count))
            .collect()
    }

    /// Whether this run broke a promise: answers that were wrong, or a failed store check.
    pub fn passed(&self) -> bool {
        self.answers.as_ref().is_none_or(|a| a.wrong == 0)
            && self.verification.as_ref().is_none_or(|v| v.passed)
    }
}

impl Outcome {
    pub fn new(service: RunReport, baseline: Option<RunReport>) -> Self {
        let service_to_baseline = baseline.as_ref().and_then(|b| {
            (b.requests_per_second > 0.0)
                .then(|| service.requests_per_second / b.requests_per_second)
        });
        let passed = service.passed();
        Self {
            service,
            baseline,
            service_to_baseline,
            passed,
        }
    }

    pub fn table(&self) -> String {
        let mut out = String::new();
        if let Some(baseline) = &self.baseline {
            out.push_str(&run_table(baseline));
            out.push('\n');
        }
        out.push_str(&run_table(&self.service));
        if let (Some(ratio), Some(baseline)) = (self.service_to_baseline, &self.baseline) {
            let _ = writeln!(
                out,
                "\nservice {:.0} req/s, baseline {:.0} req/s: the service runs at {:.3} of the baseline ({:.1}%)",
                self.service.requests_per_second,
                baseline.requests_per_second,
                ratio,
                ratio * 100.0
            );
        }
        let _ = writeln!(
            out,
            "\nresult: {}",
            if self.passed { "PASS" } else { "FAIL" }
        );
        out
    }
}

fn run_table(r: &RunReport) -> String {
    let mut out = String::new();
    let pace = match r.rate_limit {
        Some(rate) => format!("at {rate:.0} req/s"),
        None => "flat out".to_owned(),
    };
    let _ = writeln!(
        out,
        "== {} against the {} {} ({} connections, {pace}, pool {})",
        r.scenario, r.role, r.target, r.connections, r.pool
    );
    let _ = writeln!(out, "  brand            {}", r.brand_id);
    let _ = writeln!(
        out,
        "  requests         {} sent, {} answered in {:.2} s = {:.0} answered req/s",
        r.requests, r.answered, r.elapsed_s, r.requests_per_second
    );
    let l = &r.latency_us;
    let _ = writeln!(
        out,
        "  latency (ms)     p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {}",
        ms(l.p50 as f64),
        ms(l.p90 as f64),
        ms(l.p99 as f64),
        ms(l.p999 as f64),
        ms(l.max as f64),
        ms(l.mean)
    );
    let statuses: Vec<String> = r
        .statuses
        .iter()
        .map(|(s, n)| format!("{s}: {n}"))
        .collect();
    let _ = writeln!(out, "  statuses         {}", statuses.join("  "));
    let _ = writeln!(
        out,
        "  no answer        timeouts {}  transport errors {}",
        r.timeouts, r.transport_errors
    );
    for example in &r.transport_examples {
        let _ = writeln!(out, "    e.g. {example}");
    }
    if let Some(a) = &r.answers {
        let _ = writeln!(
            out,
            "  answers          as expected {}  backpressure (503/429) {}  wrong {}",
            a.as_expected, a.backpressure, a.wrong
        );
        for example in &a.wrong_examples {
            let _ = writeln!(out, "    e.g. {example}");
        }
    }
    match &r.verification {
        Some(v) => out.push_str(&verification_table(v)),
        None => out.push_str("  store check      skipped\n"),
    }
    out
}

fn verification_table(v: &Verification) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  store check      {}: lost {}  duplicated {}  unexpected {}  uncertain {} (stored {}, absent {})  mismatched {}",
        if v.passed { "passed" } else { "FAILED" },
        v.lost,
        v.duplicated,
        v.unexpected,
        v.uncertain,
        v.uncertain_stored,
        v.uncertain_absent,
        v.mismatched
    );
    let _ = writeln!(
        out,
        "  sent             acknowledged {}  refused {}  uncertain {}",
        v.acknowledged, v.refused, v.uncertain
    );
    let _ = writeln!(
        out,
        "  conversions      {} logical (FINAL), {} physical rows",
        v.stored_logical, v.stored_physical
    );
    let _ = writeln!(
        out,
        "  commissions      {} logical, {} physical; missing {}  duplicated {}  mismatched {}  orphaned {}",
        v.commission_rows_logical,
        v.commission_rows_physical,
        v.commissions_missing,
        v.commissions_duplicated,
        v.commissions_mismatched,
        v.commissions_orphaned
    );
    for example in &v.examples {
        let _ = writeln!(out, "    {example}");
    }
    out
}

/// Microseconds as milliseconds with three decimals.
fn ms(us: f64) -> String {
    format!("{:.3}", us / 1000.0)
}
