//! Exact idempotency on order_id: replays, conflicts, concurrent duplicates and restarts.

use std::collections::{HashMap, HashSet};

use crate::common::{TestApp, TestClock, TestOptions, json_body, json_u64, metric_value};
use futures_util::StreamExt;
use ingest::dedup::DedupConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn conversion(click_id: &str, order_id: &str, amount: &str) -> Value {
    json!({"click_id": click_id, "order_id": order_id, "amount": amount, "currency": "USD"})
}

#[tokio::test]
async fn a_replay_returns_the_original_and_a_conflict_names_it() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;

    let (status, first) = json_body(
        app.track(&net.brand_key, &conversion(&click, "o-1", "99.99"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");

    // Amounts compare as decimals: 99.990 is the same report.
    let response = app
        .track(&net.brand_key, &conversion(&click, "o-1", "99.990"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["idempotent-replayed"], "true");
    let replay: Value = response.json().await.unwrap();
    assert_eq!(replay, first);

    let (status, conflict) = json_body(
        app.track(&net.brand_key, &conversion(&click, "o-1", "100.00"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(conflict["error"]["code"], "order_id_conflict");
    assert_eq!(conflict["data"], first["data"]);

    let other_event =
        json!({"click_id": click, "order_id": "o-1", "amount": "99.99", "event_type": "lead"});
    let (status, _) = json_body(app.track(&net.brand_key, &other_event).await).await;
    assert_eq!(status, StatusCode::CONFLICT);

    assert_eq!(app.count_rows("conversions FINAL").await, 1);
    assert_eq!(app.count_rows("commissions FINAL").await, 1);
}

#[tokio::test]
async fn the_same_order_id_under_two_brands_is_two_conversions() {
    let app = TestApp::spawn().await;
    let a = app.network().await;
    let b = app.network().await;
    let click_a = app.click(&a.link_url).await;
    let click_b = app.click(&b.link_url).await;
    let (status_a, body_a) = json_body(
        app.track(&a.brand_key, &conversion(&click_a, "shared", "5"))
            .await,
    )
    .await;
    let (status_b, body_b) = json_body(
        app.track(&b.brand_key, &conversion(&click_b, "shared", "5"))
            .await,
    )
    .await;
    assert_eq!(
        (status_a, status_b),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    assert_ne!(
        body_a["data"]["conversion_id"],
        body_b["data"]["conversion_id"]
    );
}

/// 200 concurrent requests for 20 order ids, 10 copies each: for even order ids all
/// copies are identical; for odd ones half carry another amount. Exactly 20 conversions
/// are stored, and every copy identical to the stored one is answered with its id.
#[tokio::test]
async fn concurrent_duplicates_end_as_one_conversion_each() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;

    let mut requests = Vec::new();
    for order in 0..20 {
        for copy in 0..10 {
            let amount = if order % 2 == 1 && copy % 2 == 1 {
                "20.00"
            } else {
                "10.00"
            };
            requests.push((format!("order-{order}"), amount));
        }
    }
    let answers = futures_util::future::join_all(requests.iter().map(|(order, amount)| {
        let body = conversion(&click, order, amount);
        let app = &app;
        let key = net.brand_key.clone();
        async move {
            let response = app.track(&key, &body).await;
            let status = response.status();
            let replayed = response.headers().contains_key("idempotent-replayed");
            let body: Value = response.json().await.unwrap();
            (status, replayed, body)
        }
    }))
    .await;

    assert_eq!(app.count_rows("conversions FINAL").await, 20);
    assert_eq!(
        app.clickhouse_count("SELECT uniqExact(order_id) FROM conversions")
            .await,
        20
    );
    let stored: HashMap<String, (String, String)> = app
        .clickhouse_rows(
            "SELECT order_id, conversion_id, toString(amount) AS amount FROM conversions FINAL",
        )
        .await
        .into_iter()
        .map(|row| {
            let text = |k: &str| row[k].as_str().unwrap().to_owned();
            (text("order_id"), (text("conversion_id"), text("amount")))
        })
        .collect();

    let mut created = HashSet::new();
    for ((order, amount), (status, replayed, body)) in requests.iter().zip(&answers) {
        let (stored_id, stored_amount) = &stored[order];
        let stored_amount: rust_decimal::Decimal = stored_amount.parse().unwrap();
        let same_as_stored = stored_amount == amount.parse().unwrap();
        let data = &body["data"];
        assert_eq!(
            &data["conversion_id"],
            stored_id.as_str(),
            "{order}: {body}"
        );
        match *status {
            StatusCode::CREATED => {
                assert!(same_as_stored, "{order}: a 201 must be what was stored");
                assert!(created.insert(order.clone()), "{order} was created twice");
            }
            StatusCode::OK => assert!(*replayed && same_as_stored, "{order}: {body}"),
            StatusCode::CONFLICT => assert!(!same_as_stored, "{order}: {body}"),
            other => panic!("{order}: unexpected {other}: {body}"),
        }
    }
    assert_eq!(created.len(), 20, "every order is created exactly once");
    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "affilync_conversion_answers_total",
            &[("outcome", "created")]
        ),
        20.0
    );
}

#[tokio::test]
async fn a_replay_after_a_restart_is_answered_from_clickhouse() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;
    let (status, first) = json_body(
        app.track(&net.brand_key, &conversion(&click, "o-restart", "42.00"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let database = app.database.clone();
    app.stop().await.unwrap();

    let app = TestApp::spawn_with(TestOptions {
        database: Some(database),
        ..TestOptions::default()
    })
    .await;
    let response = app
        .track(&net.brand_key, &conversion(&click, "o-restart", "42"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["idempotent-replayed"], "true");
    let replay: Value = response.json().await.unwrap();
    assert_eq!(replay, first);
    let (status, _) = json_body(
        app.track(&net.brand_key, &conversion(&click, "o-restart", "43"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(app.count_rows("conversions").await, 1);
    let metrics = app.metrics().await;
    assert!(
        metric_value(
            &metrics,
            "affilync_dedup_total",
            &[("outcome", "store_hit")]
        ) >= 1.0
    );
}

#[tokio::test]
async fn a_replay_shows_the_current_status() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;
    let (_, first) = json_body(
        app.track(&net.brand_key, &conversion(&click, "o-s", "10"))
            .await,
    )
    .await;
    let id = first["data"]["conversion_id"].as_str().unwrap();
    let (status, _) = json_body(
        app.patch(&net.brand_key, id, &json!({"status": "approved"}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, replay) = json_body(
        app.track(&net.brand_key, &conversion(&click, "o-s", "10"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replay["data"]["status"], "approved");
}

/// Two nodes on one database: once its next read of the dedup log is done, the second
/// answers an order the first stored as a replay, although its own bloom filter was
/// filled before the order existed.
#[tokio::test]
async fn a_second_node_knows_what_the_first_stored() {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_with(TestOptions {
        database: Some(first.database.clone()),
        ..TestOptions::default()
    })
    .await;
    let net = first.network().await;
    let click = first.click(&net.link_url).await;
    let (status, stored) = json_body(
        first
            .track(&net.brand_key, &conversion(&click, "n-1", "5.00"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    // The order reaches the log when the first node ships it; the second node reads the
    // log every second: wait for a read that began after the shipment.
    first.drain().await;
    let syncs = "affilync_dedup_bloom_syncs_total";
    let after_write = metric_value(&second.metrics().await, syncs, &[]);
    second
        .wait_for_metric(syncs, &[], |done| done >= after_write + 2.0)
        .await;

    let response = second
        .track(&net.brand_key, &conversion(&click, "n-1", "5.00"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["idempotent-replayed"], "true");
    assert_eq!(response.json::<Value>().await.unwrap(), stored);
    let (status, conflict) = json_body(
        second
            .track(&net.brand_key, &conversion(&click, "n-1", "6.00"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(conflict["data"], stored["data"]);
    assert_eq!(first.count_rows("conversions").await, 1);

    // Sent to both nodes at once, each order still ends as one conversion with one id.
    let orders: Vec<String> = (0..10).map(|i| format!("both-{i}")).collect();
    let answers = futures_util::future::join_all(orders.iter().flat_map(|order| {
        [&first, &second].map(|node| {
            let body = conversion(&click, order, "7.00");
            let key = net.brand_key.clone();
            async move { json_body(node.track(&key, &body).await).await }
        })
    }))
    .await;
    for pair in answers.chunks(2) {
        assert!(
            pair.iter().all(|(status, _)| status.is_success()),
            "{pair:?}"
        );
        assert_eq!(
            pair[0].1["data"]["conversion_id"],
            pair[1].1["data"]["conversion_id"]
        );
    }
    assert_eq!(
        first
            .count_where("conversions FINAL", "order_id LIKE 'both-%'")
            .await,
        10
    );
}

/// A bloom filter cannot grow: one holding more than it was sized for is replaced by a
/// larger one, seeded while the full one answers. No order may go missing in the swap,
/// or its replay would be taken for new and stored twice.
#[tokio::test]
async fn a_full_bloom_filter_is_replaced_without_forgetting_an_order() {
    let app = TestApp::spawn_with(TestOptions {
        // Small enough that replays miss the cache and are decided by the filter.
        dedup: DedupConfig {
            cache_bytes: 64 * 1024,
            bloom_capacity: 1_000,
        },
        ..TestOptions::default()
    })
    .await;
    app.wait_until_bloom_seeded().await;
    let bytes_before = metric_value(&app.metrics().await, "affilync_dedup_bloom_bytes", &[]);
    let net = app.network().await;
    let click = app.click(&net.link_url).await;
    let orders: Vec<String> = (0..1_500).map(|i| format!("grow-{i}")).collect();
    let send_all = |expected: StatusCode| {
        futures_util::stream::iter(orders.iter())
            .map(|order| {
                let body = conversion(&click, order, "3.00");
                let key = net.brand_key.clone();
                let app = &app;
                async move { app.track(&key, &body).await.status() }
            })
            .buffer_unordered(16)
            .for_each(move |status| async move { assert_eq!(status, expected) })
    };
    send_all(StatusCode::CREATED).await;
    app.wait_for_metric("affilync_dedup_bloom_rebuilds_total", &[], |n| n >= 1.0)
        .await;
    let metrics = app.metrics().await;
    assert!(metric_value(&metrics, "affilync_dedup_bloom_bytes", &[]) > bytes_before);
    let negatives = |metrics: &str| {
        metric_value(
            metrics,
            "affilync_dedup_total",
            &[("outcome", "bloom_negative")],
        )
    };
    let negatives_before = negatives(&metrics);

    send_all(StatusCode::OK).await;
    assert_eq!(
        negatives(&app.metrics().await),
        negatives_before,
        "every stored order is in the new filter"
    );
    assert_eq!(app.count_rows("conversions").await, 1_500);
}

/// Two nodes that take the same new order at once each journal it, neither seeing the
/// other's journal, each stamping `created_at` from its own clock. `conversions FINAL`
/// keeps one row per order whatever the stamps; but the listing copies, the status copy
/// and the commissions are sorted by `created_at` too, so when the stamps differ (the two
/// requests straddled a second, or the clocks disagree) both nodes' rows land there, and
/// the nodes' race repair must leave one: the surviving version, in every copy, and in
/// both nodes' answers to a replay. Here the second node's clock is five seconds ahead, so
/// every order is stamped differently.
#[tokio::test]
async fn two_nodes_racing_an_order_with_different_stamps_leave_one_row_in_every_copy() {
    let ahead = TestClock::default();
    ahead.advance(time::Duration::seconds(5));
    two_nodes_race_ten_orders(TestClock::default(), ahead).await;
}

/// The same across a month's end: the two stamps fall in two monthly partitions, which
/// never merge, so the loser's row would stay in `conversions` for any reader without
/// FINAL (a BI tool's `argMax`, a count) until the repair deletes it.
#[tokio::test]
async fn two_nodes_racing_an_order_across_a_months_end_leave_one_row_everywhere() {
    let now = time::OffsetDateTime::now_utc();
    let (year, month) = match now.month() {
        time::Month::December => (now.year() + 1, time::Month::January),
        month => (now.year(), month.next()),
    };
    let next_month = time::Date::from_calendar_date(year, month, 1)
        .unwrap()
        .midnight()
        .assume_utc();
    let before_the_end = TestClock::stopped();
    before_the_end.advance(next_month - now - time::Duration::seconds(2));
    let after_the_end = TestClock::stopped();
    after_the_end.advance(next_month - now + time::Duration::seconds(3));
    let first = two_nodes_race_ten_orders(before_the_end, after_the_end).await;
    let races = "order_id LIKE 'race-%'";
    assert_eq!(
        first
            .count_where(
                "conversions",
                &format!(
                    "{races} AND (conversion_id, created_at) NOT IN \
                     (SELECT conversion_id, created_at FROM conversions FINAL WHERE {races})"
                )
            )
            .await,
        0,
        "rows of the losing stamps left in conversions"
    );
}

/// Ten orders sent to two nodes at once, each node on its clock; then the checks above.
/// Returns the first node.
async fn two_nodes_race_ten_orders(first_clock: TestClock, second_clock: TestClock) -> TestApp {
    let first = TestApp::spawn_with(TestOptions {
        clock: first_clock,
        ..TestOptions::default()
    })
    .await;
    let net = first.network().await;
    let click = first.click(&net.link_url).await;
    // Started after the network exists, so its catalog knows the key and the link.
    let second = TestApp::spawn_with(TestOptions {
        database: Some(first.database.clone()),
        clock: second_clock,
        ..TestOptions::default()
    })
    .await;
    let orders: Vec<String> = (0..10).map(|i| format!("race-{i}")).collect();
    let answers = futures_util::future::join_all(orders.iter().flat_map(|order| {
        [&first, &second].map(|node| {
            let body = conversion(&click, order, "7.00");
            let key = net.brand_key.clone();
            async move { node.track(&key, &body).await.status() }
        })
    }))
    .await;
    assert!(
        answers.iter().all(|status| *status == StatusCode::CREATED),
        "both nodes take every order for new: {answers:?}"
    );
    first.drain().await;
    second.drain().await;
    // The repair runs in the background, a check every 100 ms here: wait for its result.
    let races = "order_id LIKE 'race-%'";
    // Every copy, the commissions (their own INSERT) included, one row per order.
    let copies_of_races = format!(
        "SELECT (SELECT count() FROM conversions_by_brand FINAL WHERE {races}) \
              + (SELECT count() FROM conversions_by_affiliate FINAL WHERE {races}) \
              + (SELECT count() FROM conversions_by_status FINAL WHERE live = 1 AND {races}) \
              + (SELECT count() FROM commissions FINAL WHERE conversion_id IN \
                   (SELECT conversion_id FROM conversions WHERE {races}))"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while first.clickhouse_count(&copies_of_races).await != 40 {
        assert!(
            std::time::Instant::now() < deadline,
            "the raced orders were not repaired"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Each node counts a race once it has seen it settled and taken the surviving version
    // into its cache.
    for node in [&first, &second] {
        node.wait_for_metric("affilync_dedup_races_found_total", &[], |found| {
            found >= 10.0
        })
        .await;
    }
    let repaired: f64 = [
        first
            .metric("affilync_dedup_races_repaired_total", &[])
            .await,
        second
            .metric("affilync_dedup_races_repaired_total", &[])
            .await,
    ]
    .iter()
    .sum();
    assert!(repaired >= 10.0, "repaired {repaired}");

    assert_eq!(first.count_where("conversions FINAL", races).await, 10);
    for copy in [
        "conversions_by_brand FINAL",
        "conversions_by_affiliate FINAL",
        "(SELECT * FROM conversions_by_status FINAL WHERE live = 1)",
    ] {
        assert_eq!(first.count_where(copy, races).await, 10, "{copy}");
    }
    // The copies hold the survivor: the same stamp and version as `conversions`.
    assert_eq!(
        first
            .clickhouse_count(&format!(
                "SELECT count() FROM conversions_by_brand FINAL ANY INNER JOIN \
                 (SELECT conversion_id, created_at, version FROM conversions FINAL \
                  WHERE {races}) USING (conversion_id, created_at, version)"
            ))
            .await,
        10
    );
    let survivors = first
        .clickhouse_rows(&format!(
            "SELECT conversion_id, order_id, toUInt32(created_at) AS stamp \
             FROM conversions FINAL WHERE {races}"
        ))
        .await;
    let ids: Vec<String> = survivors
        .iter()
        .map(|row| format!("'{}'", row["conversion_id"].as_str().unwrap()))
        .collect();
    assert_eq!(
        first
            .count_where(
                "commissions FINAL",
                &format!("conversion_id IN ({})", ids.join(", "))
            )
            .await,
        10,
        "one commission per conversion"
    );
    // What the brand reads counts each order once: its listing and its report.
    let (status, listing) = json_body(first.get(&net.brand_key, "/api/conversions").await).await;
    assert_eq!(status, StatusCode::OK, "{listing}");
    assert_eq!(listing["meta"]["total"], 10, "{listing}");
    // From yesterday for two months: both nodes' clocks may be weeks ahead.
    let today = time::OffsetDateTime::now_utc().date();
    let range = format!(
        "/api/reports?date_from={}&date_to={}",
        today.previous_day().unwrap(),
        today + time::Duration::days(60)
    );
    let (status, report) = json_body(first.get(&net.brand_key, &range).await).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["meta"]["totals"]["conversions"], 10, "{report}");
    // A replay to either node answers with the surviving version.
    for survivor in &survivors {
        let order = survivor["order_id"].as_str().unwrap();
        for node in [&first, &second] {
            let replay = node
                .track(&net.brand_key, &conversion(&click, order, "7.00"))
                .await;
            assert_eq!(replay.status(), StatusCode::OK);
            let body: serde_json::Value = replay.json().await.unwrap();
            let answered = time::OffsetDateTime::parse(
                body["data"]["created_at"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap();
            assert_eq!(
                answered.unix_timestamp(),
                json_u64(&survivor["stamp"]) as i64,
                "{order}"
            );
        }
    }
    drop(second);
    first
}
