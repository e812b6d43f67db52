//! The API document's calls as golden request files (`tests/golden/*.json`), run in order
//! against the real service. Each file holds a request and the exact response expected.
//!
//! Listings may lag new conversions by the shipping delay, so each GET waits until this
//! node's journal has drained into ClickHouse.
//!
//! In both, `{{name}}` stands for a value known to the run (keys, ids, today's date) or
//! captured from an earlier answer. In expected bodies, `<timestamp>` matches any UTC
//! RFC 3339 time, `<seconds>` any whole number and `<conversion_id>` any conversion id; in
//! expected headers, `null` means the header must be absent.

use std::collections::HashMap;
use std::path::Path;

use crate::common::{TestApp, TestOptions, json_body};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

#[tokio::test]
async fn the_api_documents_calls_answer_as_recorded() {
    answers_as_recorded(TestOptions::default()).await;
}

/// Runs every golden file in order against a node started with `options`.
pub async fn answers_as_recorded(options: TestOptions) {
    // Noon UTC, so the run's minutes never straddle midnight and `{{today}}` holds.
    let now = OffsetDateTime::now_utc();
    let noon = now.replace_time(time::macros::time!(12:00));
    options.clock.advance(if noon > now {
        noon - now
    } else {
        noon + Duration::days(1) - now
    });
    let clock = options.clock.clone();
    let app = TestApp::spawn_with(options).await;

    let net = app.network().await;
    let other_campaign = app
        .create(
            "/api/admin/campaigns",
            json!({"brand_id": net.brand_id, "name": "Other", "landing_url": "https://shop.example/other"}),
        )
        .await;
    let click_id = app.click(&net.link_url).await;
    let today = (OffsetDateTime::now_utc() + Duration::seconds(clock_offset(&clock))).date();
    let mut vars: HashMap<String, String> = HashMap::from([
        ("brand_key".into(), net.brand_key.clone()),
        ("affiliate_key".into(), net.affiliate_key.clone()),
        ("affiliate_id".into(), net.affiliate_id.clone()),
        ("campaign_id".into(), net.campaign_id.clone()),
        (
            "other_campaign_id".into(),
            other_campaign["campaign_id"].as_str().unwrap().into(),
        ),
        ("click_id".into(), click_id),
        ("today".into(), today.to_string()),
    ]);

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 15, "golden files are missing");
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let golden: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        // Each step a minute later, so newest-first order is the order of the files.
        clock.advance(Duration::minutes(1));
        let request = substitute(&golden["request"], &vars);
        if request["method"] == "GET" {
            // Listings read ClickHouse, which has what was journaled once it is shipped.
            app.drain().await;
        }
        let mut builder = app.http.request(
            request["method"].as_str().unwrap().parse().unwrap(),
            app.url(request["path"].as_str().unwrap()),
        );
        if let Some(headers) = request["headers"].as_object() {
            for (name, value) in headers {
                builder = builder.header(name, value.as_str().unwrap());
            }
        }
        if !request["body"].is_null() {
            builder = builder.body(request["body"].to_string());
        }
        let response = builder.send().await.unwrap();
        let headers = response.headers().clone();
        let (status, body) = json_body(response).await;

        let expected = substitute(&golden["response"], &vars);
        assert_eq!(
            status.as_u16(),
            expected["status"].as_u64().unwrap() as u16,
            "{name}: {body}"
        );
        if let Some(expected_headers) = expected["headers"].as_object() {
            for (header, value) in expected_headers {
                let actual = headers.get(header).map(|v| v.to_str().unwrap().to_owned());
                match value.as_str() {
                    None => assert_eq!(actual, None, "{name}: header {header}"),
                    Some(value) => assert!(
                        actual.as_deref().is_some_and(|a| a.starts_with(value)),
                        "{name}: header {header} is {actual:?}, expected {value}"
                    ),
                }
            }
        }
        if let Err(difference) = matches(&expected["body"], &body, "body") {
            panic!("{name}: {difference}\nactual body: {body:#}");
        }
        if let Some(captures) = golden["capture"].as_object() {
            for (var, path) in captures {
                let value = path
                    .as_str()
                    .unwrap()
                    .split('.')
                    .fold(&body, |v, key| &v[key]);
                vars.insert(var.clone(), value.as_str().unwrap().to_owned());
            }
        }
    }
}

fn clock_offset(clock: &crate::common::TestClock) -> i64 {
    (clock.clock().now() - OffsetDateTime::now_utc()).whole_seconds()
}

fn substitute(value: &Value, vars: &HashMap<String, String>) -> Value {
    match value {
        Value::String(text) => {
            let mut text = text.clone();
            for (name, replacement) in vars {
                text = text.replace(&format!("{{{{{name}}}}}"), replacement);
            }
            assert!(!text.contains("{{"), "an unknown variable in {text}");
            Value::String(text)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| substitute(v, vars)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), substitute(v, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Exact comparison, but for the placeholders; says where the first difference is.
fn matches(expected: &Value, actual: &Value, at: &str) -> Result<(), String> {
    let differs = || Err(format!("at {at}: expected {expected}, got {actual}"));
    match (expected, actual) {
        (Value::String(pattern), _) if pattern == "<timestamp>" => match actual.as_str() {
            Some(text) if is_utc_timestamp(text) => Ok(()),
            _ => differs(),
        },
        (Value::String(pattern), _) if pattern == "<seconds>" => {
            if actual.is_u64() {
                Ok(())
            } else {
                differs()
            }
        }
        (Value::String(pattern), _) if pattern == "<cursor>" => {
            match actual.as_str().map(attributor::store::ListCursor::parse) {
                Some(Ok(_)) => Ok(()),
                _ => differs(),
            }
        }
        (Value::String(pattern), _) if pattern == "<conversion_id>" => {
            match actual.as_str().map(attributor::domain::ConversionId::parse) {
                Some(Ok(_)) => Ok(()),
                _ => differs(),
            }
        }
        (Value::Object(expected_map), Value::Object(actual_map)) => {
            let mut expected_keys: Vec<_> = expected_map.keys().collect();
            let mut actual_keys: Vec<_> = actual_map.keys().collect();
            expected_keys.sort();
            actual_keys.sort();
            if expected_keys != actual_keys {
                return Err(format!(
                    "at {at}: keys {expected_keys:?}, got {actual_keys:?}"
                ));
            }
            for (key, value) in expected_map {
                matches(value, &actual_map[key], &format!("{at}.{key}"))?;
            }
            Ok(())
        }
        (Value::Array(expected_items), Value::Array(actual_items)) => {
            if expected_items.len() != actual_items.len() {
                return differs();
            }
            for (i, (e, a)) in expected_items.iter().zip(actual_items).enumerate() {
                matches(e, a, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        _ if expected == actual => Ok(()),
        _ => differs(),
    }
}

fn is_utc_timestamp(text: &str) -> bool {
    text.ends_with('Z')
        && OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).is_ok()
}
