//! The dedup front against in-memory edges: concurrent duplicates end as one conversion,
//! a different report of the same order is a conflict, the bloom filter's "maybe" is
//! confirmed by a look-up, and a failing look-up refuses without storing or poisoning the
//! cache.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use attributor::domain::ConversionId;
use attributor::fixtures::SampleNetwork;
use attributor::pipeline::{Touch, attribute};
use attributor::{Conversion, NewConversion, PipelineError, StoreError};
use prometheus::Registry;
use std::sync::Mutex;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use super::*;

/// Conversions "stored" before; a look-up can be made to fail.
#[derive(Default)]
struct FakeStore {
    stored: Mutex<HashMap<ConversionId, Conversion>>,
    failing: std::sync::atomic::AtomicBool,
    finds: AtomicUsize,
}

impl StoredOrders for Arc<FakeStore> {
    async fn find(&self, id: ConversionId) -> Result<Option<Conversion>, StoreError> {
        self.finds.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("frozen".into()));
        }
        Ok(self.stored.lock().unwrap().get(&id).cloned())
    }

    fn queue_depth(&self) -> usize {
        0
    }
}

/// Attributes what it is given at once, after `gate` lets it through (so that concurrent
/// reports of one order are all waiting while the first is "being journaled").
struct FakePipeline {
    touch: Touch,
    gate: Semaphore,
    submitted: AtomicUsize,
}

impl NewOrders for Arc<FakePipeline> {
    async fn submit(&self, new: NewConversion) -> Result<Arc<Conversion>, PipelineError> {
        self.submitted.fetch_add(1, Ordering::SeqCst);
        let _permit = self.gate.acquire().await.expect("the gate stays open");
        Ok(Arc::new(attribute(
            &new,
            &self.touch,
            OffsetDateTime::now_utc(),
        )))
    }
}

struct Front {
    front: Arc<DedupFront<Arc<FakeStore>, Arc<FakePipeline>>>,
    store: Arc<FakeStore>,
    pipeline: Arc<FakePipeline>,
    bloom: Arc<SeededBloom>,
    metrics: DedupMetrics,
}

fn front(world: &SampleNetwork, gate_permits: usize) -> Front {
    let store = Arc::new(FakeStore::default());
    let pipeline = Arc::new(FakePipeline {
        touch: world.touch(),
        gate: Semaphore::new(gate_permits),
        submitted: AtomicUsize::new(0),
    });
    let bloom = Arc::new(SeededBloom::with_capacity(1_000));
    bloom.mark_seeded();
    let metrics = DedupMetrics::new(&Registry::new());
    let front = Arc::new(DedupFront::new(
        &DedupConfig::default(),
        Arc::clone(&bloom),
        Arc::clone(&store),
        Arc::clone(&pipeline),
        metrics.clone(),
    ));
    Front {
        front,
        store,
        pipeline,
        bloom,
        metrics,
    }
}

fn outcome_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Created(_) => "created",
        Outcome::Replayed(_) => "replayed",
        Outcome::Conflict(_) => "conflict",
    }
}

#[tokio::test]
async fn concurrent_duplicates_end_as_one_conversion() {
    let world = SampleNetwork::new();
    let Front {
        front,
        pipeline,
        metrics,
        ..
    } = front(&world, 0);
    let reports: Vec<_> = (0..20)
        .map(|_| {
            let front = Arc::clone(&front);
            let new = world.report("o-1", "10.00");
            tokio::spawn(async move { front.submit(new).await })
        })
        .collect();
    // Every report is in flight, the first held at the "journal": then let it through.
    while pipeline.submitted.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    pipeline.gate.add_permits(1);
    let mut outcomes = Vec::new();
    for report in reports {
        outcomes.push(outcome_name(&report.await.unwrap().unwrap()));
    }
    assert_eq!(pipeline.submitted.load(Ordering::SeqCst), 1);
    assert_eq!(outcomes.iter().filter(|o| **o == "created").count(), 1);
    assert_eq!(outcomes.iter().filter(|o| **o == "replayed").count(), 19);
    let counted = |outcome: &str| metrics.outcomes_total.with_label_values(&[outcome]).get();
    assert_eq!(counted("bloom_negative"), 1);
    assert_eq!(counted("coalesced") + counted("cache_hit"), 19);
}

#[tokio::test]
async fn the_same_order_with_other_values_is_a_conflict_and_stores_nothing() {
    let world = SampleNetwork::new();
    let Front {
        front, pipeline, ..
    } = front(&world, 100);
    let first = front.submit(world.report("o-2", "10.00")).await.unwrap();
    assert_eq!(outcome_name(&first), "created");
    let other = front.submit(world.report("o-2", "11.00")).await.unwrap();
    let Outcome::Conflict(stored) = other else {
        panic!("expected a conflict");
    };
    assert_eq!(
        stored.conversion.amount,
        rust_decimal::Decimal::new(1000, 2)
    );
    let again = front.submit(world.report("o-2", "10.00")).await.unwrap();
    assert_eq!(outcome_name(&again), "replayed");
    assert_eq!(pipeline.submitted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_bloom_maybe_is_answered_from_the_store() {
    let world = SampleNetwork::new();
    let Front {
        front,
        store,
        pipeline,
        bloom,
        metrics,
    } = front(&world, 100);
    // Stored by another node (or before a restart): in the bloom filter and the store,
    // not in this node's cache.
    let earlier = world.report("o-3", "10.00");
    let conversion = world.attributed(&earlier);
    store
        .stored
        .lock()
        .unwrap()
        .insert(earlier.id.clone(), conversion);
    bloom.insert(earlier.id.dedup_key());

    let outcome = front.submit(world.report("o-3", "10.00")).await.unwrap();
    assert_eq!(outcome_name(&outcome), "replayed");
    assert_eq!(store.finds.load(Ordering::SeqCst), 1);
    assert_eq!(pipeline.submitted.load(Ordering::SeqCst), 0);
    assert_eq!(
        metrics
            .outcomes_total
            .with_label_values(&["store_hit"])
            .get(),
        1
    );
}

#[tokio::test]
async fn a_failing_look_up_refuses_without_storing_and_is_tried_again_next_time() {
    let world = SampleNetwork::new();
    let Front {
        front,
        store,
        pipeline,
        bloom,
        ..
    } = front(&world, 100);
    let report = world.report("o-4", "10.00");
    bloom.insert(report.id.dedup_key());
    store.failing.store(true, Ordering::SeqCst);
    let refused = front.submit(report.clone()).await.unwrap_err();
    assert!(
        matches!(refused, PipelineError::StoreUnavailable(_)),
        "{refused:?}"
    );
    assert_eq!(pipeline.submitted.load(Ordering::SeqCst), 0);

    // The refusal is not remembered: once the store answers, the order is looked up again
    // and, not being there, stored.
    store.failing.store(false, Ordering::SeqCst);
    let outcome = front.submit(report).await.unwrap();
    assert_eq!(outcome_name(&outcome), "created");
    assert_eq!(store.finds.load(Ordering::SeqCst), 2);
    assert_eq!(pipeline.submitted.load(Ordering::SeqCst), 1);
}
