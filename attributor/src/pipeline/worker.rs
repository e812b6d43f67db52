use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use time::OffsetDateTime;

use super::attribution::{Touch, attribute};
use super::{ConversionSink, InsertPacer, Job, PipelineConfig, PipelineError};
use crate::catalog::{Catalog, ResolvedLink};
use crate::clock::Clock;
use crate::conversion::{Conversion, NewConversion};
use crate::domain::{AttributionMethod, BrandId, EmailHash, LinkId};
use crate::metrics::PipelineMetrics;
use crate::store::{CommissionRow, ConversionRow, EmailTouch, StoreError};

/// How often an idle worker looks at the closing flag.
const IDLE_POLL: Duration = Duration::from_millis(50);
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(50);

pub(super) struct Worker<S> {
    pub receiver: Receiver<Job>,
    pub closing: Arc<AtomicBool>,
    pub pacer: Arc<InsertPacer>,
    pub config: PipelineConfig,
    pub store: S,
    pub catalog: Arc<Catalog>,
    pub clock: Clock,
    pub metrics: PipelineMetrics,
}

impl<S: ConversionSink> Worker<S> {
    /// Runs on its own OS thread with its own single-threaded runtime for the ClickHouse
    /// client, so attribution and INSERTs never occupy the HTTP tier's threads.
    pub fn run(self) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("building an attribution worker runtime");
        while let Some(batch) = self.next_batch() {
            runtime.block_on(self.process(batch));
        }
    }

    /// Blocks for the first job, then gathers more until the batch is full or the INSERT
    /// slot (and the short wait for company) has come. `None` once closing and drained.
    fn next_batch(&self) -> Option<Vec<Job>> {
        let first = loop {
            match self.receiver.recv_timeout(IDLE_POLL) {
                Ok(job) => break job,
                Err(RecvTimeoutError::Timeout) if !self.closing.load(Ordering::Acquire) => {}
                Err(_) => return None,
            }
        };
        let now = Instant::now();
        let start_at = self
            .pacer
            .reserve(now)
            .max(now + self.config.batch_max_wait);
        let mut batch = vec![first];
        while batch.len() < self.config.batch_max_rows {
            match self.receiver.recv_deadline(start_at) {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        self.metrics.queue_depth.set(self.receiver.len() as i64);
        Some(batch)
    }

    async fn process(&self, batch: Vec<Job>) {
        let started = Instant::now();
        for job in &batch {
            self.metrics
                .queue_wait_seconds
                .observe((started - job.enqueued_at).as_secs_f64());
        }
        let deadline = started + self.config.insert_retry_budget;
        let Some((batch, touches)) = self.email_touches_for(batch, deadline).await else {
            return;
        };
        let now = self.clock.now();
        let mut attributed: Vec<(Job, Conversion)> = Vec::with_capacity(batch.len());
        for job in batch {
            match self.touch_for(&job.conversion, &touches, now).await {
                Ok(touch) => {
                    let conversion = attribute(&job.conversion, &touch, now);
                    attributed.push((job, conversion));
                }
                Err(error) => self.fail(job, error),
            }
        }
        if attributed.is_empty() {
            return;
        }
        self.metrics.batch_rows.observe(attributed.len() as f64);

        let conversions: Vec<ConversionRow> = attributed
            .iter()
            .map(|(_, c)| ConversionRow::from(c))
            .collect();
        let commissions: Vec<CommissionRow> = attributed
            .iter()
            .map(|(_, c)| CommissionRow::from(c))
            .collect();
        let observe_bytes = |table: &str, total: usize| {
            self.metrics
                .batch_bytes
                .with_label_values(&[table])
                .observe(total as f64);
        };
        observe_bytes(
            "conversions",
            conversions
                .iter()
                .map(ConversionRow::approximate_bytes)
                .sum(),
        );
        observe_bytes(
            "commissions",
            commissions
                .iter()
                .map(CommissionRow::approximate_bytes)
                .sum(),
        );
        match self.write(deadline, &commissions, &conversions).await {
            Ok(()) => {
                for (job, conversion) in attributed {
                    self.metrics
                        .conversions_stored_total
                        .with_label_values(&[
                            conversion.status.as_str(),
                            conversion.source.as_str(),
                        ])
                        .inc();
                    // The requester may have gone; the conversion is stored either way.
                    let _ = job.reply.send(Ok(Arc::new(conversion)));
                }
            }
            Err(error) => {
                let error = pipeline_error(error);
                tracing::error!(rows = attributed.len(), %error, "conversion batch not stored");
                for (job, _) in attributed {
                    self.fail(job, error.clone());
                }
            }
        }
    }

    /// The click a conversion is credited to: the one it reports (by id or cookie), or,
    /// with none, the latest click its customer's e-mail was credited with at this brand
    /// within the campaign's cookie window.
    async fn touch_for(
        &self,
        conversion: &NewConversion,
        touches: &HashMap<(BrandId, EmailHash), EmailTouch>,
        now: OffsetDateTime,
    ) -> Result<Touch, PipelineError> {
        if let Some(click) = &conversion.click {
            let resolved = self.resolve(click.id.link()).await?;
            if resolved.link.brand != conversion.brand {
                return Err(PipelineError::ClickOfAnotherBrand);
            }
            return Ok(Touch {
                resolved,
                click_id: click.id.as_str().to_owned(),
                clicked_at: click.id.clicked_at(),
                method: click.method,
            });
        }
        let email = conversion.email.ok_or(PipelineError::NoMatchingTouch)?;
        let touch = touches
            .get(&(conversion.brand.clone(), email))
            .ok_or(PipelineError::NoMatchingTouch)?;
        let resolved = self.resolve(&touch.link).await?;
        if now - touch.click_time > resolved.campaign.cookie_window() {
            return Err(PipelineError::NoMatchingTouch);
        }
        Ok(Touch {
            resolved,
            click_id: touch.click_id.clone(),
            clicked_at: touch.click_time,
            method: AttributionMethod::Email,
        })
    }

    async fn resolve(&self, link: &LinkId) -> Result<ResolvedLink, PipelineError> {
        self.catalog
            .resolve_link(link)
            .await
            .map_err(|error| PipelineError::StoreUnavailable(error.to_string()))?
            .ok_or(PipelineError::UnknownClick)
    }

    /// One look-up for the batch's conversions that came without a click but with an
    /// e-mail. `None` (every job answered) if ClickHouse cannot be asked.
    async fn email_touches_for(
        &self,
        batch: Vec<Job>,
        deadline: Instant,
    ) -> Option<(Vec<Job>, HashMap<(BrandId, EmailHash), EmailTouch>)> {
        let emails: Vec<EmailHash> = batch
            .iter()
            .filter(|job| job.conversion.click.is_none())
            .filter_map(|job| job.conversion.email)
            .collect();
        if emails.is_empty() {
            return Some((batch, HashMap::new()));
        }
        let lookup = self
            .retry_until(deadline, "email_touches_lookup", || {
                self.store.email_touches(&emails)
            })
            .await;
        match lookup {
            Ok(touches) => {
                let touches = touches
                    .into_iter()
                    .map(|touch| ((touch.brand.clone(), touch.email), touch))
                    .collect();
                Some((batch, touches))
            }
            Err(error) => {
                let error = pipeline_error(error);
                for job in batch {
                    self.fail(job, error.clone());
                }
                None
            }
        }
    }

    /// Commissions first: a conversion row is what dedup finds, so it must never exist
    /// without its commission. A retry after a partial failure rewrites identical rows,
    /// which ReplacingMergeTree collapses.
    async fn write(
        &self,
        deadline: Instant,
        commissions: &[CommissionRow],
        conversions: &[ConversionRow],
    ) -> Result<(), StoreError> {
        self.retry_until(deadline, "commissions", || {
            self.store.insert_commissions(commissions)
        })
        .await?;
        self.retry_until(deadline, "conversions", || {
            self.store.insert_conversions(conversions)
        })
        .await
    }

    /// Runs `attempt` until it succeeds, fails for good, or the batch's budget is spent.
    /// `table` labels the metrics: a table name for INSERTs, `email_touches_lookup` for the
    /// batch's cross-device look-up.
    async fn retry_until<F, Fut, T>(
        &self,
        deadline: Instant,
        table: &str,
        mut attempt: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let mut delay = FIRST_RETRY_DELAY;
        loop {
            let started = Instant::now();
            // No single attempt may outlive the budget: a hung connection is an outage too.
            let remaining = deadline.saturating_duration_since(started);
            let outcome = match tokio::time::timeout(remaining, attempt()).await {
                Ok(outcome) => outcome,
                Err(_) => Err(StoreError::Unavailable(format!(
                    "no answer to the {table} statement within the retry budget"
                ))),
            };
            match outcome {
                Ok(value) => {
                    self.metrics
                        .insert_seconds
                        .with_label_values(&[table])
                        .observe(started.elapsed().as_secs_f64());
                    return Ok(value);
                }
                Err(error) => {
                    let kind = if error.is_retryable() {
                        "retryable"
                    } else {
                        "refused"
                    };
                    self.metrics
                        .insert_errors_total
                        .with_label_values(&[table, kind])
                        .inc();
                    if !error.is_retryable() || Instant::now() + delay >= deadline {
                        return Err(error);
                    }
                    tracing::warn!(table, %error, "clickhouse insert failed, retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
    }

    fn fail(&self, job: Job, error: PipelineError) {
        let reason = match &error {
            PipelineError::UnknownClick => "unknown_click",
            PipelineError::NoMatchingTouch => "no_matching_touch",
            PipelineError::ClickOfAnotherBrand => "click_of_another_brand",
            PipelineError::StoreUnavailable(_) => "store_unavailable",
            _ => "store_refused",
        };
        self.metrics
            .conversions_failed_total
            .with_label_values(&[reason])
            .inc();
        let _ = job.reply.send(Err(error));
    }
}

fn pipeline_error(error: StoreError) -> PipelineError {
    match error {
        StoreError::Unavailable(text) => PipelineError::StoreUnavailable(text),
        other => PipelineError::StoreRefused(other.to_string()),
    }
}
