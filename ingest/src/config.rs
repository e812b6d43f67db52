//! Command line and environment. Every option has a flag and an `AFFILYNC_*` variable; the
//! README's configuration table lists them all.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use attributor::clicks::ClickWriterConfig;
use attributor::reports::RollupConfig;
use attributor::store::{ClusterSettings, StoreTimeouts};
use attributor::{Clock, JournalConfig, PipelineConfig, ShipperConfig, StoreSettings};
use clap::{Args, Parser, Subcommand};
use url::Url;

use crate::dedup::{DedupConfig, LookupConfig, RaceRepairConfig};
use crate::rate_limit::{Bucket, RateLimitConfig};
use crate::secret::Secret;

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
    /// Check that commissions and listing copies agree with the conversions; exit 1 if not.
    Check(CheckArgs),
    /// Print the OpenAPI 3.1 document of the HTTP API (also served at /openapi.json).
    Openapi,
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only this brand's conversions.
    #[arg(long)]
    pub brand: Option<String>,
    /// Only conversions created at or after this date or date-time (UTC).
    #[arg(long)]
    pub from: Option<String>,
    /// Only conversions created up to this date (inclusive) or date-time.
    #[arg(long)]
    pub until: Option<String>,
    /// Delete the stray rows found and write the conversions concerned again.
    #[arg(long)]
    pub repair: bool,
}

/// Where the ClickHouse is and how long to wait for it: the service's flags, also
/// flattened into the load generator's, so both read the same names and variables.
#[derive(Debug, Clone, Args)]
pub struct ClickhouseArgs {
    /// ClickHouse HTTP URL, or several separated by commas (nodes of one cluster, used one
    /// at a time with failover); unset starts a managed local clickhouse-server.
    #[arg(long, env = "AFFILYNC_CLICKHOUSE_URL")]
    pub clickhouse_url: Option<String>,
    /// The ClickHouse cluster (its name in the servers' remote_servers) the URLs belong to:
    /// tables are created replicated and sharded ON CLUSTER. Unset: one server.
    #[arg(long, env = "AFFILYNC_CLICKHOUSE_CLUSTER")]
    pub clickhouse_cluster: Option<String>,
    /// On a cluster: replicas of a shard that must hold an INSERT before ClickHouse
    /// acknowledges it; 0 means all of them.
    #[arg(long, env = "AFFILYNC_CLICKHOUSE_INSERT_QUORUM", default_value_t = 0)]
    pub clickhouse_insert_quorum: u32,
    /// On a cluster: longest wait, in ms, for every node to apply a schema statement (and
    /// for an INSERT's quorum); past it the migration fails naming the cause.
    #[arg(
        long,
        env = "AFFILYNC_CLICKHOUSE_DDL_TIMEOUT_MS",
        default_value_t = 30_000
    )]
    pub clickhouse_ddl_timeout_ms: u64,
    /// Database, created and migrated at start.
    #[arg(long, env = "AFFILYNC_CLICKHOUSE_DATABASE", default_value = "affilync")]
    pub clickhouse_database: String,
    /// ClickHouse user the service connects as (needs CREATE on its database for the
    /// migrations, then INSERT and SELECT).
    #[arg(long, env = "AFFILYNC_CLICKHOUSE_USER", default_value = "default")]
    pub clickhouse_user: String,
    /// ClickHouse password.
    #[arg(
        long,
        env = "AFFILYNC_CLICKHOUSE_PASSWORD",
        default_value = "",
        hide_env_values = true
    )]
    pub clickhouse_password: Secret,
    /// Longest wait, in ms, for a ClickHouse query someone waits on (look-ups, listings,
    /// catalog reads); past it the answer is 503.
    #[arg(
        long,
        env = "AFFILYNC_CLICKHOUSE_READ_TIMEOUT_MS",
        default_value_t = 5_000
    )]
    pub clickhouse_read_timeout_ms: u64,
    /// Longest wait, in ms, for a ClickHouse INSERT (shipping, admin creates).
    #[arg(
        long,
        env = "AFFILYNC_CLICKHOUSE_WRITE_TIMEOUT_MS",
        default_value_t = 30_000
    )]
    pub clickhouse_write_timeout_ms: u64,
    /// Longest wait, in ms, for work on whole tables (migrations, loading the catalog,
    /// seeding the dedup bloom filter).
    #[arg(
        long,
        env = "AFFILYNC_CLICKHOUSE_BULK_TIMEOUT_MS",
        default_value_t = 300_000
    )]
    pub clickhouse_bulk_timeout_ms: u64,
}

/// The store the service writes: its ClickHouse and its data directory.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    #[command(flatten)]
    pub clickhouse: ClickhouseArgs,
    /// Managed ClickHouse data and local state: the journal, the generated click secret.
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
    /// Connections the kernel queues for accepting (capped by net.core.somaxconn).
    #[arg(long, env = "AFFILYNC_LISTEN_BACKLOG", default_value_t = 4096)]
    pub listen_backlog: u32,
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
    /// Most conversions per journal append (one fdatasync each).
    #[arg(long, env = "AFFILYNC_BATCH_MAX_ROWS", default_value_t = 10_000)]
    pub batch_max_rows: usize,
    /// How long a batch's first conversion waits for company (0: a batch is what queued
    /// during the previous fdatasync).
    #[arg(long, env = "AFFILYNC_BATCH_MAX_WAIT_MS", default_value_t = 0)]
    pub batch_max_wait_ms: u64,
    /// Unshipped journal records, in MiB, past which new conversions get 503.
    #[arg(long, env = "AFFILYNC_JOURNAL_MAX_MB", default_value_t = 1024)]
    pub journal_max_mb: u64,
    /// Shortest time between two shipments to ClickHouse (one INSERT per table each).
    #[arg(long, env = "AFFILYNC_SHIP_INTERVAL_MS", default_value_t = 1_000)]
    pub ship_interval_ms: u64,
    /// Most journal records one shipment takes.
    #[arg(long, env = "AFFILYNC_SHIP_MAX_RECORDS", default_value_t = 100_000)]
    pub ship_max_records: usize,
    /// How often, in ms, each node reads the brands, affiliates, campaigns, links and keys
    /// other nodes created (a key made on one node works on the others from then on).
    #[arg(long, env = "AFFILYNC_CATALOG_REFRESH_MS", default_value_t = 2_000)]
    pub catalog_refresh_ms: u64,
    /// How often, in ms, each node looks for orders that two nodes took at once (with
    /// different creation stamps) and repairs their listing copies and commissions.
    #[arg(
        long,
        env = "AFFILYNC_RACE_CHECK_INTERVAL_MS",
        default_value_t = 10_000
    )]
    pub race_check_interval_ms: u64,
    /// Memory for the cache of recently seen conversions answering replays.
    #[arg(long, env = "AFFILYNC_DEDUP_CACHE_MB", default_value_t = 48)]
    pub dedup_cache_mb: u64,
    /// Conversions the bloom filter is sized for at least (1.25 × the stored count when
    /// that is more; a full filter is rebuilt larger).
    #[arg(long, env = "AFFILYNC_BLOOM_CAPACITY", default_value_t = 10_000_000)]
    pub bloom_capacity: u64,
    /// Requests a second each API key may make, sustained (0: no limit); the admin API
    /// sets a key's own.
    #[arg(
        long,
        env = "AFFILYNC_RATE_LIMIT_KEY_PER_SECOND",
        default_value_t = 2_000
    )]
    pub rate_limit_key_per_second: u32,
    /// Requests an API key may make at once above its sustained rate.
    #[arg(long, env = "AFFILYNC_RATE_LIMIT_KEY_BURST", default_value_t = 10_000)]
    pub rate_limit_key_burst: u32,
    /// Pixel reports and tracking-link clicks a second from one client address (0: no
    /// limit). The address is the connection's peer: behind a proxy, every visitor shares
    /// the proxy's, so raise it or set 0 there.
    #[arg(
        long,
        env = "AFFILYNC_RATE_LIMIT_ADDRESS_PER_SECOND",
        default_value_t = 100
    )]
    pub rate_limit_address_per_second: u32,
    /// Pixel reports and clicks one client address may make at once.
    #[arg(
        long,
        env = "AFFILYNC_RATE_LIMIT_ADDRESS_BURST",
        default_value_t = 1_000
    )]
    pub rate_limit_address_burst: u32,
    /// Longest time range, in days, one report may cover.
    #[arg(long, env = "AFFILYNC_REPORT_MAX_DAYS", default_value_t = 400)]
    pub report_max_days: u32,
    /// Keep hourly report rollups and answer reports from them where they are exact
    /// (false: every report reads the raw rows).
    #[arg(long, env = "AFFILYNC_REPORT_ROLLUPS", default_value_t = true, action = clap::ArgAction::Set)]
    pub report_rollups: bool,
    /// Time between two refreshes of the report rollups: how far rollup reports may lag.
    #[arg(long, env = "AFFILYNC_REPORT_REFRESH_MS", default_value_t = 5_000)]
    pub report_refresh_ms: u64,
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
    pub journal: JournalConfig,
    pub shipper: ShipperConfig,
    pub clicks: ClickWriterConfig,
    pub dedup: DedupConfig,
    pub race_repair: RaceRepairConfig,
    pub lookup: LookupConfig,
    pub rate_limits: RateLimitConfig,
    /// How often the catalog reads what other nodes created.
    pub catalog_refresh: Duration,
    /// How long in-flight requests get to finish at shutdown.
    pub shutdown_timeout: Duration,
    /// How long the shipper may keep shipping at shutdown; what is left waits in the
    /// journal for the next start.
    pub shutdown_ship_timeout: Duration,
    /// Longest time range, in days, one report may cover.
    pub report_max_days: u32,
    pub report_rollups: RollupConfig,
    pub hold_rounds: HoldRounds,
    /// How long a listing waits for its exact `meta.total` before answering an estimate.
    pub count_budget: Duration,
    pub clock: Clock,
}

impl ServeArgs {
    /// The service configuration, given the ClickHouse URL (managed or not), the click
    /// secret (given or generated) and the address actually bound (port 0 becomes a real
    /// port, which tracking links must carry).
    pub fn to_config(
        &self,
        clickhouse_url: String,
        click_secret: Secret,
        bound: SocketAddr,
    ) -> Config {
        let public_url = self.public_url.clone().unwrap_or_else(|| {
            format!("http://{bound}")
                .parse()
                .expect("a socket address makes a valid URL")
        });
        Config {
            store: self.store.clickhouse.settings(clickhouse_url),
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
                ..PipelineConfig::default()
            },
            journal: JournalConfig {
                dir: self.store.data_dir.join("journal"),
                max_bytes: self.journal_max_mb.saturating_mul(1024 * 1024),
            },
            shipper: ShipperConfig {
                interval: Duration::from_millis(self.ship_interval_ms),
                max_records: self.ship_max_records.max(1),
                ..ShipperConfig::default()
            },
            clicks: ClickWriterConfig::default(),
            dedup: DedupConfig {
                cache_bytes: self.dedup_cache_mb * 1024 * 1024,
                bloom_capacity: self.bloom_capacity,
            },
            race_repair: RaceRepairConfig {
                interval: Duration::from_millis(self.race_check_interval_ms.max(1)),
                ..RaceRepairConfig::default()
            },
            lookup: LookupConfig::default(),
            rate_limits: RateLimitConfig {
                per_key: Bucket::new(self.rate_limit_key_per_second, self.rate_limit_key_burst),
                per_address: Bucket::new(
                    self.rate_limit_address_per_second,
                    self.rate_limit_address_burst,
                ),
            },
            catalog_refresh: Duration::from_millis(self.catalog_refresh_ms),
            shutdown_timeout: Duration::from_secs(30),
            shutdown_ship_timeout: Duration::from_secs(10),
            report_max_days: self.report_max_days,
            hold_rounds: HoldRounds {
                every: Duration::from_millis(self.catalog_refresh_ms) * 5,
                page: 1_000,
            },
            count_budget: crate::list_totals::DEFAULT_COUNT_BUDGET,
            report_rollups: RollupConfig {
                enabled: self.report_rollups,
                interval: Duration::from_millis(self.report_refresh_ms),
                ..RollupConfig::default()
            },
            clock: Clock::system(),
        }
    }
}

impl ClickhouseArgs {
    /// The cluster settings, when a cluster is named.
    pub fn cluster(&self) -> Option<ClusterSettings> {
        let name = self.clickhouse_cluster.as_deref()?.trim();
        (!name.is_empty()).then(|| ClusterSettings {
            insert_quorum: self.clickhouse_insert_quorum,
            ddl_timeout: Duration::from_millis(self.clickhouse_ddl_timeout_ms),
            ..ClusterSettings::new(name)
        })
    }

    /// The store's settings for the ClickHouse at `url`: the flag's, or a managed one's.
    pub fn settings(&self, url: String) -> StoreSettings {
        StoreSettings {
            url,
            cluster: self.cluster(),
            database: self.clickhouse_database.clone(),
            user: self.clickhouse_user.clone(),
            password: self.clickhouse_password.expose().to_owned(),
            timeouts: StoreTimeouts {
                read: Duration::from_millis(self.clickhouse_read_timeout_ms),
                write: Duration::from_millis(self.clickhouse_write_timeout_ms),
                bulk: Duration::from_millis(self.clickhouse_bulk_timeout_ms),
            },
        }
    }
}

/// When the rounds approving held conversions run and how much each reads at a time.
#[derive(Debug, Clone, Copy)]
pub struct HoldRounds {
    pub every: Duration,
    /// Conversions read and approved at a time; a round walks a campaign's whole backlog
    /// in pages of this size.
    pub page: u64,
}
