//! A misconfigured shop platform firing one postback in a loop is slowed to its key's
//! limit with 429 and Retry-After, while every other key goes on; the keyless pixel and
//! tracking links are limited per client address.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{TestApp, TestOptions, json_body, metric_value};
use ingest::rate_limit::{Bucket, RateLimitConfig};

#[tokio::test]
async fn a_postback_loop_is_limited_while_another_key_is_not() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;
    let other_key = app
        .create("/api/admin/api-keys", json!({"brand_id": net.brand_id}))
        .await["api_key"]
        .as_str()
        .unwrap()
        .to_owned();

    // The operator slows the looping key down: three at once, then one a second.
    let (status, set) = json_body(
        app.http
            .put(app.url("/api/admin/api-keys/rate-limit"))
            .bearer_auth(crate::common::ADMIN_TOKEN)
            .json(&json!({"api_key": net.brand_key, "rate_limit": {"per_second": 1, "burst": 3}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(
        set["data"]["rate_limit"],
        json!({"per_second": 1, "burst": 3})
    );

    let postback = |key: &str| {
        app.url(&format!(
            "/api/conversions/postback?api_key={key}&click_id={click}&order_id=loop-1&amount=9.99"
        ))
    };
    let mut statuses = Vec::new();
    let mut refusal = None;
    for _ in 0..20 {
        let response = app.http.get(postback(&net.brand_key)).send().await.unwrap();
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS && refusal.is_none() {
            let retry_after: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            refusal = Some((retry_after, json_body(response).await.1));
        }
    }
    let limited = statuses
        .iter()
        .filter(|status| **status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    // Three from the burst, perhaps one more refilled while the loop ran; the rest refused.
    assert!((16..=17).contains(&limited), "{statuses:?}");
    assert_eq!(statuses[0], StatusCode::CREATED);
    let (retry_after, body) = refusal.unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(body["error"]["code"], "rate_limited");

    // Another key of the same brand is not slowed by the loop.
    for n in 0..20 {
        let url = app.url(&format!(
            "/api/conversions/postback?api_key={other_key}&click_id={click}&order_id=other-{n}&amount=1"
        ));
        let response = app.http.get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "affilync_rate_limited_total",
            &[("kind", "brand_key")]
        ),
        limited as f64
    );
    app.drain().await;
    assert_eq!(app.count_rows("conversions FINAL").await, 21);

    // Back to the node's default: the loop's key is served again at once (a new bucket).
    let (status, _) = json_body(
        app.http
            .put(app.url("/api/admin/api-keys/rate-limit"))
            .bearer_auth(crate::common::ADMIN_TOKEN)
            .json(&json!({"api_key": net.brand_key, "rate_limit": "default"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let response = app.http.get(postback(&net.brand_key)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_admin_setting_is_checked_and_names_the_field() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    for (body, field) in [
        (json!({"rate_limit": "unlimited"}), "api_key"),
        (
            json!({"api_key": "afk_unknown", "rate_limit": "unlimited"}),
            "api_key",
        ),
        (
            json!({"api_key": net.brand_key, "rate_limit": {"per_second": 0}}),
            "rate_limit.per_second",
        ),
        (
            json!({"api_key": net.brand_key, "rate_limit": "fast"}),
            "rate_limit",
        ),
    ] {
        let (status, answer) = json_body(
            app.http
                .put(app.url("/api/admin/api-keys/rate-limit"))
                .bearer_auth(crate::common::ADMIN_TOKEN)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{body}");
    }
    let without_token = app
        .http
        .put(app.url("/api/admin/api-keys/rate-limit"))
        .json(&json!({"api_key": net.brand_key, "rate_limit": "unlimited"}))
        .send()
        .await
        .unwrap();
    assert_eq!(without_token.status(), StatusCode::UNAUTHORIZED);
    let created = app
        .create(
            "/api/admin/api-keys",
            json!({"affiliate_id": net.affiliate_id, "rate_limit": {"per_second": 50, "burst": 100}}),
        )
        .await;
    assert_eq!(
        created["rate_limit"],
        json!({"per_second": 50, "burst": 100})
    );
}

#[tokio::test]
async fn clicks_and_pixel_reports_are_limited_per_address() {
    let app = TestApp::spawn_with(TestOptions {
        rate_limits: RateLimitConfig {
            per_key: None,
            per_address: Bucket::new(1, 3),
        },
        ..TestOptions::default()
    })
    .await;
    let net = app.network().await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = app.http.get(&net.link_url).send().await.unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key("retry-after"));
        }
        statuses.push(response.status());
    }
    assert_eq!(&statuses[..3], &[StatusCode::FOUND; 3], "{statuses:?}");
    assert!(
        statuses[3..].contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let pixel = app
        .http
        .get(app.url("/api/conversions/pixel?order_id=p-1&amount=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(pixel.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(pixel.headers()["x-affilync-outcome"], "rate_limited");
    let metrics = app.metrics().await;
    assert!(
        metric_value(
            &metrics,
            "affilync_rate_limited_total",
            &[("kind", "address")]
        ) >= 2.0
    );
    // Keys are not limited per address: the admin calls above and this listing went on.
    let listing = app.get(&net.brand_key, "/api/conversions").await;
    assert_eq!(listing.status(), StatusCode::OK);
}
