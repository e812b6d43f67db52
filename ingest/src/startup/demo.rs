//! `affilync demo`: the service with a demo brand, affiliate, campaign, link and keys,
//! created through its own admin API and one real click, then printed with ready-to-paste
//! curl lines for every call of the API document.

use anyhow::{Context, bail};
use reqwest::redirect::Policy;
use serde_json::{Value, json};

/// What the demo created.
pub struct DemoData {
    pub brand_id: String,
    pub brand_key: String,
    pub affiliate_id: String,
    pub affiliate_key: String,
    pub campaign_id: String,
    pub link_url: String,
    pub click_id: String,
}

/// Creates the demo data through the running service at `base`.
pub async fn seed(base: &str, admin_token: &str) -> anyhow::Result<DemoData> {
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()?;
    let admin = |path: &'static str, body: Value| {
        let http = http.clone();
        let url = format!("{base}{path}");
        let token = admin_token.to_owned();
        async move {
            let response = http
                .post(&url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await?;
            let status = response.status();
            let answer: Value = response.json().await?;
            if !status.is_success() {
                bail!("{path} answered {status}: {answer}");
            }
            Ok::<Value, anyhow::Error>(answer["data"].clone())
        }
    };
    let text = |value: &Value, key: &str| value[key].as_str().unwrap_or_default().to_owned();

    let brand = admin("/api/admin/brands", json!({"name": "Demo Shop"})).await?;
    let affiliate = admin("/api/admin/affiliates", json!({"name": "Demo Publisher"})).await?;
    let campaign = admin(
        "/api/admin/campaigns",
        json!({
            "brand_id": brand["brand_id"],
            "name": "Spring sale",
            "landing_url": "https://shop.example.com/spring?utm_source=affilync",
            "currency": "USD",
            "cookie_window_days": 30,
            "commission": {"sale": {"percent": "10"}, "lead": {"flat": "2.50"}},
        }),
    )
    .await?;
    let link = admin(
        "/api/admin/links",
        json!({"campaign_id": campaign["campaign_id"], "affiliate_id": affiliate["affiliate_id"]}),
    )
    .await?;
    let brand_key = admin(
        "/api/admin/api-keys",
        json!({"brand_id": brand["brand_id"]}),
    )
    .await?;
    let affiliate_key = admin(
        "/api/admin/api-keys",
        json!({"affiliate_id": affiliate["affiliate_id"]}),
    )
    .await?;

    let link_url = text(&link, "url");
    let redirect = http
        .get(&link_url)
        .send()
        .await
        .context("following the demo tracking link")?;
    let location = redirect
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .context("the tracking link did not redirect")?;
    let click_id = url::Url::parse(location)?
        .query_pairs()
        .find(|(key, _)| key == "afk_cid")
        .map(|(_, value)| value.into_owned())
        .context("the redirect carried no afk_cid")?;

    Ok(DemoData {
        brand_id: text(&brand, "brand_id"),
        brand_key: text(&brand_key, "api_key"),
        affiliate_id: text(&affiliate, "affiliate_id"),
        affiliate_key: text(&affiliate_key, "api_key"),
        campaign_id: text(&campaign, "campaign_id"),
        link_url,
        click_id,
    })
}

/// The demo's banner: what exists and the API document's calls, ready to paste.
pub fn banner(base: &str, admin_token: &str, clickhouse: &str, demo: &DemoData) -> String {
    let DemoData {
        brand_id,
        brand_key,
        affiliate_id,
        affiliate_key,
        campaign_id,
        link_url,
        click_id,
    } = demo;
    format!(
        r#"
Affilync demo is serving on {base} (ClickHouse: {clickhouse})

  admin token    {admin_token}
  brand          {brand_id}  "Demo Shop"        key {brand_key}
  affiliate      {affiliate_id}  "Demo Publisher"   key {affiliate_key}
  campaign       {campaign_id}  10% of sales, 2.50 USD per lead, 30-day cookie window
  tracking link  {link_url}
  click id       {click_id}  (from following the link once)

Report a conversion (201), then the same again (200, Idempotent-Replayed: true):

curl -i -X POST {base}/api/conversions/track \
  -H "Authorization: Bearer {brand_key}" \
  -H "Content-Type: application/json" \
  -d '{{"click_id": "{click_id}", "order_id": "order_456", "amount": "99.99", "currency": "USD", "event_type": "sale", "customer_email": "jane@example.com", "metadata": {{"product_id": "prod_789", "coupon_code": "SUMMER20"}}}}'

The same order with another amount (409 order_id_conflict):

curl -i -X POST {base}/api/conversions/track \
  -H "Authorization: Bearer {brand_key}" -H "Content-Type: application/json" \
  -d '{{"click_id": "{click_id}", "order_id": "order_456", "amount": "120.00"}}'

A postback (key in the query; or send it as Authorization: Bearer):

curl -i "{base}/api/conversions/postback?api_key={brand_key}&click_id={click_id}&amount=25.00&order_id=order_457&currency=USD"

List this month's conversions, as the brand and as the affiliate:

curl "{base}/api/conversions?date_from=$(date -u +%Y-%m-01)&per_page=10" -H "Authorization: Bearer {brand_key}"
curl "{base}/api/conversions" -H "Authorization: Bearer {affiliate_key}"

Approve one (take a conversion_id from the answers above):

curl -X PATCH {base}/api/conversions/CONVERSION_ID \
  -H "Authorization: Bearer {brand_key}" -H "Content-Type: application/json" \
  -d '{{"status": "approved", "note": "Verified in our system"}}'

Metrics: {base}/metrics    Stop with Ctrl-C.
"#
    )
}
