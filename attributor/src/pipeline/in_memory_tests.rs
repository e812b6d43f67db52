//! The attribution pipeline in memory: a real journal in a temp directory, a catalog from a
//! snapshot, e-mail touches from a fake. What a batch does with each of its jobs, how big
//! batches get, and that an answer comes only once its batch is journaled.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use prometheus::Registry;
use time::OffsetDateTime;

use super::*;
use crate::Clock;
use crate::catalog::Catalog;
use crate::conversion::{NewConversion, ReportedClick};
use crate::domain::*;
use crate::fixtures::SampleNetwork;
use crate::journal::{Journal, JournalConfig};
use crate::metrics::{JournalMetrics, PipelineMetrics};
use crate::store::{EmailTouch, Store, StoreError};

/// E-mail touches: one known e-mail, or a store that does not answer.
#[derive(Clone)]
struct FakeTouches {
    known: Option<EmailTouch>,
    failing: Arc<AtomicBool>,
}

impl TouchSource for FakeTouches {
    fn for_worker(&self) -> Self {
        self.clone()
    }

    async fn email_touches(&self, emails: &[EmailHash]) -> Result<Vec<EmailTouch>, StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("frozen".into()));
        }
        Ok(self
            .known
            .iter()
            .filter(|touch| emails.contains(&touch.email))
            .cloned()
            .collect())
    }
}

struct World {
    network: SampleNetwork,
    _dir: tempfile::TempDir,
    journal: Arc<Journal>,
    catalog: Arc<Catalog>,
}

fn world() -> World {
    let network = SampleNetwork::new();
    let catalog = Arc::new(network.catalog(Store::detached()));
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(
        JournalConfig {
            dir: dir.path().join("journal"),
            max_bytes: 64 * 1024 * 1024,
        },
        Clock::system(),
        JournalMetrics::new(&Registry::new()),
    )
    .unwrap();
    World {
        network,
        _dir: dir,
        journal: Arc::new(journal),
        catalog,
    }
}

impl World {
    /// A sale with a click on `link`, or, with `email`, one to attribute by e-mail.
    fn report(&self, order: &str, link: &LinkId, email: Option<EmailHash>) -> NewConversion {
        let mut report = self.network.report(order, "10.00");
        report.click = email.is_none().then_some(ReportedClick {
            id: self.network.signer.issue(link, OffsetDateTime::now_utc()),
            method: AttributionMethod::ClickId,
        });
        report.email = email;
        report
    }

    fn start(&self, config: PipelineConfig, touches: FakeTouches) -> (Pipeline, PipelineMetrics) {
        let metrics = PipelineMetrics::new(&Registry::new());
        let (pipeline, _workers) = Pipeline::start(
            config,
            PipelineParts {
                touches,
                journal: Arc::clone(&self.journal),
                catalog: Arc::clone(&self.catalog),
                clock: Clock::system(),
                metrics: metrics.clone(),
            },
        );
        (pipeline, metrics)
    }
}

fn no_touches() -> FakeTouches {
    FakeTouches {
        known: None,
        failing: Arc::new(AtomicBool::new(false)),
    }
}

#[tokio::test]
async fn batches_grow_under_load_up_to_their_limit_and_answer_once_journaled() {
    let world = world();
    let config = PipelineConfig {
        workers: 1,
        batch_max_rows: 50,
        batch_max_wait: Duration::from_millis(500),
        ..PipelineConfig::default()
    };
    let (pipeline, metrics) = world.start(config, no_touches());
    let reports = (0..120)
        .map(|n| pipeline.submit(world.report(&format!("o-{n}"), &world.network.link.id, None)));
    let answers = join_all(reports).await;
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    // Every answer came after its batch's append: all 120 are in the journal.
    assert_eq!(world.journal.pending_records(), 120);
    let batches = metrics.batch_jobs.get_sample_count();
    assert_eq!(metrics.batch_jobs.get_sample_sum(), 120.0);
    // At most 50 a batch (so at least three), and batched rather than one by one.
    assert!((3..=6).contains(&batches), "{batches} batches");
}

#[tokio::test]
async fn each_job_of_a_batch_gets_its_own_answer() {
    let world = world();
    let email = EmailHash::of_address("known@example.com").unwrap();
    let touches = FakeTouches {
        known: Some(EmailTouch {
            email,
            brand: world.network.brand.id.clone(),
            link: world.network.link.id.clone(),
            click_id: world.network.click.clone(),
            click_time: OffsetDateTime::now_utc().replace_nanosecond(0).unwrap(),
        }),
        failing: Arc::new(AtomicBool::new(false)),
    };
    let config = PipelineConfig {
        workers: 1,
        batch_max_wait: Duration::from_millis(200),
        ..PipelineConfig::default()
    };
    let (pipeline, _) = world.start(config, touches);
    let unknown_link = LinkId::generate();
    let stranger = EmailHash::of_address("stranger@example.com").unwrap();
    let answers = join_all([
        pipeline.submit(world.report("good", &world.network.link.id, None)),
        pipeline.submit(world.report("unknown-link", &unknown_link, None)),
        pipeline.submit(world.report("by-email", &world.network.link.id, Some(email))),
        pipeline.submit(world.report("no-touch", &world.network.link.id, Some(stranger))),
    ])
    .await;
    let labels: Vec<&str> = answers
        .iter()
        .map(|answer| match answer {
            Ok(_) => "journaled",
            Err(error) => error.label(),
        })
        .collect();
    assert_eq!(
        labels,
        [
            "journaled",
            "unknown_click",
            "journaled",
            "no_matching_touch"
        ]
    );
    let by_email = answers[2].as_ref().unwrap();
    assert_eq!(
        by_email.attribution.unwrap().method,
        AttributionMethod::Email
    );
    assert_eq!(world.journal.pending_records(), 2);
}

#[tokio::test]
async fn a_failing_touch_look_up_fails_only_the_reports_that_need_it() {
    let world = world();
    let failing = Arc::new(AtomicBool::new(true));
    let touches = FakeTouches {
        known: None,
        failing: Arc::clone(&failing),
    };
    let config = PipelineConfig {
        workers: 1,
        batch_max_wait: Duration::from_millis(200),
        ..PipelineConfig::default()
    };
    let (pipeline, metrics) = world.start(config, touches);
    let email = EmailHash::of_address("someone@example.com").unwrap();
    let answers = join_all([
        pipeline.submit(world.report("with-click", &world.network.link.id, None)),
        pipeline.submit(world.report("by-email", &world.network.link.id, Some(email))),
    ])
    .await;
    assert!(answers[0].is_ok(), "{:?}", answers[0]);
    assert!(
        matches!(answers[1], Err(PipelineError::StoreUnavailable(_))),
        "{:?}",
        answers[1]
    );
    assert_eq!(world.journal.pending_records(), 1);
    assert_eq!(
        metrics
            .conversions_failed_total
            .with_label_values(&["store_unavailable"])
            .get(),
        1
    );
}
