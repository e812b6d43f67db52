//! Sending a scenario's requests over N connections. Each of N tasks owns one connection
//! and takes the next request number from one shared counter. Flat out, a task sends its next request as soon as its
//! last one is answered. At a fixed rate, request `i` is due at `start + i / rate` and its
//! latency counts from then, not from when a free connection got round to it, so a server
//! that stalls is charged for every request it held up (no coordinated omission).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::connection::Connection;
use crate::scenario::{Call, Verdict, Workload};
use crate::target::{Failure, Target};
use crate::verify::Answer;

/// Examples of each kind of trouble kept for the report.
const EXAMPLES_KEPT: usize = 5;
const PAUSE_AFTER_TRANSPORT_ERROR: Duration = Duration::from_millis(10);
/// Latencies are recorded in microseconds up to an hour.
const LATENCY_MAX_US: u64 = 3_600_000_000;

/// How hard and how long.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub connections: usize,
    /// Requests per second across all connections; `None` is flat out.
    pub rate: Option<f64>,
    pub duration: Option<Duration>,
    pub requests: Option<u64>,
}

/// Everything observed during a run.
pub struct Tally {
    pub latency_us: Histogram<u64>,
    pub statuses: BTreeMap<u16, u64>,
    pub timeouts: u64,
    pub transport_errors: u64,
    pub transport_examples: Vec<String>,
    pub expected: u64,
    pub backpressure: u64,
    pub wrong: u64,
    pub wrong_examples: Vec<String>,
    /// Each new order sent (by number) and what it was answered.
    pub sent: Vec<(u64, Answer)>,
    pub requests: u64,
    pub elapsed: Duration,
}

impl Tally {
    fn new() -> Self {
        Self {
            latency_us: Histogram::new_with_bounds(1, LATENCY_MAX_US, 3)
                .expect("the latency bounds are valid"),
            statuses: BTreeMap::new(),
            timeouts: 0,
            transport_errors: 0,
            transport_examples: Vec::new(),
            expected: 0,
            backpressure: 0,
            wrong: 0,
            wrong_examples: Vec::new(),
            sent: Vec::new(),
            requests: 0,
            elapsed: Duration::ZERO,
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latency_us
            .add(&other.latency_us)
            .expect("histograms share their bounds");
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        self.timeouts += other.timeouts;
        self.transport_errors += other.transport_errors;
        keep_examples(&mut self.transport_examples, other.transport_examples);
        self.expected += other.expected;
        self.backpressure += other.backpressure;
        self.wrong += other.wrong;
        keep_examples(&mut self.wrong_examples, other.wrong_examples);
        self.sent.extend(other.sent);
        self.requests += other.requests;
    }
}

/// Keeps up to [`EXAMPLES_KEPT`] different examples.
fn keep_examples(kept: &mut Vec<String>, more: Vec<String>) {
    for example in more {
        if kept.len() < EXAMPLES_KEPT && !kept.contains(&example) {
            kept.push(example);
        }
    }
}

struct Shared {
    target: Target,
    workload: Arc<Workload>,
    pace: Pace,
    /// Whether answers are held to the API's promises; the baseline's are not.
    judge: bool,
    next: AtomicU64,
    start: Instant,
    deadline: Option<Instant>,
}

/// Runs the workload at `pace` against `target` and returns what was seen.
pub async fn drive(target: &Target, workload: Arc<Workload>, pace: Pace, judge: bool) -> Tally {
    let start = Instant::now();
    let shared = Arc::new(Shared {
        target: target.clone(),
        workload,
        pace,
        judge,
        next: AtomicU64::new(0),
        start,
        deadline: pace.duration.map(|duration| start + duration),
    });
    let senders: Vec<_> = (0..pace.connections.max(1))
        .map(|_| tokio::spawn(sender(Arc::clone(&shared))))
        .collect();
    let mut tally = Tally::new();
    for sender in senders {
        tally.merge(sender.await.expect("senders do not panic"));
    }
    tally.elapsed = start.elapsed();
    tally
}

async fn sender(shared: Arc<Shared>) -> Tally {
    let mut tally = Tally::new();
    let mut connection = Connection::new(shared.target.endpoint.clone());
    loop {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if shared.pace.requests.is_some_and(|limit| i >= limit) {
            break;
        }
        let due = match shared.pace.rate {
            Some(rate) => shared.start + Duration::from_secs_f64(i as f64 / rate),
            None => Instant::now(),
        };
        if shared.deadline.is_some_and(|deadline| due >= deadline) {
            break;
        }
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        let call = shared.workload.call(i);
        let request = shared.workload.request(&shared.target.endpoint, call);
        let result = connection.send(request).await;
        let latency = due.elapsed();
        tally.requests += 1;
        let broke = matches!(result, Err(Failure::Transport(_)));
        // Answers and timeouts are what a caller waits for; a refused connection is not a
        // latency of the server's.
        if !broke {
            let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            tally.latency_us.saturating_record(micros);
        }
        record(&shared, &mut tally, call, result);
        if broke {
            // A server that is gone refuses connections in microseconds; without a pause
            // the senders would spin and starve the machine they share with it.
            tokio::time::sleep(PAUSE_AFTER_TRANSPORT_ERROR).await;
        }
    }
    tally
}

fn record(
    shared: &Shared,
    tally: &mut Tally,
    call: Call,
    result: Result<crate::target::Reply, Failure>,
) {
    let new_order = match call {
        Call::Postback { order } | Call::Track { order } => Some(order),
        _ => None,
    };
    let reply = match result {
        Ok(reply) => reply,
        Err(failure) => {
            match &failure {
                Failure::Timeout => tally.timeouts += 1,
                Failure::Transport(text) => {
                    tally.transport_errors += 1;
                    if tally.transport_examples.len() < EXAMPLES_KEPT
                        && !tally.transport_examples.contains(text)
                    {
                        tally.transport_examples.push(text.clone());
                    }
                }
            }
            if let Some(order) = new_order {
                tally.sent.push((order, Answer::Uncertain));
            }
            return;
        }
    };
    *tally.statuses.entry(reply.status).or_default() += 1;
    if !shared.judge {
        return;
    }
    let verdict = match new_order {
        Some(order) => {
            let (answer, verdict) = shared.workload.judge_new(order, &reply);
            tally.sent.push((order, answer));
            verdict
        }
        None => shared.workload.judge(call, &reply),
    };
    match verdict {
        Verdict::Expected => tally.expected += 1,
        Verdict::Backpressure => tally.backpressure += 1,
        Verdict::Wrong(text) => {
            tally.wrong += 1;
            if tally.wrong_examples.len() < EXAMPLES_KEPT {
                tally.wrong_examples.push(text);
            }
        }
    }
}
