//! The click secret: given, or generated once and kept in the data directory so that
//! click ids stay valid across restarts.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use rand::RngCore;

use crate::secret::Secret;

const FILE_NAME: &str = "click_secret";

pub fn click_secret(given: Option<Secret>, data_dir: &Path) -> anyhow::Result<Secret> {
    if let Some(secret) = given.filter(|s| !s.expose().is_empty()) {
        return Ok(secret);
    }
    let path = data_dir.join(FILE_NAME);
    if let Ok(existing) = fs::read_to_string(&path) {
        let existing = existing.trim();
        if !existing.is_empty() {
            return Ok(Secret::new(existing));
        }
    }
    fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret: String = attributor::domain::lower_hex(&bytes);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(secret.as_bytes())?;
    tracing::info!(path = %path.display(), "generated a click secret; set AFFILYNC_CLICK_SECRET to share one across nodes");
    Ok(Secret::new(secret))
}
