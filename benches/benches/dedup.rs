//! The dedup front, per reported conversion, with 1000 reports in flight at once as on a
//! busy node. `new_order`: orders the seeded bloom filter has never seen (cache miss,
//! bloom negative, queued through the pipeline to the journal, answered Created).
//! `cache_hit_replay`: reports already answered, replayed from the moka cache (answered
//! Replayed, nothing queued). `coalesced_duplicates`: ten new orders sent 100 times each
//! at once; moka runs one load-or-store per order and the other 99 copies wait for it, so
//! 1000 answers cost ten trips through the pipeline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use affilync_benches::{
    DiscardingClickHouse, JournaledPipeline, Network, bench_config, unique_order_id,
};
use attributor::{NewConversion, PipelineConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::future::join_all;
use ingest::dedup::DedupMetrics;
use ingest::dedup::{DedupConfig, DedupFront, LookupConfig, Outcome, SeededBloom, StoredLookup};
use prometheus::Registry;
use tokio::runtime::Runtime;

const IN_FLIGHT: usize = 1_000;
const COPIES_PER_ORDER: usize = 100;

/// The labels of `affilync_dedup_total`.
const DEDUP_OUTCOMES: [&str; 5] = [
    "cache_hit",
    "bloom_negative",
    "store_hit",
    "store_miss",
    "coalesced",
];

/// A dedup front as the service builds it once its bloom filter is seeded, in front of a
/// pipeline that appends to a real journal. A bloom false positive asks the discarding
/// server, which finds nothing: the order is still new, only slower, as in the service.
struct Front {
    front: DedupFront,
    metrics: DedupMetrics,
    pipeline: JournaledPipeline,
}

impl Front {
    fn start(network: &Network, clickhouse: &DiscardingClickHouse) -> Self {
        let defaults = PipelineConfig::default();
        let pipeline = JournaledPipeline::start(
            network,
            bench_config(defaults.workers, defaults.batch_max_rows),
        );
        let config = DedupConfig::default();
        let bloom = Arc::new(SeededBloom::with_capacity(config.bloom_capacity));
        bloom.mark_seeded();
        let lookup = StoredLookup::start(
            &clickhouse.store(),
            std::sync::Arc::clone(&pipeline.journal),
            LookupConfig::default(),
        );
        let metrics = DedupMetrics::new(&Registry::new());
        let front = DedupFront::new(
            &config,
            bloom,
            lookup,
            pipeline.pipeline.clone(),
            metrics.clone(),
        );
        Self {
            front,
            metrics,
            pipeline,
        }
    }

    /// The `affilync_dedup_total` counter for `outcome`.
    fn count(&self, outcome: &str) -> u64 {
        self.metrics
            .outcomes_total
            .with_label_values(&[outcome])
            .get()
    }

    fn counts(&self) -> String {
        DEDUP_OUTCOMES
            .iter()
            .map(|outcome| format!("{outcome}={}", self.count(outcome)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Submits every report at once; returns how long until the last was answered, and
    /// how many were answered Created and Replayed.
    fn submit_all(&self, runtime: &Runtime, reports: Vec<NewConversion>) -> (Duration, Tally) {
        let started = Instant::now();
        let outcomes = runtime.block_on(join_all(
            reports.into_iter().map(|report| self.front.submit(report)),
        ));
        let elapsed = started.elapsed();
        let mut tally = Tally::default();
        for outcome in outcomes {
            match outcome.expect("the dedup front answers") {
                Outcome::Created(_) => tally.created += 1,
                Outcome::Replayed(_) => tally.replayed += 1,
                Outcome::Conflict(_) => panic!("a bench report conflicts with a stored one"),
            }
        }
        (elapsed, tally)
    }

    /// Times `iterations` rounds of `reports()`, each checked against `expected`.
    fn measure(
        &self,
        runtime: &Runtime,
        iterations: u64,
        mut reports: impl FnMut() -> Vec<NewConversion>,
        expected: Tally,
    ) -> Duration {
        (0..iterations)
            .map(|_| {
                let (elapsed, tally) = self.submit_all(runtime, reports());
                assert_eq!(tally, expected);
                elapsed
            })
            .sum()
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    created: usize,
    replayed: usize,
}

fn new_reports(network: &Network, orders: usize, copies: usize) -> Vec<NewConversion> {
    (0..orders)
        .flat_map(|_| {
            let report = network.report(&unique_order_id());
            std::iter::repeat_n(report, copies)
        })
        .collect()
}

fn dedup(c: &mut Criterion) {
    let network = Network::new();
    let clickhouse = DiscardingClickHouse::start();
    let runtime = attributor::runtime::current_thread_runtime();
    let mut group = c.benchmark_group("dedup_front");
    group.throughput(Throughput::Elements(IN_FLIGHT as u64));

    let all_new = Tally {
        created: IN_FLIGHT,
        replayed: 0,
    };
    let front = Front::start(&network, &clickhouse);
    let (_, tally) = front.submit_all(&runtime, new_reports(&network, IN_FLIGHT, 1));
    assert_eq!(tally, all_new);
    assert_eq!(front.count("bloom_negative"), IN_FLIGHT as u64);
    group.bench_function("new_order", |b| {
        b.iter_custom(|iterations| {
            front.measure(
                &runtime,
                iterations,
                || new_reports(&network, IN_FLIGHT, 1),
                all_new,
            )
        });
    });
    finish("new_order", front);

    let all_replayed = Tally {
        created: 0,
        replayed: IN_FLIGHT,
    };
    let front = Front::start(&network, &clickhouse);
    let stored = new_reports(&network, IN_FLIGHT, 1);
    front.submit_all(&runtime, stored.clone());
    let (_, tally) = front.submit_all(&runtime, stored.clone());
    assert_eq!(tally, all_replayed);
    assert_eq!(front.count("cache_hit"), IN_FLIGHT as u64);
    group.bench_function("cache_hit_replay", |b| {
        b.iter_custom(|iterations| {
            front.measure(&runtime, iterations, || stored.clone(), all_replayed)
        });
    });
    finish("cache_hit_replay", front);

    let orders = IN_FLIGHT / COPIES_PER_ORDER;
    let one_each = Tally {
        created: orders,
        replayed: IN_FLIGHT - orders,
    };
    let front = Front::start(&network, &clickhouse);
    let (_, tally) = front.submit_all(&runtime, new_reports(&network, orders, COPIES_PER_ORDER));
    assert_eq!(tally, one_each);
    // A copy that starts after its order's write has finished is a cache hit instead.
    let duplicates = (IN_FLIGHT - orders) as u64;
    assert_eq!(
        front.count("coalesced") + front.count("cache_hit"),
        duplicates
    );
    assert!(front.count("coalesced") > duplicates / 2);
    group.bench_function("coalesced_duplicates", |b| {
        b.iter_custom(|iterations| {
            front.measure(
                &runtime,
                iterations,
                || new_reports(&network, orders, COPIES_PER_ORDER),
                one_each,
            )
        });
    });
    finish("coalesced_duplicates", front);

    group.finish();
}

/// Shows what the front did over the whole run, so a reader can see the variant measured
/// the path it is named for, and stops its pipeline.
fn finish(variant: &str, front: Front) {
    eprintln!(
        "{variant}: {} conversions journaled; {}",
        front.pipeline.journal.pending_records(),
        front.counts()
    );
    let Front { pipeline, .. } = front;
    pipeline.stop();
}

criterion_group!(benches, dedup);
criterion_main!(benches);
