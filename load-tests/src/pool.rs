//! The stored conversions that `replay`, `conflict` and `mixed` send again: created through
//! /api/conversions/track before the measured run, each one acknowledged.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::task::JoinSet;

use crate::scenario::{AnsweredConversion, amount_for, track};
use crate::setup::Setup;
use crate::target::Target;

/// Tries per pooled conversion when the service answers 503 or the request fails.
const ATTEMPTS: u32 = 10;

/// A stored conversion as it was sent and acknowledged.
#[derive(Debug, Clone)]
pub struct Pooled {
    pub order_id: String,
    pub amount: String,
    pub click_id: String,
    pub conversion_id: String,
    pub commission: String,
}

/// Stores `size` conversions with `in_flight` requests at a time.
pub async fn create(
    target: &Target,
    setup: &Arc<Setup>,
    tag: &str,
    size: usize,
    in_flight: usize,
) -> anyhow::Result<Vec<Pooled>> {
    let mut pool = Vec::with_capacity(size);
    let mut tasks = JoinSet::new();
    for n in 0..size {
        let target = target.clone();
        let setup = Arc::clone(setup);
        let order_id = format!("{tag}-pool-{n}");
        tasks.spawn(async move { store_one(&target, &setup, order_id, n as u64).await });
        if tasks.len() >= in_flight.max(1) {
            pool.push(tasks.join_next().await.expect("tasks are in flight")??);
        }
    }
    while let Some(pooled) = tasks.join_next().await {
        pool.push(pooled??);
    }
    pool.sort_by(|a, b| a.order_id.cmp(&b.order_id));
    Ok(pool)
}

async fn store_one(
    target: &Target,
    setup: &Setup,
    order_id: String,
    n: u64,
) -> anyhow::Result<Pooled> {
    let click_id = setup.clicks[(n % setup.clicks.len() as u64) as usize].clone();
    let amount = amount_for(n);
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        let request = track(target, &setup.brand_key, &order_id, &click_id, &amount);
        match target.send(request).await {
            Ok(reply) if matches!(reply.status, 200 | 201) => {
                let answered = AnsweredConversion::read(&reply.body)
                    .with_context(|| format!("order {order_id}: the answer has no conversion"))?;
                return Ok(Pooled {
                    order_id,
                    amount,
                    click_id,
                    conversion_id: answered.conversion_id,
                    commission: answered.commission_amount,
                });
            }
            Ok(reply) if matches!(reply.status, 429 | 503) => last = format!("{}", reply.status),
            Ok(reply) => bail!(
                "storing pooled order {order_id} answered {}: {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            ),
            Err(failure) => last = format!("{failure:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100) * attempt).await;
    }
    bail!("storing pooled order {order_id} failed {ATTEMPTS} times, last: {last}")
}
