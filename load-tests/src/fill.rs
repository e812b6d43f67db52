//! `fill`: history for one brand (conversions, their commissions, and clicks: each
//! conversion's own and more that did not convert), written straight through the
//! service's store code in INSERTs of about 100k conversions, so that listings and reports can be tried on millions of
//! conversions without sending millions of requests. The brand, campaigns and links come
//! from a setup made through the admin API, so the service knows them and answers that
//! brand's key. Rows are made on a thread of their own while the previous batch is sent.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use attributor::Store;
use tokio::sync::mpsc;

use crate::cli::FillArgs;
use crate::drain;
use crate::history::{Batch, History};
use crate::setup::{self, Setup};
use crate::target::Target;

/// Batches made ahead of the INSERT in flight.
const BATCHES_AHEAD: usize = 2;

/// Writes `args.rows` conversions and their clicks and more; returns whether the brand
/// gained exactly that many of each.
pub async fn fill(args: &FillArgs) -> anyhow::Result<bool> {
    let setup = match &args.setup {
        Some(path) => Setup::load(path)?,
        None => {
            let target = Target::new(&args.service.target, 4, std::time::Duration::from_secs(10))?;
            let plan = args.shape.plan("fill");
            let made = setup::create(&target, args.service.admin_token()?, &plan).await?;
            if let Some(path) = &args.save_setup {
                made.save(path)?;
            }
            made
        }
    };
    let url = args
        .clickhouse
        .clickhouse_url
        .clone()
        .context("fill needs --clickhouse-url (or AFFILYNC_CLICKHOUSE_URL)")?;
    let settings = args.clickhouse.settings(url);
    let store = Store::connect(&settings)
        .await
        .with_context(|| format!("connecting to ClickHouse at {}", settings.url))?;
    store.migrate().await.context("applying migrations")?;
    // The setup's own clicks (and anything else the service took) may still be in its
    // journal: counted before they land, they would read as the fill's.
    let service = Target::new(&args.service.target, 1, std::time::Duration::from_secs(10))?;
    drain::wait_for_drain(&service, std::time::Duration::from_secs(60))
        .await
        .context("waiting for the service's journal to drain before counting")?;
    let before = brand_conversions(&store, &setup.brand_id).await?;
    let clicks_before = brand_clicks(&store, &setup.brand_id).await?;

    let tag = format!(
        "{:x}",
        SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis()
    );
    let mut history = History::new(&setup, args.days, tag, args.statuses)?;
    let (batches, mut made) = mpsc::channel::<Batch>(BATCHES_AHEAD);
    let (rows, batch_rows) = (args.rows, args.batch_rows.max(1));
    let clicks = args.click_rows.unwrap_or(rows.saturating_mul(5)).max(rows);
    // Clicks spread over the batches in proportion: batch by batch, those due by its end.
    let clicks_due = move |conversions: u64| {
        u64::try_from(u128::from(clicks) * u128::from(conversions) / u128::from(rows.max(1)))
            .unwrap_or(u64::MAX)
    };
    let maker = std::thread::spawn(move || {
        let mut first = 0;
        while first < rows {
            let count =
                usize::try_from(rows - first).map_or(batch_rows, |left| left.min(batch_rows));
            let end = first + count as u64;
            let batch_clicks = usize::try_from(clicks_due(end) - clicks_due(first)).unwrap_or(0);
            if batches
                .blocking_send(history.batch(first, count, batch_clicks))
                .is_err()
            {
                break;
            }
            first = end;
        }
    });

    eprintln!(
        "filling brand {} with {rows} conversions over {} days, {batch_rows} rows per INSERT",
        setup.brand_id, args.days
    );
    let started = Instant::now();
    let mut written = 0u64;
    let mut clicks_written = 0u64;
    while let Some(batch) = made.recv().await {
        let insert_started = Instant::now();
        // Commissions first, as the workers do: a conversion row never exists without its
        // commission row.
        store.insert_commissions(&batch.commissions).await?;
        store.insert_conversions(&batch.conversions).await?;
        store.insert_status_changes(&batch.status_changes).await?;
        store.insert_clicks(&batch.clicks).await?;
        let n = batch.conversions.len() as u64 - batch.status_changes.len() as u64;
        written += n;
        clicks_written += batch.clicks.len() as u64;
        eprintln!(
            "  {written}/{rows} conversions, {clicks_written} clicks; this batch {:.0} \
             conversions/s, overall {:.0} conversions/s",
            n as f64 / insert_started.elapsed().as_secs_f64(),
            written as f64 / started.elapsed().as_secs_f64()
        );
    }
    maker
        .join()
        .map_err(|_| anyhow::anyhow!("the row maker stopped"))?;
    let seconds = started.elapsed().as_secs_f64();

    let after = brand_conversions(&store, &setup.brand_id).await?;
    let gained = after.saturating_sub(before);
    let clicks_gained = brand_clicks(&store, &setup.brand_id)
        .await?
        .saturating_sub(clicks_before);
    println!(
        "wrote {written} conversions (and as many commissions) and {clicks_written} clicks for \
         brand {} in {seconds:.1} s: {:.0} conversions/s; the brand has {after} conversions \
         (FINAL), {gained} more than before, and {clicks_gained} more clicks",
        setup.brand_id,
        written as f64 / seconds
    );
    if gained != written {
        eprintln!("the brand gained {gained} conversions, not {written}");
    }
    if clicks_gained != clicks_written {
        eprintln!("the brand gained {clicks_gained} clicks, not {clicks_written}");
    }
    Ok(gained == written && clicks_gained == clicks_written)
}

/// The brand's click rows. Every click the fill writes is new (a fresh signed id), so
/// rows are clicks; FINAL over tens of millions of them would take minutes.
async fn brand_clicks(store: &Store, brand_id: &str) -> anyhow::Result<u64> {
    Ok(store
        .client()
        .query("SELECT count() FROM clicks WHERE brand_id = ?")
        .bind(brand_id)
        .fetch_one::<u64>()
        .await?)
}

async fn brand_conversions(store: &Store, brand_id: &str) -> anyhow::Result<u64> {
    Ok(store
        .client()
        .query("SELECT count() FROM conversions FINAL WHERE brand_id = ?")
        .bind(brand_id)
        .fetch_one::<u64>()
        .await?)
}
