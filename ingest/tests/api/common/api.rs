//! Talking to a running service over its HTTP API, whichever way it runs: in this process
//! ([`super::TestApp`]) or as its own process ([`super::process::ServiceProcess`]).

use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use super::{ADMIN_TOKEN, DRAIN_DEADLINE, clickhouse_rows, metric_value};

/// A service's address, a client for it, and the database it writes.
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub database: String,
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

impl Api {
    pub fn new(base: String, database: String) -> Api {
        Api {
            base,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            database,
        }
    }

    /// Waits until `/healthz` answers, at most 30 s.
    pub async fn wait_until_serving(&self) {
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
