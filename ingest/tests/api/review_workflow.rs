//! The brand's review workflow: bulk decisions, the history of every status change, and
//! hold periods that approve automatically.

use crate::common::{Network, TestApp, TestClock, TestOptions, json_body};
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

#[tokio::test]
async fn held_conversions_are_approved_when_the_hold_ends_unless_decided() {
    let clock = TestClock::default();
    let app = TestApp::spawn_with(TestOptions {
        clock: clock.clone(),
        ..TestOptions::default()
    })
    .await;
    for (days, field) in [
        (json!(366), "hold_days"),
        (json!("14"), "hold_days"),
        (json!(-1), "hold_days"),
    ] {
        let brand = app.create("/api/admin/brands", json!({"name": "B"})).await;
        let (status, body) = json_body(
            app.admin(
                "/api/admin/campaigns",
                json!({"brand_id": brand["brand_id"], "name": "C", "hold_days": days,
                       "landing_url": "https://shop.example/"}),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["field"], field);
    }
    let plain = app.network().await;
    let plain_id = report(&app, &plain, "plain").await;
    let net = held_network(&app, 14).await;
    let kept = report(&app, &net, "kept").await;
    let decided = report(&app, &net, "decided").await;

    let (_, got) = json_body(
        app.get(&net.brand_key, &format!("/api/conversions/{kept}"))
            .await,
    )
    .await;
    let created = time::OffsetDateTime::parse(
        got["data"]["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let scheduled = created + time::Duration::days(14);
    assert_eq!(
        got["data"]["scheduled_approval_at"],
        ingest::views::timestamp(scheduled)
    );
    let (_, got) = json_body(
        app.get(&plain.brand_key, &format!("/api/conversions/{plain_id}"))
            .await,
    )
    .await;
    assert!(got["data"].get("scheduled_approval_at").is_none(), "{got}");

    let (status, body) = json_body(
        app.patch(
            &net.brand_key,
            &decided,
            &json!({"status": "rejected", "note": "fraud"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.drain().await;

    // What will approve itself within the next two weeks, and what will not this week.
    let day = |offset: i64| (created + time::Duration::days(offset)).date().to_string();
    let path = format!(
        "/api/conversions?status=pending&scheduled_approval_from={}&scheduled_approval_to={}",
        day(0),
        day(15)
    );
    let (status, list) = json_body(app.get(&net.brand_key, &path).await).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(listed(&list), vec![kept.clone()]);
    assert_eq!(list["meta"]["total"], 1);
    let path = format!("/api/conversions?scheduled_approval_to={}", day(7));
    let (_, list) = json_body(app.get(&net.brand_key, &path).await).await;
    assert_eq!(listed(&list), Vec::<String>::new());
    let (_, list) = json_body(
        app.get(
            &plain.brand_key,
            &format!("/api/conversions?scheduled_approval_from={}", day(0)),
        )
        .await,
    )
    .await;
    assert_eq!(listed(&list), Vec::<String>::new(), "no hold, no schedule");
    let (status, body) = json_body(
        app.get(
            &net.brand_key,
            "/api/conversions?scheduled_approval_from=soon",
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "scheduled_approval_from");

    clock.advance(time::Duration::days(14) + time::Duration::minutes(1));
    let approved = until_status(&app, &net.brand_key, &kept, "approved").await;
    assert_eq!(approved["updated_at"], ingest::views::timestamp(scheduled));
    assert!(
        approved["note"].as_str().unwrap().contains("automatically"),
        "{approved}"
    );
    assert_eq!(status_of(&app, &net.brand_key, &decided).await, "rejected");
    assert_eq!(
        status_of(&app, &plain.brand_key, &plain_id).await,
        "pending"
    );

    app.drain().await;
    let (_, answer) = history(&app, &net.brand_key, &kept).await;
    let rows = changes(&answer);
    assert_eq!(rows.len(), 1, "{answer}");
    assert_eq!(rows[0].0, "pending");
    assert_eq!(rows[0].1, "approved");
    assert_eq!(rows[0].2, "system:hold");
    assert!(rows[0].3.contains("automatically"));
}

#[tokio::test]
async fn two_nodes_and_a_restart_approve_each_held_conversion_once() {
    let clock = TestClock::default();
    let first_dir = tempfile::tempdir().unwrap();
    let first = TestApp::spawn_with(TestOptions {
        clock: clock.clone(),
        data_dir: Some(first_dir.path().to_owned()),
        ..TestOptions::default()
    })
    .await;
    let net = held_network(&first, 1).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(report(&first, &net, &format!("two-{n}")).await);
    }
    first.drain().await;
    let second = TestApp::spawn_with(TestOptions {
        clock: clock.clone(),
        database: Some(first.database.clone()),
        ..TestOptions::default()
    })
    .await;

    clock.advance(time::Duration::days(1) + time::Duration::minutes(1));
    for id in &ids {
        until_status(&first, &net.brand_key, id, "approved").await;
        until_status(&second, &net.brand_key, id, "approved").await;
    }
    first.drain().await;
    second.drain().await;

    // A restart of the first node, later still: nothing is pending, nothing is approved again.
    let database = first.database.clone();
    first.stop().await.unwrap();
    clock.advance(time::Duration::days(1));
    let restarted = TestApp::spawn_with(TestOptions {
        clock: clock.clone(),
        database: Some(database),
        data_dir: Some(first_dir.path().to_owned()),
        ..TestOptions::default()
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    restarted.drain().await;
    second.drain().await;

    let distinct = |table: &str, status_column: &str| {
        format!(
            "SELECT count(DISTINCT conversion_id, version) FROM {table} WHERE {status_column} = 'approved'"
        )
    };
    assert_eq!(
        restarted
            .clickhouse_count(&distinct("conversions", "status"))
            .await,
        5
    );
    assert_eq!(
        restarted
            .clickhouse_count(&distinct("status_changes", "to_status"))
            .await,
        5
    );
    for id in &ids {
        let (_, answer) = history(&restarted, &net.brand_key, id).await;
        assert_eq!(changes(&answer).len(), 1, "{answer}");
    }
}

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

#[tokio::test]
async fn a_csv_upload_decides_by_order_id_and_names_bad_lines() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let other = app.network().await;
    let first = report(&app, &net, "SO-1001").await;
    let second = report(&app, &net, "SO-1002").await;
    let elsewhere = report(&app, &other, "SO-1003").await;

    let csv = "order_id,status,note\r\nSO-1001,approved,\r\nSO-1002,rejected,\"returned, refunded\"\r\nSO-1003,approved,\r\nSO-9999,approved,\r\n";
    let (status, answer) = upload(&app, &net.brand_key, csv).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let results: Vec<&str> = answer["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["updated", "updated", "not_found", "not_found"]);
    assert_eq!(answer["data"][0]["conversion_id"], first.as_str());
    assert_eq!(status_of(&app, &net.brand_key, &first).await, "approved");
    assert_eq!(status_of(&app, &net.brand_key, &second).await, "rejected");
    assert_eq!(
        status_of(&app, &other.brand_key, &elsewhere).await,
        "pending"
    );
    let (status, again) = upload(&app, &net.brand_key, csv).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["meta"]["unchanged"], 2);

    let by_id = format!("conversion_id,status\n{second},approved\n");
    let (_, answer) = upload(&app, &net.brand_key, &by_id).await;
    assert_eq!(answer["data"][0]["result"], "invalid_transition");
    assert_eq!(answer["data"][0]["status"], "rejected");

    let bad = "order_id,status\nSO-1001,approved\nSO-1002,maybe\n";
    let (status, body) = upload(&app, &net.brand_key, bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "lines[3].status");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 3, column status"),
        "{body}"
    );
    let (status, body) = upload(&app, &net.brand_key, "sku,status\nx,approved\n").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "lines[1]");
}
