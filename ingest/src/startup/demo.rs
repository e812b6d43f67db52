//! `affilync demo`: the service with a demo brand, affiliate, campaign, link and keys,
//! created through its own admin API and one real click, then printed with ready-to-paste
//! curl lines for every call of the API document.

use anyhow::Context;
use attributor::domain::{BrandId, ConversionId};
use reqwest::redirect::Policy;
use serde_json::json;

use crate::seeding::{AdminClient, CampaignTerms, Network, NetworkPlan};

/// What the demo created.
pub struct DemoData {
    pub network: Network,
    /// From following the tracking link once.
    pub click_id: String,
}

/// Creates the demo data through the running service at `base`.
pub async fn seed(base: &str, admin_token: &str) -> anyhow::Result<DemoData> {
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()?;
    let admin = AdminClient::new(http, base, admin_token);
    let network = admin.network(&demo_plan()).await?;
    let click_id = admin
        .click(&network.link_url)
        .await
        .context("following the demo tracking link")?;
    Ok(DemoData { network, click_id })
}

/// The shop, publisher and campaign the banner describes.
fn demo_plan() -> NetworkPlan {
    NetworkPlan {
        brand_name: "Demo Shop".into(),
        affiliate_name: "Demo Publisher".into(),
        campaign: CampaignTerms {
            name: "Spring sale".into(),
            landing_url: "https://shop.example.com/spring?utm_source=affilync".into(),
            currency: "USD".into(),
            cookie_window_days: 30,
            commission: json!({"sale": {"percent": "10"}, "lead": {"flat": "2.50"}}),
        },
    }
}

/// The demo's banner: what exists and the API document's calls, ready to paste.
pub fn banner(base: &str, admin_token: &str, clickhouse: &str, demo: &DemoData) -> String {
    let DemoData {
        network:
            Network {
                brand_id,
                brand_key,
                affiliate_id,
                affiliate_key,
                campaign_id,
                link_url,
            },
        click_id,
    } = demo;
    // Conversion ids are derived from the brand and the order id, so the id of the order
    // the first call below reports is known before it is sent.
    let order_456 = BrandId::parse(brand_id)
        .map(|brand| ConversionId::derive(&brand, "order_456").to_string())
        .unwrap_or_else(|_| "CONVERSION_ID".to_owned());
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

Approve order_456 (its conversion_id, as the first answer above says):

curl -X PATCH {base}/api/conversions/{order_456} \
  -H "Authorization: Bearer {brand_key}" -H "Content-Type: application/json" \
  -d '{{"status": "approved", "note": "Verified in our system"}}'

Metrics: {base}/metrics    Stop with Ctrl-C.
"#
    )
}
