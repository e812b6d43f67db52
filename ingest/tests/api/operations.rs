//! What operators rely on: conversions acknowledged from the journal while ClickHouse is
//! away and shipped when it returns, 503 instead of a lost conversion when the queue is
//! full, a draining and bounded shutdown, health endpoints and metrics.

use std::time::Duration;

use crate::common::proxy::Proxy;
use crate::common::{TestApp, TestOptions, json_body, metric_value};
use attributor::{PipelineConfig, ShipperConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The journal is the durability point: with ClickHouse unreachable, conversions with a
/// click id are acknowledged from the journal, readable by id and replayable on this node,
/// and shipped once ClickHouse returns, each exactly once. What needs ClickHouse at request
/// time (e-mail-only attribution) is refused with 503 and stores nothing.
#[tokio::test]
async fn with_clickhouse_away_conversions_are_journaled_then_shipped_once() {
    let proxy = Proxy::start(&crate::common::clickhouse::url()).await;
    let app = TestApp::spawn_with(TestOptions {
        clickhouse_url: Some(proxy.url.clone()),
        ..TestOptions::default()
    })
    .await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;
    let body =
        |i: usize| json!({"click_id": click, "order_id": format!("away-{i}"), "amount": "10.00"});

    // New orders need no look-up once the bloom filter is seeded: until then they do.
    app.wait_until_bloom_seeded().await;
    proxy.cut();
    let mut created = Vec::new();
    for i in 0..20 {
        let (status, answer) = json_body(app.track(&net.brand_key, &body(i)).await).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        created.push(answer);
    }
    let (status, ready) = json_body(app.http.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "ready without ClickHouse: {ready}");
    assert_eq!(ready["clickhouse"]["status"], "unreachable");
    assert!(
        ready["journal"]["pending_records"].as_u64().unwrap() >= 20,
        "{ready}"
    );

    // Replays and reads by id are answered from this node while ClickHouse is away.
    let replay = app.track(&net.brand_key, &body(3)).await;
    assert_eq!(replay.status(), StatusCode::OK);
    let id = created[7]["data"]["conversion_id"].as_str().unwrap();
    let (status, found) = json_body(
        app.get(&net.brand_key, &format!("/api/conversions/{id}"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["data"], created[7]["data"]);

    // E-mail-only attribution needs ClickHouse now: 503, and nothing stored.
    let email_only =
        json!({"order_id": "by-email", "amount": "5.00", "customer_email": "a@b.example"});
    let response = app.track(&net.brand_key, &email_only).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(
        response.headers()["x-affilync-unavailable"],
        "store_unavailable"
    );

    // The lag grows while the shipper cannot ship, and its failures are counted.
    let lag = app
        .wait_for_metric("affilync_journal_lag_seconds", &[], |v| v >= 0.2)
        .await;
    assert!(lag >= 0.2);
    app.wait_for_metric(
        "affilync_shipper_errors_total",
        &[("kind", "retryable")],
        |v| v >= 1.0,
    )
    .await;

    proxy.restore();
    app.drain().await;
    for table in ["conversions", "commissions", "conversions_by_brand"] {
        assert_eq!(
            app.count_rows(&format!("{table} FINAL")).await,
            20,
            "{table}"
        );
    }
    assert_eq!(
        app.count_where("conversions FINAL", "order_id = 'by-email'")
            .await,
        0
    );
    let lag = app
        .wait_for_metric("affilync_journal_lag_seconds", &[], |v| v == 0.0)
        .await;
    assert_eq!(lag, 0.0);
}

#[tokio::test]
async fn a_full_queue_means_503_and_nothing_acknowledged() {
    let proxy = Proxy::start(&crate::common::clickhouse::url()).await;
    let app = TestApp::spawn_with(TestOptions {
        clickhouse_url: Some(proxy.url.clone()),
        pipeline: PipelineConfig {
            workers: 1,
            queue_capacity: 1,
            batch_max_rows: 1,
            touch_lookup_timeout: Duration::from_millis(1_500),
            ..PipelineConfig::default()
        },
        ..TestOptions::default()
    })
    .await;
    let net = app.network().await;
    // With the bloom filter seeded, new orders need no look-up: only the worker waits.
    app.wait_until_bloom_seeded().await;

    // E-mail-only reports make the worker ask ClickHouse, which does not answer: at most
    // one report is in the worker and one in the queue; of five at once, at least three
    // find the queue full, and the other two time out.
    proxy.stall();
    let answers = futures_util::future::join_all((0..5).map(|i| {
        let body = json!({"order_id": format!("q-{i}"), "amount": "1.00", "customer_email": "q@shop.example"});
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
    assert_eq!(app.count_rows("conversions FINAL").await, 0);
}

/// A graceful stop ships what the journal holds before it exits.
#[tokio::test]
async fn shutdown_ships_what_was_journaled() {
    let app = TestApp::spawn_with(TestOptions {
        // No shipment would happen before the stop without it.
        shipper: ShipperConfig {
            interval: Duration::from_secs(3600),
            ..ShipperConfig::default()
        },
        ..TestOptions::default()
    })
    .await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;
    for i in 0..11 {
        let body = json!({"click_id": click, "order_id": format!("drain-{i}"), "amount": "1.00"});
        assert_eq!(
            app.track(&net.brand_key, &body).await.status(),
            StatusCode::CREATED
        );
    }
    let metrics = app.metrics().await;
    assert!(metric_value(&metrics, "affilync_journal_pending_records", &[]) >= 11.0);
    let database = app.database.clone();
    let base = app.base.clone();
    app.stop().await.unwrap();

    assert!(
        reqwest::get(format!("{base}/healthz")).await.is_err(),
        "the service has stopped"
    );
    let rows =
        crate::common::clickhouse_rows(&database, "SELECT count() AS n FROM conversions FINAL")
            .await;
    assert_eq!(rows[0]["n"], "11", "UInt64 comes as a JSON string");
}

/// A stop that cannot ship (ClickHouse away) still ends, within its grace period; the
/// journal keeps what was acknowledged, and the next start answers replays from it and
/// ships it.
#[tokio::test]
async fn a_stop_without_clickhouse_is_bounded_and_the_next_start_ships() {
    let node = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&crate::common::clickhouse::url()).await;
    let app = TestApp::spawn_with(TestOptions {
        clickhouse_url: Some(proxy.url.clone()),
        data_dir: Some(node.path().to_owned()),
        shutdown_ship_timeout: Duration::from_millis(500),
        ..TestOptions::default()
    })
    .await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;
    let body = json!({"click_id": click, "order_id": "kept", "amount": "7.00"});
    // New orders need no look-up once the bloom filter is seeded: until then they do.
    app.wait_until_bloom_seeded().await;
    proxy.cut();
    let (status, first) = json_body(app.track(&net.brand_key, &body).await).await;
    assert_eq!(status, StatusCode::CREATED);
    let database = app.database.clone();
    tokio::time::timeout(Duration::from_secs(60), app.stop())
        .await
        .expect("the stop is bounded")
        .unwrap();
    assert_eq!(
        crate::common::clickhouse_rows(&database, "SELECT count() AS n FROM conversions").await[0]
            ["n"],
        "0",
        "nothing reached ClickHouse"
    );

    // Restarted on the same journal, with ClickHouse reachable only for the start: the
    // replay is answered from what the journal recovered, shipped by then or not.
    proxy.restore();
    let app = TestApp::spawn_with(TestOptions {
        database: Some(database),
        data_dir: Some(node.path().to_owned()),
        clickhouse_url: Some(proxy.url.clone()),
        ..TestOptions::default()
    })
    .await;
    // New orders need no look-up once the bloom filter is seeded: until then they do.
    app.wait_until_bloom_seeded().await;
    proxy.cut();
    let response = app.track(&net.brand_key, &body).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "a replay from the journal"
    );
    assert_eq!(response.json::<Value>().await.unwrap(), first);
    proxy.restore();
    assert_eq!(app.count_rows("conversions FINAL").await, 1);
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
            "affilync_conversions_journaled_total",
            &[("status", "pending"), ("source", "api")]
        ),
        1.0
    );
    assert!(metric_value(&metrics, "affilync_attribution_batch_jobs_count", &[]) >= 1.0);
    assert!(metric_value(&metrics, "affilync_journal_append_seconds_count", &[]) >= 1.0);
    app.drain().await;
    let metrics = app.metrics().await;
    assert!(
        metric_value(
            &metrics,
            "affilync_shipper_insert_seconds_count",
            &[("table", "conversions")]
        ) >= 1.0
    );
    assert_eq!(
        metric_value(
            &metrics,
            "affilync_shipper_rows_total",
            &[("table", "commissions")]
        ),
        1.0
    );
    for name in [
        "affilync_http_request_seconds_bucket",
        "affilync_attribution_queue_depth",
        "affilync_click_queue_depth",
        "affilync_attribution_queue_wait_seconds_count",
        "affilync_dedup_lookup_queue_depth",
        "affilync_journal_pending_bytes",
        "affilync_journal_disk_bytes",
        "affilync_journal_lag_seconds",
        "affilync_journal_max_bytes",
        "affilync_journal_append_records_bucket",
        "affilync_shipper_batch_records_bucket",
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

/// The OpenAPI document is served, and every operation in it is a route of the service:
/// called with the method and path it documents (ids filled with placeholders), none gets
/// the router's own 404 or 405. Swagger UI is served from the binary.
#[tokio::test]
async fn the_openapi_document_describes_routes_that_exist() {
    let app = TestApp::spawn().await;
    let response = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 16, "{}", paths.len());
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path.replace("{id}", "conv_0").replace("{link_id}", "lnk_0");
        for method in item.as_object().unwrap().keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = app
                .http
                .request(method.clone(), app.url(&concrete))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(!body.contains("there is no"), "{method} {path}: {body}");
            operations += 1;
        }
    }
    assert!(operations >= 19, "{operations}");

    let docs = app.http.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(
        docs.text()
            .await
            .unwrap()
            .contains("/docs/swagger-ui-bundle.js")
    );
    for asset in ["swagger-ui-bundle.js", "swagger-ui.css", "init.js"] {
        let response = app
            .http
            .get(app.url(&format!("/docs/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
    }
}
