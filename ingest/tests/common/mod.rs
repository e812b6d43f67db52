//! The integration test harness: the real `serve` on a free port, against a private
//! ClickHouse, one database per test, driven over HTTP.

#![allow(dead_code)]

pub mod clickhouse;
pub mod proxy;

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use attributor::clicks::ClickWriterConfig;
use attributor::{Clock, JournalConfig, PipelineConfig, ShipperConfig, StoreSettings};
use ingest::config::{Config, Secret};
use ingest::dedup::DedupConfig;
use rand::RngCore;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::oneshot;

pub const ADMIN_TOKEN: &str = "test-admin-token";
/// Longest a test waits for the journal to reach ClickHouse.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(15);
pub const CLICK_SECRET: &str = "test-click-secret";

/// A clock the test can move forward.
#[derive(Clone, Default)]
pub struct TestClock {
    offset_seconds: Arc<AtomicI64>,
}

impl TestClock {
    pub fn advance(&self, by: time::Duration) {
        self.offset_seconds
            .fetch_add(by.whole_seconds(), Ordering::SeqCst);
    }

    pub fn clock(&self) -> Clock {
        let offset = Arc::clone(&self.offset_seconds);
        Clock::from_fn(move || {
            OffsetDateTime::now_utc() + time::Duration::seconds(offset.load(Ordering::SeqCst))
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
    pub clock: TestClock,
    pub pipeline: PipelineConfig,
    pub shipper: ShipperConfig,
    pub journal_max_bytes: u64,
    pub shutdown_ship_timeout: Duration,
}

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            database: None,
            data_dir: None,
            clickhouse_url: None,
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
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub database: String,
    pub data_dir: PathBuf,
    pub clock: TestClock,
    /// Owns a data directory the test did not give; removed with the app.
    _own_data_dir: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A brand with a campaign, an affiliate with a link to it, and keys for both.
#[derive(Debug, Clone)]
pub struct Network {
    pub brand_id: String,
    pub brand_key: String,
    pub affiliate_id: String,
    pub affiliate_key: String,
    pub campaign_id: String,
    pub link_url: String,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(TestOptions::default()).await
    }

    pub async fn spawn_with(options: TestOptions) -> TestApp {
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
                database: database.clone(),
                user: "default".into(),
                password: String::new(),
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
            dedup: DedupConfig {
                cache_bytes: 8 * 1024 * 1024,
                bloom_capacity: 10_000,
            },
            shutdown_timeout: Duration::from_secs(10),
            shutdown_ship_timeout: options.shutdown_ship_timeout,
            clock: options.clock.clock(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(ingest::serve(config, listener, async {
                let _ = stopped.await;
            }))
        });
        let app = TestApp {
            base,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            database,
            data_dir,
            clock: options.clock,
            _own_data_dir: own_data_dir,
            stop: Some(stop),
            thread: Some(thread),
        };
        app.wait_until_serving().await;
        app
    }

    async fn wait_until_serving(&self) {
        for _ in 0..600 {
            if let Ok(response) = self.http.get(self.url("/healthz")).send().await
                && response.status() == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the service did not start serving");
    }

    /// Graceful shutdown, as on SIGTERM; returns what `serve` returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.stop.take().map(|stop| stop.send(()));
        let thread = self.thread.take().unwrap();
        tokio::task::spawn_blocking(move || thread.join().unwrap())
            .await
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn admin(&self, path: &str, body: Value) -> Response {
        self.http
            .post(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Creates through the admin API and returns `data`, failing the test on anything but 201.
    pub async fn create(&self, path: &str, body: Value) -> Value {
        let response = self.admin(path, body.clone()).await;
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{path} {body}: {answer}");
        answer["data"].clone()
    }

    pub async fn network(&self) -> Network {
        self.network_with(
            json!({"sale": {"percent": "10"}, "lead": {"flat": "2.50"}}),
            "USD",
            30,
        )
        .await
    }

    pub async fn network_with(
        &self,
        commission: Value,
        currency: &str,
        window_days: u16,
    ) -> Network {
        let brand = self
            .create("/api/admin/brands", json!({"name": "Shop"}))
            .await;
        let affiliate = self
            .create("/api/admin/affiliates", json!({"name": "Publisher"}))
            .await;
        let campaign = self
            .create(
                "/api/admin/campaigns",
                json!({
                    "brand_id": brand["brand_id"],
                    "name": "Campaign",
                    "landing_url": "https://shop.example/landing?utm=1",
                    "currency": currency,
                    "cookie_window_days": window_days,
                    "commission": commission,
                }),
            )
            .await;
        self.network_for(&brand, &affiliate, &campaign).await
    }

    /// Keys and a link for an existing brand, affiliate and campaign.
    pub async fn network_for(&self, brand: &Value, affiliate: &Value, campaign: &Value) -> Network {
        let link = self
            .create(
                "/api/admin/links",
                json!({"campaign_id": campaign["campaign_id"], "affiliate_id": affiliate["affiliate_id"]}),
            )
            .await;
        let brand_key = self
            .create(
                "/api/admin/api-keys",
                json!({"brand_id": brand["brand_id"]}),
            )
            .await;
        let affiliate_key = self
            .create(
                "/api/admin/api-keys",
                json!({"affiliate_id": affiliate["affiliate_id"]}),
            )
            .await;
        let text = |v: &Value, k: &str| v[k].as_str().unwrap().to_owned();
        Network {
            brand_id: text(brand, "brand_id"),
            brand_key: text(&brand_key, "api_key"),
            affiliate_id: text(affiliate, "affiliate_id"),
            affiliate_key: text(&affiliate_key, "api_key"),
            campaign_id: text(campaign, "campaign_id"),
            link_url: text(&link, "url"),
        }
    }

    /// Follows a tracking link once and returns the click id it handed out.
    pub async fn click(&self, link_url: &str) -> String {
        let response = self.http.get(link_url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FOUND);
        let location = response.headers()["location"].to_str().unwrap();
        url::Url::parse(location)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "afk_cid")
            .map(|(_, v)| v.into_owned())
            .expect("the redirect carries afk_cid")
    }

    pub async fn track(&self, key: &str, body: &Value) -> Response {
        self.http
            .post(self.url("/api/conversions/track"))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, key: &str, path: &str) -> Response {
        self.http
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch(&self, key: &str, id: &str, body: &Value) -> Response {
        self.http
            .patch(self.url(&format!("/api/conversions/{id}")))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Waits until every record this node journaled is in ClickHouse (the journal's
    /// pending gauge reads 0), at most `DRAIN_DEADLINE`.
    pub async fn drain(&self) {
        let deadline = Instant::now() + DRAIN_DEADLINE;
        loop {
            let metrics = self.metrics().await;
            if metric_value(&metrics, "affilync_journal_pending_records", &[]) == 0.0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the journal did not drain within {DRAIN_DEADLINE:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Rows straight from ClickHouse, as JSON objects, once the journal has drained.
    pub async fn clickhouse_rows(&self, sql: &str) -> Vec<Value> {
        self.drain().await;
        clickhouse_rows(&self.database, sql).await
    }

    pub async fn clickhouse_count(&self, sql: &str) -> u64 {
        let rows = self.clickhouse_rows(sql).await;
        let value = rows[0]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .clone();
        match value {
            Value::String(text) => text.parse().unwrap(),
            other => other.as_u64().unwrap(),
        }
    }

    /// The text of /metrics.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
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
    let response = reqwest::Client::new()
        .post(format!("{}/?database={database}", clickhouse::url()))
        .body(format!("{sql} FORMAT JSONEachRow"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{sql}: {text}");
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
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
