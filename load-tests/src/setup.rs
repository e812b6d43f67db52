//! A run's own corner of the network, made through the admin API and the click redirect: a
//! brand and its key, affiliates, campaigns with commission rules, one link per campaign
//! and affiliate, and a pool of real click ids. It can be saved as JSON so that `fill` can
//! write history for the same brand.

use std::path::Path;

use anyhow::{Context, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::target::Target;

/// Every campaign lands here. The baseline's redirect answers with a Location built on the
/// same URL, so both servers send headers of the same length.
pub const LANDING_URL: &str = "https://shop.example.com/landing?utm_source=affilync";

/// Sale percentages handed to campaigns in turn, so commissions differ between them.
const SALE_PERCENTS: [&str; 5] = ["10", "8", "12", "15", "5"];
const LEAD_FLAT: &str = "2.50";
/// Clicks fetched at once while building the click pool.
const CLICKS_IN_FLIGHT: usize = 16;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Setup {
    pub target: String,
    pub brand_id: String,
    pub brand_key: String,
    pub affiliate_ids: Vec<String>,
    pub campaigns: Vec<SetupCampaign>,
    pub links: Vec<SetupLink>,
    /// Real click ids from following the links, in link order round robin.
    pub clicks: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetupCampaign {
    pub campaign_id: String,
    pub name: String,
    pub landing_url: String,
    pub currency: String,
    pub cookie_window_days: u16,
    /// As sent to the admin API: `{"sale": {"percent": "10"}, "lead": {"flat": "2.50"}}`.
    pub commission: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetupLink {
    pub link_id: String,
    pub campaign_id: String,
    pub affiliate_id: String,
}

/// How much to create.
#[derive(Debug, Clone)]
pub struct SetupPlan {
    /// Prefix of every name created, so runs can be told apart in the catalog.
    pub name: String,
    pub campaigns: usize,
    pub affiliates: usize,
    pub clicks: usize,
}

impl Setup {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the setup file {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a setup file", path.display()))
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("writing the setup file {}", path.display()))
    }
}

/// Creates everything through `target`'s admin API, then follows the links for clicks.
pub async fn create(target: &Target, admin_token: &str, plan: &SetupPlan) -> anyhow::Result<Setup> {
    let admin = |path: &'static str, body: Value| admin_call(target, admin_token, path, body);
    let name = &plan.name;

    let brand = admin(
        "/api/admin/brands",
        json!({"name": format!("{name} brand")}),
    )
    .await?;
    let brand_id = text(&brand, "brand_id")?;
    let key = admin("/api/admin/api-keys", json!({"brand_id": brand_id})).await?;
    let brand_key = text(&key, "api_key")?;

    let mut affiliate_ids = Vec::new();
    for n in 1..=plan.affiliates.max(1) {
        let body = json!({"name": format!("{name} publisher {n}")});
        let affiliate = admin("/api/admin/affiliates", body).await?;
        affiliate_ids.push(text(&affiliate, "affiliate_id")?);
    }

    let mut campaigns = Vec::new();
    let mut links = Vec::new();
    for n in 0..plan.campaigns.max(1) {
        let commission = json!({
            "sale": {"percent": SALE_PERCENTS[n % SALE_PERCENTS.len()]},
            "lead": {"flat": LEAD_FLAT},
        });
        let campaign = SetupCampaign {
            campaign_id: String::new(),
            name: format!("{name} campaign {}", n + 1),
            landing_url: LANDING_URL.to_owned(),
            currency: "USD".to_owned(),
            cookie_window_days: 30,
            commission,
        };
        let created = admin(
            "/api/admin/campaigns",
            json!({
                "brand_id": brand_id,
                "name": campaign.name,
                "landing_url": campaign.landing_url,
                "currency": campaign.currency,
                "cookie_window_days": campaign.cookie_window_days,
                "commission": campaign.commission,
            }),
        )
        .await?;
        let campaign_id = text(&created, "campaign_id")?;
        for affiliate_id in &affiliate_ids {
            let body = json!({"campaign_id": campaign_id, "affiliate_id": affiliate_id});
            let link = admin("/api/admin/links", body).await?;
            links.push(SetupLink {
                link_id: text(&link, "link_id")?,
                campaign_id: campaign_id.clone(),
                affiliate_id: affiliate_id.clone(),
            });
        }
        campaigns.push(SetupCampaign {
            campaign_id,
            ..campaign
        });
    }

    let clicks = click_pool(target, &links, plan.clicks).await?;
    Ok(Setup {
        target: target.base.clone(),
        brand_id,
        brand_key,
        affiliate_ids,
        campaigns,
        links,
        clicks,
    })
}

/// Follows the links round robin, `count` times, and keeps each redirect's click id.
async fn click_pool(
    target: &Target,
    links: &[SetupLink],
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let mut clicks = Vec::with_capacity(count);
    let mut in_flight = JoinSet::new();
    for n in 0..count {
        let target = target.clone();
        let link_id = links[n % links.len()].link_id.clone();
        in_flight.spawn(async move { follow(&target, &link_id).await });
        if in_flight.len() >= CLICKS_IN_FLIGHT {
            clicks.push(
                in_flight
                    .join_next()
                    .await
                    .expect("tasks are in flight")??,
            );
        }
    }
    while let Some(click) = in_flight.join_next().await {
        clicks.push(click??);
    }
    Ok(clicks)
}

/// One click: the redirect's `afk_cid`.
pub async fn follow(target: &Target, link_id: &str) -> anyhow::Result<String> {
    let url = target.url(&format!("/c/{link_id}"));
    let reply = target
        .send(target.http.get(&url))
        .await
        .map_err(|failure| anyhow!("GET {url} failed: {failure:?}"))?;
    if reply.status != 302 {
        bail!("GET {url} answered {} instead of 302", reply.status);
    }
    let location = reply.location.context("the redirect had no Location")?;
    click_id_in(&location).with_context(|| format!("no afk_cid in the redirect to {location}"))
}

/// The `afk_cid` parameter of a redirect's Location.
pub fn click_id_in(location: &str) -> Option<String> {
    url::Url::parse(location)
        .ok()?
        .query_pairs()
        .find(|(key, _)| key == "afk_cid")
        .map(|(_, value)| value.into_owned())
}

async fn admin_call(
    target: &Target,
    admin_token: &str,
    path: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let request = target
        .http
        .post(target.url(path))
        .bearer_auth(admin_token)
        .json(&body);
    let reply = target
        .send(request)
        .await
        .map_err(|failure| anyhow!("POST {path} failed: {failure:?}"))?;
    if !(200..300).contains(&reply.status) {
        bail!(
            "POST {path} answered {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
    }
    let answer: Value = serde_json::from_slice(&reply.body)
        .with_context(|| format!("POST {path} answered something that is not JSON"))?;
    Ok(answer["data"].clone())
}

fn text(data: &Value, key: &str) -> anyhow::Result<String> {
    data[key]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("the answer has no {key}: {data}"))
}
