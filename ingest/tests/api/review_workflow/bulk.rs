//! POST /api/conversions/status with JSON: per-item results, idempotency, refusals.

use super::*;

#[tokio::test]
async fn bulk_decisions_answer_every_item_in_input_order() {
    let app = TestApp::spawn().await;
    let a = app.network().await;
    let b = app.network().await;
    let [p1, p2, p3] = [
        report(&app, &a, "o-1").await,
        report(&app, &a, "o-2").await,
        report(&app, &a, "o-3").await,
    ];
    let of_b = report(&app, &b, "o-1").await;
    let unknown = "conv_00000000000000000000000000000000";

    let body = json!({"items": [
        {"conversion_id": p1, "status": "approved"},
        {"conversion_id": p2, "status": "rejected", "note": "duplicate order"},
        {"conversion_id": of_b, "status": "approved"},
        {"conversion_id": unknown, "status": "approved"},
        {"conversion_id": "not-an-id", "status": "approved"},
        {"conversion_id": p2, "status": "approved"},
        {"conversion_id": p1, "status": "approved"},
        {"conversion_id": p3, "status": "approved"},
        {"conversion_id": p3, "status": "rejected", "note": "chargeback"},
    ]});
    let (status, answer) = bulk(&app, &a.brand_key, &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        results(&answer),
        vec![
            row(&p1, "updated", Some("approved")),
            row(&p2, "updated", Some("rejected")),
            row(&of_b, "not_found", None),
            row(unknown, "not_found", None),
            row("not-an-id", "not_found", None),
            row(&p2, "invalid_transition", Some("rejected")),
            row(&p1, "unchanged", Some("approved")),
            row(&p3, "updated", Some("approved")),
            row(&p3, "updated", Some("rejected")),
        ]
    );
    assert_eq!(answer["data"][1]["previous_status"], "pending");
    assert_eq!(answer["data"][8]["previous_status"], "approved");
    assert_eq!(
        answer["meta"],
        json!({"updated": 4, "unchanged": 1, "not_found": 3, "invalid_transition": 1})
    );

    // Durable and visible at once, before any shipping.
    assert_eq!(status_of(&app, &a.brand_key, &p1).await, "approved");
    assert_eq!(status_of(&app, &a.brand_key, &p2).await, "rejected");
    assert_eq!(status_of(&app, &a.brand_key, &p3).await, "rejected");
    assert_eq!(status_of(&app, &b.brand_key, &of_b).await, "pending");
}

#[tokio::test]
async fn a_repeated_bulk_call_changes_nothing() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let ids = [
        report(&app, &net, "r-1").await,
        report(&app, &net, "r-2").await,
    ];
    let body = json!({"conversion_ids": ids, "status": "approved", "note": "checked"});
    let (status, first) = bulk(&app, &net.brand_key, &body).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["meta"]["updated"], 2);
    app.drain().await;
    let versions = app.count_rows("conversions").await;

    let (status, again) = bulk(&app, &net.brand_key, &body).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        results(&again),
        ids.iter()
            .map(|id| row(id, "unchanged", Some("approved")))
            .collect::<Vec<_>>()
    );
    app.drain().await;
    assert_eq!(app.count_rows("conversions").await, versions);
}

#[tokio::test]
async fn bad_bulk_calls_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let id = report(&app, &net, "b-1").await;
    for (body, field) in [
        (
            json!({"items": [{"conversion_id": id, "status": "approved"},
                             {"conversion_id": id, "status": "paid"}]}),
            "items[1].status",
        ),
        (
            json!({"items": [{"status": "approved"}]}),
            "items[0].conversion_id",
        ),
        (json!({"items": []}), "items"),
        (json!({"conversion_ids": [id]}), "status"),
        (
            json!({"conversion_ids": vec![id.clone(); 1_001], "status": "approved"}),
            "conversion_ids",
        ),
    ] {
        let (status, answer) = bulk(&app, &net.brand_key, &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    // Nothing of a refused call is applied, even its valid items.
    assert_eq!(status_of(&app, &net.brand_key, &id).await, "pending");

    let body = json!({"conversion_ids": [id], "status": "approved"});
    let (status, _) = bulk(&app, &net.affiliate_key, &body).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = bulk(&app, "no-such-key", &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_thousand_decisions_fit_in_one_call() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let id = report(&app, &net, "k-1").await;
    let mut items: Vec<Value> = (0..999)
        .map(|n| json!({"conversion_id": format!("conv_{n:032x}"), "status": "approved", "note": "x".repeat(200)}))
        .collect();
    items.push(json!({"conversion_id": id, "status": "approved"}));
    let (status, answer) = bulk(&app, &net.brand_key, &json!({"items": items})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["meta"]["not_found"], 999);
    assert_eq!(answer["data"][999]["result"], "updated");
}

#[tokio::test]
async fn a_bulk_call_retried_on_another_node_before_shipping_adds_no_change() {
    let shipping = TestApp::spawn().await;
    let net = shipping.network().await;
    let ids = [
        report(&shipping, &net, "x-1").await,
        report(&shipping, &net, "x-2").await,
    ];
    shipping.drain().await;
    let holding = TestApp::spawn_with(TestOptions {
        database: Some(shipping.database.clone()),
        // Journals its changes but ships them only when it stops.
        shipper: attributor::ShipperConfig {
            interval: std::time::Duration::from_secs(3_600),
            ..TestOptions::default().shipper
        },
        ..TestOptions::default()
    })
    .await;
    let body = json!({"conversion_ids": ids, "status": "approved", "note": "checked"});
    let (status, first) = bulk(&holding, &net.brand_key, &body).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["meta"]["updated"], 2, "{first}");

    // The client gave up waiting and sent the call again to the other node, which cannot
    // see the first node's journal and so makes the same changes again.
    let (status, retried) = bulk(&shipping, &net.brand_key, &body).await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    holding.stop().await.unwrap();
    shipping.drain().await;

    let approved_versions = shipping
        .clickhouse_count(
            "SELECT count(DISTINCT conversion_id, version) FROM conversions WHERE status = 'approved'",
        )
        .await;
    assert_eq!(approved_versions, 2);
    for id in &ids {
        let (_, answer) = history(&shipping, &net.brand_key, id).await;
        assert_eq!(changes(&answer).len(), 1, "{answer}");
    }
}
