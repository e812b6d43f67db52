//! The admin API's validation, and the click redirect with its clicks row.

use crate::common::{ADMIN_TOKEN, TestApp, json_body};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn admin_creates_are_validated_and_name_the_field() {
    let app = TestApp::spawn().await;
    let brand = app
        .create("/api/admin/brands", json!({"name": "Shop"}))
        .await;
    assert!(brand["brand_id"].as_str().unwrap().starts_with("brd_"));
    let affiliate = app
        .create("/api/admin/affiliates", json!({"name": "Pub"}))
        .await;
    assert!(
        affiliate["affiliate_id"]
            .as_str()
            .unwrap()
            .starts_with("usr_")
    );

    let campaign = |overrides: Value| {
        let mut body = json!({
            "brand_id": brand["brand_id"], "name": "C", "landing_url": "https://shop.example/",
            "commission": {"sale": {"percent": "10"}},
        });
        for (k, v) in overrides.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let created = app
        .create("/api/admin/campaigns", campaign(json!({})))
        .await;
    assert_eq!(created["cookie_window_days"], 30, "the default window");
    assert_eq!(created["currency"], "USD", "the default currency");
    assert!(
        created["campaign_id"]
            .as_str()
            .unwrap()
            .starts_with("camp_")
    );

    for (overrides, field) in [
        (json!({"landing_url": "ftp://shop.example/"}), "landing_url"),
        (json!({"landing_url": "javascript:alert(1)"}), "landing_url"),
        (json!({"landing_url": "/relative"}), "landing_url"),
        (json!({"cookie_window_days": 0}), "cookie_window_days"),
        (json!({"cookie_window_days": 366}), "cookie_window_days"),
        (json!({"cookie_window_days": "30"}), "cookie_window_days"),
        (
            json!({"commission": {"sale": {"percent": "101"}}}),
            "commission.sale.percent",
        ),
        (
            json!({"commission": {"lead": {"flat": "-1"}}}),
            "commission.lead.flat",
        ),
        (
            json!({"commission": {"refund": {"flat": "1"}}}),
            "commission.refund",
        ),
        (json!({"currency": "usd"}), "currency"),
        (json!({"brand_id": "brd_0000000000000000"}), "brand_id"),
        (json!({"brand_id": "nope"}), "brand_id"),
        (json!({"name": ""}), "name"),
    ] {
        let (status, body) = json_body(
            app.admin("/api/admin/campaigns", campaign(overrides.clone()))
                .await,
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{overrides}: {body}"
        );
        assert_eq!(body["error"]["field"], field, "{overrides}");
    }

    let link = app
        .create(
            "/api/admin/links",
            json!({"campaign_id": created["campaign_id"], "affiliate_id": affiliate["affiliate_id"]}),
        )
        .await;
    let link_id = link["link_id"].as_str().unwrap();
    assert!(link_id.starts_with("lnk_"));
    assert_eq!(link["url"], app.url(&format!("/c/{link_id}")));
    let (status, body) = json_body(
        app.admin(
            "/api/admin/links",
            json!({"campaign_id": created["campaign_id"], "affiliate_id": "usr_0000000000000000"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("affiliate_id"))
    );

    let (status, body) = json_body(app.admin("/api/admin/api-keys", json!({})).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let key = app
        .create(
            "/api/admin/api-keys",
            json!({"brand_id": brand["brand_id"]}),
        )
        .await;
    assert!(key["api_key"].as_str().unwrap().starts_with("afk_"));
    // The key works on the very next request.
    let list = app
        .get(key["api_key"].as_str().unwrap(), "/api/conversions")
        .await;
    assert_eq!(list.status(), StatusCode::OK);
    // Only its hash is stored.
    let stored = app
        .clickhouse_rows("SELECT key_hash, key_prefix FROM api_keys")
        .await;
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0]["key_hash"], key["api_key"]);
    assert_eq!(stored[0]["key_hash"].as_str().unwrap().len(), 64);

    let wrong_token = app
        .http
        .post(app.url("/api/admin/brands"))
        .bearer_auth(format!("{ADMIN_TOKEN}x"))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_token.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_click_redirects_with_the_click_id_and_is_recorded() {
    let app = TestApp::spawn().await;
    let brand = app
        .create("/api/admin/brands", json!({"name": "Shop"}))
        .await;
    let affiliate = app
        .create("/api/admin/affiliates", json!({"name": "Pub"}))
        .await;
    let campaign = app
        .create(
            "/api/admin/campaigns",
            json!({"brand_id": brand["brand_id"], "name": "C", "cookie_window_days": 14,
                   "landing_url": "https://shop.example/spring?utm_source=aff&x=1#top"}),
        )
        .await;
    let net = app.network_for(&brand, &affiliate, &campaign).await;

    let response = app
        .http
        .get(format!("{}?sub1=alpha&sub3=gamma%20ray", net.link_url))
        .header("user-agent", "TestBrowser/1.0")
        .header("x-forwarded-for", "203.0.113.7")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(location.path(), "/spring");
    assert_eq!(location.fragment(), Some("top"));
    let pairs: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    assert_eq!(
        &pairs[..2],
        &[
            ("utm_source".into(), "aff".into()),
            ("x".into(), "1".into())
        ]
    );
    assert_eq!(pairs[2].0, "afk_cid");
    let click_id = pairs[2].1.clone();
    assert!(click_id.starts_with("clk_"));

    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with(&format!("afk_cid={click_id}")),
        "{cookie}"
    );
    for attribute in [
        "Max-Age=1209600",
        "Path=/",
        "SameSite=None",
        "Secure",
        "HttpOnly",
    ] {
        assert!(
            cookie.contains(attribute),
            "{attribute} missing from {cookie}"
        );
    }

    // The row is written after the redirect; a shutdown flushes what is queued.
    let database = app.database.clone();
    app.stop().await.unwrap();
    let sql = format!(
        "SELECT link_id, campaign_id, affiliate_id, brand_id, ip, forwarded_for, user_agent, sub1, sub2, sub3 \
         FROM clicks WHERE click_id = '{click_id}'"
    );
    let rows = crate::common::clickhouse_rows(&database, &sql).await;
    assert_eq!(rows.len(), 1, "the click row was written");
    let row = &rows[0];
    assert_eq!(row["link_id"], net.link_url.rsplit('/').next().unwrap());
    assert_eq!(row["campaign_id"], net.campaign_id);
    assert_eq!(row["affiliate_id"], net.affiliate_id);
    assert_eq!(row["brand_id"], net.brand_id);
    assert_eq!(row["ip"], "127.0.0.1");
    assert_eq!(row["forwarded_for"], "203.0.113.7");
    assert_eq!(row["user_agent"], "TestBrowser/1.0");
    assert_eq!(
        (&row["sub1"], &row["sub2"], &row["sub3"]),
        (&json!("alpha"), &json!(""), &json!("gamma ray"))
    );
}

#[tokio::test]
async fn unknown_links_get_a_404_page() {
    let app = TestApp::spawn().await;
    for path in ["/c/lnk_0000000000000000", "/c/whatever", "/c/lnk_%00"] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
    assert_eq!(app.count_rows("clicks").await, 0);
}

#[tokio::test]
async fn each_click_gets_its_own_unguessable_id() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let a = app.click(&net.link_url).await;
    let b = app.click(&net.link_url).await;
    assert_ne!(a, b);
    assert!(a.len() >= 40, "{a}");
}

/// A node that reports itself drained holds no answered click back: its click queue gauge
/// counts each click from before it is queued until its batch is journaled, and the
/// journal's pending records take over from there. A click answered just before the
/// drain waits for the next click batch (every 100 ms), so a drain that looked only at
/// the journal returned before it was there.
#[tokio::test]
async fn answered_clicks_are_in_clickhouse_once_the_node_is_drained() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    for _ in 0..5 {
        let click = app.click(&net.link_url).await;
        assert!(click.starts_with("clk_"));
    }
    app.drain().await;
    assert_eq!(app.count_rows("clicks").await, 5);
    assert_eq!(app.metric("affilync_click_queue_depth", &[]).await, 0.0);
}
