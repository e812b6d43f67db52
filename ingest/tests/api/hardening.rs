//! Every failure bounded, every input exact: what black-box fault and abuse runs found, kept
//! as regressions.

use std::time::{Duration, Instant};

use attributor::ShipperConfig;
use attributor::store::StoreTimeouts;
use reqwest::StatusCode;
use serde_json::json;

use crate::common::process::ServiceProcess;
use crate::common::proxy::Proxy;
use crate::common::{TestApp, TestOptions, clickhouse, json_body, metric_value};

/// Longest a refusal may take while ClickHouse does not answer at all: the deadlines in
/// force are one second, so anything near this bound means a wait without one.
const PROMPT: Duration = Duration::from_secs(8);

/// ClickHouse frozen: every read that needs it (a listing, a conversion by id, a status
/// change, a replay that must be looked up) answers 503 with Retry-After within its
/// deadline instead of waiting for ClickHouse; an unknown API key is a 401 from memory.
#[tokio::test]
async fn reads_of_a_frozen_clickhouse_are_refused_promptly() {
    let proxy = Proxy::start(&clickhouse::url()).await;
    let timeouts = StoreTimeouts {
        read: Duration::from_secs(1),
        ..StoreTimeouts::default()
    };
    let options = || TestOptions {
        clickhouse_url: Some(proxy.url.clone()),
        timeouts,
        lookup_timeout: Duration::from_secs(1),
        ..TestOptions::default()
    };
    let first = TestApp::spawn_with(options()).await;
    let net = first.network().await;
    let click = first.click(&net.link_url).await;
    let body = json!({"click_id": click, "order_id": "frozen-1", "amount": "4.00"});
    let (_, created) = json_body(first.track(&net.brand_key, &body).await).await;
    let id = created["data"]["conversion_id"]
        .as_str()
        .unwrap()
        .to_owned();
    first.drain().await;
    // A second node on the same database: the order is not in its cache or journal, so a
    // replay there needs ClickHouse.
    let second = TestApp::spawn_with(TestOptions {
        database: Some(first.database.clone()),
        ..options()
    })
    .await;
    second.wait_until_bloom_seeded().await;

    proxy.stall();
    let timed = |name: &'static str, request: reqwest::RequestBuilder| async move {
        let started = Instant::now();
        let response = request.send().await.unwrap();
        let elapsed = started.elapsed();
        assert!(elapsed < PROMPT, "{name} took {elapsed:?}");
        response
    };
    let brand = |request: reqwest::RequestBuilder| request.bearer_auth(&net.brand_key);
    let refusals = [
        (
            "listing",
            timed(
                "listing",
                brand(first.http.get(first.url("/api/conversions"))),
            )
            .await,
        ),
        (
            "get by id",
            timed(
                "get by id",
                brand(first.http.get(first.url(&format!("/api/conversions/{id}")))),
            )
            .await,
        ),
        (
            "patch",
            timed(
                "patch",
                brand(
                    first
                        .http
                        .patch(first.url(&format!("/api/conversions/{id}"))),
                )
                .json(&json!({"status": "approved"})),
            )
            .await,
        ),
        (
            "replay needing a look-up",
            timed(
                "replay",
                brand(second.http.post(second.url("/api/conversions/track"))).json(&body),
            )
            .await,
        ),
    ];
    for (name, response) in refusals {
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{name}");
        assert_eq!(response.headers()["retry-after"], "1", "{name}");
    }

    // Fifty different unknown keys: each a prompt 401, none a query (ClickHouse would not
    // answer one).
    for n in 0..50 {
        let response = timed(
            "unknown key",
            first
                .http
                .get(first.url("/api/conversions"))
                .bearer_auth(format!("afk_unknown_{n}")),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // The node's pings say so too, and recover with ClickHouse.
    first
        .wait_for_metric("affilync_clickhouse_up", &[], |up| up == 0.0)
        .await;
    proxy.restore();
    first
        .wait_for_metric("affilync_clickhouse_up", &[], |up| up == 1.0)
        .await;
}

/// Bounds ClickHouse's `DateTime` cannot hold are a 422 naming the field, not a dropped
/// connection.
#[tokio::test]
async fn listing_dates_out_of_range_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    for (query, field) in [
        ("date_to=9999-12-31", "date_to"),
        ("date_to=9999-12-31T23:59:59Z", "date_to"),
        ("date_from=-9999-01-01", "date_from"),
        ("date_from=1969-12-31T23:59:59Z", "date_from"),
    ] {
        let (status, body) = json_body(
            app.get(&net.brand_key, &format!("/api/conversions?{query}"))
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}");
    }
    let (status, _) = json_body(
        app.get(&net.brand_key, "/api/conversions?date_to=2105-12-31")
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the last day ClickHouse holds");
}

/// Percent-decoded bytes that are not UTF-8 are refused naming the parameter, on every
/// path that reads a query or a form; two orders differing only in such bytes are never
/// merged into one.
#[tokio::test]
async fn query_bytes_that_are_not_utf8_are_refused_everywhere() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;
    let postback = |order: &str| {
        app.http.get(app.url(&format!(
            "/api/conversions/postback?api_key={}&click_id={click}&amount=10.00&order_id={order}",
            net.brand_key
        )))
    };
    for order in ["caf%E9", "caf%E8"] {
        let (status, body) = json_body(postback(order).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{order}: {body}");
        assert_eq!(body["error"]["field"], "order_id");
    }
    let form = app
        .http
        .post(app.url(&format!(
            "/api/conversions/postback?api_key={}",
            net.brand_key
        )))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("click_id={click}&amount=1.00&order_id=x%FF"))
        .send()
        .await
        .unwrap();
    let (status, body) = json_body(form).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "order_id");
    // Valid UTF-8, percent-encoded, is an order like any other.
    let (status, body) = json_body(postback("caf%C3%A9").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["order_id"], "café");

    let pixel = app
        .http
        .get(app.url(&format!(
            "/api/conversions/pixel?click_id={click}&amount=1.00&order_id=px%E9"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(pixel.headers()["x-affilync-outcome"], "invalid");
    assert_eq!(pixel.headers()["x-affilync-field"], "order_id");

    let (status, body) = json_body(
        app.get(&net.brand_key, "/api/conversions?campaign_id=%FF")
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "campaign_id");

    let link = app
        .http
        .get(format!("{}?sub1=%FF&utm_source=%FE", net.link_url))
        .send()
        .await
        .unwrap();
    assert_eq!(link.status(), StatusCode::BAD_REQUEST);
    assert!(link.text().await.unwrap().contains("sub1"));
    // Other parties' parameters are not read, whatever their bytes.
    let link = app
        .http
        .get(format!("{}?sub1=ok&utm_source=%FE", net.link_url))
        .send()
        .await
        .unwrap();
    assert_eq!(link.status(), StatusCode::FOUND);

    assert_eq!(
        app.count_rows("conversions FINAL").await,
        1,
        "only café was stored"
    );
}

/// The shipper's pace is a promise to ClickHouse: at most `max_records` per `interval`,
/// however many wait.
#[tokio::test]
async fn shipping_keeps_its_pace_whatever_waits() {
    let interval = Duration::from_millis(200);
    let app = TestApp::spawn_with(TestOptions {
        shipper: ShipperConfig {
            interval,
            max_records: 10,
            ..ShipperConfig::default()
        },
        ..TestOptions::default()
    })
    .await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;
    // The click's own record ships before the measured ones.
    app.wait_for_metric("affilync_clicks_total", &[("outcome", "journaled")], |v| {
        v >= 1.0
    })
    .await;
    app.drain().await;
    let before = app.metrics().await;
    let started = Instant::now();
    for i in 0..60 {
        let body = json!({"click_id": click, "order_id": format!("pace-{i}"), "amount": "1.00"});
        assert_eq!(
            app.track(&net.brand_key, &body).await.status(),
            StatusCode::CREATED
        );
    }
    app.drain().await;
    let took = started.elapsed();
    let after = app.metrics().await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        metric_value(&after, name, labels) - metric_value(&before, name, labels)
    };
    let cycles = delta("affilync_shipper_batch_records_count", &[]);
    let shipped = delta("affilync_shipper_batch_records_sum", &[]);
    let inserts = delta(
        "affilync_shipper_insert_seconds_count",
        &[("table", "conversions")],
    );
    assert_eq!(shipped, 60.0);
    assert!(cycles >= 6.0, "at most 10 records a cycle: {cycles} cycles");
    assert_eq!(inserts, cycles, "one INSERT per table per cycle");
    // Cycles are at least an interval apart: six of them span at least five intervals.
    assert!(
        took >= interval * 5,
        "60 records shipped in {took:?}, faster than the pace allows"
    );
}

/// A second `serve`, `demo` or `migrate` on a running node's data directory never touches
/// the node's managed ClickHouse: the first two refuse, naming the node's pid; `migrate`
/// migrates through the running server. The node serves on as before, from a listen
/// queue as long as configured.
#[tokio::test]
async fn a_data_directory_has_one_owner() {
    let data_dir = tempfile::tempdir().unwrap();
    let node = ServiceProcess::start_with(
        None,
        "affilync",
        data_dir.path(),
        &[("AFFILYNC_LISTEN_BACKLOG", "2048")],
    )
    .await;
    let run = |command: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_affilync"))
            .arg(command)
            .env("AFFILYNC_DATA_DIR", data_dir.path())
            .env("AFFILYNC_LISTEN", "127.0.0.1:0")
            .env_remove("AFFILYNC_CLICKHOUSE_URL")
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    for command in ["serve", "demo"] {
        let (succeeded, output) = run(command);
        assert!(!succeeded, "{command}: {output}");
        assert!(
            output.contains(&format!(
                "in use by another affilync process (pid {})",
                node.pid()
            )),
            "{command}: {output}"
        );
    }
    let (succeeded, output) = run("migrate");
    assert!(succeeded, "{output}");
    assert!(output.contains("is up to date"), "{output}");

    let (status, ready) = json_body(node.http.get(node.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready["clickhouse"]["status"], "reachable", "{ready}");
    let net = node.network().await;
    let click = node.click(&net.link_url).await;
    let body = json!({"click_id": click, "order_id": "owned", "amount": "1.00"});
    assert_eq!(
        node.track(&net.brand_key, &body).await.status(),
        StatusCode::CREATED
    );

    let port = node.base.rsplit(':').next().unwrap().to_owned();
    let sockets = std::process::Command::new("ss")
        .args(["-ltnH", &format!("sport = :{port}")])
        .output()
        .unwrap();
    let sockets = String::from_utf8_lossy(&sockets.stdout);
    // For a listening socket, ss shows the accept queue's length as Send-Q.
    let send_q = sockets.split_whitespace().nth(2);
    assert_eq!(send_q, Some("2048"), "{sockets}");
}

/// A refused caller's request body is still read, so the connection carries the next
/// request: a platform with a bad or wrong key keeps its keep-alive connection instead of
/// opening a new one for every call (a 401, a 403, an admin 401, a postback form).
#[tokio::test]
async fn refusals_keep_the_connection_alive() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = TestApp::spawn().await;
    let net = app.network().await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut connection = tokio::net::TcpStream::connect(&address).await.unwrap();
    let body = r#"{"order_id": "keep-alive", "amount": "1.00"}"#;
    let refused = [
        (
            "POST /api/conversions/track",
            net.affiliate_key.as_str(),
            "application/json",
            "403",
        ),
        (
            "POST /api/conversions/track",
            "afk_unknown",
            "application/json",
            "401",
        ),
        (
            "PATCH /api/conversions/conv_0",
            net.affiliate_key.as_str(),
            "application/json",
            "403",
        ),
        (
            "POST /api/admin/brands",
            net.brand_key.as_str(),
            "application/json",
            "401",
        ),
        (
            "POST /api/conversions/postback",
            "afk_unknown",
            "application/x-www-form-urlencoded",
            "401",
        ),
    ];
    for (request_line, key, content_type, status) in refused {
        let request = format!(
            "{request_line} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        connection.write_all(request.as_bytes()).await.unwrap();
        let head = read_response(&mut connection).await;
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status}")),
            "{request_line}: {head}"
        );
        assert!(
            !head.to_ascii_lowercase().contains("connection: close"),
            "{request_line}: {head}"
        );
    }
    // The same connection still answers.
    let health = format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\n\r\n");
    connection.write_all(health.as_bytes()).await.unwrap();
    let head = read_response(&mut connection).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    /// Reads one response (head and a Content-Length body) and returns its head.
    async fn read_response(connection: &mut tokio::net::TcpStream) -> String {
        let mut received = Vec::new();
        let mut chunk = [0u8; 4096];
        let deadline = Instant::now() + PROMPT;
        loop {
            if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&received[..end]).into_owned();
                let length: usize = head
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                if received.len() >= end + 4 + length {
                    return head;
                }
            }
            assert!(Instant::now() < deadline, "no whole response: {received:?}");
            let read = tokio::time::timeout(PROMPT, connection.read(&mut chunk))
                .await
                .expect("an answer within the deadline")
                .unwrap();
            assert!(
                read > 0,
                "the connection was closed: {}",
                String::from_utf8_lossy(&received)
            );
            received.extend_from_slice(&chunk[..read]);
        }
    }
}

/// A read the service gave up on (its deadline passed) is stopped in ClickHouse too, not
/// left running: abandoned heavy reads, retried by their callers, once piled up until
/// ClickHouse ran out of memory.
#[tokio::test]
async fn a_read_past_its_deadline_is_stopped_in_clickhouse_too() {
    let app = TestApp::spawn_with(TestOptions {
        timeouts: StoreTimeouts {
            read: Duration::from_secs(1),
            ..StoreTimeouts::default()
        },
        ..TestOptions::default()
    })
    .await;
    let net = app.network().await;
    // Enough clicks that counting them exactly (the raw report's uniqExact) takes ClickHouse
    // seconds on any machine.
    crate::common::clickhouse_execute(
        &app.database,
        &format!(
            "INSERT INTO clicks (click_id, clicked_at, link_id, campaign_id, affiliate_id, brand_id) \
             SELECT concat('clk_heavy_', toString(number)), now() - number % 80000, \
                    '{link}', '{campaign}', '{affiliate}', '{brand}' \
             FROM system.numbers LIMIT 30000000",
            link = net.link_url.rsplit('/').next().unwrap(),
            campaign = net.campaign_id,
            affiliate = net.affiliate_id,
            brand = net.brand_id,
        ),
    )
    .await;

    let response = app.get(&net.brand_key, "/api/reports").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    // The server's own limit is the deadline in whole seconds; give it one more to notice.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let running = crate::common::clickhouse_rows(
            &app.database,
            "SELECT query FROM system.processes WHERE query LIKE '%uniqExact(click_id)%' \
             AND query NOT LIKE '%system.processes%'",
        )
        .await;
        if running.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ClickHouse still runs the abandoned report: {running:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
