//! Runs the pixel's JavaScript unit tests (`ingest/assets/*.test.js`) with node's built-in
//! test runner, so that `cargo test` covers them too.

use std::path::Path;
use std::process::Command;

#[test]
fn the_pixel_script_passes_its_node_tests() {
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let has_tests = std::fs::read_dir(&assets).unwrap().any(|entry| {
        entry
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".test.js")
    });
    assert!(has_tests, "no *.test.js beside pixel.js");
    let output = Command::new("node")
        .arg("--test")
        .arg(&assets)
        .output()
        .unwrap_or_else(|error| {
            panic!("node (v18 or later) runs the pixel's tests; install nodejs: {error}")
        });
    assert!(
        output.status.success(),
        "node --test failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
