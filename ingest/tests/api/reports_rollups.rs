//! The rollups' own bookkeeping: a day recomputed by two nodes one after the other counts
//! once, and the marks of recomputed days are trimmed without
//! losing a day marked again.

use std::time::{Duration, Instant};

use attributor::reports::RollupConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Network, TestApp, TestOptions, clickhouse_execute, json_body};
use crate::reports_reconciliation::next_generation;

const ROLLUP_TABLES: [&str; 4] = [
    "report_conversions_hourly",
    "report_clicks_hourly",
    "report_conversions_daily",
    "report_clicks_daily",
];

/// Each of `ROLLUP_TABLES`' keys besides the brand.
const ROLLUP_KEYS: [&str; 4] = [
    "hour, campaign_id, affiliate_id, link_id, event_type, currency, commission_currency",
    "hour, campaign_id, affiliate_id, link_id",
    "day, campaign_id, affiliate_id, event_type, currency, commission_currency",
    "day, campaign_id, affiliate_id",
];

/// How long rollups and trims may take to catch up in these tests.
const DEADLINE: Duration = Duration::from_secs(30);

async fn with_rollups(trim_interval: Duration) -> TestApp {
    TestApp::spawn_with(TestOptions {
        report_rollups: RollupConfig {
            enabled: true,
            interval: Duration::from_millis(50),
            margin: crate::common::ROLLUP_MARGIN,
            trim_interval,
        },
        ..TestOptions::default()
    })
    .await
}

async fn sale(app: &TestApp, net: &Network, order: &str) {
    let click = app.click(&net.link_url).await;
    let body = json!({"click_id": click, "order_id": order, "amount": "10.00"});
    let (status, answer) = json_body(app.track(&net.brand_key, &body).await).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

/// Waits until every row written so far is in the rollups.
async fn rolled_up(app: &TestApp) -> f64 {
    app.drain().await;
    let now = app.clickhouse_count("SELECT toUInt32(now()) AS now").await as f64;
    app.wait_for_metric(
        "affilync_report_rollup_complete_through_seconds",
        &[],
        |through| through >= now,
    )
    .await
}

/// The totals of a report and the grain that answered it.
async fn totals(app: &TestApp, key: &str, query: &str) -> (Value, String) {
    let response = app.get(key, &format!("/api/reports?{query}")).await;
    let grain = response.headers()["x-affilync-report-grain"]
        .to_str()
        .unwrap()
        .to_owned();
    let (status, body) = json_body(response).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    (body["meta"]["totals"].clone(), grain)
}

#[tokio::test]
async fn a_day_recomputed_twice_counts_once() {
    let app = with_rollups(Duration::from_secs(600)).await;
    let net = app.network().await;
    sale(&app, &net, "twice-1").await;
    sale(&app, &net, "twice-2").await;
    rolled_up(&app).await;
    // What a second node recomputing the same days just after leaves until a merge: every
    // rollup row again, one generation later.
    for (table, keys) in ROLLUP_TABLES.iter().zip(ROLLUP_KEYS) {
        clickhouse_execute(&app.database, &next_generation(table, keys)).await;
    }
    for (query, grain) in [("group_by=day", "daily"), ("group_by=hour", "hourly")] {
        let (totals, used) = totals(&app, &net.brand_key, query).await;
        assert_eq!(used, grain);
        assert_eq!(
            (&totals["clicks"], &totals["conversions"], &totals["amount"]),
            (&json!(2), &json!(2), &json!({"USD": "20.00"})),
            "{query}: {totals}"
        );
    }
}

#[tokio::test]
async fn marks_of_recomputed_days_are_trimmed_and_a_new_mark_is_kept() {
    let app = with_rollups(Duration::from_millis(200)).await;
    let net = app.network().await;
    sale(&app, &net, "trim-1").await;
    // A mark an hour old, as every mark of a day long recomputed is.
    clickhouse_execute(
        &app.database,
        &format!(
            "INSERT INTO report_dirty_days VALUES ('{}', today(), now() - 3600)",
            net.brand_id
        ),
    )
    .await;
    let through = rolled_up(&app).await;
    let older =
        format!("SELECT count() FROM report_dirty_days WHERE marked_at < toDateTime({through})");
    // Trimmed in the background: every mark older than what the passes have dealt with.
    let deadline = Instant::now() + DEADLINE;
    while app.clickhouse_count(&older).await > 0 {
        assert!(Instant::now() < deadline, "marks before {through} stayed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The same day marked again, after it was recomputed and its marks trimmed: the new
    // sale reaches the rollups.
    sale(&app, &net, "trim-2").await;
    rolled_up(&app).await;
    let (totals, grain) = totals(&app, &net.brand_key, "group_by=day").await;
    assert_eq!(grain, "daily");
    assert_eq!(totals["conversions"], 2, "{totals}");
}
