//! What operators rely on: 503 instead of a lost conversion when ClickHouse is away or the
//! queue is full, a draining shutdown, health endpoints and metrics.

mod common;

use std::time::Duration;

use attributor::PipelineConfig;
use common::proxy::Proxy;
use common::{TestApp, TestOptions, json_body, metric_value};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn clickhouse_unreachable_means_503_and_nothing_acknowledged() {
    let proxy = Proxy::start(&common::clickhouse::url()).await;
    let app = TestApp::spawn_with(TestOptions {
        clickhouse_url: Some(proxy.url.clone()),
        ..TestOptions::default()
    })
    .await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;
    let body = json!({"click_id": click, "order_id": "while-down", "amount": "10.00"});

    proxy.cut();
    let response = app.track(&net.brand_key, &body).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(
        response.headers()["x-affilync-unavailable"],
        "store_unavailable"
    );
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "unavailable");
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);

    proxy.restore();
    assert_eq!(
        app.clickhouse_count("SELECT count() FROM conversions")
            .await,
        0
    );
    let (status, answer) = json_body(app.track(&net.brand_key, &body).await).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the retry is the first acknowledgement: {answer}"
    );
    assert_eq!(
        app.clickhouse_count("SELECT count() FROM conversions")
            .await,
        1
    );
    let metrics = app.metrics().await;
    assert!(
        metric_value(
            &metrics,
            "affilync_unavailable_total",
            &[("reason", "store_unavailable")]
        ) >= 1.0
    );
    assert!(
        metric_value(
            &metrics,
            "affilync_clickhouse_insert_errors_total",
            &[("kind", "retryable")]
        ) >= 1.0
    );
}

#[tokio::test]
async fn a_full_queue_means_503_and_nothing_acknowledged() {
    let proxy = Proxy::start(&common::clickhouse::url()).await;
    let app = TestApp::spawn_with(TestOptions {
        clickhouse_url: Some(proxy.url.clone()),
        pipeline: PipelineConfig {
            workers: 1,
            queue_capacity: 1,
            batch_max_rows: 1,
            batch_max_wait: Duration::ZERO,
            inserts_per_second: 0.0,
            insert_retry_budget: Duration::from_millis(1_500),
            ..PipelineConfig::default()
        },
        ..TestOptions::default()
    })
    .await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;

    // With ClickHouse not answering, at most one conversion is in the worker and one in
    // the queue; of five at once, at least three find the queue full.
    proxy.stall();
    let answers = futures_util::future::join_all((0..5).map(|i| {
        let body = json!({"click_id": click, "order_id": format!("q-{i}"), "amount": "1.00"});
        let app = &app;
        let key = net.brand_key.clone();
        async move { json_body(app.track(&key, &body).await).await }
    }))
    .await;
    proxy.restore();
    let statuses: Vec<StatusCode> = answers.iter().map(|(status, _)| *status).collect();
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::SERVICE_UNAVAILABLE),
        "{statuses:?}"
    );
    let metrics = app.metrics().await;
    assert!(
        metric_value(
            &metrics,
            "affilync_unavailable_total",
            &[("reason", "queue_full")]
        ) >= 3.0,
        "{metrics}"
    );
    assert_eq!(
        app.clickhouse_count("SELECT count() FROM conversions FINAL")
            .await,
        0
    );
}

#[tokio::test]
async fn shutdown_answers_every_request_in_flight_after_writing_it() {
    let app = TestApp::spawn_with(TestOptions {
        // One INSERT every two seconds: the ten reports below wait in a batch.
        pipeline: PipelineConfig {
            batch_max_wait: Duration::from_millis(1),
            inserts_per_second: 0.5,
            insert_burst: 1,
            ..PipelineConfig::default()
        },
        ..TestOptions::default()
    })
    .await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;
    let first = json!({"click_id": click, "order_id": "first", "amount": "1.00"});
    assert_eq!(
        app.track(&net.brand_key, &first).await.status(),
        StatusCode::CREATED
    );

    let requests = (0..10).map(|i| {
        let body = json!({"click_id": click, "order_id": format!("drain-{i}"), "amount": "1.00"});
        let http = app.http.clone();
        let url = app.url("/api/conversions/track");
        let key = net.brand_key.clone();
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .map(|r| r.status())
        })
    });
    let requests: Vec<_> = requests.collect();
    loop {
        let metrics = app.metrics().await;
        if metric_value(&metrics, "affilync_conversions_in_flight", &[]) >= 10.0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    let database = app.database.clone();
    let base = app.base.clone();
    app.stop().await.unwrap();

    for request in requests {
        assert_eq!(request.await.unwrap().unwrap(), StatusCode::CREATED);
    }
    assert!(
        reqwest::get(format!("{base}/healthz")).await.is_err(),
        "the service has stopped"
    );
    let rows =
        common::clickhouse_rows(&database, "SELECT count() AS n FROM conversions FINAL").await;
    assert_eq!(rows[0]["n"], "11", "UInt64 comes as a JSON string");
}

#[tokio::test]
async fn health_metrics_and_unknown_routes() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;
    let body = json!({"click_id": click, "order_id": "m-1", "amount": "3.00"});
    app.track(&net.brand_key, &body).await;
    app.track(&net.brand_key, &body).await;

    let (status, health) = json_body(app.http.get(app.url("/healthz")).send().await.unwrap()).await;
    assert_eq!((status, health), (StatusCode::OK, json!({"status": "ok"})));
    let (status, ready) = json_body(app.http.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready["status"], "ready");

    let metrics = app.metrics().await;
    let track = [("route", "/api/conversions/track"), ("status", "201")];
    assert_eq!(
        metric_value(&metrics, "affilync_http_requests_total", &track),
        1.0
    );
    let replayed = [("route", "/api/conversions/track"), ("status", "200")];
    assert_eq!(
        metric_value(&metrics, "affilync_http_requests_total", &replayed),
        1.0
    );
    assert_eq!(
        metric_value(
            &metrics,
            "affilync_dedup_total",
            &[("outcome", "cache_hit")]
        ),
        1.0
    );
    assert_eq!(
        metric_value(
            &metrics,
            "affilync_dedup_total",
            &[("outcome", "bloom_negative")]
        ),
        1.0
    );
    assert_eq!(
        metric_value(
            &metrics,
            "affilync_conversions_stored_total",
            &[("status", "pending"), ("source", "api")]
        ),
        1.0
    );
    assert!(metric_value(&metrics, "affilync_batch_rows_count", &[]) >= 1.0);
    assert!(
        metric_value(
            &metrics,
            "affilync_clickhouse_insert_seconds_count",
            &[("table", "conversions")]
        ) >= 1.0
    );
    for name in [
        "affilync_http_request_seconds_bucket",
        "affilync_attribution_queue_depth",
        "affilync_click_queue_depth",
        "affilync_attribution_queue_wait_seconds_count",
        "affilync_dedup_lookup_queue_depth",
        "affilync_batch_bytes_bucket",
    ] {
        assert!(metrics.contains(name), "{name} missing");
    }

    let (status, body) = json_body(app.http.get(app.url("/nope")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body) = json_body(
        app.http
            .delete(app.url("/api/conversions/track"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"]["code"], "method_not_allowed");
}
