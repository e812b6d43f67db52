//! Command line and environment. Every option has a flag and an `AFFILYNC_*` variable; the
//! README's configuration table lists them all.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use attributor::clicks::ClickWriterConfig;
use attributor::{Clock, PipelineConfig, StoreSettings};
use clap::{Args, Parser, Subcommand};
use url::Url;

use crate::dedup::DedupConfig;

#[derive(Debug, Parser)]
#[command(
    name = "affilync",
    version,
    about = "Affiliate conversion ingestion on ClickHouse"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service.
    Serve(ServeArgs),
    /// Create the database and apply migrations, then exit.
    Migrate(StoreArgs),
    /// Run the service with a demo brand, affiliate, campaign, link and keys, and print
    /// ready-to-paste curl lines.
    Demo(ServeArgs),
}

/// A value that must not appear in logs or debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Self(value.to_owned()))
    }
}

#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// ClickHouse HTTP URL; unset starts a managed local clickhouse-server.
    #[arg(long, env = "AFFILYNC_CLICKHOUSE_URL")]
    pub clickhouse_url: Option<String>,
    /// Database, created and migrated at start.
    #[arg(long, env = "AFFILYNC_CLICKHOUSE_DATABASE", default_value = "affilync")]
    pub clickhouse_database: String,
    #[arg(long, env = "AFFILYNC_CLICKHOUSE_USER", default_value = "default")]
    pub clickhouse_user: String,
    #[arg(
        long,
        env = "AFFILYNC_CLICKHOUSE_PASSWORD",
        default_value = "",
        hide_env_values = true
    )]
    pub clickhouse_password: Secret,
    /// Managed ClickHouse data and local state (the generated click secret).
    #[arg(long, env = "AFFILYNC_DATA_DIR", default_value = "./var")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// HTTP address.
    #[arg(long, env = "AFFILYNC_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Bearer token for /api/admin/*; unset turns the admin API off.
    #[arg(long, env = "AFFILYNC_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,
    /// Base for tracking-link URLs; default http://{listen}.
    #[arg(long, env = "AFFILYNC_PUBLIC_URL")]
    pub public_url: Option<Url>,
    /// Key that signs click ids; share it across nodes. Unset: generated once and kept in
    /// the data directory.
    #[arg(long, env = "AFFILYNC_CLICK_SECRET", hide_env_values = true)]
    pub click_secret: Option<Secret>,
    /// HTTP worker threads; default: one per core.
    #[arg(long, env = "AFFILYNC_HTTP_WORKERS")]
    pub http_workers: Option<usize>,
    /// Attribution worker threads.
    #[arg(long, env = "AFFILYNC_ATTRIBUTION_WORKERS", default_value_t = 2)]
    pub attribution_workers: usize,
    /// Conversions that may wait for a worker before new ones get 503.
    #[arg(long, env = "AFFILYNC_QUEUE_CAPACITY", default_value_t = 50_000)]
    pub queue_capacity: usize,
    /// Most conversions per batch (one INSERT per table).
    #[arg(long, env = "AFFILYNC_BATCH_MAX_ROWS", default_value_t = 10_000)]
    pub batch_max_rows: usize,
    /// How long a batch's first conversion waits for company.
    #[arg(long, env = "AFFILYNC_BATCH_MAX_WAIT_MS", default_value_t = 2)]
    pub batch_max_wait_ms: u64,
    /// INSERT starts per second per table, across workers (0: unpaced).
    #[arg(long, env = "AFFILYNC_INSERTS_PER_SECOND", default_value_t = 20.0)]
    pub inserts_per_second: f64,
    /// How long a failing INSERT is retried before its requests get 503.
    #[arg(long, env = "AFFILYNC_INSERT_RETRY_BUDGET_MS", default_value_t = 3_000)]
    pub insert_retry_budget_ms: u64,
    /// Memory for the cache of recently seen conversions answering replays.
    #[arg(long, env = "AFFILYNC_DEDUP_CACHE_MB", default_value_t = 64)]
    pub dedup_cache_mb: u64,
    /// Conversions the bloom filter is sized for (it grows to twice the stored count).
    #[arg(long, env = "AFFILYNC_BLOOM_CAPACITY", default_value_t = 10_000_000)]
    pub bloom_capacity: u64,
}

/// Everything [`crate::serve`] needs, resolved: URLs known, secrets loaded.
#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreSettings,
    pub admin_token: Option<Secret>,
    pub public_url: Url,
    pub click_secret: Secret,
    pub http_workers: usize,
    pub pipeline: PipelineConfig,
    pub clicks: ClickWriterConfig,
    pub dedup: DedupConfig,
    /// How long in-flight requests get to finish at shutdown.
    pub shutdown_timeout: Duration,
    pub clock: Clock,
}

impl ServeArgs {
    /// The service configuration, given the ClickHouse URL (managed or not) and the click
    /// secret (given or generated).
    pub fn to_config(&self, clickhouse_url: String, click_secret: Secret) -> Config {
        let public_url = self.public_url.clone().unwrap_or_else(|| {
            format!("http://{}", self.listen)
                .parse()
                .expect("a socket address makes a valid URL")
        });
        Config {
            store: self.store.settings(clickhouse_url),
            admin_token: self.admin_token.clone().filter(|t| !t.expose().is_empty()),
            public_url,
            click_secret,
            http_workers: self
                .http_workers
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from)),
            pipeline: PipelineConfig {
                workers: self.attribution_workers,
                queue_capacity: self.queue_capacity,
                batch_max_rows: self.batch_max_rows,
                batch_max_wait: Duration::from_millis(self.batch_max_wait_ms),
                inserts_per_second: self.inserts_per_second,
                insert_retry_budget: Duration::from_millis(self.insert_retry_budget_ms),
                ..PipelineConfig::default()
            },
            clicks: ClickWriterConfig::default(),
            dedup: DedupConfig {
                cache_bytes: self.dedup_cache_mb * 1024 * 1024,
                bloom_capacity: self.bloom_capacity,
            },
            shutdown_timeout: Duration::from_secs(30),
            clock: Clock::system(),
        }
    }
}

impl StoreArgs {
    pub fn settings(&self, url: String) -> StoreSettings {
        StoreSettings {
            url,
            database: self.clickhouse_database.clone(),
            user: self.clickhouse_user.clone(),
            password: self.clickhouse_password.expose().to_owned(),
        }
    }
}
