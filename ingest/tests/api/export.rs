//! `GET /api/conversions/export`: every matching conversion once, in its latest version.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestApp, clickhouse_execute, json_body};

#[tokio::test]
async fn export_streams_each_conversion_once_in_its_latest_version() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let other = app.network().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let click = app.click(&net.link_url).await;
        let body = json!({"click_id": click, "order_id": format!("e-{i}"), "amount": "12.50",
                          "currency": "EUR", "metadata": {"coupon": "SPRING, \"25\""}});
        let (status, answer) = json_body(app.track(&net.brand_key, &body).await).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        ids.push(answer["data"]["conversion_id"].as_str().unwrap().to_owned());
    }
    let click = app.click(&other.link_url).await;
    let body = json!({"click_id": click, "order_id": "other", "amount": "1.00"});
    app.track(&other.brand_key, &body).await;
    app.patch(
        &net.brand_key,
        &ids[0],
        &json!({"status": "approved", "note": "ok, paid"}),
    )
    .await;
    app.patch(&net.brand_key, &ids[1], &json!({"status": "rejected"}))
        .await;
    app.drain().await;
    // Shipped twice.
    clickhouse_execute(
        &app.database,
        "INSERT INTO conversions SELECT * FROM conversions",
    )
    .await;

    let csv = app.get(&net.brand_key, "/api/conversions/export").await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert!(lines[0].starts_with("conversion_id,order_id,created_at,"));
    let first = lines.iter().find(|l| l.starts_with(&ids[0])).unwrap();
    assert!(first.contains(",approved,,\"ok, paid\","), "{first}");
    assert!(first.contains(",12.50,EUR,1.25,EUR,"), "{first}");
    assert!(
        first.ends_with("\"{\"\"coupon\"\":\"\"SPRING, \\\"\"25\\\"\"\"\"}\""),
        "{first}"
    );

    let ndjson = app
        .http
        .get(app.url("/api/conversions/export?status=pending"))
        .bearer_auth(&net.brand_key)
        .header("Accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert!(
        ndjson.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/x-ndjson")
    );
    let rows: Vec<Value> = ndjson
        .text()
        .await
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(
        rows.len(),
        3,
        "the approved and the rejected are not pending any more"
    );
    let (_, listed) = json_body(
        app.get(&net.brand_key, &format!("/api/conversions/{}", ids[4]))
            .await,
    )
    .await;
    let exported = rows
        .iter()
        .find(|r| r["conversion_id"] == ids[4].as_str())
        .unwrap();
    let mut expected = listed["data"].clone();
    expected["link_id"] = json!(net.link_url.rsplit('/').next().unwrap());
    expected["commission_rule"] = exported["commission_rule"].clone();
    assert_eq!(exported, &expected);

    // Tenancy: the other brand's key, and affiliates only their own.
    let theirs = app
        .get(
            &other.affiliate_key,
            "/api/conversions/export?format=ndjson",
        )
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(theirs.lines().count(), 1);
    assert!(theirs.contains("\"order_id\":\"other\""));
    let (status, body) = json_body(
        app.get(&net.brand_key, "/api/conversions/export?format=xml")
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "format");
    let (status, body) = json_body(
        app.get(&net.brand_key, "/api/conversions/export?date_from=soon")
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("date_from"))
    );
}
