//! The rollups' own bookkeeping: a day recomputed by two nodes one after the other counts
//! once, the marks of recomputed days are trimmed without losing a day marked again, and
//! a report read while its days are recomputed and merged counts each of them once.

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

/// Waits until every row written so far is in the rollups, and no pass recomputes a day
/// for them any more (see [`past_the_margin`]).
async fn rolled_up(app: &TestApp) -> f64 {
    app.drain().await;
    let now = app.clickhouse_count("SELECT toUInt32(now()) AS now").await as f64;
    past_the_margin(app, now).await
}

/// Waits until a pass has completed that began more than the margin after `now` (the
/// metric is its start less the margin): marks up to `now` are then dealt with, and
/// since that pass recomputed their days a second or more after the margin ran out, no
/// later pass recomputes them again.
pub(crate) async fn past_the_margin(app: &TestApp, now: f64) -> f64 {
    app.wait_for_metric(
        "affilync_report_rollup_complete_through_seconds",
        &[],
        |through| through > now,
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

/// Reports read while every pass recomputes their days and merges take the older
/// generations away still count every day once: a report never names a generation that
/// a merge removed before its rows were read.
#[tokio::test]
async fn reports_read_while_their_days_are_recomputed_and_merged_count_every_day() {
    // Every pass recomputes the days again (their marks stay within the margin).
    let margin = 600;
    let app = TestApp::spawn_with(TestOptions {
        report_rollups: RollupConfig {
            enabled: true,
            interval: Duration::from_millis(20),
            margin: Duration::from_secs(margin),
            trim_interval: Duration::from_secs(600),
        },
        ..TestOptions::default()
    })
    .await;
    let net = app.network().await;
    for order in 0..3 {
        sale(&app, &net, &format!("merged-{order}")).await;
    }
    // Every row in the rollups: a pass began in a later second than the last was written.
    app.drain().await;
    let now = app.clickhouse_count("SELECT toUInt32(now()) AS now").await;
    app.wait_for_metric(
        "affilync_report_rollup_complete_through_seconds",
        &[],
        |through| through + margin as f64 > now as f64,
    )
    .await;

    // Merges as soon as there is anything to merge, while the reports are read.
    let database = app.database.clone();
    let merging = tokio::spawn(async move {
        loop {
            for table in ROLLUP_TABLES {
                clickhouse_execute(&database, &format!("OPTIMIZE TABLE {table} FINAL")).await;
            }
        }
    });
    let recomputes = "affilync_report_rollup_recomputes_total";
    let before = app.metric(recomputes, &[]).await;
    let mut from_rollups = 0;
    for read in 0..60 {
        for query in [
            "group_by=day",
            "group_by=hour",
            "group_by=day&timezone=Europe/Berlin",
        ] {
            let response = app
                .get(&net.brand_key, &format!("/api/reports?{query}"))
                .await;
            let source = response
                .headers()
                .get("x-affilync-report-source")
                .map(|source| source.to_str().unwrap().to_owned());
            let (status, body) = json_body(response).await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            let source = source.unwrap();
            let totals = &body["meta"]["totals"];
            assert_eq!(
                (&totals["clicks"], &totals["conversions"], &totals["amount"]),
                (&json!(3), &json!(3), &json!({"USD": "30.00"})),
                "read {read}, {query} from {source}: {body}"
            );
            from_rollups += usize::from(source == "rollups");
        }
    }
    merging.abort();
    // The days were recomputed throughout, and the rollups answered most of the reads
    // (the raw rows answer one only after several recomputes landed under it).
    let recomputed = app.metric(recomputes, &[]).await - before;
    assert!(
        recomputed >= 10.0,
        "{recomputed} recomputes during the reads"
    );
    assert!(
        from_rollups >= 90,
        "{from_rollups} of 180 reads from the rollups"
    );
}

/// An affiliate's report names the generation of each brand and day it reads: over the
/// longest range and many brands, more text than ClickHouse parses by default, still
/// answered, and from the rollups.
#[tokio::test]
async fn an_affiliates_longest_report_over_many_brands_is_answered_from_the_rollups() {
    let app = with_rollups(Duration::from_secs(600)).await;
    let net = app.network().await;
    // A click a day for 400 days in each of 30 brands, as the daily rollups hold them.
    let (brands, days) = (30, 400);
    clickhouse_execute(
        &app.database,
        &format!(
            "INSERT INTO report_clicks_daily \
                 (brand_id, day, campaign_id, affiliate_id, version, clicks) \
             SELECT concat('brd_many_', toString(number % {brands})), \
                    toDate('2025-01-01') + intDiv(number, {brands}), '{}', '{}', \
                    toUInt64(1) + number, toUInt64(1) \
             FROM numbers({})",
            net.campaign_id,
            net.affiliate_id,
            brands * days
        ),
    )
    .await;
    let query = "date_from=2025-01-01&date_to=2026-02-04&group_by=month&limit=100";
    let response = app
        .get(&net.affiliate_key, &format!("/api/reports?{query}"))
        .await;
    let source = response.headers().get("x-affilync-report-source").cloned();
    let (status, body) = json_body(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(source.unwrap(), "rollups");
    assert_eq!(body["meta"]["totals"]["clicks"], brands * days, "{body}");
    assert_eq!(
        body["data"][0]["clicks"],
        brands * 31,
        "January 2025: {body}"
    );
}

/// A day whose hourly rollups are of a newer generation than its daily ones, as a node
/// stopped between a recompute's two INSERTs leaves it, is answered from the raw rows,
/// exactly, and marked: the refresher recomputes it, and the rollups answer again.
#[tokio::test]
async fn a_day_left_between_its_two_rollup_inserts_is_answered_raw_then_recomputed() {
    let clock = crate::common::TestClock::default();
    let app = TestApp::spawn_with(TestOptions {
        clock: clock.clone(),
        report_rollups: RollupConfig {
            enabled: true,
            interval: Duration::from_millis(50),
            margin: crate::common::ROLLUP_MARGIN,
            trim_interval: Duration::from_secs(600),
        },
        ..TestOptions::default()
    })
    .await;
    let net = app.network().await;
    // Yesterday at 23:30 UTC: in Berlin today, so an hour moved out of its UTC day.
    let now = time::OffsetDateTime::now_utc();
    let late = now
        .date()
        .previous_day()
        .unwrap()
        .with_hms(23, 30, 0)
        .unwrap();
    clock.advance(late.assume_utc() - now);
    sale(&app, &net, "apart-1").await;
    rolled_up(&app).await;
    // The hourly rows again, one generation later, without the daily ones.
    for (table, keys) in ROLLUP_TABLES.iter().zip(ROLLUP_KEYS).take(2) {
        clickhouse_execute(&app.database, &next_generation(table, keys)).await;
    }
    let berlin = "group_by=day&timezone=Europe/Berlin";
    let report = || async {
        let response = app
            .get(&net.brand_key, &format!("/api/reports?{berlin}"))
            .await;
        let source = response.headers().get("x-affilync-report-source").cloned();
        let (status, body) = json_body(response).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let totals = &body["meta"]["totals"];
        assert_eq!(
            (&totals["clicks"], &totals["conversions"]),
            (&json!(1), &json!(1)),
            "{body}"
        );
        source.unwrap()
    };
    assert_eq!(report().await, "raw");
    rolled_up(&app).await;
    assert_eq!(report().await, "rollups");
}
