//! Keyset paging of the pending queue.

use super::*;

#[tokio::test]
async fn the_pending_queue_pages_by_cursor_as_by_page_number() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let mut ids = Vec::new();
    for n in 0..7 {
        ids.push(report(&app, &net, &format!("q-{n}")).await);
    }
    let decided = json!({"conversion_ids": [ids[1], ids[4]], "status": "approved"});
    bulk(&app, &net.brand_key, &decided).await;
    app.drain().await;

    let in_order = |list: &Value| -> Vec<String> {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["conversion_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut by_page = Vec::new();
    for page in 1..=3 {
        let path = format!("/api/conversions?status=pending&per_page=2&page={page}");
        let (_, list) = json_body(app.get(&net.brand_key, &path).await).await;
        by_page.extend(in_order(&list));
    }
    let mut by_cursor = Vec::new();
    let mut path = "/api/conversions?status=pending&per_page=2".to_owned();
    loop {
        let (status, list) = json_body(app.get(&net.brand_key, &path).await).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list["meta"]["total"], 5);
        by_cursor.extend(in_order(&list));
        match list["meta"]["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/api/conversions?status=pending&per_page=2&cursor={cursor}")
            }
            None => break,
        }
    }
    assert_eq!(by_cursor, by_page);
    let mut expected: Vec<String> = [0, 2, 3, 5, 6].iter().map(|n| ids[*n].clone()).collect();
    expected.sort();
    let mut got = by_cursor.clone();
    got.sort();
    assert_eq!(got, expected);

    let (status, body) = json_body(
        app.get(&net.brand_key, "/api/conversions?cursor=yesterday")
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "cursor");
}

#[tokio::test]
async fn status_filters_show_each_conversion_under_its_latest_status_only() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let kept = report(&app, &net, "s-1").await;
    let reversed = report(&app, &net, "s-2").await;
    let waiting = report(&app, &net, "s-3").await;
    let approve = json!({"conversion_ids": [kept, reversed], "status": "approved"});
    bulk(&app, &net.brand_key, &approve).await;
    app.drain().await;
    let reject = json!({"conversion_ids": [reversed], "status": "rejected"});
    bulk(&app, &net.brand_key, &reject).await;
    app.drain().await;
    for (status, expected) in [
        ("approved", vec![kept.clone()]),
        ("rejected", vec![reversed.clone()]),
        ("pending", vec![waiting.clone()]),
    ] {
        let path = format!("/api/conversions?status={status}");
        let (_, list) = json_body(app.get(&net.brand_key, &path).await).await;
        assert_eq!(listed(&list), expected, "{status}: {list}");
        assert_eq!(list["meta"]["total"], 1, "{status}");
        assert_eq!(list["data"][0]["status"], status);
    }
}

#[tokio::test]
async fn a_total_that_cannot_be_counted_in_time_is_an_estimate_and_says_so() {
    let app = TestApp::spawn_with(TestOptions {
        // No time at all for the exact count: every total is the estimate.
        count_budget: std::time::Duration::ZERO,
        ..TestOptions::default()
    })
    .await;
    let net = app.network().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(report(&app, &net, &format!("e-{n}")).await);
    }
    let decided = json!({"conversion_ids": [ids[0]], "status": "approved"});
    bulk(&app, &net.brand_key, &decided).await;
    app.drain().await;
    let total = |query: &'static str| {
        let app = &app;
        let key = net.brand_key.clone();
        async move {
            let (status, list) =
                json_body(app.get(&key, &format!("/api/conversions{query}")).await).await;
            assert_eq!(status, StatusCode::OK, "{list}");
            assert_eq!(list["meta"]["total_estimated"], true, "{list}");
            list["meta"]["total"].as_u64().unwrap()
        }
    };
    // Before ClickHouse merges, the decided conversion's pending row still counts: the
    // estimate runs over by the versions not merged yet, never under.
    let (all, pending) = (total("").await, total("?status=pending").await);
    assert!((3..=4).contains(&all), "{all}");
    assert!((2..=3).contains(&pending), "{pending}");

    for copy in ["conversions_by_brand", "conversions_by_status"] {
        crate::common::clickhouse_execute(&app.database, &format!("OPTIMIZE TABLE {copy} FINAL"))
            .await;
    }
    assert_eq!(total("").await, 3);
    assert_eq!(total("?status=pending").await, 2);
    assert_eq!(total("?status=approved").await, 1);
}
