//! The real `affilync serve` binary as a child process, for what only a process can show:
//! being killed with SIGKILL in the middle of its work, and starting again on the same data
//! directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{ADMIN_TOKEN, Api, CLICK_SECRET};

/// How long a start may take before the test fails.
const START_DEADLINE: Duration = Duration::from_secs(60);

pub struct ServiceProcess {
    api: Api,
    child: Child,
    log: PathBuf,
}

impl ServiceProcess {
    /// Starts `affilync serve` on a free port, on `data_dir` and `database` of
    /// `clickhouse_url`, shipping every 50 ms, and waits until it serves.
    pub async fn start(clickhouse_url: &str, database: &str, data_dir: &Path) -> ServiceProcess {
        Self::start_with(Some(clickhouse_url), database, data_dir, &[]).await
    }

    /// As [`ServiceProcess::start`]; without a ClickHouse URL the node runs its own managed
    /// one in `data_dir`, and `env` adds settings.
    pub async fn start_with(
        clickhouse_url: Option<&str>,
        database: &str,
        data_dir: &Path,
        env: &[(&str, &str)],
    ) -> ServiceProcess {
        fs::create_dir_all(data_dir).unwrap();
        let log = data_dir.join(format!(
            "service-{}.log",
            time::OffsetDateTime::now_utc().unix_timestamp_nanos()
        ));
        let mut command = Command::new(env!("CARGO_BIN_EXE_affilync"));
        if let Some(url) = clickhouse_url {
            command.env("AFFILYNC_CLICKHOUSE_URL", url);
        }
        let child = command
            .arg("serve")
            .env("AFFILYNC_LISTEN", "127.0.0.1:0")
            .env("AFFILYNC_CLICKHOUSE_DATABASE", database)
            .env("AFFILYNC_DATA_DIR", data_dir)
            .env("AFFILYNC_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("AFFILYNC_CLICK_SECRET", CLICK_SECRET)
            .env("AFFILYNC_SHIP_INTERVAL_MS", "50")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            // A run that collects its logs (AFFILYNC_TEST_LOG) wants them all, as JSON.
            .envs(
                super::run_log::path()
                    .map(|_| {
                        [
                            ("RUST_LOG", super::run_log::CHILD_FILTER),
                            ("AFFILYNC_LOG_FORMAT", "json"),
                        ]
                    })
                    .into_iter()
                    .flatten(),
            )
            // Last, so a test's settings win over the defaults above.
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting the affilync binary");
        let base = wait_for_address(&log, START_DEADLINE).await;
        let api = Api::new(base, database.to_owned());
        api.wait_until_serving().await;
        ServiceProcess { api, child, log }
    }

    /// SIGKILL: no shutdown, no flush, nothing.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process logged.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl std::ops::Deref for ServiceProcess {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        super::run_log::append(&self.log());
    }
}

/// The address the service logs once it listens (`affilync is serving address=...`).
async fn wait_for_address(log: &Path, deadline: Duration) -> String {
    let started = Instant::now();
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        if let Some(address) = text.lines().find_map(serving_address) {
            return format!("http://{address}");
        }
        assert!(
            started.elapsed() < deadline,
            "the service did not start within {deadline:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The address in the line `affilync is serving` as either log format writes it:
/// `... affilync is serving address=127.0.0.1:1234` or
/// `{"message":"affilync is serving","address":"127.0.0.1:1234",...}`.
fn serving_address(line: &str) -> Option<String> {
    if let Some(rest) = line.split("affilync is serving address=").nth(1) {
        return rest.split_whitespace().next().map(str::to_owned);
    }
    let object: serde_json::Value = serde_json::from_str(line).ok()?;
    (object["message"] == "affilync is serving")
        .then(|| object["address"].as_str().map(str::to_owned))
        .flatten()
}
