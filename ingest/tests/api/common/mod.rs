//! The integration test harness: the real `serve` on a free port, against a private
//! ClickHouse, one database per test, driven over HTTP.

pub mod api;
pub mod clickhouse;
pub mod cluster;
pub mod load;
pub mod process;
pub mod proxy;
pub mod run_log;

pub use api::{Api, Network};

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use attributor::clicks::ClickWriterConfig;
use attributor::reports::RollupConfig;
use attributor::store::StoreTimeouts;
use attributor::{Clock, JournalConfig, PipelineConfig, ShipperConfig, StoreSettings};
use ingest::config::{Config, HoldRounds};
use ingest::dedup::{DedupConfig, LookupConfig, RaceRepairConfig};
use ingest::rate_limit::RateLimitConfig;
use ingest::secret::Secret;
use rand::RngCore;
use reqwest::{Response, StatusCode};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::oneshot;

pub const ADMIN_TOKEN: &str = "test-admin-token";
/// Longest a test waits for the journal to reach ClickHouse.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(15);
pub const CLICK_SECRET: &str = "test-click-secret";

/// A clock the test can move forward, or stop.
#[derive(Clone, Default)]
pub struct TestClock {
    offset_seconds: Arc<AtomicI64>,
    /// Where a stopped clock stands: nodes sharing it stamp whatever they take at once
    /// alike, as two nodes whose clocks agree to the second do.
    stopped_at: Option<OffsetDateTime>,
}

impl TestClock {
    /// A clock that stays at the moment it was made (and moves only by `advance`).
    pub fn stopped() -> Self {
        Self {
            stopped_at: Some(OffsetDateTime::now_utc()),
            ..Self::default()
        }
    }

    pub fn advance(&self, by: time::Duration) {
        self.offset_seconds
            .fetch_add(by.whole_seconds(), Ordering::SeqCst);
    }

    pub fn clock(&self) -> Clock {
        let offset = Arc::clone(&self.offset_seconds);
        let stopped_at = self.stopped_at;
        Clock::from_fn(move || {
            stopped_at.unwrap_or_else(OffsetDateTime::now_utc)
                + time::Duration::seconds(offset.load(Ordering::SeqCst))
        })
    }
}

pub struct TestOptions {
    /// Reuse a database (a restart); default: a fresh one.
    pub database: Option<String>,
    /// Reuse a data directory and its journal (a restart of the same node); default: a
    /// fresh one, removed when the app is dropped.
    pub data_dir: Option<PathBuf>,
    /// Talk to ClickHouse through this URL (a proxy); default: the test server.
    pub clickhouse_url: Option<String>,
    /// The cluster `clickhouse_url` names the nodes of; default: one server.
    pub cluster: Option<attributor::store::ClusterSettings>,
    pub clock: TestClock,
    pub pipeline: PipelineConfig,
    pub shipper: ShipperConfig,
    pub journal_max_bytes: u64,
    pub shutdown_ship_timeout: Duration,
    pub timeouts: StoreTimeouts,
    pub lookup_timeout: Duration,
    pub dedup: DedupConfig,
    /// How often the node looks for orders two nodes took at once; default: often, so that
    /// a test sees them repaired promptly.
    pub race_check_interval: Duration,
    pub rate_limits: RateLimitConfig,
    /// Off by default: reports then read what the journal shipped, at once.
    pub report_rollups: RollupConfig,
    pub hold_rounds: HoldRounds,
    /// Generous by default, so that small listings' totals are exact however busy the
    /// machine running the tests is.
    pub count_budget: Duration,
}

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            database: None,
            data_dir: None,
            clickhouse_url: None,
            cluster: None,
            clock: TestClock::default(),
            pipeline: PipelineConfig::default(),
            // Ships often, so that tests which read ClickHouse wait little for the journal.
            shipper: ShipperConfig {
                interval: Duration::from_millis(20),
                retry_first: Duration::from_millis(20),
                retry_max: Duration::from_millis(200),
                ..ShipperConfig::default()
            },
            journal_max_bytes: 64 * 1024 * 1024,
            shutdown_ship_timeout: Duration::from_secs(10),
            timeouts: StoreTimeouts::default(),
            lookup_timeout: LookupConfig::default().timeout,
            dedup: DedupConfig {
                cache_bytes: 8 * 1024 * 1024,
                bloom_capacity: 10_000,
            },
            race_check_interval: Duration::from_millis(100),
            rate_limits: RateLimitConfig::default(),
            report_rollups: RollupConfig {
                enabled: false,
                ..RollupConfig::default()
            },
            hold_rounds: HoldRounds {
                every: Duration::from_millis(500),
                page: 1_000,
            },
            count_budget: Duration::from_secs(30),
        }
    }
}

/// The rollups' margin in tests that turn them on: a day is recomputed by every pass until
/// this long after its latest mark, which must outlast an INSERT's materialized views (the
/// mark may be readable before the listing copy the recompute reads). A second was too
/// short while the whole suite loaded the test server: a day's last recompute missed rows.
pub const ROLLUP_MARGIN: Duration = Duration::from_secs(5);

/// The real `serve`, in this process, on a free port; dereferences to its [`Api`].
pub struct TestApp {
    pub api: Api,
    /// Owns a data directory the test did not give; removed with the app.
    _own_data_dir: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(TestOptions::default()).await
    }

    pub async fn spawn_with(options: TestOptions) -> TestApp {
        run_log::install();
        let database = options.database.unwrap_or_else(|| {
            let mut bytes = [0u8; 6];
            rand::rng().fill_bytes(&mut bytes);
            format!("test_{}", attributor::domain::lower_hex(&bytes))
        });
        let own_data_dir = match options.data_dir {
            Some(_) => None,
            None => Some(tempfile::tempdir().unwrap()),
        };
        let data_dir = options
            .data_dir
            .unwrap_or_else(|| own_data_dir.as_ref().unwrap().path().to_owned());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let config = Config {
            store: StoreSettings {
                url: options.clickhouse_url.unwrap_or_else(clickhouse::url),
                cluster: options.cluster,
                database: database.clone(),
                user: "default".into(),
                password: String::new(),
                timeouts: options.timeouts,
            },
            admin_token: Some(Secret::new(ADMIN_TOKEN)),
            public_url: base.parse().unwrap(),
            click_secret: Secret::new(CLICK_SECRET),
            http_workers: 2,
            pipeline: options.pipeline,
            journal: JournalConfig {
                dir: data_dir.join("journal"),
                max_bytes: options.journal_max_bytes,
            },
            shipper: options.shipper,
            clicks: ClickWriterConfig {
                flush_interval: Duration::from_millis(20),
                ..ClickWriterConfig::default()
            },
            lookup: LookupConfig {
                timeout: options.lookup_timeout,
                ..LookupConfig::default()
            },
            // Often, so that what one node creates reaches another within a test's patience.
            catalog_refresh: Duration::from_millis(100),
            dedup: options.dedup,
            race_repair: RaceRepairConfig {
                interval: options.race_check_interval,
                ..RaceRepairConfig::default()
            },
            rate_limits: options.rate_limits,
            shutdown_timeout: Duration::from_secs(10),
            shutdown_ship_timeout: options.shutdown_ship_timeout,
            report_max_days: 400,
            report_rollups: options.report_rollups,
            hold_rounds: options.hold_rounds,
            count_budget: options.count_budget,
            clock: options.clock.clock(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(ingest::serve(config, listener, async {
                let _ = stopped.await;
            }))
        });
        let app = TestApp {
            api: Api::new(base, database),
            _own_data_dir: own_data_dir,
            stop: Some(stop),
            thread: Some(thread),
        };
        app.wait_until_serving().await;
        app
    }

    /// Graceful shutdown, as on SIGTERM; returns what `serve` returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.stop.take().map(|stop| stop.send(()));
        let thread = self.thread.take().unwrap();
        tokio::task::spawn_blocking(move || thread.join().unwrap())
            .await
            .unwrap()
    }
}

impl std::ops::Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Rows of `database` straight from the test ClickHouse, as JSON objects.
pub async fn clickhouse_rows(database: &str, sql: &str) -> Vec<Value> {
    clickhouse_rows_at(&clickhouse::url(), database, sql).await
}

/// Runs `affilync check` (the real binary) on `database` of the test ClickHouse, with
/// `extra` arguments; returns whether it found everything in agreement, and its output.
pub async fn affilync_check(database: &str, extra: &[&str]) -> (bool, String) {
    affilync_check_at(&clickhouse::url(), database, extra).await
}

/// `affilync check` against the ClickHouse at `urls` (several, comma-separated, with
/// `--clickhouse-cluster` among `extra` for a cluster).
pub async fn affilync_check_at(urls: &str, database: &str, extra: &[&str]) -> (bool, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_affilync"));
    command
        .arg("check")
        .args(["--clickhouse-url", urls])
        .args(["--clickhouse-database", database])
        .args(extra);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

/// Runs a statement that returns nothing (DDL, OPTIMIZE) in `database` of the test
/// ClickHouse.
pub async fn clickhouse_execute(database: &str, sql: &str) {
    clickhouse_answer(&clickhouse::url(), database, sql).await;
}

/// Rows of `database` straight from the ClickHouse at `url`, as JSON objects.
pub async fn clickhouse_rows_at(url: &str, database: &str, sql: &str) -> Vec<Value> {
    let text = clickhouse_answer(url, database, &format!("{sql} FORMAT JSONEachRow")).await;
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// What ClickHouse's HTTP interface answers to `sql` in `database`, failing the test on
/// an error.
pub async fn clickhouse_answer(url: &str, database: &str, sql: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{url}/?database={database}"))
        .body(sql.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{sql}: {text}");
    text
}

/// The sum of a metric's samples whose labels include all of `labels`.
pub fn metric_value(metrics: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| line.starts_with(name) && line[name.len()..].starts_with(['{', ' ']))
        .filter(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub async fn json_body(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// The one number a count query's rows hold (ClickHouse's JSON writes UInt64 as a string).
pub fn single_number(rows: &[Value]) -> u64 {
    let value = rows[0].as_object().unwrap().values().next().unwrap();
    json_u64(value)
}

/// A ClickHouse JSON number: UInt64 is written as a string, narrower types as numbers.
pub fn json_u64(value: &Value) -> u64 {
    match value {
        Value::String(text) => text.parse().unwrap(),
        other => other.as_u64().unwrap(),
    }
}
