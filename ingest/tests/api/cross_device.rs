//! The browser path and cross-device attribution, over HTTP: the pixel endpoint with each
//! kind of click evidence, and e-mail attribution for the pixel and the track API.

use crate::common::{Network, TestApp, TestClock, TestOptions, json_body, metric_value};
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::Duration;

async fn pixel(app: &TestApp, body: Value, cookie: Option<&str>) -> String {
    let mut request = app
        .http
        .post(app.url("/api/conversions/pixel"))
        .header("origin", "https://shop.example")
        .header("content-type", "text/plain;charset=UTF-8")
        .body(body.to_string());
    if let Some(cookie) = cookie {
        request = request.header("cookie", format!("afk_cid={cookie}"));
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    assert_eq!(
        response.headers()["access-control-allow-credentials"],
        "true"
    );
    response.headers()["x-affilync-outcome"]
        .to_str()
        .unwrap()
        .to_owned()
}

async fn stored(app: &TestApp, order: &str) -> Value {
    let rows = app
        .clickhouse_rows(&format!(
            "SELECT source, attribution_method, click_id, affiliate_id, toString(commission_amount) AS commission \
             FROM conversions FINAL WHERE order_id = '{order}'"
        ))
        .await;
    assert_eq!(rows.len(), 1, "{order} stored once");
    rows[0].clone()
}

#[tokio::test]
async fn pixel_reports_are_attributed_by_click_id_or_either_cookie() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;

    let by_url = json!({"order_id": "p-url", "amount": 99.99, "currency": "USD", "click_id": click, "click_source": "url"});
    assert_eq!(pixel(&app, by_url.clone(), None).await, "stored");
    let row = stored(&app, "p-url").await;
    assert_eq!(
        (&row["source"], &row["attribution_method"]),
        (&json!("pixel"), &json!("click_id"))
    );
    assert_eq!(row["affiliate_id"], net.affiliate_id);
    assert_eq!(
        row["commission"].as_str().unwrap().parse::<f64>().unwrap(),
        10.0
    );

    let by_first_party = json!({"order_id": "p-fp", "amount": "10", "click_id": click, "click_source": "first_party_cookie"});
    assert_eq!(pixel(&app, by_first_party, None).await, "stored");
    assert_eq!(stored(&app, "p-fp").await["attribution_method"], "cookie");

    let by_tracking_cookie = json!({"order_id": "p-3p", "amount": "10"});
    assert_eq!(
        pixel(&app, by_tracking_cookie, Some(&click)).await,
        "stored"
    );
    assert_eq!(stored(&app, "p-3p").await["attribution_method"], "cookie");

    // The same order reported twice is one conversion.
    assert_eq!(pixel(&app, by_url, None).await, "replayed");
    assert_eq!(
        app.count_where("conversions FINAL", "order_id = 'p-url'")
            .await,
        1
    );
}

#[tokio::test]
async fn unusable_pixel_reports_are_counted_and_not_stored() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;
    let mut forged = click.clone();
    forged.replace_range(10..11, if &click[10..11] == "A" { "B" } else { "A" });

    assert_eq!(
        pixel(&app, json!({"order_id": "x1", "amount": "1"}), None).await,
        "no_click"
    );
    assert_eq!(
        pixel(
            &app,
            json!({"order_id": "x2", "amount": "1", "click_id": forged}),
            None
        )
        .await,
        "forged_click"
    );
    assert_eq!(
        pixel(
            &app,
            json!({"order_id": "x3", "amount": "1"}),
            Some("clk_garbage")
        )
        .await,
        "forged_click"
    );
    assert_eq!(
        pixel(
            &app,
            json!({"order_id": "x4", "amount": "abc", "click_id": click}),
            None
        )
        .await,
        "invalid"
    );
    let email_only = json!({"order_id": "x5", "amount": "1", "customer_email": "nobody@example.com", "brand_id": net.brand_id});
    assert_eq!(pixel(&app, email_only, None).await, "no_matching_email");
    let response = app
        .http
        .post(app.url("/api/conversions/pixel"))
        .body("not json at all")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    assert_eq!(app.count_rows("conversions").await, 0);
    let metrics = app.metrics().await;
    // A body that is not JSON is read as a form: here one without any click.
    for (outcome, count) in [
        ("no_click", 2.0),
        ("forged_click", 2.0),
        ("invalid", 1.0),
        ("no_matching_email", 1.0),
    ] {
        assert_eq!(
            metric_value(
                &metrics,
                "affilync_pixel_reports_total",
                &[("outcome", outcome)]
            ),
            count,
            "{outcome}"
        );
    }
}

#[tokio::test]
async fn the_image_fallback_and_the_script_itself() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;
    let url = app.url(&format!(
        "/api/conversions/pixel?order_id=img-1&amount=5.00&click_id={click}&click_source=url&format=gif"
    ));
    let response = app.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/gif");
    assert_eq!(response.headers()["x-affilync-outcome"], "stored");
    assert!(response.bytes().await.unwrap().starts_with(b"GIF89a"));

    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/api/conversions/pixel"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://shop.example"
    );

    let script = app.http.get(app.url("/pixel.js")).send().await.unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    let etag = script.headers()["etag"].to_str().unwrap().to_owned();
    assert!(
        script.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let body = script.text().await.unwrap();
    assert!(
        body.contains(&app.url("/api/conversions/pixel")),
        "the endpoint is filled in"
    );
    assert!(!body.contains("__AFFILYNC_ENDPOINT__"));
    let again = app
        .http
        .get(app.url("/pixel.js"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
}

async fn first_purchase(app: &TestApp, net: &Network, order: &str, email: &str) -> Value {
    let click = app.click(&net.link_url).await;
    let body =
        json!({"click_id": click, "order_id": order, "amount": "40.00", "customer_email": email});
    let (status, answer) = json_body(app.track(&net.brand_key, &body).await).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer["data"].clone()
}

#[tokio::test]
async fn an_email_carries_attribution_to_another_device_within_the_window() {
    let clock = TestClock::default();
    let app = TestApp::spawn_with(TestOptions {
        clock: clock.clone(),
        ..TestOptions::default()
    })
    .await;
    let net = app.network().await;
    let first = first_purchase(&app, &net, "device-1", "Jane@Example.com").await;

    // Second device, pixel, no click at all: attributed by e-mail to the first click.
    clock.advance(Duration::days(3));
    let email_only = json!({"order_id": "device-2", "amount": "20", "customer_email": " jane@example.com ", "brand_id": net.brand_id});
    assert_eq!(pixel(&app, email_only, None).await, "stored");
    let row = stored(&app, "device-2").await;
    assert_eq!(row["attribution_method"], "email");
    assert_eq!(row["click_id"], first["click_id"]);
    assert_eq!(row["affiliate_id"], net.affiliate_id);

    // The track API takes customer_email in place of click_id.
    let body =
        json!({"order_id": "device-3", "amount": "30.00", "customer_email": "jane@example.com"});
    let (status, answer) = json_body(app.track(&net.brand_key, &body).await).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["data"]["attribution"]["method"], "email");
    assert_eq!(answer["data"]["commission_amount"], "3.00");
    assert!(
        answer["data"]["attribution"]["seconds_from_click"]
            .as_u64()
            .unwrap()
            >= 3 * 86_400
    );

    // Past the window there is nothing to attribute to.
    clock.advance(Duration::days(28));
    let late =
        json!({"order_id": "device-4", "amount": "30.00", "customer_email": "jane@example.com"});
    let (status, answer) = json_body(app.track(&net.brand_key, &late).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"]["field"], "click_id");

    // Another brand never gets this brand's customers.
    let other = app.network().await;
    let (status, _) = json_body(
        app.track(
            &other.brand_key,
            &json!({"order_id": "o", "amount": "1", "customer_email": "jane@example.com"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Neither an e-mail nor a click: click_id is required.
    let (status, answer) = json_body(
        app.track(&net.brand_key, &json!({"order_id": "o", "amount": "1"}))
            .await,
    )
    .await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("click_id"))
    );
}
