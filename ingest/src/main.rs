use std::io::IsTerminal;

use anyhow::Context;
use attributor::runtime::current_thread_runtime;
use clap::Parser;
use ingest::config::{CheckArgs, Cli, Command, ServeArgs, StoreArgs};
use ingest::secret::Secret;
use ingest::startup::clickhouse_server::ManagedClickhouse;
use ingest::startup::data_dir::DataDirLock;
use ingest::startup::{click_secret, demo, listener};
use ingest::{serve, tools};
use rand::RngCore;
use tracing_subscriber::EnvFilter;

/// Most of a request's allocations are short-lived and cross threads (handler, attribution
/// worker, journal); glibc's allocator spent a fifth of the service's CPU on them under load.
/// Built without transparent huge pages (`no_thp`): with them, every 2 MiB region the
/// allocator touched was resident whole, and with 10 M conversions stored the service held
/// about 35 MB more idle and 55 MB more at peak under load, and was no faster.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logs();
    match cli.command {
        Command::Serve(args) => run(args, false),
        Command::Demo(args) => run(args, true),
        Command::Migrate(args) => migrate(args),
        Command::Check(args) => check(args),
        Command::Openapi => {
            println!("{}", ingest::endpoints::openapi_document());
            Ok(())
        }
    }
}

/// The ClickHouse to use, starting a managed one when no URL is configured.
fn clickhouse(store: &StoreArgs) -> anyhow::Result<(String, Option<ManagedClickhouse>)> {
    match &store.clickhouse.clickhouse_url {
        Some(url) => Ok((url.clone(), None)),
        None => {
            let managed = ManagedClickhouse::start(&store.data_dir)?;
            Ok((managed.url(), Some(managed)))
        }
    }
}

fn run(mut args: ServeArgs, demo: bool) -> anyhow::Result<()> {
    // Before anything touches the directory: its journal and managed ClickHouse are ours.
    let _lock = DataDirLock::acquire(&args.store.data_dir)?;
    if demo && args.admin_token.is_none() {
        args.admin_token = Some(Secret::new(random_token()));
    }
    let (url, managed) = clickhouse(&args.store)?;
    let secret = click_secret::click_secret(args.click_secret.clone(), &args.store.data_dir)?;
    let listener = listener::bind(args.listen, args.listen_backlog)
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

/// The ClickHouse a tool talks to: the configured one; without one, the data directory's
/// managed server: the running node's, if a node holds the directory, else one started for
/// the occasion (with the directory's lock, kept until the tool is done).
fn tool_clickhouse(
    args: &StoreArgs,
) -> anyhow::Result<(String, Option<ManagedClickhouse>, Option<DataDirLock>)> {
    match &args.clickhouse.clickhouse_url {
        Some(url) => Ok((url.clone(), None, None)),
        None if DataDirLock::is_held(&args.data_dir) => {
            let url = ManagedClickhouse::running_url(&args.data_dir).with_context(|| {
                format!(
                    "a running affilync holds {} but its ClickHouse does not answer; \
                     try again once it does, or give --clickhouse-url",
                    args.data_dir.display()
                )
            })?;
            Ok((url, None, None))
        }
        None => {
            let lock = DataDirLock::acquire(&args.data_dir)?;
            let (url, managed) = clickhouse(args)?;
            Ok((url, managed, Some(lock)))
        }
    }
}

fn migrate(args: StoreArgs) -> anyhow::Result<()> {
    let (url, managed, _lock) = tool_clickhouse(&args)?;
    let settings = args.clickhouse.settings(url);
    let applied = current_thread_runtime().block_on(async {
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

fn check(args: CheckArgs) -> anyhow::Result<()> {
    let (url, managed, _lock) = tool_clickhouse(&args.store)?;
    let settings = args.store.clickhouse.settings(url);
    let agreed = current_thread_runtime().block_on(tools::check::run(&args, &settings))?;
    drop(managed);
    if !agreed {
        std::process::exit(1);
    }
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

/// Logs go to stderr (stdout is for what a command prints, the demo's banner): one JSON
/// object per line with `AFFILYNC_LOG_FORMAT=json`, for log shippers; otherwise text, in
/// colour only when a person is watching the terminal.
fn init_logs() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match std::env::var("AFFILYNC_LOG_FORMAT").as_deref() {
        Ok("json") => logs.json().flatten_event(true).init(),
        _ => logs
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .init(),
    }
}
