use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use time::OffsetDateTime;

use super::attribution::{Touch, attribute};
use super::{Job, PipelineConfig, PipelineError, Reply, TouchSource, Work};
use crate::catalog::{Catalog, ResolvedLink};
use crate::clock::Clock;
use crate::conversion::{Conversion, NewConversion};
use crate::domain::{AttributionMethod, BrandId, EmailHash, LinkId};
use crate::journal::{Entry, Journal};
use crate::metrics::PipelineMetrics;
use crate::store::{ConversionRow, EmailTouch};

/// How often an idle worker looks at the closing flag.
const IDLE_POLL: Duration = Duration::from_millis(50);

type Touches = HashMap<(BrandId, EmailHash), EmailTouch>;

pub(super) struct Worker<T> {
    pub receiver: Receiver<Box<Job>>,
    pub closing: Arc<AtomicBool>,
    pub config: PipelineConfig,
    pub touches: T,
    pub journal: Arc<Journal>,
    pub catalog: Arc<Catalog>,
    pub clock: Clock,
    pub metrics: PipelineMetrics,
}

impl<T: TouchSource> Worker<T> {
    /// Runs on its own OS thread with its own single-threaded runtime for the ClickHouse
    /// look-ups, so attribution and the journal's fdatasync never occupy the HTTP tier's
    /// threads.
    pub fn run(self) {
        let runtime = crate::runtime::current_thread_runtime();
        while let Some(batch) = self.next_batch() {
            runtime.block_on(self.process(batch));
        }
    }

    /// Blocks for the first job, then takes what else is queued (waiting up to
    /// `batch_max_wait` for more). `None` once closing and drained.
    fn next_batch(&self) -> Option<Vec<Job>> {
        let first = loop {
            match self.receiver.recv_timeout(IDLE_POLL) {
                Ok(job) => break *job,
                Err(RecvTimeoutError::Timeout) if !self.closing.load(Ordering::Acquire) => {}
                Err(_) => return None,
            }
        };
        let mut batch = vec![first];
        let room = self.config.batch_max_rows.saturating_sub(1);
        if self.config.batch_max_wait.is_zero() {
            batch.extend(self.receiver.try_iter().take(room).map(|job| *job));
        } else {
            let deadline = Instant::now() + self.config.batch_max_wait;
            while batch.len() < self.config.batch_max_rows {
                match self.receiver.recv_deadline(deadline) {
                    Ok(job) => batch.push(*job),
                    Err(_) => break,
                }
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
        self.metrics.batch_jobs.observe(batch.len() as f64);
        let touches = self.email_touches_for(&batch).await;
        let now = self.clock.now();
        let mut accepted: Vec<(Reply, Arc<Conversion>)> = Vec::with_capacity(batch.len());
        let mut history: Vec<Entry> = Vec::new();
        for Job { work, reply, .. } in batch {
            match work {
                Work::Report(new) => match self.touch_for(&new, &touches, now).await {
                    Ok(touch) => accepted.push((reply, Arc::new(attribute(&new, &touch, now)))),
                    Err(error) => self.fail(reply, error),
                },
                Work::Change(next, change) => {
                    history.push(Entry::StatusChange(change));
                    accepted.push((reply, next));
                }
            }
        }
        if accepted.is_empty() {
            return;
        }
        let entries: Vec<Entry> = accepted
            .iter()
            .map(|(_, conversion)| Entry::Conversion(ConversionRow::from(conversion.as_ref())))
            .chain(history)
            .collect();
        match self.journal.append(&entries) {
            Ok(_) => {
                for (reply, conversion) in accepted {
                    self.metrics
                        .conversions_journaled_total
                        .with_label_values(&[
                            conversion.status.as_str(),
                            conversion.source.as_str(),
                        ])
                        .inc();
                    // The requester may have gone; the conversion is journaled either way.
                    let _ = reply.send(Ok(conversion));
                }
            }
            Err(error) => {
                tracing::error!(jobs = accepted.len(), %error, "conversion batch not journaled");
                let error = PipelineError::from(error);
                for (reply, _) in accepted {
                    self.fail(reply, error.clone());
                }
            }
        }
    }

    /// The click a conversion is credited to: the one it reports (by id or cookie), or,
    /// with none, the latest click its customer's e-mail was credited with at this brand
    /// within the campaign's cookie window, in ClickHouse or still in this node's journal.
    async fn touch_for(
        &self,
        conversion: &NewConversion,
        touches: &Result<Touches, PipelineError>,
        now: OffsetDateTime,
    ) -> Result<Touch, PipelineError> {
        if let Some(click) = &conversion.click {
            let resolved = self.resolve(click.id.link())?;
            if resolved.link.brand != conversion.brand {
                return Err(PipelineError::ClickOfAnotherBrand);
            }
            return Ok(Touch {
                resolved,
                click_id: click.id.clone(),
                clicked_at: click.id.clicked_at(),
                method: click.method,
            });
        }
        let email = conversion.email.ok_or(PipelineError::NoMatchingTouch)?;
        let stored = touches
            .as_ref()
            .map_err(Clone::clone)?
            .get(&(conversion.brand.clone(), email))
            .cloned();
        let journaled = self.journal.unshipped().touch(&conversion.brand, email);
        let touch = [stored, journaled]
            .into_iter()
            .flatten()
            .max_by_key(|touch| touch.click_time)
            .ok_or(PipelineError::NoMatchingTouch)?;
        let resolved = self.resolve(&touch.link)?;
        if now - touch.click_time > resolved.campaign.cookie_window() {
            return Err(PipelineError::NoMatchingTouch);
        }
        Ok(Touch {
            resolved,
            click_id: touch.click_id,
            clicked_at: touch.click_time,
            method: AttributionMethod::Email,
        })
    }

    fn resolve(&self, link: &LinkId) -> Result<ResolvedLink, PipelineError> {
        self.catalog
            .resolve_link(link)
            .ok_or(PipelineError::UnknownClick)
    }

    /// One ClickHouse look-up for the batch's reports that came without a click but with
    /// an e-mail, within `touch_lookup_timeout`. Only those reports depend on its answer.
    async fn email_touches_for(&self, batch: &[Job]) -> Result<Touches, PipelineError> {
        let emails: Vec<EmailHash> = batch
            .iter()
            .filter_map(|job| match &job.work {
                Work::Report(new) if new.click.is_none() => new.email,
                _ => None,
            })
            .collect();
        if emails.is_empty() {
            return Ok(HashMap::new());
        }
        let started = Instant::now();
        let lookup = tokio::time::timeout(
            self.config.touch_lookup_timeout,
            self.touches.email_touches(&emails),
        )
        .await
        .unwrap_or_else(|_| {
            Err(crate::store::StoreError::Unavailable(
                "no answer to the e-mail touch look-up in time".into(),
            ))
        });
        let touches = lookup.map_err(|error| {
            tracing::warn!(%error, "e-mail touch look-up failed");
            PipelineError::from(error)
        })?;
        self.metrics
            .clickhouse_read_seconds
            .with_label_values(&["email_touches"])
            .observe(started.elapsed().as_secs_f64());
        Ok(touches
            .into_iter()
            .map(|touch| ((touch.brand.clone(), touch.email), touch))
            .collect())
    }

    fn fail(&self, reply: Reply, error: PipelineError) {
        self.metrics
            .conversions_failed_total
            .with_label_values(&[error.label()])
            .inc();
        let _ = reply.send(Err(error));
    }
}
