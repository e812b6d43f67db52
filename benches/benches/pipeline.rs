//! The channel → batch → journal path, per conversion: `Pipeline::submit` with 2000
//! conversions in flight, through the attribution workers (catalog lookup, cookie window,
//! commission, row mapping, record encoding) to a real journal on disk, one fdatasync per
//! batch. Compares batches of at most 1, 100 and 1000 conversions with one worker, then
//! one worker against two at 1000. Workers do not wait for company, so the differences
//! are the per-batch costs (a channel wake-up, a SQLite transaction, an fdatasync) and how
//! two workers share the journal, not waiting.

use std::time::{Duration, Instant};

use affilync_benches::{JournaledPipeline, Network, bench_config, unique_order_id};
use attributor::{NewConversion, Pipeline};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::future::join_all;
use tokio::runtime::Runtime;

/// Conversions submitted at once per iteration: twice the largest batch.
const IN_FLIGHT: usize = 2_000;

/// (workers, batch_max_rows)
const VARIANTS: [(usize, usize); 4] = [(1, 1), (1, 100), (1, 1_000), (2, 1_000)];

/// Submits every report at once and waits until each is journaled; panics on a refusal,
/// which would mean the bench no longer measures the path it names.
fn submit_all(runtime: &Runtime, pipeline: &Pipeline, reports: Vec<NewConversion>) -> Duration {
    let started = Instant::now();
    let answers = runtime.block_on(join_all(
        reports.into_iter().map(|report| pipeline.submit(report)),
    ));
    let elapsed = started.elapsed();
    for answer in answers {
        answer.expect("the pipeline journals the report");
    }
    elapsed
}

fn pipeline(c: &mut Criterion) {
    let network = Network::new();
    let runtime = attributor::runtime::current_thread_runtime();
    // Workers do not check for stored orders (the dedup front does), so the same reports
    // can be submitted again.
    let reports: Vec<NewConversion> = (0..IN_FLIGHT)
        .map(|_| network.report(&unique_order_id()))
        .collect();
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(IN_FLIGHT as u64));
    for (workers, batch_max_rows) in VARIANTS {
        let running = JournaledPipeline::start(&network, bench_config(workers, batch_max_rows));
        let mut submitted = 0;
        let (function, parameter) = (
            format!("workers_{workers}"),
            format!("batch_max_{batch_max_rows}"),
        );
        group.bench_function(BenchmarkId::new(&function, &parameter), |b| {
            b.iter_custom(|iterations| {
                (0..iterations)
                    .map(|_| {
                        submitted += IN_FLIGHT as u64;
                        submit_all(&runtime, &running.pipeline, reports.clone())
                    })
                    .sum()
            });
        });
        assert_eq!(running.journal.pending_records(), submitted);
        eprintln!(
            "{function}/{parameter}: {submitted} conversions in {} appends, {:.1} per batch",
            running.appends(),
            running.mean_batch_jobs()
        );
        running.stop();
    }
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
