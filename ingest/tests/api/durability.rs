//! The durability contract under faults: a 2xx means the conversion is fsync'd in the
//! node's journal, so killing the service, killing or freezing ClickHouse, refusing part of
//! a batch, filling the disk: none of it loses or duplicates an acknowledged conversion,
//! and a refusal (503) stores nothing.

use std::process::Command;

use ingest::startup::clickhouse_server::ManagedClickhouse;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::load::{Answer, Load, verify};
use crate::common::process::ServiceProcess;
use crate::common::{TestApp, TestOptions, clickhouse, json_body, metric_value};

fn fresh_database() -> String {
    format!(
        "test_{}",
        attributor::domain::lower_hex(&rand::random::<[u8; 6]>())
    )
}

fn assert_clean(verdict: &crate::common::load::Verdict) {
    assert!(
        verdict.problems.is_empty(),
        "{} problems, first: {:#?}",
        verdict.problems.len(),
        &verdict.problems[..verdict.problems.len().min(5)]
    );
}

/// `affilync check` finds every derived table in agreement with the conversions.
async fn assert_reconciled(database: &str) {
    let (agreed, output) = crate::common::affilync_check(database, &[]).await;
    assert!(agreed, "{output}");
    assert!(output.contains("0 problems found"), "{output}");
}

/// kill -9 of the service in the middle of a load, then a restart on the same journal:
/// every order answered 201/200 before the kill is in ClickHouse exactly once with the
/// acknowledged values, and is answered as a replay.
#[tokio::test]
async fn a_service_killed_under_load_loses_no_acknowledged_conversion() {
    let data_dir = tempfile::tempdir().unwrap();
    let database = fresh_database();
    let mut node = ServiceProcess::start(&clickhouse::url(), &database, data_dir.path()).await;
    let net = node.network().await;
    let click = node.click(&net.link_url).await;

    let load = Load::start(&node, &net, &click, "k9", 16);
    load.until_acked(300).await;
    node.kill();
    let answers = load.finish().await;

    let node = ServiceProcess::start(&clickhouse::url(), &database, data_dir.path()).await;
    node.drain().await;
    let verdict = verify(&clickhouse::url(), &database, &net.brand_id, &answers).await;
    assert!(verdict.acked >= 300, "{verdict:?}");
    assert_clean(&verdict);
    assert_reconciled(&database).await;

    let acked: Vec<(&String, &Value)> = answers
        .iter()
        .filter_map(|(order, answer)| match answer {
            Answer::Acked(data) => Some((order, data)),
            _ => None,
        })
        .take(40)
        .collect();
    for (order, data) in acked {
        let body = json!({"click_id": click, "order_id": order, "amount": data["amount"]});
        let response = node.track(&net.brand_key, &body).await;
        assert_eq!(response.status(), StatusCode::OK, "{order}");
        assert_eq!(response.headers()["idempotent-replayed"], "true");
        let replay: Value = response.json().await.unwrap();
        assert_eq!(&replay["data"], data, "{order}");
    }
    assert!(node.log().contains("journal opened"));
}

/// ClickHouse frozen (SIGSTOP) and then killed (SIGKILL; its supervisor restarts it) under
/// load: conversions keep being acknowledged from the journal, the lag rises and falls
/// back, and afterwards every acknowledged conversion is stored once.
#[tokio::test]
async fn clickhouse_frozen_and_killed_under_load_loses_nothing() {
    let server_dir = tempfile::tempdir().unwrap();
    let server = ManagedClickhouse::start(server_dir.path()).unwrap();
    let app = TestApp::spawn_with(TestOptions {
        clickhouse_url: Some(server.url()),
        ..TestOptions::default()
    })
    .await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;
    let signal = |name: &str| {
        let pid = server.server_pid().expect("the server runs").to_string();
        assert!(
            Command::new("kill")
                .args([name, &pid])
                .status()
                .unwrap()
                .success()
        );
    };

    let load = Load::start(&app, &net, &click, "freeze", 8);
    load.until_acked(100).await;
    signal("-STOP");
    load.until_acked(400).await;
    let lag = app
        .wait_for_metric("affilync_journal_lag_seconds", &[], |v| v >= 0.5)
        .await;
    signal("-CONT");
    load.until_acked(500).await;
    signal("-KILL");
    load.until_acked(800).await;
    let answers = load.finish().await;

    app.drain().await;
    let verdict = verify(&server.url(), &app.database, &net.brand_id, &answers).await;
    assert_eq!(
        verdict.refused, 0,
        "click-id conversions need no ClickHouse: {verdict:?}"
    );
    assert_clean(&verdict);
    assert!(lag >= 0.5);
    app.wait_for_metric("affilync_journal_lag_seconds", &[], |v| v == 0.0)
        .await;
}

/// A batch whose INSERTs ClickHouse refuses part of (the commissions table gone between
/// the two INSERTs; a listing copy gone in the middle of the conversions INSERT's fan-out)
/// is sent again until every table has it, and ends as one row everywhere: the listing,
/// the commissions and `conversions FINAL` agree, with the values acknowledged.
#[tokio::test]
async fn a_batch_refused_in_part_ends_as_one_row_in_every_table() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;
    let ddl = |sql: &'static str| {
        let database = app.database.clone();
        async move { crate::common::clickhouse_execute(&database, sql).await }
    };
    let mut answers = std::collections::HashMap::new();
    let report = |phase: &'static str| {
        let app = &app;
        let net = &net;
        let click = &click;
        async move {
            let mut answered = Vec::new();
            for i in 0..20 {
                let order = format!("{phase}-{i}");
                let body = json!({"click_id": click, "order_id": order, "amount": format!("{}.50", 10 + i)});
                let (status, body) = json_body(app.track(&net.brand_key, &body).await).await;
                assert_eq!(status, StatusCode::CREATED, "{body}");
                answered.push((order, Answer::Acked(body["data"].clone())));
            }
            answered
        }
    };

    // Between the INSERTs: conversions are written, commissions are refused (counted under
    // either kind, as below).
    ddl("DETACH TABLE commissions").await;
    answers.extend(report("between").await);
    app.wait_for_metric(
        "affilync_shipper_errors_total",
        &[("table", "commissions")],
        |v| v >= 1.0,
    )
    .await;
    ddl("ATTACH TABLE commissions").await;

    // During the fan-out: the conversions INSERT fails in its materialized view. Counted
    // under either kind: ClickHouse answers with the exception while the rows are still
    // streaming in, and may close the connection before the client reads it (the client
    // then sees a broken exchange, which is retryable).
    ddl("DETACH TABLE conversions_by_brand").await;
    answers.extend(report("during").await);
    app.wait_for_metric(
        "affilync_shipper_errors_total",
        &[("table", "conversions")],
        |v| v >= 1.0,
    )
    .await;
    ddl("ATTACH TABLE conversions_by_brand").await;

    app.drain().await;
    let verdict = verify(&clickhouse::url(), &app.database, &net.brand_id, &answers).await;
    assert_eq!(verdict.acked, 40);
    assert_clean(&verdict);
    assert_reconciled(&app.database).await;

    // Whatever the failed attempts left (the errors above say there were some), every copy
    // collapses to one row once merged: the same key and version each time.
    ddl("OPTIMIZE TABLE conversions FINAL").await;
    ddl("OPTIMIZE TABLE commissions FINAL").await;
    for table in ["conversions", "commissions"] {
        assert_eq!(app.count_rows(table).await, 40, "{table}");
    }
}

/// A tmpfs as the node's data directory, so the disk can really fill up. Needs root (as CI and the project's machines run); unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(
            mounted.success(),
            "this test mounts a tmpfs and needs root (or CAP_SYS_ADMIN)"
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Writes a file until the disk is full; returns its path.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        let _ = file.flush();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

/// A full disk answers 503 with Retry-After and stores nothing; when space returns the
/// node takes conversions again, without a restart.
#[tokio::test]
async fn a_full_disk_refuses_and_recovers_when_space_returns() {
    let disk = SmallDisk::mount("4m");
    let app = TestApp::spawn_with(TestOptions {
        data_dir: Some(disk.path().join("node")),
        ..TestOptions::default()
    })
    .await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;
    let mut answers = std::collections::HashMap::new();
    let mut n = 0;
    let mut send = async |answers: &mut std::collections::HashMap<String, Answer>| {
        n += 1;
        let order = format!("disk-{n}");
        let body = json!({"click_id": click, "order_id": order, "amount": "3.00"});
        let response = app.track(&net.brand_key, &body).await;
        let status = response.status();
        let reason = response
            .headers()
            .get("x-affilync-unavailable")
            .map(|value| value.to_str().unwrap().to_owned());
        let retry_after = response.headers().contains_key("retry-after");
        let body: Value = response.json().await.unwrap();
        let answer = if status.is_success() {
            Answer::Acked(body["data"].clone())
        } else {
            Answer::Refused(status.as_u16())
        };
        answers.insert(order, answer);
        (status, reason, retry_after)
    };
    assert_eq!(send(&mut answers).await.0, StatusCode::CREATED);

    // A full disk: SQLite cannot grow its log; every refusal says why, and when to retry.
    let filler = disk.fill();
    let mut refused = None;
    for _ in 0..500 {
        let (status, reason, retry_after) = send(&mut answers).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert!(retry_after);
            refused = reason;
            break;
        }
    }
    assert_eq!(refused.as_deref(), Some("journal_unwritable"));
    std::fs::remove_file(filler).unwrap();
    assert_eq!(
        send(&mut answers).await.0,
        StatusCode::CREATED,
        "space is back"
    );

    app.drain().await;
    let metrics = app.metrics().await;
    assert!(
        metric_value(
            &metrics,
            "affilync_journal_refusals_total",
            &[("reason", "unwritable")]
        ) >= 1.0
    );
    let verdict = verify(&clickhouse::url(), &app.database, &net.brand_id, &answers).await;
    assert!(verdict.refused >= 1);
    assert_clean(&verdict);
    assert_reconciled(&app.database).await;
}

/// A journal holding its limit of unshipped records (ClickHouse away) refuses new
/// conversions with 503 `journal_full`, and takes them again once shipping resumes.
#[tokio::test]
async fn a_full_journal_refuses_until_shipping_frees_it() {
    let proxy = crate::common::proxy::Proxy::start(&clickhouse::url()).await;
    let app = TestApp::spawn_with(TestOptions {
        clickhouse_url: Some(proxy.url.clone()),
        journal_max_bytes: 8 * 1024,
        ..TestOptions::default()
    })
    .await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;
    app.drain().await;
    // New orders need no look-up once the bloom filter is seeded: until then they do.
    app.wait_until_bloom_seeded().await;
    proxy.cut();
    let mut answers = std::collections::HashMap::new();
    let mut full = None;
    for i in 0..100 {
        let order = format!("full-{i}");
        let body = json!({"click_id": click, "order_id": order, "amount": "2.00"});
        let response = app.track(&net.brand_key, &body).await;
        let status = response.status();
        let headers = response.headers().clone();
        let body: Value = response.json().await.unwrap();
        if status.is_success() {
            answers.insert(order, Answer::Acked(body["data"].clone()));
            continue;
        }
        answers.insert(order, Answer::Refused(status.as_u16()));
        full = Some((status, headers));
        break;
    }
    let (status, headers) = full.expect("the journal filled up");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["x-affilync-unavailable"], "journal_full");
    assert_eq!(headers["retry-after"], "1");

    proxy.restore();
    app.drain().await;
    let body = json!({"click_id": click, "order_id": "after-full", "amount": "2.00"});
    let (status, data) = json_body(app.track(&net.brand_key, &body).await).await;
    assert_eq!(status, StatusCode::CREATED);
    answers.insert("after-full".into(), Answer::Acked(data["data"].clone()));
    app.drain().await;
    let verdict = verify(&clickhouse::url(), &app.database, &net.brand_id, &answers).await;
    assert_clean(&verdict);
    assert_reconciled(&app.database).await;
}

/// `affilync check` on a database damaged the ways the old write path damaged it: a
/// commission missing, a second commission row under another `created_at`, a listing copy
/// missing and one doubled, a commission of no conversion; and as two nodes' stamps in two
/// months would, a conversion with an older row in another monthly partition. It names
/// each, `--repair` mends them, and the next check finds nothing.
#[tokio::test]
async fn check_finds_and_repairs_what_disagrees() {
    let app = TestApp::spawn_with(TestOptions {
        // A conversion row under another stamp is what the nodes' race repair mends by
        // itself; here the check must find it.
        race_check_interval: std::time::Duration::from_secs(3600),
        ..TestOptions::default()
    })
    .await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        let body = json!({"click_id": click, "order_id": format!("ck-{i}"), "amount": "20.00"});
        let (status, body) = json_body(app.track(&net.brand_key, &body).await).await;
        assert_eq!(status, StatusCode::CREATED);
        ids.push(body["data"]["conversion_id"].as_str().unwrap().to_owned());
    }
    app.drain().await;
    assert_reconciled(&app.database).await;

    let db = app.database.clone();
    let sql = |sql: String| {
        let db = db.clone();
        async move { crate::common::clickhouse_execute(&db, &sql).await }
    };
    sql(format!(
        "ALTER TABLE commissions DELETE WHERE conversion_id = '{}'",
        ids[0]
    ))
    .await;
    sql(format!(
        "INSERT INTO commissions SELECT conversion_id, brand_id, affiliate_id, campaign_id, \
         version, created_at - 60, updated_at, event_type, status, amount, currency, rule, \
         base_amount, base_currency FROM commissions WHERE conversion_id = '{}'",
        ids[1]
    ))
    .await;
    sql(format!(
        "ALTER TABLE conversions_by_affiliate DELETE WHERE conversion_id = '{}'",
        ids[2]
    ))
    .await;
    sql(format!(
        "INSERT INTO conversions_by_brand SELECT * FROM conversions_by_brand \
         WHERE conversion_id = '{}'",
        ids[3]
    ))
    .await;
    sql(format!(
        "INSERT INTO conversions_by_brand SELECT conversion_id, dedup_key, brand_id, order_id, \
         version, created_at - 3600, updated_at, source, campaign_id, affiliate_id, link_id, \
         click_id, attribution_method, click_time, seconds_from_click, event_type, amount, \
         currency, commission_amount, commission_currency, commission_rule, status, \
         status_reason, note, customer_email_sha256, metadata.key, metadata.value \
         FROM conversions_by_brand WHERE conversion_id = '{}'",
        ids[3]
    ))
    .await;
    sql(format!(
        "INSERT INTO commissions SELECT 'conv_{:032x}', brand_id, affiliate_id, campaign_id, \
         version, created_at, updated_at, event_type, status, amount, currency, rule, \
         base_amount, base_currency FROM commissions WHERE conversion_id = '{}'",
        7u128, ids[4]
    ))
    .await;
    sql(format!(
        "INSERT INTO conversions SELECT conversion_id, dedup_key, brand_id, order_id, \
         version - 1, created_at - 40 * 86400, updated_at, source, campaign_id, affiliate_id, \
         link_id, click_id, attribution_method, click_time, seconds_from_click, event_type, \
         amount, currency, commission_amount, commission_currency, commission_rule, status, \
         status_reason, note, customer_email_sha256, metadata.key, metadata.value \
         FROM conversions WHERE conversion_id = '{}'",
        ids[5]
    ))
    .await;
    // Mutations run in the background: wait for the deletes to have happened.
    let deadline = std::time::Instant::now() + crate::common::DRAIN_DEADLINE;
    while app.count_where("system.mutations", "is_done = 0").await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "mutations did not finish"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let (agreed, output) = crate::common::affilync_check(&app.database, &[]).await;
    assert!(!agreed, "{output}");
    for (table, id) in [
        ("commissions", ids[0].clone()),
        ("commissions", ids[1].clone()),
        ("conversions_by_affiliate", ids[2].clone()),
        ("conversions_by_brand", ids[3].clone()),
        ("commissions", format!("conv_{:032x}", 7u128)),
        ("conversions", ids[5].clone()),
    ] {
        assert!(
            output
                .lines()
                .any(|line| line.starts_with(&format!("{table}\t{id}"))),
            "{table} {id} not named:\n{output}"
        );
    }

    let (agreed, output) = crate::common::affilync_check(&app.database, &["--repair"]).await;
    assert!(agreed, "{output}");
    assert!(output.contains("0 problems left"), "{output}");
    assert_reconciled(&app.database).await;
    let verdict = verify(
        &clickhouse::url(),
        &app.database,
        &net.brand_id,
        &std::collections::HashMap::new(),
    )
    .await;
    // Only the six orders exist, each exactly once everywhere (the map of answers is
    // empty, so every stored order is reported as never sent: six, and nothing else).
    assert_eq!(verdict.problems.len(), 6, "{:#?}", verdict.problems);
    let id = &ids[5];
    assert_eq!(
        app.count_where(
            "conversions",
            &format!(
                "conversion_id = '{id}' AND toYYYYMM(created_at) != \
                 (SELECT toYYYYMM(created_at) FROM conversions FINAL WHERE conversion_id = '{id}')"
            )
        )
        .await,
        0,
        "the older month's row is gone"
    );
}
