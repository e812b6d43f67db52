//! Reports reconcile with the truth: on a randomised history (clicks, orders in several
//! currencies, replays, conflicts, approvals, rejections and reversals, rows shipped to
//! ClickHouse twice) spread over midnights and a DST change, every report equals the same
//! report computed here by brute force from `conversions FINAL` and the distinct clicks,
//! with the zone rules of the system's zone database. Twice: from the rollups (refreshed
//! while the history happens, so status changes land on rolled-up days; daily, hourly and
//! both, as the zone and grouping allow), and from the raw rows by a second node with
//! rollups off.

use std::collections::BTreeMap;

use attributor::domain::Currency;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};
use time::OffsetDateTime;

use std::time::Duration;

use attributor::reports::RollupConfig;

use crate::common::{TestApp, TestClock, TestOptions, clickhouse_execute, json_body};

const ZONES: [&str; 5] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
];

const GROUPINGS: [&str; 9] = [
    "",
    "day",
    "hour",
    "week,campaign",
    "month,affiliate,link",
    "status,currency",
    "event_type,day",
    "day,campaign,affiliate",
    "hour,link,status",
];

struct Conversion {
    at: i64,
    brand: String,
    campaign: String,
    affiliate: String,
    link: String,
    event_type: String,
    status: String,
    currency: String,
    amount: Decimal,
    commission_currency: String,
    commission: Decimal,
}

struct Click {
    at: i64,
    brand: String,
    campaign: String,
    affiliate: String,
    link: String,
}

/// A tracking link and whose it is.
struct Link {
    url: String,
    brand_key: String,
    clicks: Vec<String>,
}

#[tokio::test]
async fn reports_reconcile_with_conversions_final_and_clicks() {
    let clock = TestClock::default();
    let app = TestApp::spawn_with(TestOptions {
        clock: clock.clone(),
        report_rollups: RollupConfig {
            enabled: true,
            interval: Duration::from_millis(50),
            margin: crate::common::ROLLUP_MARGIN,
            // Marks are trimmed while the history happens: none that matters is lost.
            trim_interval: Duration::from_millis(500),
        },
        ..TestOptions::default()
    })
    .await;
    let seed: u64 = std::env::var("REPORT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("reconciliation seed {seed} (REPORT_SEED={seed} repeats it)");
    let mut rng = StdRng::seed_from_u64(seed);

    // Brand A: two campaigns (USD and EUR terms), two affiliates, three links; brand B
    // alongside, so that tenancy is part of every comparison.
    let a = app.network().await;
    let eur_campaign = app
        .create(
            "/api/admin/campaigns",
            json!({"brand_id": a.brand_id, "name": "Euro", "landing_url": "https://shop.example/eu",
                   "currency": "EUR", "commission": {"sale": {"percent": "7.5"}, "lead": {"flat": "1.25"}}}),
        )
        .await;
    let second_affiliate = app
        .create("/api/admin/affiliates", json!({"name": "Second"}))
        .await;
    let brand_a = json!({"brand_id": a.brand_id});
    let first_affiliate = json!({"affiliate_id": a.affiliate_id});
    let a2 = app
        .network_for(&brand_a, &second_affiliate, &eur_campaign)
        .await;
    let a3 = app
        .network_for(&brand_a, &first_affiliate, &eur_campaign)
        .await;
    let b = app.network().await;
    let mut links: Vec<Link> = [&a, &a2, &a3, &b]
        .iter()
        .map(|net| Link {
            url: net.link_url.clone(),
            brand_key: net.brand_key.clone(),
            clicks: Vec::new(),
        })
        .collect();

    // From Friday evening before Europe's spring change (Sunday 2026-03-29 01:00 UTC)
    // to Monday morning.
    let start = time::macros::datetime!(2026-03-27 18:00 UTC);
    clock.advance(start - OffsetDateTime::now_utc());
    let mut orders: Vec<(String, Value)> = Vec::new();
    let mut stored: Vec<String> = Vec::new();
    for step in 0..260 {
        clock.advance(time::Duration::minutes(rng.random_range(0..32)));
        let roll = rng.random_range(0..100);
        if roll < 35 || links.iter().all(|l| l.clicks.is_empty()) {
            let link = rng.random_range(0..links.len());
            let click = app.click(&links[link].url).await;
            links[link].clicks.push(click);
        } else if roll < 72 {
            let clicked: Vec<usize> = (0..links.len())
                .filter(|&i| !links[i].clicks.is_empty())
                .collect();
            let link = &links[clicked[rng.random_range(0..clicked.len())]];
            let click = &link.clicks[rng.random_range(0..link.clicks.len())];
            let currency = ["USD", "EUR", "JPY", "GBP"][rng.random_range(0..4)];
            let amount = if currency == "JPY" {
                format!("{}", rng.random_range(0..20_000))
            } else {
                format!(
                    "{}.{:02}",
                    rng.random_range(0..500),
                    rng.random_range(0..100)
                )
            };
            let event_type = if rng.random_bool(0.8) { "sale" } else { "lead" };
            let body = json!({"click_id": click, "order_id": format!("o-{step}"),
                              "amount": amount, "currency": currency, "event_type": event_type});
            let (status, answer) = json_body(app.track(&link.brand_key, &body).await).await;
            assert_eq!(status, StatusCode::CREATED, "{answer}");
            orders.push((link.brand_key.clone(), body));
            stored.push(answer["data"]["conversion_id"].as_str().unwrap().to_owned());
        } else if roll < 80 && !orders.is_empty() {
            // A replay, or a conflict: neither stores anything.
            let (key, body) = &orders[rng.random_range(0..orders.len())];
            let mut body = body.clone();
            let conflict = rng.random_bool(0.3);
            if conflict {
                body["amount"] = json!("999.99");
                body["currency"] = json!("USD");
            }
            let (status, answer) = json_body(app.track(key, &body).await).await;
            let expected = if conflict {
                StatusCode::CONFLICT
            } else {
                StatusCode::OK
            };
            assert_eq!(status, expected, "{body}: {answer}");
        } else if !stored.is_empty() {
            let which = rng.random_range(0..stored.len());
            let key = &orders[which].0;
            let status = if rng.random_bool(0.6) {
                "approved"
            } else {
                "rejected"
            };
            let response = app
                .patch(key, &stored[which], &json!({"status": status}))
                .await;
            // Rejected is final: asking to approve it is a 409, which changes nothing.
            assert!(
                [StatusCode::OK, StatusCode::CONFLICT].contains(&response.status()),
                "{}",
                response.status()
            );
        }
    }
    app.drain().await;
    // Rows shipped twice, as a retried INSERT whose first try did land would leave them.
    clickhouse_execute(
        &app.database,
        "INSERT INTO conversions SELECT * FROM conversions WHERE cityHash64(conversion_id) % 3 = 0",
    )
    .await;
    clickhouse_execute(
        &app.database,
        "INSERT INTO clicks SELECT * FROM clicks WHERE cityHash64(click_id) % 2 = 0",
    )
    .await;

    // Everything written so far, in the rollups, and no pass recomputing a day any more:
    // the generations written below stay the latest.
    let now = app.clickhouse_count("SELECT toUInt32(now()) AS now").await as f64;
    crate::reports_rollups::past_the_margin(&app, now).await;
    // An older generation of every rollup row, with other figures, as one not yet merged
    // away would be: readers must take only each day's latest.
    clickhouse_execute(
        &app.database,
        "INSERT INTO report_conversions_hourly SELECT brand_id, hour, campaign_id, affiliate_id, \
             link_id, event_type, currency, commission_currency, toUInt64(1), pending + 1, \
             approved, rejected + 2, amount_pending, amount_approved + 1, amount_rejected, \
             commission_pending, commission_approved, commission_rejected + 1 \
         FROM report_conversions_hourly",
    )
    .await;
    clickhouse_execute(
        &app.database,
        "INSERT INTO report_clicks_hourly SELECT brand_id, hour, campaign_id, affiliate_id, \
             link_id, toUInt64(1), clicks + 3 FROM report_clicks_hourly",
    )
    .await;
    clickhouse_execute(
        &app.database,
        "INSERT INTO report_conversions_daily SELECT brand_id, day, campaign_id, affiliate_id, \
             event_type, currency, commission_currency, toUInt64(1), pending + 1, approved, \
             rejected + 2, amount_pending, amount_approved + 1, amount_rejected, \
             commission_pending, commission_approved, commission_rejected + 1 \
         FROM report_conversions_daily",
    )
    .await;
    clickhouse_execute(
        &app.database,
        "INSERT INTO report_clicks_daily SELECT brand_id, day, campaign_id, affiliate_id, \
             toUInt64(1), clicks + 3 FROM report_clicks_daily",
    )
    .await;
    // Every generation again with the next version, as another node recomputing each day a
    // moment later would: the two must not add up.
    for (table, keys) in [
        (
            "report_conversions_hourly",
            "hour, campaign_id, affiliate_id, link_id, event_type, currency, commission_currency",
        ),
        (
            "report_clicks_hourly",
            "hour, campaign_id, affiliate_id, link_id",
        ),
        (
            "report_conversions_daily",
            "day, campaign_id, affiliate_id, event_type, currency, commission_currency",
        ),
        ("report_clicks_daily", "day, campaign_id, affiliate_id"),
    ] {
        clickhouse_execute(&app.database, &next_generation(table, keys)).await;
    }
    let raw = TestApp::spawn_with(TestOptions {
        database: Some(app.database.clone()),
        ..TestOptions::default()
    })
    .await;

    let (conversions, clicks) = truth(&app).await;
    let a_link = a.link_url.rsplit('/').next().unwrap().to_owned();
    let filters = [
        String::new(),
        "status=approved".into(),
        "currency=EUR".into(),
        format!("campaign_id={}", a.campaign_id),
        format!("link_id={a_link}&event_type=sale"),
        format!("affiliate_id={}", a2.affiliate_id),
        "status=pending&currency=USD".into(),
    ];
    let mut compared = 0;
    let mut grains = std::collections::BTreeSet::new();
    for (z, zone) in ZONES.iter().enumerate() {
        for (g, group_by) in GROUPINGS.iter().enumerate() {
            let filter = &filters[(z + g) % filters.len()];
            let query = format!(
                "date_from=2026-03-27&date_to=2026-03-29&timezone={zone}&group_by={group_by}&limit=10000&{filter}"
            );
            let scope = Scope::Brand(a.brand_id.clone());
            for (node, source) in [(&app, rollups_or_raw(zone)), (&raw, "raw")] {
                let (used, grain) =
                    compare(node, &a.brand_key, &query, &scope, &conversions, &clicks).await;
                assert_eq!(used, source, "{query}");
                let moving_zone = ["Europe/Berlin", "America/New_York"].contains(zone);
                if moving_zone && *group_by == "day" && used == "rollups" {
                    // Whole UTC days from the daily rollups, their hours of the next or
                    // previous local day moved there from the hourly ones.
                    assert_eq!(grain.as_deref(), Some("daily+hourly"), "{query}");
                }
                grains.extend(grain);
            }
            compared += 1;
        }
        // An affiliate's own traffic, and the other brand's.
        let query = format!(
            "date_from=2026-03-28&date_to=2026-03-30&timezone={zone}&group_by=day,campaign,link&limit=10000"
        );
        let scope = Scope::Affiliate(a.affiliate_id.clone());
        compare(
            &app,
            &a.affiliate_key,
            &query,
            &scope,
            &conversions,
            &clicks,
        )
        .await;
        let scope = Scope::Brand(b.brand_id.clone());
        compare(&app, &b.brand_key, &query, &scope, &conversions, &clicks).await;
        compared += 2;
    }
    assert_eq!(compared, ZONES.len() * (GROUPINGS.len() + 2));
    // Both grains answered, alone and together.
    assert_eq!(
        grains.into_iter().collect::<Vec<_>>(),
        ["daily", "daily+hourly", "hourly"]
    );
}

/// Which figures a node with rollups answers a report of whole local days in `zone` from.
fn rollups_or_raw(zone: &str) -> &'static str {
    // Kolkata is UTC+5:30: its days are not whole UTC hours. (Lord Howe is +11:00 until
    // its change to +10:30 on 2026-04-05, so the rollups answer it in March.)
    if zone == "Asia/Kolkata" {
        "raw"
    } else {
        "rollups"
    }
}

enum Scope {
    Brand(String),
    Affiliate(String),
}

/// The latest version of every conversion, and every click once.
async fn truth(app: &TestApp) -> (Vec<Conversion>, Vec<Click>) {
    let text = |row: &Value, key: &str| row[key].as_str().unwrap().to_owned();
    let conversions = app
        .clickhouse_rows(
            "SELECT toUnixTimestamp(created_at) AS at, brand_id, campaign_id, affiliate_id, link_id, \
                    event_type, status, currency, toString(amount) AS amount, \
                    commission_currency, toString(commission_amount) AS commission \
             FROM conversions FINAL",
        )
        .await
        .iter()
        .map(|row| Conversion {
            at: row["at"].as_i64().unwrap(),
            brand: text(row, "brand_id"),
            campaign: text(row, "campaign_id"),
            affiliate: text(row, "affiliate_id"),
            link: text(row, "link_id"),
            event_type: text(row, "event_type"),
            status: text(row, "status"),
            currency: text(row, "currency"),
            amount: text(row, "amount").parse().unwrap(),
            commission_currency: text(row, "commission_currency"),
            commission: text(row, "commission").parse().unwrap(),
        })
        .collect();
    let clicks = app
        .clickhouse_rows(
            "SELECT DISTINCT click_id, toUnixTimestamp(clicked_at) AS at, brand_id, campaign_id, \
                    affiliate_id, link_id FROM clicks",
        )
        .await
        .iter()
        .map(|row| Click {
            at: row["at"].as_i64().unwrap(),
            brand: text(row, "brand_id"),
            campaign: text(row, "campaign_id"),
            affiliate: text(row, "affiliate_id"),
            link: text(row, "link_id"),
        })
        .collect();
    (conversions, clicks)
}

/// What one report must say, computed row by row from the truth.
#[derive(Default)]
struct Expected {
    clicks: u64,
    conversions: u64,
    by_status: BTreeMap<String, u64>,
    amount: BTreeMap<String, Decimal>,
    commission: BTreeMap<String, Decimal>,
}

impl Expected {
    fn json(&self, dims: &[(String, String)], with_clicks: bool) -> Value {
        let mut row = serde_json::Map::new();
        for (name, value) in dims {
            row.insert(name.clone(), json!(value));
        }
        let clicks = with_clicks.then_some(self.clicks);
        let per_click = clicks.filter(|n| *n > 0);
        let money = |sums: &BTreeMap<String, Decimal>| -> BTreeMap<String, String> {
            sums.iter()
                .map(|(code, value)| {
                    (
                        code.clone(),
                        code.parse::<Currency>().unwrap().format(*value),
                    )
                })
                .collect()
        };
        row.insert("clicks".into(), json!(clicks));
        row.insert("conversions".into(), json!(self.conversions));
        for status in ["pending", "approved", "rejected"] {
            row.insert(
                status.into(),
                json!(self.by_status.get(status).copied().unwrap_or(0)),
            );
        }
        row.insert(
            "conversion_rate".into(),
            json!(per_click.map(|n| self.conversions as f64 / n as f64)),
        );
        row.insert("amount".into(), json!(money(&self.amount)));
        row.insert("commission".into(), json!(money(&self.commission)));
        let epc = per_click.map(|n| {
            self.commission
                .iter()
                .map(|(code, value)| {
                    let mut epc = (value / Decimal::from(n))
                        .round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero);
                    epc.rescale(4);
                    (code.clone(), epc.to_string())
                })
                .collect::<BTreeMap<_, _>>()
        });
        row.insert("epc".into(), json!(epc));
        Value::Object(row)
    }
}

fn param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, value)| *key == name && !value.is_empty())
        .map(|(_, value)| value)
}

/// A dimension's label for an event at `at` with these ids, as the report shows it.
fn label(dimension: &str, at: i64, zone: &TimeZone, ids: [&str; 6]) -> (String, String) {
    let local = Timestamp::from_second(at).unwrap().to_zoned(zone.clone());
    let date = local.date();
    let [campaign, affiliate, link, event_type, status, currency] = ids;
    match dimension {
        "hour" => {
            let start = local
                .with()
                .minute(0)
                .second(0)
                .subsec_nanosecond(0)
                .build()
                .unwrap();
            (
                "hour".into(),
                start.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
            )
        }
        "day" => ("day".into(), date.to_string()),
        "week" => {
            let back = i64::from(date.weekday().to_monday_zero_offset());
            (
                "week".into(),
                date.checked_sub(Span::new().days(back))
                    .unwrap()
                    .to_string(),
            )
        }
        "month" => ("month".into(), date.first_of_month().to_string()),
        "campaign" => ("campaign_id".into(), campaign.into()),
        "affiliate" => ("affiliate_id".into(), affiliate.into()),
        "link" => ("link_id".into(), link.into()),
        "event_type" => ("event_type".into(), event_type.into()),
        "status" => ("status".into(), status.into()),
        "currency" => ("currency".into(), currency.into()),
        other => panic!("{other}"),
    }
}

/// Asks `app` for the report and compares it with the truth; returns which figures
/// answered (`rollups` or `raw`) and, from rollups, their grains.
async fn compare(
    app: &TestApp,
    key: &str,
    query: &str,
    scope: &Scope,
    conversions: &[Conversion],
    clicks: &[Click],
) -> (String, Option<String>) {
    let response = app.get(key, &format!("/api/reports?{query}")).await;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
    };
    let source = header("x-affilync-report-source").unwrap();
    let grain = header("x-affilync-report-grain");
    let (status, body) = json_body(response).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");

    let zone = TimeZone::get(param(query, "timezone").unwrap()).unwrap();
    let day_start = |text: &str| {
        let date: jiff::civil::Date = text.parse().unwrap();
        date.to_zoned(zone.clone()).unwrap().timestamp().as_second()
    };
    let from = day_start(param(query, "date_from").unwrap());
    let until = day_start(
        &param(query, "date_to")
            .unwrap()
            .parse::<jiff::civil::Date>()
            .unwrap()
            .tomorrow()
            .unwrap()
            .to_string(),
    );
    let dimensions: Vec<&str> = param(query, "group_by")
        .map(|g| g.split(',').collect())
        .unwrap_or_default();
    let with_clicks = dimensions.iter().all(|d| {
        [
            "hour",
            "day",
            "week",
            "month",
            "campaign",
            "affiliate",
            "link",
        ]
        .contains(d)
    });
    let owned = |brand: &str, affiliate: &str| match scope {
        Scope::Brand(id) => id == brand,
        Scope::Affiliate(id) => id == affiliate,
    };
    let matches = |name: &str, value: &str| param(query, name).is_none_or(|wanted| wanted == value);

    let mut rows: BTreeMap<Vec<(String, String)>, Expected> = BTreeMap::new();
    let mut totals = Expected::default();
    for click in clicks {
        if !(owned(&click.brand, &click.affiliate)
            && (from..until).contains(&click.at)
            && matches("campaign_id", &click.campaign)
            && matches("affiliate_id", &click.affiliate)
            && matches("link_id", &click.link))
        {
            continue;
        }
        totals.clicks += 1;
        if with_clicks {
            let ids = [&*click.campaign, &click.affiliate, &click.link, "", "", ""];
            let dims = dimensions
                .iter()
                .map(|d| label(d, click.at, &zone, ids))
                .collect();
            rows.entry(dims).or_default().clicks += 1;
        }
    }
    for c in conversions {
        if !(owned(&c.brand, &c.affiliate)
            && (from..until).contains(&c.at)
            && matches("campaign_id", &c.campaign)
            && matches("affiliate_id", &c.affiliate)
            && matches("link_id", &c.link)
            && matches("event_type", &c.event_type)
            && matches("status", &c.status)
            && matches("currency", &c.currency))
        {
            continue;
        }
        let ids = [
            &*c.campaign,
            &c.affiliate,
            &c.link,
            &c.event_type,
            &c.status,
            &c.currency,
        ];
        let dims = dimensions
            .iter()
            .map(|d| label(d, c.at, &zone, ids))
            .collect();
        for expected in [rows.entry(dims).or_default(), &mut totals] {
            expected.conversions += 1;
            *expected.by_status.entry(c.status.clone()).or_default() += 1;
            *expected.amount.entry(c.currency.clone()).or_default() += c.amount;
            *expected
                .commission
                .entry(c.commission_currency.clone())
                .or_default() += c.commission;
        }
    }

    let expected: BTreeMap<String, Value> = rows
        .iter()
        .map(|(dims, row)| (format!("{dims:?}"), row.json(dims, with_clicks)))
        .collect();
    let names: Vec<String> = dimensions
        .iter()
        .map(|d| label(d, 0, &zone, [""; 6]).0)
        .collect();
    let actual: BTreeMap<String, Value> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let dims: Vec<(String, String)> = names
                .iter()
                .map(|name| (name.clone(), row[name].as_str().unwrap().to_owned()))
                .collect();
            (format!("{dims:?}"), row.clone())
        })
        .collect();
    assert_eq!(
        actual.len(),
        body["data"].as_array().unwrap().len(),
        "{query}: rows repeat"
    );
    let (expected, actual) = (rounded(expected), rounded(actual));
    for (dims, row) in &expected {
        assert_eq!(actual.get(dims), Some(row), "{query}: row {dims}");
    }
    assert_eq!(
        actual.len(),
        expected.len(),
        "{query}: rows the truth does not have"
    );
    assert_eq!(
        rounded_rate(body["meta"]["totals"].clone()),
        rounded_rate(totals.json(&[], true)),
        "{query}: totals"
    );
    (source, grain)
}

/// Rates to twelve places: JSON's decimal text of a float need not read back to the very
/// same float.
fn rounded_rate(mut row: Value) -> Value {
    if let Some(rate) = row["conversion_rate"].as_f64() {
        row["conversion_rate"] = json!((rate * 1e12).round() as i64);
    }
    row
}

fn rounded(rows: BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    rows.into_iter()
        .map(|(k, v)| (k, rounded_rate(v)))
        .collect()
}

/// An INSERT writing every row of a rollup table again as a later generation, as another
/// node's recompute would: the columns after `version` are figures, named as the table has
/// them. Later by 4096, not by one: a node's next generation within the same second is its
/// previous plus one when the random half drew lower (see the refresher's `generation`), and
/// a copy at that very version would stand as one generation with the node's own.
pub(crate) fn next_generation(table: &str, keys: &str) -> String {
    let figures = if table.contains("clicks") {
        "clicks"
    } else {
        "pending, approved, rejected, amount_pending, amount_approved, amount_rejected, \
         commission_pending, commission_approved, commission_rejected"
    };
    format!(
        "INSERT INTO {table} (brand_id, {keys}, version, {figures}) \
         SELECT brand_id, {keys}, version + 4096, {figures} FROM {table}"
    )
}
