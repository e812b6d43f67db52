//! One private clickhouse-server per test binary, under the system temp directory. It is
//! stopped when the test process exits (the managed server's lifeline pipe closes); the
//! directories of earlier, finished runs are removed at start.

use std::path::PathBuf;
use std::sync::OnceLock;

use ingest::startup::clickhouse_server::ManagedClickhouse;

static SERVER: OnceLock<ManagedClickhouse> = OnceLock::new();

pub fn url() -> String {
    SERVER
        .get_or_init(|| {
            let root = std::env::temp_dir().join("affilync-tests");
            remove_finished_runs(&root);
            let dir = root.join(std::process::id().to_string());
            ManagedClickhouse::start(&dir)
                .unwrap_or_else(|error| panic!("the tests need a private ClickHouse: {error}"))
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
