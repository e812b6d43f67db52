use std::net::TcpListener;

use anyhow::Context;
use clap::Parser;
use ingest::clickhouse_server::ManagedClickhouse;
use ingest::config::{Cli, Command, Secret, ServeArgs, StoreArgs};
use ingest::{demo, secrets, serve};
use rand::RngCore;
use tracing_subscriber::EnvFilter;

/// Most of a request's allocations are short-lived and cross threads (handler, attribution
/// worker, journal); glibc's allocator spent a fifth of the service's CPU on them under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Logs to stderr: stdout is for what a command prints (the demo's banner).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match cli.command {
        Command::Serve(args) => run(args, false),
        Command::Demo(args) => run(args, true),
        Command::Migrate(args) => migrate(args),
    }
}

/// The ClickHouse to use, starting a managed one when no URL is configured.
fn clickhouse(store: &StoreArgs) -> anyhow::Result<(String, Option<ManagedClickhouse>)> {
    match &store.clickhouse_url {
        Some(url) => Ok((url.clone(), None)),
        None => {
            let managed = ManagedClickhouse::start(&store.data_dir)?;
            Ok((managed.url(), Some(managed)))
        }
    }
}

fn run(mut args: ServeArgs, demo: bool) -> anyhow::Result<()> {
    if demo && args.admin_token.is_none() {
        args.admin_token = Some(Secret::new(random_token()));
    }
    let (url, managed) = clickhouse(&args.store)?;
    let secret = secrets::click_secret(args.click_secret.clone(), &args.store.data_dir)?;
    let listener = TcpListener::bind(args.listen)
        .with_context(|| format!("binding AFFILYNC_LISTEN={}", args.listen))?;
    let config = args.to_config(url.clone(), secret, listener.local_addr()?);
    let base = config.public_url.as_str().trim_end_matches('/').to_owned();
    let admin_token = config.admin_token.clone();

    actix_web::rt::System::new().block_on(async move {
        if demo {
            let token = admin_token
                .map(|t| t.expose().to_owned())
                .unwrap_or_default();
            actix_web::rt::spawn(async move {
                match demo::seed(&base, &token).await {
                    Ok(data) => println!("{}", demo::banner(&base, &token, &url, &data)),
                    Err(error) => tracing::error!(%error, "seeding the demo failed"),
                }
            });
        }
        serve(config, listener, shutdown_signal()).await
    })?;
    drop(managed);
    Ok(())
}

fn migrate(args: StoreArgs) -> anyhow::Result<()> {
    let (url, managed) = clickhouse(&args)?;
    let settings = args.settings(url);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let applied = runtime.block_on(async {
        let store = attributor::Store::connect(&settings).await?;
        store.migrate().await
    })?;
    println!(
        "database {} is up to date ({} migrations applied now)",
        settings.database,
        applied.len()
    );
    drop(managed);
    Ok(())
}

async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    attributor::domain::lower_hex(&bytes)
}
