//! Making a network through a running service's admin API, the way an operator would: the
//! demo seeds one with it, the integration tests make theirs with it, and the load
//! generator sets up its run with it. One place knows the admin routes, the fields each
//! answer carries and how to read a click id off the tracking redirect, so the three
//! cannot drift apart.

mod network;

pub use network::{CampaignTerms, Link, Network, NetworkPlan};

use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};

/// Why a seeding call did not give what it asked for.
#[derive(Debug, thiserror::Error)]
pub enum SeedingError {
    #[error("{request} failed")]
    Transport {
        request: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{request} answered {status}: {body}")]
    Refused {
        request: String,
        status: StatusCode,
        body: String,
    },
    #[error("{request} answered something that is not JSON")]
    NotJson {
        request: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the answer has no {key}: {data}")]
    MissingField { key: &'static str, data: Value },
    #[error("the redirect to {location:?} carries no afk_cid")]
    NoClickId { location: Option<String> },
}

/// The admin API of the service at `base`, called with its admin token.
#[derive(Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl AdminClient {
    /// `http` must not follow redirects: [`AdminClient::click`] reads the tracking link's
    /// own 302.
    pub fn new(http: reqwest::Client, base: &str, admin_token: &str) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: admin_token.to_owned(),
        }
    }

    /// POSTs `body` to an admin route and returns the answer's `data`. Every admin route
    /// answers a create with 201; anything else is an error carrying the answer.
    pub async fn create(&self, path: &str, body: &Value) -> Result<Value, SeedingError> {
        let request = format!("POST {path}");
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .map_err(|source| transport(&request, source))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|source| transport(&request, source))?;
        if status != StatusCode::CREATED {
            return Err(SeedingError::Refused {
                request,
                status,
                body: text,
            });
        }
        let mut answer: Value = serde_json::from_str(&text)
            .map_err(|source| SeedingError::NotJson { request, source })?;
        Ok(answer["data"].take())
    }

    /// A brand; returns its id.
    pub async fn brand(&self, name: &str) -> Result<String, SeedingError> {
        let brand = self
            .create("/api/admin/brands", &json!({"name": name}))
            .await?;
        text(&brand, "brand_id")
    }

    /// An affiliate; returns its id.
    pub async fn affiliate(&self, name: &str) -> Result<String, SeedingError> {
        let affiliate = self
            .create("/api/admin/affiliates", &json!({"name": name}))
            .await?;
        text(&affiliate, "affiliate_id")
    }

    /// A campaign of `brand_id` on `terms`; returns its id.
    pub async fn campaign(
        &self,
        brand_id: &str,
        terms: &CampaignTerms,
    ) -> Result<String, SeedingError> {
        let campaign = self
            .create("/api/admin/campaigns", &terms.body(brand_id))
            .await?;
        text(&campaign, "campaign_id")
    }

    /// The tracking link of an affiliate for a campaign.
    pub async fn link(&self, campaign_id: &str, affiliate_id: &str) -> Result<Link, SeedingError> {
        let body = json!({"campaign_id": campaign_id, "affiliate_id": affiliate_id});
        let link = self.create("/api/admin/links", &body).await?;
        Ok(Link {
            link_id: text(&link, "link_id")?,
            url: text(&link, "url")?,
        })
    }

    /// A new API key for the brand; returns the key.
    pub async fn brand_key(&self, brand_id: &str) -> Result<String, SeedingError> {
        let key = self
            .create("/api/admin/api-keys", &json!({"brand_id": brand_id}))
            .await?;
        text(&key, "api_key")
    }

    /// A new API key for the affiliate; returns the key.
    pub async fn affiliate_key(&self, affiliate_id: &str) -> Result<String, SeedingError> {
        let key = self
            .create(
                "/api/admin/api-keys",
                &json!({"affiliate_id": affiliate_id}),
            )
            .await?;
        text(&key, "api_key")
    }

    /// Sets a key's rate limit (`"default"`, `"unlimited"` or `{"per_second", "burst"}`).
    pub async fn set_rate_limit(&self, key: &str, limit: Value) -> Result<(), SeedingError> {
        let request = "PUT /api/admin/api-keys/rate-limit".to_owned();
        let response = self
            .http
            .put(format!("{}/api/admin/api-keys/rate-limit", self.base))
            .bearer_auth(&self.token)
            .json(&json!({"api_key": key, "rate_limit": limit}))
            .send()
            .await
            .map_err(|source| transport(&request, source))?;
        let status = response.status();
        if status != StatusCode::OK {
            let body = response.text().await.unwrap_or_default();
            return Err(SeedingError::Refused {
                request,
                status,
                body,
            });
        }
        Ok(())
    }

    /// A new brand, affiliate and campaign as `plan` says, joined as [`Self::network_for`]
    /// joins them.
    pub async fn network(&self, plan: &NetworkPlan) -> Result<Network, SeedingError> {
        let brand_id = self.brand(&plan.brand_name).await?;
        let affiliate_id = self.affiliate(&plan.affiliate_name).await?;
        let campaign_id = self.campaign(&brand_id, &plan.campaign).await?;
        self.network_for(&brand_id, &affiliate_id, &campaign_id)
            .await
    }

    /// A link and a fresh key for each side, for a brand, affiliate and campaign that exist.
    pub async fn network_for(
        &self,
        brand_id: &str,
        affiliate_id: &str,
        campaign_id: &str,
    ) -> Result<Network, SeedingError> {
        let link = self.link(campaign_id, affiliate_id).await?;
        let brand_key = self.brand_key(brand_id).await?;
        let affiliate_key = self.affiliate_key(affiliate_id).await?;
        Ok(Network {
            brand_id: brand_id.to_owned(),
            brand_key,
            affiliate_id: affiliate_id.to_owned(),
            affiliate_key,
            campaign_id: campaign_id.to_owned(),
            link_url: link.url,
        })
    }

    /// Follows a tracking link once, as a visitor's browser would, and returns the click id
    /// its 302 hands out.
    pub async fn click(&self, link_url: &str) -> Result<String, SeedingError> {
        let request = format!("GET {link_url}");
        let response = self
            .http
            .get(link_url)
            .send()
            .await
            .map_err(|source| transport(&request, source))?;
        let status = response.status();
        if status != StatusCode::FOUND {
            let body = response.text().await.unwrap_or_default();
            return Err(SeedingError::Refused {
                request,
                status,
                body,
            });
        }
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        location
            .as_deref()
            .and_then(click_id_in)
            .ok_or(SeedingError::NoClickId { location })
    }
}

/// The `afk_cid` parameter of a tracking redirect's Location.
pub fn click_id_in(location: &str) -> Option<String> {
    url::Url::parse(location)
        .ok()?
        .query_pairs()
        .find(|(key, _)| key == "afk_cid")
        .map(|(_, value)| value.into_owned())
}

fn transport(request: &str, source: reqwest::Error) -> SeedingError {
    SeedingError::Transport {
        request: request.to_owned(),
        source,
    }
}

fn text(data: &Value, key: &'static str) -> Result<String, SeedingError> {
    data[key]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| SeedingError::MissingField {
            key,
            data: data.clone(),
        })
}
