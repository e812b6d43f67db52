//! Before the store check: waiting, on the service's own gauges, until everything it
//! acknowledged has left its journal for ClickHouse. A 2xx means the conversion is durable
//! in the node's journal; ClickHouse gets it from the shipper a moment later, so counting
//! rows before the journal is empty would report acknowledged conversions as lost.

use std::time::{Duration, Instant};

use anyhow::bail;

use crate::target::Target;

const POLL: Duration = Duration::from_millis(100);

/// Gauges that must all read 0: nothing being answered, no click waiting for the journal,
/// nothing queued for the journal, nothing in the journal that ClickHouse lacks.
const IDLE_WHEN_ZERO: [&str; 4] = [
    "affilync_conversions_in_flight",
    "affilync_click_queue_depth",
    "affilync_attribution_queue_depth",
    "affilync_journal_pending_records",
];

/// Consecutive idle scrapes that prove a drain. One is not enough: a scrape samples the
/// journal's pending records before it reads the other gauges, so a batch journaled in
/// between is in neither; the next scrape's pending records show it.
const IDLE_SCRAPES: u32 = 2;

/// Polls the target's `/metrics` until the journal has drained, at most `longest`.
pub async fn wait_for_drain(target: &Target, longest: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut idle = 0;
    loop {
        let text = target
            .http
            .get(target.url("/metrics"))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let busy: Vec<String> = IDLE_WHEN_ZERO
            .iter()
            .filter_map(|name| {
                let value = gauge(&text, name)?;
                (value != 0.0).then(|| format!("{name}={value}"))
            })
            .collect();
        idle = if busy.is_empty() && gauge(&text, "affilync_journal_pending_records").is_some() {
            idle + 1
        } else {
            0
        };
        if idle >= IDLE_SCRAPES {
            return Ok(started.elapsed());
        }
        if started.elapsed() >= longest {
            bail!(
                "the service's journal did not drain within {longest:?}: {}",
                busy.join(", ")
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The value of an unlabelled gauge in Prometheus text.
fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_are_read_by_exact_name() {
        let text = "# HELP x\naffilync_journal_pending_records_total 5\naffilync_journal_pending_records 3\n";
        assert_eq!(gauge(text, "affilync_journal_pending_records"), Some(3.0));
        assert_eq!(gauge(text, "affilync_conversions_in_flight"), None);
    }
}
