//! What the logs of a node say: one JSON object per line when asked, the request's id on
//! every line written while answering it, and nothing anyone could use to call the API or
//! find a shopper.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::process::ServiceProcess;
use crate::common::{ADMIN_TOKEN, CLICK_SECRET, clickhouse, json_body};

const EMAIL: &str = "shopper.private@example.org";

/// A node at debug level with JSON logs is taken through every kind of call: admin
/// creates, a click, JSON and postback reports (the key in the query string), a pixel
/// report with an e-mail, a replay, a conflict, a status change, listings, an unknown key,
/// bad input. Every line parses as JSON; the id a caller sent comes back in
/// `X-Request-Id` and is on the lines about that request; a request without one gets a
/// fresh id; no token, key, secret or e-mail appears anywhere in the log.
#[tokio::test]
async fn logs_are_json_lines_with_request_ids_and_no_secrets() {
    let data_dir = tempfile::tempdir().unwrap();
    let database = format!(
        "test_{}",
        attributor::domain::lower_hex(&rand::random::<[u8; 6]>())
    );
    let node = ServiceProcess::start_with(
        Some(&clickhouse::url()),
        &database,
        data_dir.path(),
        &[("AFFILYNC_LOG_FORMAT", "json"), ("RUST_LOG", "debug")],
    )
    .await;
    let net = node.network().await;
    let click = node.click(&net.link_url).await;

    let traced = node
        .http
        .post(node.url("/api/conversions/track"))
        .bearer_auth(&net.brand_key)
        .header("X-Request-Id", "shop-42-retry-1")
        .json(&json!({"click_id": click, "order_id": "log-1", "amount": "10.00", "customer_email": EMAIL}))
        .send()
        .await
        .unwrap();
    assert_eq!(traced.status(), StatusCode::CREATED);
    assert_eq!(traced.headers()["x-request-id"], "shop-42-retry-1");
    let (_, created) = json_body(traced).await;
    let id = created["data"]["conversion_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let untraced = node.get(&net.brand_key, "/api/conversions").await;
    let generated = untraced.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(generated.len(), 32, "{generated}");
    let hostile = node
        .http
        .get(node.url("/healthz"))
        .header("X-Request-Id", "two words\tand a tab")
        .send()
        .await
        .unwrap();
    assert_ne!(hostile.headers()["x-request-id"], "two words\tand a tab");

    let postback = format!(
        "/api/conversions/postback?api_key={}&click_id={click}&order_id=log-2&amount=5&customer_email={EMAIL}",
        net.brand_key
    );
    let (status, _) = json_body(node.http.get(node.url(&postback)).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::CREATED);
    let pixel = format!(
        "/api/conversions/pixel?click_id={click}&order_id=log-3&amount=7&customer_email={EMAIL}"
    );
    let response = node.http.get(node.url(&pixel)).send().await.unwrap();
    assert_eq!(response.headers()["x-affilync-outcome"], "stored");
    for (body, expected) in [
        (
            json!({"click_id": click, "order_id": "log-1", "amount": "10.00", "customer_email": EMAIL}),
            StatusCode::OK,
        ),
        (
            json!({"click_id": click, "order_id": "log-1", "amount": "11.00"}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"click_id": click, "order_id": "log-4", "amount": "-1", "customer_email": EMAIL}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        assert_eq!(
            node.track(&net.brand_key, &body).await.status(),
            expected,
            "{body}"
        );
    }
    let patch = node
        .patch(
            &net.brand_key,
            &id,
            &json!({"status": "approved", "note": "ok"}),
        )
        .await;
    assert_eq!(patch.status(), StatusCode::OK);
    assert_eq!(
        node.get(&net.affiliate_key, "/api/conversions")
            .await
            .status(),
        StatusCode::OK
    );
    let unknown = node
        .get("afk_this_key_does_not_exist", "/api/conversions")
        .await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    node.drain().await;

    let log = node.log();
    let lines: Vec<Value> = log
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"))
        })
        .collect();
    assert!(lines.iter().all(Value::is_object));
    let request_ids: HashSet<&str> = lines
        .iter()
        .filter_map(|line| line["span"]["request_id"].as_str())
        .collect();
    assert!(request_ids.contains("shop-42-retry-1"), "{request_ids:?}");
    assert!(request_ids.contains(generated.as_str()), "{request_ids:?}");

    let secrets = [
        ("the admin token", ADMIN_TOKEN),
        ("the click secret", CLICK_SECRET),
        ("the brand key", net.brand_key.as_str()),
        ("the affiliate key", net.affiliate_key.as_str()),
        ("an unknown key", "afk_this_key_does_not_exist"),
        ("an e-mail", EMAIL),
        ("an e-mail, encoded", "shopper.private%40example.org"),
    ];
    for (what, secret) in secrets {
        let line = log.lines().find(|line| line.contains(secret));
        assert!(
            line.is_none(),
            "{what} is in the log: {}",
            line.unwrap_or_default()
        );
    }
}
