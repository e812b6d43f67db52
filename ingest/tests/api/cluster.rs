//! The service on a real ClickHouse cluster: 2 shards × 2 replicas with ZooKeeper, started
//! once for the test binary by `ops/cluster/start.sh` (see `common/cluster.rs`). Each test
//! has its own database, created and migrated ON CLUSTER.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use attributor::domain::{BrandId, ConversionId};

use crate::common::cluster::{self, cluster, exclusive, migrated_database, shared};
use crate::common::load::{Answer, Load, verify};
use crate::common::process::ServiceProcess;
use crate::common::{
    Api, TestApp, TestClock, TestOptions, clickhouse_rows_at, json_body, json_u64, metric_value,
};

/// Longest the cluster tests wait for a journal to drain: after a replica's restart,
/// shipping resumes only once the replica has rejoined (its old ZooKeeper session expired).
const CLUSTER_DRAIN_DEADLINE: Duration = Duration::from_secs(60);

/// Options for a node on the test cluster, on `database`.
fn on_cluster(database: String) -> TestOptions {
    let cluster = cluster();
    TestOptions {
        clickhouse_url: Some(cluster.urls()),
        cluster: Some(cluster.settings()),
        database: Some(database),
        ..TestOptions::default()
    }
}

/// Options for a node on a new database of the test cluster.
async fn on_new_database() -> TestOptions {
    on_cluster(migrated_database().await)
}

fn conversion(click: &str, order: &str, amount: &str) -> Value {
    json!({"click_id": click, "order_id": order, "amount": amount})
}

/// A conversion's answer without what each node stamps from its own clock.
fn without_clock(data: &Value) -> Value {
    let mut data = data.clone();
    for field in ["created_at", "updated_at"] {
        data.as_object_mut().unwrap().remove(field);
    }
    data["attribution"]
        .as_object_mut()
        .unwrap()
        .remove("seconds_from_click");
    data
}

fn created_at(body: &Value) -> u64 {
    let text = body["data"]["created_at"].as_str().unwrap();
    let at =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
    u64::try_from(at.unix_timestamp()).unwrap()
}

/// Every row `sql` selects from `database`, read through node `n`.
async fn rows_at(n: usize, database: &str, sql: &str) -> Vec<Value> {
    clickhouse_rows_at(&cluster().node_url(n), database, sql).await
}

async fn count_at(n: usize, database: &str, sql: &str) -> u64 {
    crate::common::single_number(&rows_at(n, database, sql).await)
}

async fn drain(app: &Api) {
    let deadline = Instant::now() + CLUSTER_DRAIN_DEADLINE;
    loop {
        let pending = metric_value(
            &app.metrics().await,
            "affilync_journal_pending_records",
            &[],
        );
        if pending == 0.0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} records still unshipped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_golden_calls_answer_as_recorded_on_a_cluster() {
    let _turn = shared().await;
    crate::golden::answers_as_recorded(on_new_database().await).await;
}

#[tokio::test]
async fn migrations_create_replicated_local_tables_and_distributed_ones_on_every_node() {
    let _turn = shared().await;
    let app = TestApp::spawn_with(on_new_database().await).await;
    for n in 1..=4 {
        let tables: HashMap<String, String> = rows_at(
            n,
            &app.database,
            &format!(
                "SELECT name, engine FROM system.tables WHERE database = '{}'",
                app.database
            ),
        )
        .await
        .into_iter()
        .map(|row| {
            (
                row["name"].as_str().unwrap().into(),
                row["engine"].as_str().unwrap().into(),
            )
        })
        .collect();
        for table in [
            "conversions",
            "commissions",
            "conversions_by_brand",
            "brands",
            "clicks",
        ] {
            assert_eq!(tables[table], "Distributed", "node{n} {table}");
            assert!(
                tables[&format!("{table}_local")].starts_with("Replicated"),
                "node{n} {table}_local: {tables:?}"
            );
        }
    }
    // A second start finds everything applied and creates nothing.
    let again = TestApp::spawn_with(on_cluster(app.database.clone())).await;
    let (status, ready) =
        json_body(again.http.get(again.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let nodes = ready["clickhouse"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 4, "{ready}");
    assert!(
        nodes.iter().all(|node| node["status"] == "reachable"),
        "{ready}"
    );
    let metrics = again.metrics().await;
    assert_eq!(
        metric_value(&metrics, "affilync_clickhouse_node_up", &[]),
        4.0,
        "{metrics}"
    );
}

/// Sent to two ingest nodes at once, an order ends as one conversion with one id, one
/// commission, and both nodes answer with it; every version of it lives on one shard.
///
/// The two nodes' clocks agree to the second here, so no repair is needed: when they do
/// not (or two requests straddle a second), the copies hold a row from each node until
/// the nodes' race repair mends them, which deletes through mutations, and mutations on
/// this test cluster do not finish reliably (see the ignored repair test below). The
/// repair is proved on one server by
/// `idempotency::two_nodes_racing_an_order_with_different_stamps_leave_one_row_in_every_copy`.
#[tokio::test]
async fn the_same_order_sent_to_two_nodes_is_one_conversion() {
    let _turn = shared().await;
    let clock = TestClock::stopped();
    let first = TestApp::spawn_with(TestOptions {
        clock: clock.clone(),
        ..on_new_database().await
    })
    .await;
    let second = TestApp::spawn_with(TestOptions {
        clock,
        ..on_cluster(first.database.clone())
    })
    .await;
    let net = first.network().await;
    let click = first.click(&net.link_url).await;
    wait_until_known(&second, &net.brand_key, &click).await;

    let orders: Vec<String> = (0..20).map(|i| format!("both-{i}")).collect();
    let answers = futures_util::future::join_all(orders.iter().flat_map(|order| {
        [&first, &second].map(|node| {
            let body = conversion(&click, order, "7.00");
            let key = net.brand_key.clone();
            async move { json_body(node.track(&key, &body).await).await }
        })
    }))
    .await;
    // Neither node can see the other's journal, so each stamps the order with its own
    // clock (here the two agree): everything else agrees, and ClickHouse keeps one of the
    // two (the later version), never a mix.
    let mut acknowledged: HashMap<String, Vec<u64>> = HashMap::new();
    for pair in answers.chunks(2) {
        assert!(
            pair.iter().all(|(status, _)| status.is_success()),
            "{pair:?}"
        );
        assert_eq!(
            without_clock(&pair[0].1["data"]),
            without_clock(&pair[1].1["data"]),
            "{pair:?}"
        );
        let order = pair[0].1["data"]["order_id"].as_str().unwrap().to_owned();
        acknowledged.insert(
            order,
            pair.iter().map(|(_, body)| created_at(body)).collect(),
        );
    }
    drain(&first).await;
    drain(&second).await;
    let db = &first.database;
    let brand = &net.brand_id;
    let stored = rows_at(
        1,
        db,
        &format!(
            "SELECT order_id, toUnixTimestamp(created_at) AS at FROM conversions FINAL \
             WHERE brand_id = '{brand}' AND order_id LIKE 'both-%'"
        ),
    )
    .await;
    assert_eq!(stored.len(), 20, "{stored:?}");
    for row in &stored {
        let order = row["order_id"].as_str().unwrap();
        let at = json_u64(&row["at"]);
        assert!(
            acknowledged[order].contains(&at),
            "{order} stored at {at}, acknowledged at {:?}",
            acknowledged[order]
        );
    }
    for n in 1..=4 {
        let where_ = format!("brand_id = '{brand}' AND order_id LIKE 'both-%'");
        assert_eq!(
            count_at(
                n,
                db,
                &format!("SELECT count() FROM conversions FINAL WHERE {where_}")
            )
            .await,
            20
        );
        assert_eq!(
            count_at(
                n,
                db,
                &format!("SELECT count() FROM conversions_by_brand FINAL WHERE {where_}")
            )
            .await,
            20
        );
        assert_eq!(
            count_at(
                n,
                db,
                &format!("SELECT count() FROM commissions FINAL WHERE brand_id = '{brand}'")
            )
            .await,
            // and the probe's
            21
        );
    }
    // `affilync check` on the cluster: its joins of Distributed tables run, and agree.
    let check = |extra: &'static [&'static str]| {
        let urls = cluster().urls();
        let db = db.clone();
        async move {
            let args: Vec<&str> = ["--clickhouse-cluster", cluster::NAME]
                .into_iter()
                .chain(extra.iter().copied())
                .collect();
            crate::common::affilync_check_at(&urls, &db, &args).await
        }
    };
    let (agreed, output) = check(&[]).await;
    assert!(agreed && output.contains("0 problems found"), "{output}");
    // Damage found and repaired on a cluster: `check_repairs_a_damaged_copy_on_a_cluster`
    // (ignored: mutations on the test cluster do not finish reliably).

    // Reports read through the Distributed tables: each node counts every conversion
    // once, the probe's included, whichever shard holds it.
    let mut totals = Vec::new();
    for node in [&first, &second] {
        let (status, report) = json_body(node.get(&net.brand_key, "/api/reports").await).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        totals.push(report["meta"]["totals"].clone());
    }
    assert_eq!(totals[0]["conversions"], 21, "{}", totals[0]);
    assert_eq!(totals[0], totals[1]);
    // Each conversion's rows are all on one shard: no id is on both.
    let shard_1: Vec<Value> = rows_at(
        1,
        db,
        "SELECT DISTINCT conversion_id FROM conversions_local",
    )
    .await;
    let shard_2: Vec<Value> = rows_at(
        3,
        db,
        "SELECT DISTINCT conversion_id FROM conversions_local",
    )
    .await;
    assert_eq!(shard_1.len() + shard_2.len(), 21);
    assert!(
        !shard_1.is_empty() && !shard_2.is_empty(),
        "both shards take conversions"
    );
    assert!(shard_1.iter().all(|id| !shard_2.contains(id)));
}

/// What one node creates (brand, affiliate, campaign, link, key) works on the other within
/// seconds, and a status change made on one is seen on the other.
#[tokio::test]
async fn catalog_changes_and_reviews_on_one_node_are_honoured_on_the_other() {
    let _turn = shared().await;
    let first = TestApp::spawn_with(on_new_database().await).await;
    let second = TestApp::spawn_with(on_cluster(first.database.clone())).await;
    let net = first.network().await;
    // The link, followed on the second node.
    let link_path = net.link_url.split("/c/").nth(1).unwrap();
    let started = Instant::now();
    let click = loop {
        let response = second
            .http
            .get(second.url(&format!("/c/{link_path}")))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::FOUND {
            let location = response.headers()["location"].to_str().unwrap().to_owned();
            break location.split("afk_cid=").nth(1).unwrap().to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "link unknown: {}",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    wait_until_known(&second, &net.brand_key, &click).await;
    let (status, created) = json_body(
        second
            .track(&net.brand_key, &conversion(&click, "rev-1", "50.00"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["data"]["conversion_id"]
        .as_str()
        .unwrap()
        .to_owned();
    drain(&second).await;

    let (status, approved) = json_body(
        first
            .patch(&net.brand_key, &id, &json!({"status": "approved"}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    drain(&first).await;
    let (status, seen) = json_body(
        second
            .get(&net.brand_key, &format!("/api/conversions/{id}"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["data"]["status"], "approved", "{seen}");
    let (status, listed) = json_body(
        second
            .get(&net.affiliate_key, "/api/conversions?status=approved")
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["meta"]["total"], 1, "{listed}");
}

/// kill -9 of the ClickHouse node an ingest node talks to, in the middle of a load: the
/// ingest node moves to another node, keeps acknowledging from its journal, and once the
/// replica is back every acknowledged order is stored exactly once, on both replicas.
#[tokio::test]
async fn killing_a_replica_under_load_loses_and_duplicates_nothing() {
    let _turn = exclusive().await;
    let cluster = cluster();
    let app = TestApp::spawn_with(on_new_database().await).await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;
    let (_, ready) = json_body(app.http.get(app.url("/readyz")).send().await.unwrap()).await;
    let in_use = ready["clickhouse"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|node| node["in_use"] == true)
        .map(|node| node["url"].as_str().unwrap().to_owned())
        .unwrap();
    let victim = (1..=4).find(|&n| cluster.node_url(n) == in_use).unwrap();

    let load = Load::start(&app.api, &net, &click, "kill", 4);
    load.until_acked(100).await;
    cluster.kill(victim);
    load.until_acked(300).await;
    // Past the dead replica's ZooKeeper session (4 s), so that it can rejoin at once.
    tokio::time::sleep(Duration::from_secs(5)).await;
    cluster.restart(victim).await;
    load.until_acked(500).await;
    let answers = load.finish().await;
    drain(&app).await;

    let other = if victim == 1 { 2 } else { 1 };
    let verdict = verify(
        &cluster.node_url(other),
        &app.database,
        &net.brand_id,
        &answers,
    )
    .await;
    assert!(verdict.problems.is_empty(), "{verdict:#?}");
    assert!(verdict.acked >= 500, "{verdict:?}");
    // Only a bloom "maybe" asked of the node at the moment it died can get a 503 (and is not
    // stored, as checked above); the next one goes to another node.
    assert!(verdict.refused * 100 <= verdict.acked, "{verdict:?}");

    // The restarted replica caught up: it holds what its partner holds.
    let partner = if victim % 2 == 1 {
        victim + 1
    } else {
        victim - 1
    };
    let db = &app.database;
    let synced = reqwest::Client::new()
        .post(format!("{}/?database={db}", cluster.node_url(victim)))
        .body("SYSTEM SYNC REPLICA conversions_local")
        .send()
        .await
        .unwrap();
    assert!(
        synced.status().is_success(),
        "{}",
        synced.text().await.unwrap()
    );
    let count = "SELECT count() FROM conversions_local FINAL";
    assert_eq!(
        count_at(victim, db, count).await,
        count_at(partner, db, count).await
    );
}

async fn wait_until_known(node: &TestApp, key: &str, click: &str) {
    wait_until_known_to(node, key, click).await;
}

/// Waits until `node` knows the brand key (its catalog refreshes from ClickHouse), at most
/// 5 s, by sending an order it answers 201 to.
async fn wait_until_known_to(node: &Api, key: &str, click: &str) -> Value {
    let started = Instant::now();
    loop {
        let response = node.track(key, &conversion(click, "probe", "1.00")).await;
        if response.status().is_success() {
            return response.json::<Value>().await.unwrap()["data"].clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the key is still unknown to the other node: {}",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A migration ON CLUSTER with a node down fails within the DDL timeout, naming the cause,
/// instead of waiting minutes; the node applies it when it returns.
#[tokio::test]
async fn a_migration_with_a_node_down_fails_clearly_and_in_time() {
    let _turn = exclusive().await;
    let cluster = cluster();
    cluster.kill(4);
    let data_dir = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_affilync"));
    command
        .arg("migrate")
        .env("AFFILYNC_CLICKHOUSE_URL", cluster.urls())
        .env("AFFILYNC_CLICKHOUSE_CLUSTER", crate::common::cluster::NAME)
        .env("AFFILYNC_CLICKHOUSE_DDL_TIMEOUT_MS", "2000")
        .env("AFFILYNC_CLICKHOUSE_DATABASE", "test_node_down")
        .env("AFFILYNC_DATA_DIR", data_dir.path())
        .env("RUST_BACKTRACE", "0");
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&output.stderr).into_owned();
    // Past the dead replica's ZooKeeper session (4 s), so that it can rejoin at once.
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(took)).await;
    cluster.restart(4).await;
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("not every node of cluster affilync"),
        "{text}"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}: {text}");
}

/// Both replicas of a shard killed under load: the ingest node keeps acknowledging into its
/// journal, and once the shard is back every acknowledged order is stored exactly once.
#[tokio::test]
async fn a_whole_shard_down_keeps_acknowledging_and_loses_nothing() {
    let _turn = exclusive().await;
    let cluster = cluster();
    let app = TestApp::spawn_with(on_new_database().await).await;
    let net = app.network().await;
    let click = app.click(&net.link_url).await;

    let load = Load::start(&app.api, &net, &click, "shard", 4);
    load.until_acked(100).await;
    cluster.kill(3);
    cluster.kill(4);
    load.until_acked(300).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    cluster.restart(3).await;
    cluster.restart(4).await;
    load.until_acked(400).await;
    let answers = load.finish().await;
    drain(&app).await;

    let verdict = verify(&cluster.node_url(1), &app.database, &net.brand_id, &answers).await;
    assert!(verdict.problems.is_empty(), "{verdict:#?}");
    assert!(verdict.acked >= 400, "{verdict:?}");
    // A bloom "maybe" (0.1 % of new orders) must be looked up in ClickHouse, which cannot
    // answer for the missing shard: that order gets a 503 and is not stored (checked above).
    assert!(verdict.refused * 100 <= verdict.acked, "{verdict:?}");
}

/// Two ingest nodes under load; one is killed with SIGKILL while the other keeps serving.
/// After its restart on the same data directory and a drain, every order either node
/// acknowledged is stored exactly once.
#[tokio::test]
async fn an_ingest_node_killed_under_load_while_another_serves_loses_nothing() {
    let _turn = shared().await;
    let cluster = cluster();
    let database = migrated_database().await;
    let env = [("AFFILYNC_CLICKHOUSE_CLUSTER", crate::common::cluster::NAME)];
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let start = |dir: std::path::PathBuf| {
        let urls = cluster.urls();
        let database = database.clone();
        async move { ServiceProcess::start_with(Some(&urls), &database, &dir, &env).await }
    };
    let mut a = start(dir_a.path().to_owned()).await;
    let b = start(dir_b.path().to_owned()).await;
    let net = a.network().await;
    let click = a.click(&net.link_url).await;
    let probe = wait_until_known_to(&b, &net.brand_key, &click).await;

    let load_a = Load::start(&a, &net, &click, "k9a", 8);
    let load_b = Load::start(&b, &net, &click, "k9b", 8);
    load_a.until_acked(200).await;
    a.kill();
    load_b.until_acked(300).await;
    let mut answers = load_a.finish().await;
    answers.extend(load_b.finish().await);
    answers.insert("probe".into(), Answer::Acked(probe));

    let a = start(dir_a.path().to_owned()).await;
    drain(&a).await;
    drain(&b).await;
    let verdict = verify(&cluster.node_url(2), &database, &net.brand_id, &answers).await;
    assert!(verdict.problems.is_empty(), "{verdict:#?}");
    assert!(verdict.acked >= 500, "{verdict:?}");
}

/// `affilync check --repair` on a cluster mends a listing copy deleted from a shard's local
/// tables, as it does on one server.
#[tokio::test]
#[ignore = "mutations on the 18.16 test cluster: an ALTER … ON CLUSTER DELETE on the \
            replicated local tables sometimes finishes in seconds and sometimes not within \
            minutes (the damage and check --repair's own deletes alike); not yet understood"]
async fn check_repairs_a_damaged_copy_on_a_cluster() {
    let _turn = shared().await;
    let node = TestApp::spawn_with(on_new_database().await).await;
    let net = node.network().await;
    let click = node.click(&net.link_url).await;
    let (status, _) = json_body(
        node.track(&net.brand_key, &conversion(&click, "mend-1", "5.00"))
            .await,
    )
    .await;
    assert!(status.is_success());
    drain(&node).await;
    let db = node.database.clone();
    let damaged = ConversionId::derive(&BrandId::parse(&net.brand_id).unwrap(), "mend-1");
    crate::common::clickhouse_answer(
        &cluster().node_url(1),
        &db,
        &format!(
            "ALTER TABLE conversions_by_brand_local ON CLUSTER {} DELETE WHERE conversion_id = '{damaged}'",
            cluster::NAME
        ),
    )
    .await;
    let args = ["--clickhouse-cluster", cluster::NAME, "--repair"];
    let (repaired, output) = crate::common::affilync_check_at(&cluster().urls(), &db, &args).await;
    assert!(
        output.contains(damaged.as_str()) && repaired && output.contains("0 problems left"),
        "{output}"
    );
}

/// Reports from the rollups on a cluster (recomputed through the Distributed tables, both
/// grains) answer what the raw rows answer on another node, a status change included.
#[tokio::test]
async fn rollup_reports_on_a_cluster_match_the_raw_rows() {
    let _turn = shared().await;
    let raw = TestApp::spawn_with(on_new_database().await).await;
    let rolled = TestApp::spawn_with(TestOptions {
        report_rollups: attributor::reports::RollupConfig {
            enabled: true,
            interval: Duration::from_millis(100),
            margin: crate::common::ROLLUP_MARGIN,
            ..attributor::reports::RollupConfig::default()
        },
        ..on_cluster(raw.database.clone())
    })
    .await;
    let net = raw.network().await;
    let click = raw.click(&net.link_url).await;
    wait_until_known(&rolled, &net.brand_key, &click).await;
    let mut ids = Vec::new();
    for (n, amount) in ["10.00", "25.50", "7.25", "99.99"].iter().enumerate() {
        let click = raw.click(&net.link_url).await;
        let (status, body) = json_body(
            raw.track(
                &net.brand_key,
                &conversion(&click, &format!("r-{n}"), amount),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["data"]["conversion_id"].as_str().unwrap().to_owned());
    }
    let (status, body) = json_body(
        raw.patch(&net.brand_key, &ids[1], &json!({"status": "approved"}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    drain(&raw).await;
    drain(&rolled).await;

    let now = count_at(1, &raw.database, "SELECT toUInt32(now())").await as f64;
    rolled
        .wait_for_metric(
            "affilync_report_rollup_complete_through_seconds",
            &[],
            |through| through >= now,
        )
        .await;
    for query in ["group_by=day", "group_by=hour", "group_by=campaign,status"] {
        let mut answers = Vec::new();
        for (node, source) in [(&raw, "raw"), (&rolled, "rollups")] {
            let response = node
                .get(&net.brand_key, &format!("/api/reports?{query}"))
                .await;
            let answered_from = response
                .headers()
                .get("x-affilync-report-source")
                .map(|value| value.to_str().unwrap().to_owned());
            let (status, body) = json_body(response).await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            assert_eq!(answered_from.as_deref(), Some(source), "{query}");
            answers.push((body["data"].clone(), body["meta"]["totals"].clone()));
        }
        assert_eq!(answers[0], answers[1], "{query}");
        assert_eq!(answers[1].1["conversions"], 5, "{query}: the probe too");
        assert_eq!(answers[1].1["approved"], 1, "{query}");
    }
}
