//! The background task that approves conversions whose hold period is over.
//!
//! Every node runs it. Each round asks ClickHouse, per campaign with a hold, for the
//! conversions created before now − hold whose latest version is pending, confirms each
//! against this node's journal (a decision this node has not shipped yet wins), and
//! journals the approvals. An approval is the same rows on every node (see
//! [`attributor::hold`]), so two nodes approving one conversion, or a node approving again
//! after a restart before its first approval was shipped, leave one approval in ClickHouse.

use actix_web::web;
use attributor::hold::Hold;
use attributor::metrics::counter;
use attributor::store::DuePosition;
use attributor::{PipelineError, StoreError};
use futures_util::future::{join_all, try_join_all};

use crate::config::HoldRounds;
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
enum RoundError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

/// Starts the rounds, one every `every`, on the HTTP tier's runtime (a round is a few
/// queries and a journal append; it never blocks).
pub fn start(state: web::Data<AppState>, rounds: HoldRounds) {
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
        let mut ticks = actix_web::rt::time::interval(rounds.every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            for hold in state.holds.all() {
                match approve_due(&state, &hold, rounds.page).await {
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

async fn approve_due(state: &AppState, hold: &Hold, page: u64) -> Result<usize, RoundError> {
    let now = state.clock.now();
    let mut after: Option<DuePosition> = None;
    let mut approved = 0;
    loop {
        let due = state
            .store
            .pending_created_before(
                &hold.brand,
                &hold.campaign,
                now - hold.period(),
                after.as_ref(),
                page,
            )
            .await?;
        let last_page = (due.len() as u64) < page;
        approved += approve_page(state, hold, &due, now).await?;
        if last_page {
            break;
        }
        after = due.last().cloned();
    }
    if approved > 0 {
        state.list_totals.forget_brand(&hold.brand);
    }
    Ok(approved)
}

/// Approves those of `due` still pending as this node knows them: a decision it has not
/// shipped yet, or an approval of an earlier round, wins over what ClickHouse said.
async fn approve_page(
    state: &AppState,
    hold: &Hold,
    due: &[DuePosition],
    now: time::OffsetDateTime,
) -> Result<usize, RoundError> {
    let current = try_join_all(due.iter().map(|position| state.dedup.find(&position.id))).await?;
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
    Ok(count)
}
