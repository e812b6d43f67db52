//! Assembling the service and running it until shutdown.

mod middleware;

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use attributor::catalog::Catalog;
use attributor::clicks::ClickRecorder;
use attributor::domain::ClickSigner;
use attributor::hold::CampaignHolds;
use attributor::metrics::{
    CatalogMetrics, ClickMetrics, JournalMetrics, PipelineMetrics, ReportMetrics, ShipperMetrics,
};
use attributor::reports::RollupRefresher;
use attributor::{Journal, Pipeline, PipelineParts, Shipper, Store};
use prometheus::Registry;

use self::middleware::{record_request, request_id};
use crate::config::Config;
use crate::dedup::{DedupFront, DedupMetrics, StoredLookup, start_bloom, start_race_repair};
use crate::endpoints::routes;
use crate::hold_approver;
use crate::list_totals::ListTotals;
use crate::metrics::{HttpMetrics, PixelMetrics};
use crate::pixel_script::PixelScript;
use crate::rate_limit::RateLimiter;
use crate::state::AppState;

const NODE_PING_INTERVAL: Duration = Duration::from_secs(1);

/// Connects to ClickHouse, migrates, loads the catalog, opens the journal, starts the
/// attribution workers and the shipper, and serves HTTP on `listener` until `shutdown`
/// resolves. Then it drains: in-flight requests finish, queued conversions and clicks are
/// journaled, and the shipper ships for at most `shutdown_ship_timeout`.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + 'static,
) -> anyhow::Result<()> {
    let store = Store::connect(&config.store)
        .await
        .with_context(|| format!("connecting to ClickHouse at {}", config.store.url))?;
    store.migrate().await.context("applying migrations")?;
    // With several ClickHouse URLs: notice a node that returns, and show each one's state.
    store.watch_nodes(NODE_PING_INTERVAL);
    let catalog = Arc::new(
        Catalog::load(store.clone(), config.clock.clone())
            .await
            .context("loading the catalog")?,
    );

    let holds = Arc::new(
        CampaignHolds::load(store.clone())
            .await
            .context("loading campaign holds")?,
    );

    let registry = Registry::new();
    catalog.keep_refreshed(config.catalog_refresh, CatalogMetrics::new(&registry));
    holds.keep_refreshed(config.catalog_refresh);
    let pipeline_metrics = PipelineMetrics::new(&registry);
    let http_metrics = HttpMetrics::new(&registry);
    let dedup_metrics = DedupMetrics::new(&registry);
    let pixel_metrics = PixelMetrics::new(&registry);
    let (journal, recovery) = Journal::open(
        config.journal.clone(),
        config.clock.clone(),
        JournalMetrics::new(&registry),
    )
    .context("opening the journal")?;
    let journal = Arc::new(journal);
    let (pipeline, workers) = Pipeline::start(
        config.pipeline.clone(),
        PipelineParts {
            touches: store.clone(),
            journal: Arc::clone(&journal),
            catalog: Arc::clone(&catalog),
            clock: config.clock.clone(),
            metrics: pipeline_metrics.clone(),
        },
    );
    let (clicks, click_writer) = ClickRecorder::start(
        config.clicks.clone(),
        Arc::clone(&journal),
        ClickMetrics::new(&registry),
    );
    let shipper = Shipper::start(
        config.shipper.clone(),
        Arc::clone(&journal),
        &store,
        ShipperMetrics::new(&registry),
    );
    let rollups = config.report_rollups.enabled.then(|| {
        RollupRefresher::start(
            config.report_rollups.clone(),
            &store,
            ReportMetrics::new(&registry),
        )
    });
    let bloom = start_bloom(
        &store,
        &config.dedup,
        Arc::clone(&journal),
        dedup_metrics.clone(),
    )
    .await
    .context("sizing the dedup bloom filter")?;
    let dedup = Arc::new(DedupFront::new(
        &config.dedup,
        bloom,
        StoredLookup::start(&store, Arc::clone(&journal), config.lookup.clone()),
        pipeline.clone(),
        dedup_metrics.clone(),
    ));
    start_race_repair(
        &store,
        Arc::clone(&journal),
        &dedup,
        config.race_repair.clone(),
        dedup_metrics,
    );
    // What this node acknowledged last before it stopped is answered from memory at once,
    // however the shipping or ClickHouse fare.
    for row in recovery.recent_conversions {
        match attributor::Conversion::try_from(row) {
            Ok(conversion) => dedup.refresh(Arc::new(conversion)).await,
            Err(error) => tracing::warn!(%error, "a journaled conversion does not read back"),
        }
    }

    let state = web::Data::new(AppState {
        store,
        catalog,
        holds,
        dedup,
        list_totals: ListTotals::new(config.count_budget),
        report_max_days: config.report_max_days,
        report_rollups: config.report_rollups.enabled,
        pipeline: pipeline.clone(),
        journal: Arc::clone(&journal),
        clicks: clicks.clone(),
        signer: ClickSigner::new(config.click_secret.expose().as_bytes()),
        clock: config.clock.clone(),
        admin_token: config.admin_token.clone(),
        public_url: config.public_url.clone(),
        pixel_script: PixelScript::for_service(&config.public_url),
        rate_limiter: RateLimiter::new(config.rate_limits, &registry),
        registry,
        metrics: http_metrics,
        pixel_metrics,
        pipeline_metrics,
    });
    // Holds end on whole seconds and are days long: a round every few catalog refreshes
    // approves in time, and costs ClickHouse little.
    hold_approver::start(state.clone(), config.hold_rounds);
    let address = listener.local_addr()?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(from_fn(record_request))
            // Outermost: its span covers the metrics middleware and every handler.
            .wrap(from_fn(request_id))
            .configure(routes)
    })
    .workers(config.http_workers.max(1))
    .disable_signals()
    .shutdown_timeout(config.shutdown_timeout.as_secs())
    .listen(listener)?
    .run();
    tracing::info!(%address, "affilync is serving");

    let handle = server.handle();
    actix_web::rt::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests");
        handle.stop(true).await;
    });
    server.await?;

    // Requests are answered; journal what is still queued, ship what time allows, stop.
    pipeline.close();
    clicks.close();
    actix_web::rt::task::spawn_blocking(move || {
        if let Some(rollups) = rollups {
            rollups.stop();
        }
        workers.join();
        click_writer.join();
        let left = shipper.stop(&journal, config.shutdown_ship_timeout);
        if left == 0 {
            tracing::info!("affilync stopped; everything is in clickhouse");
        } else {
            tracing::warn!(
                records = left,
                "affilync stopped; records not yet in clickhouse stay in the journal for the next start"
            );
        }
    })
    .await?;
    Ok(())
}
