//! The background task that approves conversions whose hold period is over.
//!
//! Every node runs it. Each round asks ClickHouse, per campaign with a hold, for the
//! conversions created before now − hold whose latest version is pending, confirms each
//! against this node's journal (a decision this node has not shipped yet wins), and
//! journals the approvals. An approval is the same rows on every node (see
//! [`attributor::hold`]), so two nodes approving one conversion, or a node approving again
//! after a restart before its first approval was shipped, leave one approval in ClickHouse.

use std::time::Duration;

use actix_web::web;
use attributor::hold::Hold;
use attributor::metrics::counter;
use attributor::{PipelineError, StoreError};
use futures_util::future::{join_all, try_join_all};

use crate::state::AppState;

/// Conversions one campaign's round approves at most; the rest wait for the next round.
const ROUND_MAX_APPROVALS: u64 = 1_000;

#[derive(Debug, thiserror::Error)]
enum RoundError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

/// Starts the rounds, one every `every`, on the HTTP tier's runtime (a round is a few
/// queries and a journal append; it never blocks).
pub fn start(state: web::Data<AppState>, every: Duration) {
    let rounds_total = counter(
        &state.registry,
        "affilync_hold_rounds_total",
        "Rounds of the approval of held conversions, finished",
    );
    let approvals_total = counter(
        &state.registry,
        "affilync_hold_approvals_total",
        "Held conversions approved automatically by this node",
    );
    actix_web::rt::spawn(async move {
        let mut rounds = actix_web::rt::time::interval(every);
        rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            rounds.tick().await;
            for hold in state.holds.all() {
                match approve_due(&state, &hold).await {
                    Ok(0) => {}
                    Ok(approved) => {
                        approvals_total.inc_by(approved as u64);
                        tracing::info!(campaign = %hold.campaign, approved, "held conversions approved")
                    }
                    Err(RoundError::Pipeline(PipelineError::ShuttingDown)) => return,
                    Err(error) => {
                        tracing::warn!(campaign = %hold.campaign, %error, "approving held conversions failed")
                    }
                }
            }
            rounds_total.inc();
        }
    });
}

async fn approve_due(state: &AppState, hold: &Hold) -> Result<usize, RoundError> {
    let now = state.clock.now();
    let due = state
        .store
        .pending_created_before(
            &hold.brand,
            &hold.campaign,
            now - hold.period(),
            ROUND_MAX_APPROVALS,
        )
        .await?;
    if due.is_empty() {
        return Ok(0);
    }
    let current = try_join_all(due.iter().map(|id| state.dedup.find(id))).await?;
    let approvals: Vec<_> = current
        .iter()
        .flatten()
        .filter_map(|conversion| hold.approval(conversion, now))
        .collect();
    let count = approvals.len();
    let answers = join_all(
        approvals
            .into_iter()
            .map(|(next, change)| state.pipeline.record_change(next, change)),
    )
    .await;
    for answer in answers {
        state.dedup.refresh(answer?).await;
    }
    if count > 0 {
        state.list_totals.forget_brand(&hold.brand);
    }
    Ok(count)
}
