//! A run's own corner of the network, made through the admin API and the click redirect: a
//! brand and its key, affiliates, campaigns with commission rules, one link per campaign
//! and affiliate, and a pool of real click ids. It can be saved as JSON so that `fill` can
//! write history for the same brand.

use std::path::Path;

use anyhow::Context;
use ingest::seeding::{AdminClient, CampaignTerms};
use serde::{Deserialize, Serialize};
use serde_json::json;
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
    /// Flattened, so a saved setup reads as the campaign the admin API was sent.
    #[serde(flatten)]
    pub terms: CampaignTerms,
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
    let admin = AdminClient::new(target.http.clone(), &target.base, admin_token);
    let name = &plan.name;

    let brand_id = admin.brand(&format!("{name} brand")).await?;
    let brand_key = admin.brand_key(&brand_id).await?;
    // A load run is one key sending far more than any real brand: it measures the
    // service, not the default rate limit.
    admin.set_rate_limit(&brand_key, json!("unlimited")).await?;

    let mut affiliate_ids = Vec::new();
    for n in 1..=plan.affiliates.max(1) {
        let publisher = format!("{name} publisher {n}");
        affiliate_ids.push(admin.affiliate(&publisher).await?);
    }

    let mut campaigns = Vec::new();
    let mut links = Vec::new();
    for n in 0..plan.campaigns.max(1) {
        let terms = CampaignTerms {
            name: format!("{name} campaign {}", n + 1),
            landing_url: LANDING_URL.to_owned(),
            currency: "USD".to_owned(),
            cookie_window_days: 30,
            commission: json!({
                "sale": {"percent": SALE_PERCENTS[n % SALE_PERCENTS.len()]},
                "lead": {"flat": LEAD_FLAT},
            }),
        };
        let campaign_id = admin.campaign(&brand_id, &terms).await?;
        for affiliate_id in &affiliate_ids {
            let link = admin.link(&campaign_id, affiliate_id).await?;
            links.push(SetupLink {
                link_id: link.link_id,
                campaign_id: campaign_id.clone(),
                affiliate_id: affiliate_id.clone(),
            });
        }
        campaigns.push(SetupCampaign { campaign_id, terms });
    }

    let clicks = click_pool(target, &admin, &links, plan.clicks).await?;
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
/// The links are followed on the target's own address, not the URL the service hands
/// out, so that the baseline (whose link URLs lead nowhere) is clicked too.
async fn click_pool(
    target: &Target,
    admin: &AdminClient,
    links: &[SetupLink],
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let mut clicks = Vec::with_capacity(count);
    let mut in_flight = JoinSet::new();
    for n in 0..count {
        let admin = admin.clone();
        let url = target.url(&format!("/c/{}", links[n % links.len()].link_id));
        in_flight.spawn(async move { admin.click(&url).await });
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
