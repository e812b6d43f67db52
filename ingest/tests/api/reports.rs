//! `GET /api/reports` over HTTP: who sees what, CSV, and the parameters refused.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Network, TestApp, json_body};

async fn sale(app: &TestApp, net: &Network, order: &str, amount: &str, currency: &str) -> Value {
    let click = app.click(&net.link_url).await;
    let body =
        json!({"click_id": click, "order_id": order, "amount": amount, "currency": currency});
    let (status, answer) = json_body(app.track(&net.brand_key, &body).await).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer["data"].clone()
}

async fn report(app: &TestApp, key: &str, query: &str) -> Value {
    app.drain().await;
    let (status, body) = json_body(app.get(key, &format!("/api/reports?{query}")).await).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body
}

fn column(report: &Value, name: &str) -> Vec<Value> {
    report["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[name].clone())
        .collect()
}

fn link_id(net: &Network) -> String {
    net.link_url.rsplit('/').next().unwrap().to_owned()
}

/// Two brands; brand A has two affiliates on its campaign. Every key sees its own traffic
/// and nothing else, whatever it filters by.
#[tokio::test]
async fn reports_show_each_key_only_its_own_traffic() {
    let app = TestApp::spawn().await;
    let a = app.network().await;
    let b = app.network().await;
    let second_affiliate = app
        .create("/api/admin/affiliates", json!({"name": "Second"}))
        .await;
    let campaign = json!({"campaign_id": a.campaign_id});
    let a2 = app
        .network_for(
            &json!({"brand_id": a.brand_id}),
            &second_affiliate,
            &campaign,
        )
        .await;
    sale(&app, &a, "a-1", "10.00", "USD").await;
    sale(&app, &a, "a-2", "20.00", "USD").await;
    sale(&app, &a2, "a2-1", "5.00", "EUR").await;
    sale(&app, &b, "b-1", "7.00", "USD").await;
    app.click(&b.link_url).await;

    let brand_a = report(&app, &a.brand_key, "group_by=affiliate,campaign").await;
    let mut affiliates = column(&brand_a, "affiliate_id");
    affiliates.sort_by_key(|v| v.to_string());
    let mut expected = vec![json!(a.affiliate_id), json!(a2.affiliate_id)];
    expected.sort_by_key(|v| v.to_string());
    assert_eq!(affiliates, expected);
    assert_eq!(
        column(&brand_a, "campaign_id"),
        vec![json!(a.campaign_id); 2]
    );
    assert_eq!(brand_a["meta"]["totals"]["clicks"], 3);
    assert_eq!(brand_a["meta"]["totals"]["conversions"], 3);

    let brand_b = report(&app, &b.brand_key, "group_by=campaign").await;
    assert_eq!(column(&brand_b, "campaign_id"), vec![json!(b.campaign_id)]);
    assert_eq!(brand_b["meta"]["totals"]["clicks"], 2);
    assert_eq!(brand_b["meta"]["totals"]["amount"], json!({"USD": "7.00"}));
    // Another brand's campaign or affiliate as a filter finds nothing of it.
    for filter in [
        format!("campaign_id={}", a.campaign_id),
        format!("affiliate_id={}", a.affiliate_id),
        format!("link_id={}", link_id(&a)),
    ] {
        let empty = report(&app, &b.brand_key, &format!("group_by=campaign&{filter}")).await;
        assert_eq!(empty["data"], json!([]), "{filter}");
        assert_eq!(empty["meta"]["totals"]["clicks"], 0, "{filter}");
        assert_eq!(empty["meta"]["totals"]["conversions"], 0, "{filter}");
    }

    let second = report(&app, &a2.affiliate_key, "group_by=link,affiliate").await;
    assert_eq!(column(&second, "link_id"), vec![json!(link_id(&a2))]);
    assert_eq!(
        column(&second, "affiliate_id"),
        vec![json!(a2.affiliate_id)]
    );
    assert_eq!(second["meta"]["totals"]["clicks"], 1);
    assert_eq!(second["meta"]["totals"]["amount"], json!({"EUR": "5.00"}));
    let first = report(&app, &a.affiliate_key, "").await;
    assert_eq!(first["meta"]["totals"]["conversions"], 2);
    assert_eq!(first["meta"]["totals"]["amount"], json!({"USD": "30.00"}));

    let other = format!("/api/reports?affiliate_id={}", a2.affiliate_id);
    let (status, body) = json_body(app.get(&a.affiliate_key, &other).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = json_body(app.get("nope", "/api/reports").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// CSV by `format=csv` or by `Accept: text/csv`: a header line, one line per row, a
/// column per currency, empty cells where a figure does not exist.
#[tokio::test]
async fn reports_stream_as_csv_with_a_column_per_currency() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let approved = sale(&app, &net, "c-1", "10.00", "USD").await;
    sale(&app, &net, "c-2", "1500", "JPY").await;
    app.click(&net.link_url).await;
    let id = approved["conversion_id"].as_str().unwrap();
    let (status, _) = json_body(
        app.patch(&net.brand_key, id, &json!({"status": "approved"}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    app.drain().await;

    let expected = format!(
        "campaign_id,clicks,conversions,pending,approved,rejected,conversion_rate,\
         amount_JPY,commission_JPY,epc_JPY,amount_USD,commission_USD,epc_USD\r\n\
         {},3,2,1,1,0,0.6666666666666666,1500,150,50.0000,10.00,1.00,0.3333\r\n",
        net.campaign_id
    );
    let by_format = app
        .get(&net.brand_key, "/api/reports?group_by=campaign&format=csv")
        .await;
    assert_eq!(by_format.status(), StatusCode::OK);
    assert!(
        by_format.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert_eq!(by_format.text().await.unwrap(), expected);
    let by_accept = app
        .http
        .get(app.url("/api/reports?group_by=campaign"))
        .bearer_auth(&net.brand_key)
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(by_accept.text().await.unwrap(), expected);

    let by_status = app
        .get(
            &net.brand_key,
            "/api/reports?group_by=status&format=csv&sort=status",
        )
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        by_status,
        "status,clicks,conversions,pending,approved,rejected,conversion_rate,\
         amount_JPY,commission_JPY,epc_JPY,amount_USD,commission_USD,epc_USD\r\n\
         approved,,1,0,1,0,,,,,10.00,1.00,\r\n\
         pending,,1,1,0,0,,1500,150,,,,\r\n"
    );
}

#[tokio::test]
async fn reports_refuse_bad_parameters_naming_them() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    for (query, field) in [
        ("group_by=day,planet", "group_by"),
        ("group_by=campaign,campaign", "group_by"),
        ("timezone=Mars/Olympus", "timezone"),
        ("timezone=Europe%2F..%2F..%2Fetc", "timezone"),
        ("date_from=2026-03-05&date_to=2026-03-01", "date_to"),
        ("date_from=2020-01-01&date_to=2026-03-01", "date_to"),
        ("date_from=last-week", "date_from"),
        ("date_to=2106-01-01", "date_to"),
        ("campaign_id=x", "campaign_id"),
        ("affiliate_id=x", "affiliate_id"),
        ("link_id=x", "link_id"),
        ("event_type=purchase", "event_type"),
        ("status=done", "status"),
        ("currency=XYZ", "currency"),
        ("sort=planet", "sort"),
        ("sort=campaign&group_by=day", "sort"),
        ("sort=-amount&group_by=campaign", "sort"),
        ("limit=0", "limit"),
        ("limit=100000", "limit"),
        ("page=0", "page"),
        ("format=xlsx", "format"),
        ("group_by=day&date_from=caf%E9", "date_from"),
    ] {
        let (status, body) = json_body(
            app.get(&net.brand_key, &format!("/api/reports?{query}"))
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
        assert_eq!(body["error"]["code"], "invalid_field", "{query}");
    }
    let (status, _) = json_body(
        app.http
            .post(app.url("/api/reports"))
            .bearer_auth(&net.brand_key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

/// Pages cut the sorted rows; the totals are the whole report's.
#[tokio::test]
async fn reports_sort_and_page() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    for (i, amount) in ["5.00", "30.00", "12.00"].iter().enumerate() {
        sale(
            &app,
            &net,
            &format!("p-{i}"),
            amount,
            ["USD", "EUR", "GBP"][i],
        )
        .await;
    }
    let all = report(&app, &net.brand_key, "group_by=currency&sort=-amount").await;
    assert_eq!(
        column(&all, "currency"),
        [json!("EUR"), json!("GBP"), json!("USD")]
    );
    let page = report(
        &app,
        &net.brand_key,
        "group_by=currency&sort=-amount&limit=2&page=2",
    )
    .await;
    assert_eq!(column(&page, "currency"), [json!("USD")]);
    assert_eq!(page["meta"]["total"], 3);
    assert_eq!(page["meta"]["limit"], 2);
    assert_eq!(page["meta"]["totals"]["conversions"], 3);
    let ascending = report(&app, &net.brand_key, "group_by=currency&sort=currency").await;
    assert_eq!(
        column(&ascending, "currency"),
        [json!("EUR"), json!("GBP"), json!("USD")]
    );
}

/// The README's three BI queries over the `bi_*` views answer as the reports do.
#[tokio::test]
async fn bi_views_answer_as_the_reports_do() {
    let app = TestApp::spawn_with(crate::common::TestOptions {
        report_rollups: attributor::reports::RollupConfig {
            enabled: true,
            interval: std::time::Duration::from_millis(50),
            margin: std::time::Duration::from_secs(1),
            ..attributor::reports::RollupConfig::default()
        },
        ..crate::common::TestOptions::default()
    })
    .await;
    let net = app.network().await;
    let second_affiliate = app
        .create("/api/admin/affiliates", json!({"name": "Second"}))
        .await;
    let other = app
        .network_for(
            &json!({"brand_id": net.brand_id}),
            &second_affiliate,
            &json!({"campaign_id": net.campaign_id}),
        )
        .await;
    let first = sale(&app, &net, "bi-1", "10.00", "USD").await;
    sale(&app, &net, "bi-2", "20.00", "EUR").await;
    sale(&app, &other, "bi-3", "7.50", "EUR").await;
    sale(&app, &other, "bi-4", "1.25", "USD").await;
    app.click(&other.link_url).await;
    let id = first["conversion_id"].as_str().unwrap();
    app.patch(&net.brand_key, id, &json!({"status": "approved"}))
        .await;
    app.drain().await;
    let now = app.clickhouse_count("SELECT toUInt32(now()) AS now").await as f64;
    app.wait_for_metric(
        "affilync_report_rollup_complete_through_seconds",
        &[],
        |through| through >= now,
    )
    .await;

    let today = time::OffsetDateTime::now_utc().date();
    let (from, to) = (today.previous_day().unwrap(), today.next_day().unwrap());
    let sql = |text: &str| {
        text.replace("brd_…", &net.brand_id)
            .replace("2026-03-01", &from.to_string())
            .replace("2026-03-31", &to.to_string())
            .replace("2026-04-01", &to.next_day().unwrap().to_string())
    };
    let number = |value: &Value| -> rust_decimal::Decimal {
        match value {
            Value::String(text) => text.parse().unwrap(),
            other => other.to_string().parse().unwrap(),
        }
    };
    let range = format!("date_from={from}&date_to={to}");

    let rows = app
        .clickhouse_rows(&sql(
            "SELECT toString(day) AS day, campaign_id, sum(conversions) AS conversions, sum(approved) AS approved,
                    sum(amount) AS amount, sum(commission) AS commission
             FROM bi_daily_conversions
             WHERE brand_id = 'brd_…' AND currency = 'USD' AND day BETWEEN '2026-03-01' AND '2026-03-31'
             GROUP BY day, campaign_id ORDER BY day, campaign_id",
        ))
        .await;
    let answer = report(
        &app,
        &net.brand_key,
        &format!("group_by=day,campaign&currency=USD&{range}"),
    )
    .await;
    let api = answer["data"].as_array().unwrap();
    assert_eq!(rows.len(), api.len());
    for (row, api) in rows.iter().zip(api) {
        assert_eq!(row["day"], api["day"]);
        assert_eq!(row["campaign_id"], api["campaign_id"]);
        assert_eq!(number(&row["conversions"]), number(&api["conversions"]));
        assert_eq!(number(&row["approved"]), number(&api["approved"]));
        assert_eq!(number(&row["amount"]), number(&api["amount"]["USD"]));
        assert_eq!(
            number(&row["commission"]),
            number(&api["commission"]["USD"])
        );
    }

    let rows = app
        .clickhouse_rows(&sql(
            "SELECT affiliate_id, clicks, conversions
             FROM (SELECT affiliate_id, sum(clicks) AS clicks FROM bi_daily_clicks
                   WHERE brand_id = 'brd_…' AND day BETWEEN '2026-03-01' AND '2026-03-31' GROUP BY affiliate_id)
             ANY FULL OUTER JOIN
                  (SELECT affiliate_id, sum(conversions) AS conversions FROM bi_daily_conversions
                   WHERE brand_id = 'brd_…' AND day BETWEEN '2026-03-01' AND '2026-03-31' GROUP BY affiliate_id)
             USING affiliate_id ORDER BY affiliate_id",
        ))
        .await;
    let answer = report(&app, &net.brand_key, &format!("group_by=affiliate&{range}")).await;
    let api = answer["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows.len(), api.len());
    for (row, api) in rows.iter().zip(api) {
        assert_eq!(row["affiliate_id"], api["affiliate_id"]);
        assert_eq!(number(&row["clicks"]), number(&api["clicks"]));
        assert_eq!(number(&row["conversions"]), number(&api["conversions"]));
    }

    let rows = app
        .clickhouse_rows(&sql(
            "SELECT toString(toDate(created_at, 'Europe/Berlin')) AS day, status, count() AS conversions,
                    sum(amount) AS amount
             FROM bi_conversions
             WHERE brand_id = 'brd_…' AND currency = 'EUR'
               AND created_at >= toDateTime('2026-03-01 00:00:00', 'Europe/Berlin')
               AND created_at < toDateTime('2026-04-01 00:00:00', 'Europe/Berlin')
             GROUP BY day, status ORDER BY day, status",
        ))
        .await;
    let query = format!("group_by=day,status&currency=EUR&timezone=Europe/Berlin&{range}");
    let answer = report(&app, &net.brand_key, &query).await;
    let api = answer["data"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert_eq!(rows.len(), api.len());
    for (row, api) in rows.iter().zip(api) {
        assert_eq!(row["day"], api["day"]);
        assert_eq!(row["status"], api["status"]);
        assert_eq!(number(&row["conversions"]), number(&api["conversions"]));
        assert_eq!(number(&row["amount"]), number(&api["amount"]["EUR"]));
    }
}
