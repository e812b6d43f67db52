//! Rows of the catalog tables, and reading the whole catalog at start.

use clickhouse::{Row, RowOwned, RowRead, RowWrite};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::deadline::Exchange;
use super::{Store, StoreError};
use crate::catalog::{
    Affiliate, ApiKey, Brand, Campaign, KeyRateLimit, Link, Principal, RateLimit,
};
use crate::commission::CommissionRules;
use crate::conversion::version_at;
use crate::domain::{AffiliateId, BrandId, CampaignId, Currency, LinkId};

#[derive(Row, Serialize, Deserialize)]
struct BrandRow {
    brand_id: String,
    name: String,
    #[serde(with = "clickhouse::serde::time::datetime")]
    created_at: OffsetDateTime,
    version: u64,
}

#[derive(Row, Serialize, Deserialize)]
struct AffiliateRow {
    affiliate_id: String,
    name: String,
    #[serde(with = "clickhouse::serde::time::datetime")]
    created_at: OffsetDateTime,
    version: u64,
}

#[derive(Row, Serialize, Deserialize)]
struct CampaignRow {
    campaign_id: String,
    brand_id: String,
    name: String,
    landing_url: String,
    currency: String,
    cookie_window_days: u16,
    commission_rules: String,
    #[serde(with = "clickhouse::serde::time::datetime")]
    created_at: OffsetDateTime,
    version: u64,
}

#[derive(Row, Serialize, Deserialize)]
struct LinkRow {
    link_id: String,
    campaign_id: String,
    affiliate_id: String,
    brand_id: String,
    #[serde(with = "clickhouse::serde::time::datetime")]
    created_at: OffsetDateTime,
    version: u64,
}

#[derive(Row, Serialize, Deserialize)]
struct ApiKeyRow {
    key_hash: String,
    key_prefix: String,
    brand_id: String,
    affiliate_id: String,
    #[serde(with = "clickhouse::serde::time::datetime")]
    created_at: OffsetDateTime,
    version: u64,
}

#[derive(Row, Serialize, Deserialize)]
struct KeyLimitRow {
    key_hash: String,
    mode: String,
    per_second: u32,
    burst: u32,
    #[serde(with = "clickhouse::serde::time::datetime")]
    changed_at: OffsetDateTime,
    version: u64,
}

/// Everything in the catalog tables, latest versions.
#[derive(Debug, Default)]
pub struct CatalogSnapshot {
    pub brands: Vec<Brand>,
    pub affiliates: Vec<Affiliate>,
    pub campaigns: Vec<Campaign>,
    pub links: Vec<Link>,
    pub api_keys: Vec<ApiKey>,
    pub key_limits: Vec<KeyRateLimit>,
}

fn corrupt(table: &str, id: &str, column: &str) -> StoreError {
    StoreError::Corrupt(format!("{table} row {id} has an unreadable {column}"))
}

impl TryFrom<BrandRow> for Brand {
    type Error = StoreError;
    fn try_from(row: BrandRow) -> Result<Self, StoreError> {
        Ok(Brand {
            id: BrandId::parse(&row.brand_id)
                .map_err(|_| corrupt("brands", &row.brand_id, "id"))?,
            name: row.name,
            created_at: row.created_at,
        })
    }
}

impl TryFrom<AffiliateRow> for Affiliate {
    type Error = StoreError;
    fn try_from(row: AffiliateRow) -> Result<Self, StoreError> {
        Ok(Affiliate {
            id: AffiliateId::parse(&row.affiliate_id)
                .map_err(|_| corrupt("affiliates", &row.affiliate_id, "id"))?,
            name: row.name,
            created_at: row.created_at,
        })
    }
}

impl TryFrom<CampaignRow> for Campaign {
    type Error = StoreError;
    fn try_from(row: CampaignRow) -> Result<Self, StoreError> {
        let bad = |column| corrupt("campaigns", &row.campaign_id, column);
        let currency: Currency = row.currency.parse().map_err(|_| bad("currency"))?;
        let rules_json: serde_json::Value =
            serde_json::from_str(&row.commission_rules).map_err(|_| bad("commission_rules"))?;
        Ok(Campaign {
            id: CampaignId::parse(&row.campaign_id).map_err(|_| bad("id"))?,
            brand: BrandId::parse(&row.brand_id).map_err(|_| bad("brand_id"))?,
            landing_url: row.landing_url.parse().map_err(|_| bad("landing_url"))?,
            commission: CommissionRules::from_json(&rules_json, currency)
                .map_err(|_| bad("commission_rules"))?,
            currency,
            cookie_window_days: row.cookie_window_days,
            created_at: row.created_at,
            name: row.name,
        })
    }
}

impl TryFrom<LinkRow> for Link {
    type Error = StoreError;
    fn try_from(row: LinkRow) -> Result<Self, StoreError> {
        let bad = |column| corrupt("links", &row.link_id, column);
        Ok(Link {
            id: LinkId::parse(&row.link_id).map_err(|_| bad("id"))?,
            campaign: CampaignId::parse(&row.campaign_id).map_err(|_| bad("campaign_id"))?,
            affiliate: AffiliateId::parse(&row.affiliate_id).map_err(|_| bad("affiliate_id"))?,
            brand: BrandId::parse(&row.brand_id).map_err(|_| bad("brand_id"))?,
            created_at: row.created_at,
        })
    }
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = StoreError;
    fn try_from(row: ApiKeyRow) -> Result<Self, StoreError> {
        let bad = |column| corrupt("api_keys", &row.key_prefix, column);
        let principal = match (row.brand_id.as_str(), row.affiliate_id.as_str()) {
            (brand, "") => Principal::Brand(BrandId::parse(brand).map_err(|_| bad("brand_id"))?),
            ("", affiliate) => Principal::Affiliate(
                AffiliateId::parse(affiliate).map_err(|_| bad("affiliate_id"))?,
            ),
            _ => return Err(bad("owner")),
        };
        Ok(ApiKey {
            hash: row.key_hash,
            prefix: row.key_prefix,
            principal,
            created_at: row.created_at,
        })
    }
}

impl TryFrom<KeyLimitRow> for KeyRateLimit {
    type Error = StoreError;
    fn try_from(row: KeyLimitRow) -> Result<Self, StoreError> {
        let limit = match row.mode.as_str() {
            "default" => RateLimit::Default,
            "unlimited" => RateLimit::Unlimited,
            "limited" => RateLimit::Limited {
                per_second: row.per_second,
                burst: row.burst,
            },
            _ => return Err(corrupt("api_key_limits", &row.key_hash, "mode")),
        };
        Ok(KeyRateLimit {
            key_hash: row.key_hash,
            limit,
            changed_at: row.changed_at,
        })
    }
}

/// Catalog rows carry a version (microseconds of their last change); a refresh reads the
/// rows changed since a version.
trait Versioned {
    fn version(&self) -> u64;
}

macro_rules! versioned {
    ($($row:ty),+) => {
        $(impl Versioned for $row {
            fn version(&self) -> u64 {
                self.version
            }
        })+
    };
}

versioned!(
    BrandRow,
    AffiliateRow,
    CampaignRow,
    LinkRow,
    ApiKeyRow,
    KeyLimitRow
);

impl CatalogSnapshot {
    pub fn is_empty(&self) -> bool {
        self.brands.is_empty()
            && self.affiliates.is_empty()
            && self.campaigns.is_empty()
            && self.links.is_empty()
            && self.api_keys.is_empty()
            && self.key_limits.is_empty()
    }
}

impl Store {
    pub async fn load_catalog(&self) -> Result<CatalogSnapshot, StoreError> {
        Ok(self.load_catalog_changed_since(0).await?.0)
    }

    /// Every catalog row whose version is at least `since`, and the highest version read
    /// (`since` if none).
    pub async fn load_catalog_changed_since(
        &self,
        since: u64,
    ) -> Result<(CatalogSnapshot, u64), StoreError> {
        let mut latest = since;
        let snapshot = CatalogSnapshot {
            brands: self
                .load_changed::<BrandRow, _>("brands", since, &mut latest)
                .await?,
            affiliates: self
                .load_changed::<AffiliateRow, _>("affiliates", since, &mut latest)
                .await?,
            campaigns: self
                .load_changed::<CampaignRow, _>("campaigns", since, &mut latest)
                .await?,
            links: self
                .load_changed::<LinkRow, _>("links", since, &mut latest)
                .await?,
            api_keys: self
                .load_changed::<ApiKeyRow, _>("api_keys", since, &mut latest)
                .await?,
            key_limits: self
                .load_changed::<KeyLimitRow, _>("api_key_limits", since, &mut latest)
                .await?,
        };
        Ok((snapshot, latest))
    }

    pub async fn insert_brand(&self, brand: &Brand) -> Result<(), StoreError> {
        self.insert_one(
            "brands",
            &BrandRow {
                brand_id: brand.id.to_string(),
                name: brand.name.clone(),
                created_at: brand.created_at,
                version: version_at(brand.created_at),
            },
        )
        .await
    }

    pub async fn insert_affiliate(&self, affiliate: &Affiliate) -> Result<(), StoreError> {
        self.insert_one(
            "affiliates",
            &AffiliateRow {
                affiliate_id: affiliate.id.to_string(),
                name: affiliate.name.clone(),
                created_at: affiliate.created_at,
                version: version_at(affiliate.created_at),
            },
        )
        .await
    }

    pub async fn insert_campaign(&self, campaign: &Campaign) -> Result<(), StoreError> {
        self.insert_one(
            "campaigns",
            &CampaignRow {
                campaign_id: campaign.id.to_string(),
                brand_id: campaign.brand.to_string(),
                name: campaign.name.clone(),
                landing_url: campaign.landing_url.to_string(),
                currency: campaign.currency.to_string(),
                cookie_window_days: campaign.cookie_window_days,
                commission_rules: campaign.commission.to_json().to_string(),
                created_at: campaign.created_at,
                version: version_at(campaign.created_at),
            },
        )
        .await
    }

    pub async fn insert_link(&self, link: &Link) -> Result<(), StoreError> {
        self.insert_one(
            "links",
            &LinkRow {
                link_id: link.id.to_string(),
                campaign_id: link.campaign.to_string(),
                affiliate_id: link.affiliate.to_string(),
                brand_id: link.brand.to_string(),
                created_at: link.created_at,
                version: version_at(link.created_at),
            },
        )
        .await
    }

    pub async fn insert_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let (brand_id, affiliate_id) = match &key.principal {
            Principal::Brand(brand) => (brand.to_string(), String::new()),
            Principal::Affiliate(affiliate) => (String::new(), affiliate.to_string()),
        };
        self.insert_one(
            "api_keys",
            &ApiKeyRow {
                key_hash: key.hash.clone(),
                key_prefix: key.prefix.clone(),
                brand_id,
                affiliate_id,
                created_at: key.created_at,
                version: version_at(key.created_at),
            },
        )
        .await
    }

    /// A new version of a key's rate limit; `version` orders changes within a second.
    pub async fn insert_key_limit(
        &self,
        limit: &KeyRateLimit,
        version: u64,
    ) -> Result<(), StoreError> {
        let (mode, per_second, burst) = match limit.limit {
            RateLimit::Default => ("default", 0, 0),
            RateLimit::Unlimited => ("unlimited", 0, 0),
            RateLimit::Limited { per_second, burst } => ("limited", per_second, burst),
        };
        self.insert_one(
            "api_key_limits",
            &KeyLimitRow {
                key_hash: limit.key_hash.clone(),
                mode: mode.to_owned(),
                per_second,
                burst,
                changed_at: limit.changed_at,
                version,
            },
        )
        .await
    }

    async fn load_changed<R, T>(
        &self,
        table: &str,
        since: u64,
        latest: &mut u64,
    ) -> Result<Vec<T>, StoreError>
    where
        R: RowOwned + RowRead + Versioned,
        T: TryFrom<R, Error = StoreError>,
    {
        let sql = format!("SELECT ?fields FROM {table} FINAL WHERE version >= ?");
        let kind = if since == 0 {
            Exchange::Bulk
        } else {
            Exchange::Read
        };
        let rows = self
            .within(
                kind,
                "catalog read",
                self.client().query(&sql).bind(since).fetch_all::<R>(),
            )
            .await?;
        *latest = rows.iter().map(Versioned::version).fold(*latest, u64::max);
        rows.into_iter().map(T::try_from).collect()
    }

    async fn insert_one<R: RowOwned + RowWrite>(
        &self,
        table: &str,
        row: &R,
    ) -> Result<(), StoreError> {
        self.insert_rows(table, std::slice::from_ref(row)).await
    }
}
