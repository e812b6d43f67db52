//! One ClickHouse cluster (2 shards × 2 replicas plus ZooKeeper, by `ops/cluster/start.sh`)
//! per test binary, started by the first cluster test that asks for it, on ports of its own
//! (base 29000, or AFFILYNC_TEST_CLUSTER_PORT_BASE for a second checkout running its tests
//! at the same time) and in a directory named by that base, so that a run killed before it
//! could stop the cluster leaves nothing behind the next start does not stop first. A watcher process runs
//! `stop.sh` once this process's end of its stdin closes: when the test binary exits.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use attributor::store::{ClusterSettings, StoreTimeouts};
use attributor::{Store, StoreSettings};
use rand::RngCore;
use tokio::sync::{Mutex as AsyncMutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

const DEFAULT_PORT_BASE: u16 = 29_000;
pub const NAME: &str = "affilync";
pub const NODES: usize = 4;

pub struct TestCluster {
    dir: PathBuf,
    port_base: u16,
    _stopper: Mutex<Child>,
}

static CLUSTER: OnceLock<TestCluster> = OnceLock::new();

/// Tests run in parallel: one that kills a node holds the cluster alone, so that no other
/// test's ON CLUSTER migration or quorum INSERT meets the dead node.
static TURNS: RwLock<()> = RwLock::const_new(());

/// The cluster, shared with the other tests that leave every node running.
pub async fn shared() -> RwLockReadGuard<'static, ()> {
    TURNS.read().await
}

/// The cluster, alone: for a test that kills nodes (and restarts them before it ends).
pub async fn exclusive() -> RwLockWriteGuard<'static, ()> {
    TURNS.write().await
}

/// Each node runs ON CLUSTER statements one at a time, in the order they were queued, so
/// several tests migrating at once wait for each other's thirty statements, past the time a
/// test gives a service to start. They migrate one after another instead, before their
/// services start (which then find nothing to do).
static MIGRATIONS: AsyncMutex<()> = AsyncMutex::const_new(());

/// A new database on the cluster, created and migrated.
pub async fn migrated_database() -> String {
    let mut bytes = [0u8; 6];
    rand::rng().fill_bytes(&mut bytes);
    let database = format!("test_{}", attributor::domain::lower_hex(&bytes));
    let cluster = cluster();
    let settings = StoreSettings {
        url: cluster.urls(),
        cluster: Some(cluster.settings()),
        database: database.clone(),
        user: "default".into(),
        password: String::new(),
        timeouts: StoreTimeouts::default(),
    };
    let _one_at_a_time = MIGRATIONS.lock().await;
    let store = Store::connect(&settings)
        .await
        .unwrap_or_else(|error| panic!("connecting to the test cluster: {error}"));
    store
        .migrate()
        .await
        .unwrap_or_else(|error| panic!("migrating {database} on the test cluster: {error}"));
    database
}

pub fn cluster() -> &'static TestCluster {
    CLUSTER.get_or_init(|| {
        let port_base = std::env::var("AFFILYNC_TEST_CLUSTER_PORT_BASE")
            .ok()
            .and_then(|base| base.parse().ok())
            .unwrap_or(DEFAULT_PORT_BASE);
        let dir = std::env::temp_dir().join(format!("affilync-test-cluster-{port_base}"));
        let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops/cluster");
        // A fresh cluster every run: what an earlier run left (its servers, its databases)
        // is stopped and removed first.
        let stopped = Command::new(scripts.join("stop.sh"))
            .arg(&dir)
            .stdout(Stdio::null())
            .status()
            .expect("running ops/cluster/stop.sh");
        assert!(stopped.success());
        let _ = std::fs::remove_dir_all(&dir);
        let started = Command::new(scripts.join("start.sh"))
            .arg(&dir)
            .env("PORT_BASE", port_base.to_string())
            .env("CLUSTER", NAME)
            .stdout(Stdio::null())
            .status()
            .expect("running ops/cluster/start.sh");
        assert!(
            started.success(),
            "the cluster tests need ops/cluster/start.sh to work"
        );
        let stopper = Command::new("sh")
            .arg("-c")
            .arg(r#"read -r _; exec "$0" "$1" >/dev/null 2>&1"#)
            .arg(scripts.join("stop.sh"))
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the cluster's stopper");
        TestCluster {
            dir,
            port_base,
            _stopper: Mutex::new(stopper),
        }
    })
}

impl TestCluster {
    /// Node `n`'s (1–4) HTTP URL; nodes 1 and 2 are shard 1's replicas, 3 and 4 shard 2's.
    pub fn node_url(&self, n: usize) -> String {
        format!(
            "http://127.0.0.1:{}",
            usize::from(self.port_base) + n * 100 + 23
        )
    }

    /// Every node's URL, comma-separated, as AFFILYNC_CLICKHOUSE_URL takes them.
    pub fn urls(&self) -> String {
        (1..=NODES)
            .map(|n| self.node_url(n))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The settings a test node uses: a short DDL timeout, so that a test against a node
    /// that is down fails in seconds.
    pub fn settings(&self) -> ClusterSettings {
        ClusterSettings {
            ddl_timeout: Duration::from_secs(20),
            ..ClusterSettings::new(NAME)
        }
    }

    fn pid_file(&self, n: usize) -> PathBuf {
        self.dir.join(format!("node{n}/pid"))
    }

    /// SIGKILL of node `n`'s server.
    pub fn kill(&self, n: usize) {
        let pid = std::fs::read_to_string(self.pid_file(n)).unwrap();
        let pid = pid.trim();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(
            String::from_utf8_lossy(&cmdline).contains(&*self.dir.to_string_lossy()),
            "node{n}'s pid file names another process"
        );
        let status = Command::new("kill").args(["-KILL", pid]).status().unwrap();
        assert!(status.success());
        while Path::new(&format!("/proc/{pid}")).exists() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts node `n` again with its config and data, and waits until it answers.
    pub async fn restart(&self, n: usize) {
        let node = self.dir.join(format!("node{n}"));
        let config = node.join("config.xml");
        let pid_file = self.pid_file(n);
        // Detached, as start.sh launches it: the server outlives the shell that starts it
        // and is stopped by stop.sh with the others.
        let launched = Command::new("bash")
            .arg("-c")
            .arg(
                r#"setsid bash -c 'echo $$ > "$0"; exec /usr/sbin/clickhouse-server --config-file="$1"' "$0" "$1" </dev/null >/dev/null 2>&1 &"#,
            )
            .arg(&pid_file)
            .arg(&config)
            .status()
            .expect("restarting a clickhouse node");
        assert!(launched.success());
        let url = self.node_url(n);
        let http = reqwest::Client::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let answer = http.get(format!("{url}/ping")).send().await;
            if answer.is_ok_and(|a| a.status().is_success()) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "node{n} did not come back"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
