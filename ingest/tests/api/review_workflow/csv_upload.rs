//! The CSV form of bulk decisions.

use super::*;

#[tokio::test]
async fn a_csv_upload_decides_by_order_id_and_names_bad_lines() {
    let app = TestApp::spawn().await;
    let net = app.network().await;
    let other = app.network().await;
    let first = report(&app, &net, "SO-1001").await;
    let second = report(&app, &net, "SO-1002").await;
    let elsewhere = report(&app, &other, "SO-1003").await;

    let csv = "order_id,status,note\r\nSO-1001,approved,\r\nSO-1002,rejected,\"returned, refunded\"\r\nSO-1003,approved,\r\nSO-9999,approved,\r\n";
    let (status, answer) = upload(&app, &net.brand_key, csv).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let results: Vec<&str> = answer["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["updated", "updated", "not_found", "not_found"]);
    assert_eq!(answer["data"][0]["conversion_id"], first.as_str());
    assert_eq!(status_of(&app, &net.brand_key, &first).await, "approved");
    assert_eq!(status_of(&app, &net.brand_key, &second).await, "rejected");
    assert_eq!(
        status_of(&app, &other.brand_key, &elsewhere).await,
        "pending"
    );
    let (status, again) = upload(&app, &net.brand_key, csv).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["meta"]["unchanged"], 2);

    let by_id = format!("conversion_id,status\n{second},approved\n");
    let (_, answer) = upload(&app, &net.brand_key, &by_id).await;
    assert_eq!(answer["data"][0]["result"], "invalid_transition");
    assert_eq!(answer["data"][0]["status"], "rejected");

    let bad = "order_id,status\nSO-1001,approved\nSO-1002,maybe\n";
    let (status, body) = upload(&app, &net.brand_key, bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "lines[3].status");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 3, column status"),
        "{body}"
    );
    let (status, body) = upload(&app, &net.brand_key, "sku,status\nx,approved\n").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "lines[1]");
}
