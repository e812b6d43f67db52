//! Who sees and changes what: brands their own brand's conversions, affiliates their own,
//! and the review transitions of PATCH.

use crate::common::{Network, TestApp, json_body};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn report(app: &TestApp, net: &Network, order: &str) -> Value {
    let click = app.click(&net.link_url).await;
    let body = json!({"click_id": click, "order_id": order, "amount": "20.00"});
    let (status, answer) = json_body(app.track(&net.brand_key, &body).await).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer["data"].clone()
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["conversion_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn brands_and_affiliates_see_only_their_own() {
    let app = TestApp::spawn().await;
    let a = app.network().await;
    let b = app.network().await;
    let of_a = report(&app, &a, "a-1").await;
    let of_b = report(&app, &b, "b-1").await;
    let id_a = of_a["conversion_id"].as_str().unwrap();
    // Listings read ClickHouse, which has the journal's records once they are shipped.
    app.drain().await;

    let (_, list) = json_body(app.get(&b.brand_key, "/api/conversions").await).await;
    assert_eq!(
        ids(&list),
        vec![of_b["conversion_id"].as_str().unwrap().to_owned()]
    );
    let (status, _) = json_body(
        app.get(&b.brand_key, &format!("/api/conversions/{id_a}"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = json_body(
        app.patch(&b.brand_key, id_a, &json!({"status": "approved"}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, list) = json_body(app.get(&a.affiliate_key, "/api/conversions").await).await;
    assert_eq!(ids(&list), vec![id_a.to_owned()]);
    let (status, got) = json_body(
        app.get(&a.affiliate_key, &format!("/api/conversions/{id_a}"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["data"], of_a);
    let (status, _) = json_body(
        app.get(&b.affiliate_key, &format!("/api/conversions/{id_a}"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let other = format!("/api/conversions?affiliate_id={}", b.affiliate_id);
    let (status, body) = json_body(app.get(&a.affiliate_key, &other).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = json_body(
        app.patch(&a.affiliate_key, id_a, &json!({"status": "approved"}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let click = app.click(&a.link_url).await;
    let body = json!({"click_id": click, "order_id": "x", "amount": "1"});
    let (status, _) = json_body(app.track(&a.affiliate_key, &body).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Brand A's click cannot be reported by brand B.
    let (status, body) = json_body(app.track(&b.brand_key, &body).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "click_id");
    assert_eq!(app.count_rows("conversions").await, 2);
}

#[tokio::test]
async fn review_follows_the_transitions_and_rewrites_the_commission() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let approved = report(&app, &net, "p-1").await;
    let id = approved["conversion_id"].as_str().unwrap();

    let change = json!({"status": "approved", "note": "Verified in our system"});
    let (status, body) = json_body(app.patch(&net.brand_key, id, &change).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "approved");
    assert_eq!(body["data"]["note"], "Verified in our system");
    assert_eq!(body["data"]["commission_amount"], "2.00");
    let (status, again) = json_body(app.patch(&net.brand_key, id, &change).await).await;
    assert_eq!(
        (status, &again["data"]),
        (StatusCode::OK, &body["data"]),
        "repeating is a no-op"
    );
    let rows = app
        .clickhouse_rows(&format!(
            "SELECT status FROM commissions FINAL WHERE conversion_id = '{id}'"
        ))
        .await;
    assert_eq!(rows, vec![json!({"status": "approved"})]);

    // Reversal: approved -> rejected; then rejected is final.
    let (status, body) = json_body(
        app.patch(
            &net.brand_key,
            id,
            &json!({"status": "rejected", "note": "refunded"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "rejected");
    assert_eq!(body["data"]["commission_amount"], "0.00");
    let (status, body) = json_body(
        app.patch(&net.brand_key, id, &json!({"status": "approved"}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "invalid_status_transition");
    assert_eq!(body["data"]["status"], "rejected");
    let rows = app
        .clickhouse_rows(&format!(
            "SELECT status, toString(amount) AS amount FROM commissions FINAL WHERE conversion_id = '{id}'"
        ))
        .await;
    assert_eq!(rows[0]["status"], "rejected");
    assert_eq!(
        rows[0]["amount"].as_str().unwrap().parse::<f64>().unwrap(),
        0.0
    );
    assert_eq!(
        app.count_where("conversions", &format!("conversion_id = '{id}'"))
            .await,
        3,
        "each change is a new version"
    );

    let rejected = report(&app, &net, "p-2").await;
    let id = rejected["conversion_id"].as_str().unwrap();
    let (status, body) = json_body(
        app.patch(&net.brand_key, id, &json!({"status": "pending"}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "status");
    let (status, _) = json_body(
        app.patch(&net.brand_key, "conv_nope", &json!({"status": "approved"}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn listing_filters_pages_and_counts_latest_versions() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    // A second campaign of the same brand, through which one conversion comes.
    let second_campaign = app
        .create(
            "/api/admin/campaigns",
            json!({"brand_id": net.brand_id, "name": "Second", "landing_url": "https://shop.example/2",
                   "commission": {"sale": {"percent": "5"}}}),
        )
        .await;
    let other_affiliate = app
        .create("/api/admin/affiliates", json!({"name": "Other"}))
        .await;
    let second = app
        .network_for(
            &json!({"brand_id": net.brand_id}),
            &other_affiliate,
            &second_campaign,
        )
        .await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(report(&app, &net, &format!("l-{i}")).await);
    }
    let via_second = report(&app, &second, "l-second").await;
    let id0 = created[0]["conversion_id"].as_str().unwrap();
    app.patch(&net.brand_key, id0, &json!({"status": "approved"}))
        .await;
    app.drain().await;

    let list = |query: String| {
        let app = &app;
        let key = net.brand_key.clone();
        async move {
            let (status, body) =
                json_body(app.get(&key, &format!("/api/conversions{query}")).await).await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            body
        }
    };
    let all = list(String::new()).await;
    assert_eq!(
        all["meta"],
        json!({"page": 1, "per_page": 50, "total": 6, "total_estimated": false, "next_cursor": null})
    );
    let times: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["created_at"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );

    let approved = list("?status=approved".into()).await;
    assert_eq!(ids(&approved), vec![id0.to_owned()]);
    assert_eq!(
        list("?status=pending".into()).await["meta"]["total"],
        5,
        "the approved one is no longer pending"
    );
    let by_campaign = list(format!("?campaign_id={}", second.campaign_id)).await;
    assert_eq!(
        ids(&by_campaign),
        vec![via_second["conversion_id"].as_str().unwrap().to_owned()]
    );
    let by_affiliate = list(format!("?affiliate_id={}", net.affiliate_id)).await;
    assert_eq!(by_affiliate["meta"]["total"], 5);

    let page1 = list("?per_page=4&page=1".into()).await;
    let page2 = list("?per_page=4&page=2".into()).await;
    assert_eq!((ids(&page1).len(), ids(&page2).len()), (4, 2));
    assert_eq!(
        page2["meta"],
        json!({"page": 2, "per_page": 4, "total": 6, "total_estimated": false, "next_cursor": null})
    );
    let mut paged = ids(&page1);
    paged.extend(ids(&page2));
    assert_eq!(paged, ids(&all));

    let today = time::OffsetDateTime::now_utc().date();
    let in_range = list(format!("?date_from={today}&date_to={today}")).await;
    assert_eq!(in_range["meta"]["total"], 6);
    let before = list("?date_from=2020-01-01&date_to=2020-01-31".into()).await;
    assert_eq!(before["meta"]["total"], 0);
    assert_eq!(before["data"], json!([]));
}

/// Conversions spread over most of a year: every page, from the newest, matches the
/// order ClickHouse gives for the whole history.
#[tokio::test]
async fn pages_are_the_same_however_far_back_they_reach() {
    let clock = crate::common::TestClock::default();
    let app = TestApp::spawn_with(crate::common::TestOptions {
        clock: clock.clone(),
        ..crate::common::TestOptions::default()
    })
    .await;
    let net = app
        .network_with(json!({"sale": {"percent": "10"}}), "USD", 365)
        .await;
    clock.advance(time::Duration::days(-300));
    let click = app.click(&net.link_url).await;
    for (i, gap) in [0, 90 * 24, 60 * 24, 30 * 24, 9 * 24, 50, 7, 3, 1, 0, 0, 0]
        .iter()
        .enumerate()
    {
        clock.advance(time::Duration::hours(*gap));
        let body = json!({"click_id": click, "order_id": format!("spread-{i}"), "amount": "1.00"});
        let (status, answer) = json_body(app.track(&net.brand_key, &body).await).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    let expected: Vec<String> = app
        .clickhouse_rows(
            "SELECT conversion_id FROM conversions FINAL ORDER BY created_at DESC, conversion_id DESC",
        )
        .await
        .iter()
        .map(|row| row["conversion_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(expected.len(), 12);
    let mut listed = Vec::new();
    for page in 1..=3 {
        let (status, body) = json_body(
            app.get(
                &net.brand_key,
                &format!("/api/conversions?per_page=5&page={page}"),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["meta"]["total"], 12);
        listed.extend(ids(&body));
    }
    assert_eq!(listed, expected);
}
