//! The demo's banner is what a newcomer pastes first: every curl line in it must work as
//! printed, in order, against the service that printed it.

use std::process::Command;

use crate::common::{ADMIN_TOKEN, TestApp};

/// The banner's curl commands, each joined from its `\`-continued lines.
fn curl_commands(banner: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut current: Option<String> = None;
    for line in banner.lines() {
        let line = line.trim_end();
        match current.as_mut() {
            Some(command) => command.push_str(line.trim_end_matches('\\')),
            None if line.starts_with("curl ") => {
                current = Some(line.trim_end_matches('\\').to_owned());
            }
            None => continue,
        }
        if !line.ends_with('\\') {
            commands.extend(current.take());
        }
    }
    commands
}

/// Runs a pasted command through bash, as a terminal would, and returns the HTTP status.
fn status_of(command: &str) -> u16 {
    let output = Command::new("bash")
        .arg("-c")
        .arg(format!("{command} -s -o /dev/null -w '%{{http_code}}'"))
        .output()
        .expect("bash and curl are installed");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{command}: {output:?}"))
}

#[tokio::test]
async fn the_demo_banners_curl_lines_work_as_printed() {
    let app = TestApp::spawn().await;
    let demo = ingest::startup::demo::seed(&app.base, ADMIN_TOKEN)
        .await
        .unwrap();
    let banner = ingest::startup::demo::banner(&app.base, ADMIN_TOKEN, "clickhouse", &demo);
    let commands = curl_commands(&banner);
    assert_eq!(commands.len(), 6, "{commands:#?}");
    assert!(!banner.contains("CONVERSION_ID"), "{banner}");

    // The track call, then the same again, then the rest in order: the conflict, the
    // postback, the two listings, the approval of the first order.
    let track = &commands[0];
    let statuses: Vec<u16> = std::iter::once(track)
        .chain(&commands)
        .map(|command| status_of(command))
        .collect();
    assert_eq!(
        statuses,
        [201, 200, 409, 201, 200, 200, 200],
        "{commands:#?}"
    );
    app.drain().await;
    let approved = app
        .get(&demo.network.brand_key, "/api/conversions?status=approved")
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(approved["data"][0]["order_id"], "order_456");
}
