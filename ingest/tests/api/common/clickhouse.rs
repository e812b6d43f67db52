//! One private clickhouse-server per test binary, under the system temp directory. It is
//! stopped when the test process exits (the managed server's lifeline pipe closes), and a
//! reaper removes its directory once it has stopped; directories an interrupted run left
//! behind are removed at the next start.

use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::OnceLock;

use ingest::startup::clickhouse_server::ManagedClickhouse;

static SERVER: OnceLock<ManagedClickhouse> = OnceLock::new();
/// Held for the life of the test process; its closing starts the reaper.
static REAPER: OnceLock<Option<ChildStdin>> = OnceLock::new();

/// Waits for the test process to exit (its stdin closes), then for the server to stop
/// (at most 30 s, then SIGKILL), then removes the run's directory.
const REAPER_SCRIPT: &str = r#"
read -r _
pid="$(cat "$1/clickhouse/clickhouse.pid" 2>/dev/null)"
for _ in $(seq 1 300); do
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
rm -rf "$1"
"#;

pub fn url() -> String {
    SERVER
        .get_or_init(|| {
            let root = std::env::temp_dir().join("affilync-tests");
            remove_finished_runs(&root);
            let dir = root.join(std::process::id().to_string());
            let server = ManagedClickhouse::start(&dir)
                .unwrap_or_else(|error| panic!("the tests need a private ClickHouse: {error}"));
            REAPER.get_or_init(|| start_reaper(&dir));
            server
        })
        .url()
}

fn remove_finished_runs(root: &PathBuf) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let alive = PathBuf::from(format!("/proc/{name}")).exists();
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn start_reaper(dir: &Path) -> Option<ChildStdin> {
    let mut reaper = Command::new("sh")
        .arg("-c")
        .arg(REAPER_SCRIPT)
        .arg("affilync-test-reaper")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    reaper.stdin.take()
}
