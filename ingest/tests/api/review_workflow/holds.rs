//! Hold periods: scheduled approval, the listing filter, automatic approval exactly once.

use super::*;

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
    // Waiting for something not to happen: four of the restarted node's rounds to finish,
    // each of which would have approved again if it were going to.
    restarted
        .wait_for_metric("affilync_hold_rounds_total", &[], |rounds| rounds >= 4.0)
        .await;
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
async fn the_answers_to_a_held_report_carry_its_scheduled_approval() {
    let app = TestApp::spawn().await;
    let net = held_network(&app, 7).await;
    let click = app.click(&net.link_url).await;
    let body = json!({"click_id": click, "order_id": "held-1", "amount": "20.00"});

    let (status, created) = json_body(app.track(&net.brand_key, &body).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let created_at = time::OffsetDateTime::parse(
        created["data"]["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(
        created["data"]["scheduled_approval_at"],
        ingest::views::timestamp(created_at + time::Duration::days(7)),
        "{created}"
    );

    let (status, replayed) = json_body(app.track(&net.brand_key, &body).await).await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    assert_eq!(replayed, created);
    let id = created["data"]["conversion_id"].as_str().unwrap();
    let (_, read) = json_body(
        app.get(&net.brand_key, &format!("/api/conversions/{id}"))
            .await,
    )
    .await;
    assert_eq!(read, created);

    let conflicting = json!({"click_id": click, "order_id": "held-1", "amount": "21.00"});
    let (status, conflict) = json_body(app.track(&net.brand_key, &conflicting).await).await;
    assert_eq!(status, StatusCode::CONFLICT, "{conflict}");
    assert_eq!(conflict["data"], created["data"], "{conflict}");
}

#[tokio::test]
async fn one_round_approves_a_backlog_of_several_pages() {
    let clock = TestClock::default();
    let app = TestApp::spawn_with(TestOptions {
        clock: clock.clone(),
        // Pages of 2 and rounds far enough apart that a round is seen to finish alone.
        hold_rounds: HoldRounds {
            every: std::time::Duration::from_secs(2),
            page: 2,
        },
        ..TestOptions::default()
    })
    .await;
    let net = held_network(&app, 1).await;
    let mut ids = Vec::new();
    for n in 0..7 {
        ids.push(report(&app, &net, &format!("backlog-{n}")).await);
    }
    app.drain().await;
    let rounds_before = app.metric("affilync_hold_rounds_total", &[]).await;

    clock.advance(time::Duration::days(1) + time::Duration::minutes(1));
    app.wait_for_metric("affilync_hold_approvals_total", &[], |approved| {
        approved >= 7.0
    })
    .await;
    // The round running when the clock moved may have read the old time; the next one
    // approves all seven, where one page per round would have taken four.
    let rounds = app.metric("affilync_hold_rounds_total", &[]).await;
    assert!(rounds - rounds_before <= 2.0, "{rounds_before} → {rounds}");
    for id in &ids {
        assert_eq!(status_of(&app, &net.brand_key, id).await, "approved");
    }
}
