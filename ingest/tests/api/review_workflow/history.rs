//! GET /api/conversions/{id}/history: every change, who made it, written once.

use super::*;

#[tokio::test]
async fn history_keeps_every_change_and_who_made_it() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let other = app.network().await;
    let id = report(&app, &net, "h-1").await;
    let (status, body) = json_body(
        app.patch(
            &net.brand_key,
            &id,
            &json!({"status": "approved", "note": "order shipped"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let reversal =
        json!({"items": [{"conversion_id": id, "status": "rejected", "note": "chargeback"}]});
    let (status, body) = bulk(&app, &net.brand_key, &reversal).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Repeats change nothing and leave no row.
    bulk(&app, &net.brand_key, &reversal).await;
    app.patch(&net.brand_key, &id, &json!({"status": "rejected"}))
        .await;
    app.drain().await;

    let who = format!("key:{}", &net.brand_key[..10]);
    let (status, answer) = history(&app, &net.brand_key, &id).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        changes(&answer),
        vec![
            change("pending", "approved", &who, "order shipped"),
            change("approved", "rejected", &who, "chargeback"),
        ]
    );
    assert_eq!(answer["meta"]["status"], "rejected");
    let first = answer["data"][0]["changed_at"].as_str().unwrap();
    assert!(first.ends_with('Z'), "{first}");

    // Tenancy as for the conversion itself.
    let (status, mine) = history(&app, &net.affiliate_key, &id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mine["data"], answer["data"]);
    for key in [&other.brand_key, &other.affiliate_key] {
        let (status, _) = history(&app, key, &id).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, _) = history(&app, "no-such-key", &id).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn history_rows_shipped_twice_are_kept_once() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let id = report(&app, &net, "h-2").await;
    let body = json!({"conversion_ids": [id], "status": "approved"});
    bulk(&app, &net.brand_key, &body).await;
    app.drain().await;
    // What a shipment retried after ClickHouse took it but did not say so leaves behind.
    crate::common::clickhouse_execute(
        &app.database,
        "INSERT INTO status_changes SELECT * FROM status_changes",
    )
    .await;
    assert_eq!(app.count_rows("status_changes").await, 2);
    let (_, answer) = history(&app, &net.brand_key, &id).await;
    assert_eq!(answer["data"].as_array().unwrap().len(), 1, "{answer}");
}
