//! Attribution through the real service: the cookie window (with a moved clock, not a
//! sleep) and commission arithmetic in currencies with 0, 2 and 3 minor digits.

use crate::common::{TestApp, TestClock, TestOptions, json_body};
use reqwest::StatusCode;
use serde_json::json;
use time::Duration;

#[tokio::test]
async fn a_click_older_than_the_window_is_stored_rejected_with_no_commission() {
    let clock = TestClock::default();
    let app = TestApp::spawn_with(TestOptions {
        clock: clock.clone(),
        ..TestOptions::default()
    })
    .await;
    let net = app
        .network_with(json!({"sale": {"percent": "10"}}), "USD", 7)
        .await;
    let click = app.click(&net.link_url).await;

    clock.advance(Duration::days(6));
    let inside = json!({"click_id": click, "order_id": "inside", "amount": "50.00"});
    let (status, body) = json_body(app.track(&net.brand_key, &inside).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["status"], "pending");
    assert_eq!(body["data"]["commission_amount"], "5.00");
    assert_eq!(body["data"]["attribution"]["method"], "click_id");
    assert!(
        body["data"]["attribution"]["seconds_from_click"]
            .as_u64()
            .unwrap()
            >= 6 * 86_400
    );

    clock.advance(Duration::days(2));
    let outside = json!({"click_id": click, "order_id": "outside", "amount": "50.00"});
    let (status, body) = json_body(app.track(&net.brand_key, &outside).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["status"], "rejected");
    assert_eq!(body["data"]["commission_amount"], "0.00");
    let reason = body["data"]["status_reason"].as_str().unwrap();
    assert!(reason.contains("7-day cookie window"), "{reason}");

    let rows = app
        .clickhouse_rows(
            "SELECT status, status_reason, toString(commission_amount) AS commission \
             FROM conversions FINAL WHERE order_id = 'outside'",
        )
        .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "rejected");
    assert_eq!(rows[0]["status_reason"], reason);
    assert_eq!(
        rows[0]["commission"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap(),
        0.0
    );
    let commission = app
        .clickhouse_rows("SELECT status, toString(amount) AS amount FROM commissions FINAL WHERE conversion_id IN (SELECT conversion_id FROM conversions WHERE order_id = 'outside')")
        .await;
    assert_eq!(commission[0]["status"], "rejected");
}

/// (campaign currency, rules, conversion currency, amount, event, expected commission)
const CASES: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "USD",
        r#"{"sale": {"percent": "10"}}"#,
        "USD",
        "99.99",
        "sale",
        "10.00",
    ),
    (
        "USD",
        r#"{"sale": {"percent": "12.5"}}"#,
        "USD",
        "0.04",
        "sale",
        "0.01",
    ),
    (
        "USD",
        r#"{"sale": {"percent": "33.333"}}"#,
        "USD",
        "100",
        "sale",
        "33.33",
    ),
    (
        "JPY",
        r#"{"sale": {"percent": "15"}}"#,
        "JPY",
        "10",
        "sale",
        "2",
    ),
    (
        "JPY",
        r#"{"sale": {"percent": "15"}}"#,
        "JPY",
        "3",
        "sale",
        "0",
    ),
    (
        "BHD",
        r#"{"sale": {"percent": "7"}}"#,
        "BHD",
        "1.5",
        "sale",
        "0.105",
    ),
    (
        "BHD",
        r#"{"sale": {"percent": "7"}}"#,
        "BHD",
        "1.235",
        "sale",
        "0.086",
    ),
    (
        "EUR",
        r#"{"lead": {"flat": "2.5"}}"#,
        "JPY",
        "1000",
        "lead",
        "2.50",
    ),
    (
        "USD",
        r#"{"lead": {"flat": "2.50"}}"#,
        "USD",
        "80",
        "sale",
        "0.00",
    ),
];

#[tokio::test]
async fn commissions_are_exact_and_rounded_half_up_to_minor_units() {
    let app = TestApp::spawn().await;
    for (i, (campaign_currency, rules, currency, amount, event, expected)) in
        CASES.iter().enumerate()
    {
        let rules: serde_json::Value = serde_json::from_str(rules).unwrap();
        let net = app.network_with(rules, campaign_currency, 30).await;
        let click = app.click(&net.link_url).await;
        let body = json!({
            "click_id": click, "order_id": format!("case-{i}"), "amount": amount,
            "currency": currency, "event_type": event,
        });
        let (status, answer) = json_body(app.track(&net.brand_key, &body).await).await;
        assert_eq!(status, StatusCode::CREATED, "case {i}: {answer}");
        assert_eq!(
            answer["data"]["commission_amount"], *expected,
            "case {i}: {answer}"
        );
        let stored = app
            .clickhouse_rows(&format!(
                "SELECT toString(amount) AS amount FROM commissions FINAL WHERE brand_id = '{}'",
                net.brand_id
            ))
            .await;
        let stored: rust_decimal::Decimal = stored[0]["amount"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            stored,
            expected.parse().unwrap(),
            "case {i}: commissions row"
        );
    }
}

#[tokio::test]
async fn json_numbers_are_taken_without_float_rounding() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;
    // 0.1 + 0.2 style values survive exactly; a float would print 99.98999...
    let body = json!({"click_id": click, "order_id": "n-1", "amount": 99.99});
    let (status, answer) = json_body(app.track(&net.brand_key, &body).await).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["data"]["amount"], "99.99");
    assert_eq!(answer["data"]["commission_amount"], "10.00");
}
