//! What seeding makes and what it is asked to make.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A brand with a campaign, an affiliate with a link to it, and keys for both.
#[derive(Debug, Clone)]
pub struct Network {
    pub brand_id: String,
    pub brand_key: String,
    pub affiliate_id: String,
    pub affiliate_key: String,
    pub campaign_id: String,
    pub link_url: String,
}

/// What [`super::AdminClient::network`] creates.
#[derive(Debug, Clone)]
pub struct NetworkPlan {
    pub brand_name: String,
    pub affiliate_name: String,
    pub campaign: CampaignTerms,
}

/// A campaign as the admin API takes it, less the brand it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignTerms {
    pub name: String,
    pub landing_url: String,
    pub currency: String,
    pub cookie_window_days: u16,
    /// As the admin API takes it: `{"sale": {"percent": "10"}, "lead": {"flat": "2.50"}}`.
    pub commission: Value,
}

impl CampaignTerms {
    /// The body of `POST /api/admin/campaigns`.
    pub fn body(&self, brand_id: &str) -> Value {
        json!({
            "brand_id": brand_id,
            "name": self.name,
            "landing_url": self.landing_url,
            "currency": self.currency,
            "cookie_window_days": self.cookie_window_days,
            "commission": self.commission,
        })
    }
}

/// A tracking link as the admin API made it.
#[derive(Debug, Clone)]
pub struct Link {
    pub link_id: String,
    pub url: String,
}
