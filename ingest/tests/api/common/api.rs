//! Talking to a running service over its HTTP API, whichever way it runs: in this process
//! ([`super::TestApp`]) or as its own process ([`super::process::ServiceProcess`]).

use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

pub use ingest::seeding::Network;
use ingest::seeding::{AdminClient, CampaignTerms, NetworkPlan, SeedingError};

use super::{ADMIN_TOKEN, DRAIN_DEADLINE, clickhouse_rows, metric_value};

/// A service's address, a client for it, and the database it writes.
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub database: String,
    seeding: AdminClient,
}

impl Api {
    pub fn new(base: String, database: String) -> Api {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            // The service closes a connection idle for 5 s (actix's keep-alive). A pooled
            // connection kept longer can be reused at the moment the server closes it, and
            // the request fails with IncompleteMessage: seen when a test waited several
            // seconds between two calls to one node. Drop idle connections first.
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        Api {
            seeding: AdminClient::new(http.clone(), &base, ADMIN_TOKEN),
            base,
            http,
            database,
        }
    }

    /// Waits until `/healthz` answers, at most 30 s.
    pub async fn wait_until_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = self.http.get(self.url("/healthz")).send().await
                && response.status() == StatusCode::OK
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the service did not start serving"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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
        let created = self.seeding.create(path, &body).await;
        created.unwrap_or_else(|error| panic!("{:#} (sent {body})", anyhow::Error::from(error)))
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
        let plan = NetworkPlan {
            brand_name: "Shop".into(),
            affiliate_name: "Publisher".into(),
            campaign: CampaignTerms {
                name: "Campaign".into(),
                landing_url: "https://shop.example/landing?utm=1".into(),
                currency: currency.into(),
                cookie_window_days: window_days,
                commission,
            },
        };
        seeded(self.seeding.network(&plan).await)
    }

    /// Keys and a link for an existing brand, affiliate and campaign, given as the admin
    /// API answered their creation.
    pub async fn network_for(&self, brand: &Value, affiliate: &Value, campaign: &Value) -> Network {
        let id = |created: &Value, key: &str| created[key].as_str().unwrap().to_owned();
        let (brand_id, affiliate_id, campaign_id) = (
            id(brand, "brand_id"),
            id(affiliate, "affiliate_id"),
            id(campaign, "campaign_id"),
        );
        let network = self
            .seeding
            .network_for(&brand_id, &affiliate_id, &campaign_id);
        seeded(network.await)
    }

    /// Follows a tracking link once and returns the click id it handed out.
    pub async fn click(&self, link_url: &str) -> String {
        seeded(self.seeding.click(link_url).await)
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

    /// Waits until every record this node journaled, and every click it answered, is in
    /// ClickHouse (the journal's pending records and the click queue read 0 in two scrapes
    /// in a row), at most `DRAIN_DEADLINE`. One scrape is not enough: it samples pending
    /// records before it reads the click queue, so a batch of clicks journaled in between
    /// is in neither.
    pub async fn drain(&self) {
        let deadline = Instant::now() + DRAIN_DEADLINE;
        let mut idle = 0;
        loop {
            let metrics = self.metrics().await;
            let drained = [
                "affilync_journal_pending_records",
                "affilync_click_queue_depth",
            ]
            .iter()
            .all(|name| metric_value(&metrics, name, &[]) == 0.0);
            idle = if drained { idle + 1 } else { 0 };
            if idle == 2 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the journal did not drain within {DRAIN_DEADLINE:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The metric now, summed over samples with `labels`.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric_value(&self.metrics().await, name, labels)
    }

    /// Waits until the metric (summed over samples with `labels`) satisfies `done`, at most
    /// `DRAIN_DEADLINE`, and returns its value.
    pub async fn wait_for_metric(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        done: impl Fn(f64) -> bool,
    ) -> f64 {
        let deadline = Instant::now() + DRAIN_DEADLINE;
        loop {
            let value = metric_value(&self.metrics().await, name, labels);
            if done(value) {
                return value;
            }
            assert!(Instant::now() < deadline, "{name} stayed at {value}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `/readyz` says the dedup bloom filter is seeded, at most `DRAIN_DEADLINE`.
    pub async fn wait_until_bloom_seeded(&self) {
        let deadline = Instant::now() + DRAIN_DEADLINE;
        loop {
            let ready: Value = self
                .http
                .get(self.url("/readyz"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if ready["dedup_bloom_seeded"] == true {
                return;
            }
            assert!(Instant::now() < deadline, "the bloom filter was not seeded");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Rows straight from ClickHouse, as JSON objects, once the journal has drained.
    pub async fn clickhouse_rows(&self, sql: &str) -> Vec<Value> {
        self.drain().await;
        clickhouse_rows(&self.database, sql).await
    }

    /// Rows of `from` (a table, with FINAL where row versions must be collapsed), once the
    /// journal has drained.
    pub async fn count_rows(&self, from: &str) -> u64 {
        self.clickhouse_count(&format!("SELECT count() FROM {from}"))
            .await
    }

    /// Rows of `from` (as for [`Self::count_rows`]) that meet `condition`.
    pub async fn count_where(&self, from: &str, condition: &str) -> u64 {
        self.clickhouse_count(&format!("SELECT count() FROM {from} WHERE {condition}"))
            .await
    }

    /// The single number `sql` selects, once the journal has drained.
    pub async fn clickhouse_count(&self, sql: &str) -> u64 {
        super::single_number(&self.clickhouse_rows(sql).await)
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

/// What seeding made, or the test's failure with the reason and its causes.
fn seeded<T>(result: Result<T, SeedingError>) -> T {
    result.unwrap_or_else(|error| panic!("{:#}", anyhow::Error::from(error)))
}
