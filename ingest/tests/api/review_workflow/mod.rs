//! The brand's review workflow: bulk decisions (JSON and CSV), the history of every status
//! change, hold periods that approve automatically, and keyset paging of the queue.

mod bulk;
mod csv_upload;
mod history;
mod holds;
mod paging;

use crate::common::{Network, TestApp, TestClock, TestOptions, json_body};
use ingest::config::HoldRounds;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn report(app: &TestApp, net: &Network, order: &str) -> String {
    let click = app.click(&net.link_url).await;
    let body = json!({"click_id": click, "order_id": order, "amount": "20.00"});
    let (status, answer) = json_body(app.track(&net.brand_key, &body).await).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer["data"]["conversion_id"].as_str().unwrap().to_owned()
}

async fn bulk(app: &TestApp, key: &str, body: &Value) -> (StatusCode, Value) {
    let response = app
        .http
        .post(app.url("/api/conversions/status"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    json_body(response).await
}

async fn status_of(app: &TestApp, key: &str, id: &str) -> String {
    let (status, body) = json_body(app.get(key, &format!("/api/conversions/{id}")).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]["status"].as_str().unwrap().to_owned()
}

fn results(answer: &Value) -> Vec<(String, String, Option<String>)> {
    answer["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["conversion_id"].as_str().unwrap().to_owned(),
                item["result"].as_str().unwrap().to_owned(),
                item["status"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn row(id: &str, result: &str, status: Option<&str>) -> (String, String, Option<String>) {
    (id.to_owned(), result.to_owned(), status.map(str::to_owned))
}

async fn history(app: &TestApp, key: &str, id: &str) -> (StatusCode, Value) {
    json_body(
        app.get(key, &format!("/api/conversions/{id}/history"))
            .await,
    )
    .await
}

fn changes(answer: &Value) -> Vec<(String, String, String, String)> {
    answer["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["from"].as_str().unwrap().to_owned(),
                row["to"].as_str().unwrap().to_owned(),
                row["actor"].as_str().unwrap().to_owned(),
                row["note"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn change(from: &str, to: &str, actor: &str, note: &str) -> (String, String, String, String) {
    (from.into(), to.into(), actor.into(), note.into())
}

/// A brand, an affiliate and a campaign holding conversions for `hold_days`.
async fn held_network(app: &TestApp, hold_days: u16) -> Network {
    let brand = app
        .create("/api/admin/brands", json!({"name": "Held"}))
        .await;
    let affiliate = app
        .create("/api/admin/affiliates", json!({"name": "Publisher"}))
        .await;
    let campaign = app
        .create(
            "/api/admin/campaigns",
            json!({"brand_id": brand["brand_id"], "name": "Held", "hold_days": hold_days,
                   "landing_url": "https://shop.example/", "commission": {"sale": {"percent": "10"}}}),
        )
        .await;
    assert_eq!(campaign["hold_days"], hold_days);
    app.network_for(&brand, &affiliate, &campaign).await
}

/// Waits (at most 15 s) until the node answers the conversion with `status`.
async fn until_status(app: &TestApp, key: &str, id: &str, status: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (_, body) = json_body(app.get(key, &format!("/api/conversions/{id}")).await).await;
        if body["data"]["status"] == status {
            return body["data"].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{id} did not become {status}: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn listed(answer: &Value) -> Vec<String> {
    let mut ids: Vec<String> = answer["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["conversion_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

async fn upload(app: &TestApp, key: &str, csv: &str) -> (StatusCode, Value) {
    let response = app
        .http
        .post(app.url("/api/conversions/status"))
        .bearer_auth(key)
        .header("Content-Type", "text/csv; charset=utf-8")
        .body(csv.to_owned())
        .send()
        .await
        .unwrap();
    json_body(response).await
}
