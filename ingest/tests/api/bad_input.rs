//! Bad input, table-driven: every case gets a 4xx naming what is wrong, and nothing of
//! any of them is stored.

use crate::common::{CLICK_SECRET, TestApp, json_body};
use attributor::domain::{ClickSigner, LinkId};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Case {
    name: &'static str,
    body: Body,
    status: StatusCode,
    field: Option<&'static str>,
}

enum Body {
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

fn case(name: &'static str, body: Value, field: &'static str) -> Case {
    Case {
        name,
        body: Body::Json(body),
        status: StatusCode::UNPROCESSABLE_ENTITY,
        field: Some(field),
    }
}

fn raw(name: &'static str, content_type: &'static str, body: &[u8], status: StatusCode) -> Case {
    Case {
        name,
        body: Body::Raw(content_type, body.to_vec()),
        status,
        field: None,
    }
}

/// Every bad-input case for the track endpoint, each a change to a valid body.
fn cases(click: &str, unknown_click: &str) -> Vec<Case> {
    let valid = json!({"click_id": click, "order_id": "o-1", "amount": "10.00", "currency": "USD", "event_type": "sale"});
    let with = |field: &str, value: Value| {
        let mut body = valid.clone();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = valid.clone();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let forged = {
        let mut chars: Vec<char> = click.chars().collect();
        let i = chars.len() - 3;
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        chars.into_iter().collect::<String>()
    };
    vec![
        case("missing click_id", without("click_id"), "click_id"),
        case("empty click_id", with("click_id", json!("")), "click_id"),
        case("missing order_id", without("order_id"), "order_id"),
        case("empty order_id", with("order_id", json!("")), "order_id"),
        case("missing amount", without("amount"), "amount"),
        case("empty amount", with("amount", json!("")), "amount"),
        case("amount abc", with("amount", json!("abc")), "amount"),
        case("amount -1", with("amount", json!("-1")), "amount"),
        case("amount -1 as a number", with("amount", json!(-1)), "amount"),
        case("amount 1e3", with("amount", json!("1e3")), "amount"),
        Case {
            name: "amount 1e3 as a JSON number",
            body: Body::Raw(
                "application/json",
                format!(r#"{{"click_id": "{click}", "order_id": "o-1", "amount": 1e3}}"#)
                    .into_bytes(),
            ),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            field: Some("amount"),
        },
        case("amount NaN", with("amount", json!("NaN")), "amount"),
        case(
            "amount with 3 decimals in USD",
            with("amount", json!("10.001")),
            "amount",
        ),
        case(
            "amount with decimals in JPY",
            json!({"click_id": click, "order_id": "o", "amount": "10.5", "currency": "JPY"}),
            "amount",
        ),
        case(
            "amount above 10^12",
            with("amount", json!("1000000000000.01")),
            "amount",
        ),
        case("amount as a boolean", with("amount", json!(true)), "amount"),
        case("currency usd", with("currency", json!("usd")), "currency"),
        case("currency XXX", with("currency", json!("XXX")), "currency"),
        case("currency EURO", with("currency", json!("EURO")), "currency"),
        case(
            "event_type purchase",
            with("event_type", json!("purchase")),
            "event_type",
        ),
        case(
            "unknown click_id",
            with("click_id", json!(unknown_click)),
            "click_id",
        ),
        case(
            "forged click_id",
            with("click_id", json!(forged)),
            "click_id",
        ),
        case(
            "made-up click_id",
            with("click_id", json!("clk_abc123")),
            "click_id",
        ),
        case(
            "order_id over 256 bytes",
            with("order_id", json!("x".repeat(257))),
            "order_id",
        ),
        case(
            "order_id as a number",
            with("order_id", json!(456)),
            "order_id",
        ),
        case(
            "click_id as an object",
            with("click_id", json!({"id": 1})),
            "click_id",
        ),
        case(
            "metadata as a list",
            with("metadata", json!(["a"])),
            "metadata",
        ),
        case(
            "metadata nested",
            with("metadata", json!({"a": {"b": "c"}})),
            "metadata.a",
        ),
        case(
            "customer_email as a number",
            with("customer_email", json!(5)),
            "customer_email",
        ),
        raw(
            "body not JSON",
            "application/json",
            b"order_id=1",
            StatusCode::BAD_REQUEST,
        ),
        raw(
            "JSON not an object",
            "application/json",
            b"[1, 2]",
            StatusCode::BAD_REQUEST,
        ),
        raw(
            "truncated JSON",
            "application/json",
            b"{\"order_id\": ",
            StatusCode::BAD_REQUEST,
        ),
        raw(
            "empty body",
            "application/json",
            b"",
            StatusCode::BAD_REQUEST,
        ),
        raw(
            "body over 64 KiB",
            "application/json",
            format!("{{\"order_id\": \"{}\"}}", "x".repeat(70_000)).as_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        raw(
            "form body",
            "application/x-www-form-urlencoded",
            b"order_id=1",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ]
}

#[tokio::test]
async fn every_bad_track_request_is_a_4xx_naming_the_field_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;
    let unknown_click = ClickSigner::new(CLICK_SECRET.as_bytes())
        .issue(&LinkId::generate(), time::OffsetDateTime::now_utc());

    for case in cases(&click, unknown_click.as_str()) {
        let request = app
            .http
            .post(app.url("/api/conversions/track"))
            .bearer_auth(&net.brand_key);
        let request = match &case.body {
            Body::Json(body) => request.json(body),
            Body::Raw(content_type, bytes) => request
                .header("content-type", *content_type)
                .body(bytes.clone()),
        };
        let (status, body) = json_body(request.send().await.unwrap()).await;
        assert_eq!(status, case.status, "{}: {body}", case.name);
        assert!(body["error"]["code"].is_string(), "{}: {body}", case.name);
        assert!(
            body["error"]["message"].is_string(),
            "{}: {body}",
            case.name
        );
        assert_eq!(
            body["error"]["field"].as_str(),
            case.field,
            "{}: {body}",
            case.name
        );
    }
    assert_eq!(app.count_rows("conversions").await, 0);
    assert_eq!(app.count_rows("commissions").await, 0);
}

#[tokio::test]
async fn keys_and_roles_are_checked_before_anything_else() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;
    let body = json!({"click_id": click, "order_id": "o-1", "amount": "10.00"});
    let track = app.url("/api/conversions/track");

    let response = app.http.post(&track).json(&body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let (status, answer) = json_body(app.track("afk_not_a_key", &body).await).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (status, _) = json_body(app.track(&net.affiliate_key, &body).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = json_body(app.get("afk_not_a_key", "/api/conversions").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let postback =
        format!("/api/conversions/postback?api_key=nope&click_id={click}&order_id=o&amount=1");
    let (status, _) = json_body(app.http.get(app.url(&postback)).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = json_body(app.admin("/api/admin/brands", json!({"name": "x"})).await).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = json_body(
        app.http
            .post(app.url("/api/admin/brands"))
            .bearer_auth(&net.brand_key)
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.count_rows("conversions").await, 0);
}

#[tokio::test]
async fn bad_postbacks_are_refused_the_same_way() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;
    for (query, field) in [
        (format!("click_id={click}&order_id=o&amount=abc"), "amount"),
        (format!("click_id={click}&amount=5"), "order_id"),
        ("order_id=o&amount=5".to_string(), "click_id"),
        (
            format!("click_id={click}&order_id=o&amount=5&currency=usd"),
            "currency",
        ),
        (
            format!("click_id={click}&order_id=o&amount=5&event_type=refund"),
            "event_type",
        ),
    ] {
        let url = app.url(&format!(
            "/api/conversions/postback?api_key={}&{query}",
            net.brand_key
        ));
        let (status, body) = json_body(app.http.get(url).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}");
    }
    assert_eq!(app.count_rows("conversions").await, 0);
}

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;
    let body = json!({"click_id": click, "order_id": "o-1", "amount": "10.00", "shipping": {"carrier": "x"}, "tags": [1]});
    let (status, answer) = json_body(app.track(&net.brand_key, &body).await).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}
