//! With `AFFILYNC_TEST_LOG=<file>`, everything the services of a whole test run log goes to
//! that file as JSON lines at debug level: the in-process services through a subscriber
//! installed here, the child processes by appending their own logs when they are dropped.
//! `scripts/check-test-log.sh` then greps it for keys, tokens, secrets and e-mails (CI does).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::EnvFilter;

/// The file named by `AFFILYNC_TEST_LOG`, if any.
pub fn path() -> Option<PathBuf> {
    std::env::var_os("AFFILYNC_TEST_LOG").map(PathBuf::from)
}

/// What the child processes are started with: the same level and format.
pub const CHILD_FILTER: &str = "info,ingest=debug,attributor=debug";

/// Installs the subscriber once, before the first in-process service starts.
pub fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let Some(path) = path() else {
            return;
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|error| panic!("opening {}: {error}", path.display()));
        let _ = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_env_filter(EnvFilter::new(CHILD_FILTER))
            .with_writer(Mutex::new(file))
            .try_init();
    });
}

/// Appends a child process's log to the run's file.
pub fn append(log: &str) {
    let Some(path) = path() else {
        return;
    };
    let mut file: File = match OpenOptions::new().create(true).append(true).open(&path) {
        Ok(file) => file,
        Err(_) => return,
    };
    let _ = file.write_all(log.as_bytes());
}
