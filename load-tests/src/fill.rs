//! `fill`: history for one brand, written straight through the service's store code in
//! INSERTs of about 100k rows, so that listings and reports can be tried on millions of
//! conversions without sending millions of requests. The brand, campaigns and links come
//! from a setup made through the admin API, so the service knows them and answers that
//! brand's key. Rows are made on a thread of their own while the previous batch is sent.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use attributor::Store;
use tokio::sync::mpsc;

use crate::cli::FillArgs;
use crate::history::{Batch, History};
use crate::setup::{self, Setup};
use crate::target::Target;

/// Batches made ahead of the INSERT in flight.
const BATCHES_AHEAD: usize = 2;

/// Writes `args.rows` conversions and returns whether the brand gained exactly that many.
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
    let before = brand_conversions(&store, &setup.brand_id).await?;

    let tag = format!(
        "{:x}",
        SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis()
    );
    let mut history = History::new(&setup, args.days, tag, args.statuses)?;
    let (batches, mut made) = mpsc::channel::<Batch>(BATCHES_AHEAD);
    let (rows, batch_rows) = (args.rows, args.batch_rows.max(1));
    let maker = std::thread::spawn(move || {
        let mut first = 0;
        while first < rows {
            let count =
                usize::try_from(rows - first).map_or(batch_rows, |left| left.min(batch_rows));
            if batches.blocking_send(history.batch(first, count)).is_err() {
                break;
            }
            first += count as u64;
        }
    });

    eprintln!(
        "filling brand {} with {rows} conversions over {} days, {batch_rows} rows per INSERT",
        setup.brand_id, args.days
    );
    let started = Instant::now();
    let mut written = 0u64;
    while let Some(batch) = made.recv().await {
        let insert_started = Instant::now();
        // Commissions first, as the workers do: a conversion row never exists without its
        // commission row.
        store.insert_commissions(&batch.commissions).await?;
        store.insert_conversions(&batch.conversions).await?;
        store.insert_status_changes(&batch.status_changes).await?;
        let n = batch.conversions.len() as u64 - batch.status_changes.len() as u64;
        written += n;
        eprintln!(
            "  {written}/{rows} rows; this batch {:.0} rows/s, overall {:.0} rows/s",
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
    println!(
        "wrote {written} conversions (and as many commissions) for brand {} in {seconds:.1} s: \
         {:.0} rows/s; the brand has {after} conversions (FINAL), {gained} more than before",
        setup.brand_id,
        written as f64 / seconds
    );
    if gained != written {
        eprintln!("the brand gained {gained} conversions, not {written}");
    }
    Ok(gained == written)
}

async fn brand_conversions(store: &Store, brand_id: &str) -> anyhow::Result<u64> {
    Ok(store
        .client()
        .query("SELECT count() FROM conversions FINAL WHERE brand_id = ?")
        .bind(brand_id)
        .fetch_one::<u64>()
        .await?)
}
