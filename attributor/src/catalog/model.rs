use time::OffsetDateTime;
use url::Url;

use crate::commission::CommissionRules;
use crate::domain::{AffiliateId, BrandId, CampaignId, Currency, LinkId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brand {
    pub id: BrandId,
    pub name: String,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Affiliate {
    pub id: AffiliateId,
    pub name: String,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    pub id: CampaignId,
    pub brand: BrandId,
    pub name: String,
    pub landing_url: Url,
    pub currency: Currency,
    pub cookie_window_days: u16,
    pub commission: CommissionRules,
    pub created_at: OffsetDateTime,
}

impl Campaign {
    pub const DEFAULT_COOKIE_WINDOW_DAYS: u16 = 30;
    pub const MAX_COOKIE_WINDOW_DAYS: u16 = 365;

    pub fn cookie_window(&self) -> time::Duration {
        time::Duration::days(self.cookie_window_days.into())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub id: LinkId,
    pub campaign: CampaignId,
    pub affiliate: AffiliateId,
    pub brand: BrandId,
    pub created_at: OffsetDateTime,
}

/// Who an API key speaks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    Brand(BrandId),
    Affiliate(AffiliateId),
}

/// How fast one API key may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateLimit {
    /// The node's default for every key.
    #[default]
    Default,
    Unlimited,
    /// A token bucket: `per_second` tokens a second, holding at most `burst`.
    Limited {
        per_second: u32,
        burst: u32,
    },
}

/// The operator's rate limit for the key with this hash, as of `changed_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRateLimit {
    pub key_hash: String,
    pub limit: RateLimit,
    pub changed_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// SHA-256 of the key, hex.
    pub hash: String,
    /// The key's first characters, so operators can tell keys apart without the secret.
    pub prefix: String,
    pub principal: Principal,
    pub created_at: OffsetDateTime,
}
