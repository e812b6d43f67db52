//! The network's brands, affiliates, campaigns, links and API keys. They live in ClickHouse
//! and are held in memory: loaded whole at start, updated on every create made through this
//! node, and looked up in ClickHouse when another node created something this one has not
//! seen. Misses are remembered briefly so that unknown keys and links, which anyone on the
//! internet can send, cannot turn into a query each.

mod model;

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

pub use model::{Affiliate, ApiKey, Brand, Campaign, Link, Principal};

use crate::domain::{AffiliateId, BrandId, CampaignId, LinkId, lower_hex};
use crate::store::{CatalogSnapshot, Store, StoreError};

/// How long "no such key / link" is believed before ClickHouse is asked again.
const MISS_TTL: Duration = Duration::from_secs(5);

/// A link with the campaign it belongs to: everything attribution and the redirect need.
#[derive(Debug, Clone)]
pub struct ResolvedLink {
    pub link: Arc<Link>,
    pub campaign: Arc<Campaign>,
}

pub struct Catalog {
    store: Store,
    brands: Table<BrandId, Brand>,
    affiliates: Table<AffiliateId, Affiliate>,
    campaigns: Table<CampaignId, Campaign>,
    links: Table<LinkId, Link>,
    keys: Table<String, ApiKey>,
    misses: moka::sync::Cache<String, ()>,
}

struct Table<K, V>(RwLock<HashMap<K, Arc<V>>>);

impl<K: Eq + Hash, V> Table<K, V> {
    fn new(entries: impl IntoIterator<Item = (K, V)>) -> Self {
        let map = entries.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
        Self(RwLock::new(map))
    }

    fn get(&self, key: &K) -> Option<Arc<V>> {
        self.0
            .read()
            .expect("catalog lock poisoned")
            .get(key)
            .cloned()
    }

    fn put(&self, key: K, value: V) -> Arc<V> {
        let value = Arc::new(value);
        self.0
            .write()
            .expect("catalog lock poisoned")
            .insert(key, Arc::clone(&value));
        value
    }
}

/// What a campaign is created from; checked by the admin API before it gets here.
#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub brand: BrandId,
    pub name: String,
    pub landing_url: url::Url,
    pub currency: crate::domain::Currency,
    pub cookie_window_days: u16,
    pub commission: crate::commission::CommissionRules,
}

impl Catalog {
    pub async fn load(store: Store) -> Result<Self, StoreError> {
        let snapshot = store.load_catalog().await?;
        tracing::info!(
            brands = snapshot.brands.len(),
            campaigns = snapshot.campaigns.len(),
            links = snapshot.links.len(),
            api_keys = snapshot.api_keys.len(),
            "catalog loaded"
        );
        Ok(Self::from_snapshot(store, snapshot))
    }

    /// A catalog holding `snapshot`; what it does not hold is looked up in `store`, on
    /// connections of the asking thread's own (the catalog is asked from many runtimes).
    pub fn from_snapshot(store: Store, snapshot: CatalogSnapshot) -> Self {
        Self {
            store: store.unpooled(),
            brands: Table::new(snapshot.brands.into_iter().map(|b| (b.id.clone(), b))),
            affiliates: Table::new(snapshot.affiliates.into_iter().map(|a| (a.id.clone(), a))),
            campaigns: Table::new(snapshot.campaigns.into_iter().map(|c| (c.id.clone(), c))),
            links: Table::new(snapshot.links.into_iter().map(|l| (l.id.clone(), l))),
            keys: Table::new(snapshot.api_keys.into_iter().map(|k| (k.hash.clone(), k))),
            misses: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(MISS_TTL)
                .build(),
        }
    }

    pub fn brand(&self, id: &BrandId) -> Option<Arc<Brand>> {
        self.brands.get(id)
    }

    pub fn affiliate(&self, id: &AffiliateId) -> Option<Arc<Affiliate>> {
        self.affiliates.get(id)
    }

    pub async fn campaign(&self, id: &CampaignId) -> Result<Option<Arc<Campaign>>, StoreError> {
        if let Some(campaign) = self.campaigns.get(id) {
            return Ok(Some(campaign));
        }
        let found = self.store.find_campaign(id).await?;
        Ok(found.map(|campaign| self.campaigns.put(id.clone(), campaign)))
    }

    /// The link and its campaign, or `None` if no such link exists anywhere.
    pub async fn resolve_link(&self, id: &LinkId) -> Result<Option<ResolvedLink>, StoreError> {
        let link = match self.links.get(id) {
            Some(link) => link,
            None => {
                let miss_key = format!("link:{id}");
                if self.misses.contains_key(&miss_key) {
                    return Ok(None);
                }
                match self.store.find_link(id).await? {
                    Some(link) => self.links.put(id.clone(), link),
                    None => {
                        self.misses.insert(miss_key, ());
                        return Ok(None);
                    }
                }
            }
        };
        let Some(campaign) = self.campaign(&link.campaign).await? else {
            return Ok(None);
        };
        Ok(Some(ResolvedLink { link, campaign }))
    }

    /// Who a presented API key speaks for, or `None` for a key that does not exist.
    pub async fn principal_for_key(&self, key: &str) -> Result<Option<Principal>, StoreError> {
        let hash = hash_key(key);
        if let Some(found) = self.keys.get(&hash) {
            return Ok(Some(found.principal.clone()));
        }
        let miss_key = format!("key:{hash}");
        if self.misses.contains_key(&miss_key) {
            return Ok(None);
        }
        match self.store.find_api_key(&hash).await? {
            Some(found) => Ok(Some(self.keys.put(hash, found).principal.clone())),
            None => {
                self.misses.insert(miss_key, ());
                Ok(None)
            }
        }
    }

    pub async fn create_brand(&self, name: String) -> Result<Arc<Brand>, StoreError> {
        let brand = Brand {
            id: BrandId::generate(),
            name,
            created_at: now_seconds(),
        };
        self.store.insert_brand(&brand).await?;
        Ok(self.brands.put(brand.id.clone(), brand))
    }

    pub async fn create_affiliate(&self, name: String) -> Result<Arc<Affiliate>, StoreError> {
        let affiliate = Affiliate {
            id: AffiliateId::generate(),
            name,
            created_at: now_seconds(),
        };
        self.store.insert_affiliate(&affiliate).await?;
        Ok(self.affiliates.put(affiliate.id.clone(), affiliate))
    }

    pub async fn create_campaign(&self, new: NewCampaign) -> Result<Arc<Campaign>, StoreError> {
        let campaign = Campaign {
            id: CampaignId::generate(),
            brand: new.brand,
            name: new.name,
            landing_url: new.landing_url,
            currency: new.currency,
            cookie_window_days: new.cookie_window_days,
            commission: new.commission,
            created_at: now_seconds(),
        };
        self.store.insert_campaign(&campaign).await?;
        Ok(self.campaigns.put(campaign.id.clone(), campaign))
    }

    pub async fn create_link(
        &self,
        campaign: &Campaign,
        affiliate: AffiliateId,
    ) -> Result<Arc<Link>, StoreError> {
        let link = Link {
            id: LinkId::generate(),
            campaign: campaign.id.clone(),
            affiliate,
            brand: campaign.brand.clone(),
            created_at: now_seconds(),
        };
        self.store.insert_link(&link).await?;
        self.misses.invalidate(&format!("link:{}", link.id));
        Ok(self.links.put(link.id.clone(), link))
    }

    /// Creates a key and returns it in clear; only its hash is kept.
    pub async fn create_api_key(&self, principal: Principal) -> Result<String, StoreError> {
        let mut secret = [0u8; 24];
        rand::rng().fill_bytes(&mut secret);
        let key = format!("afk_{}", URL_SAFE_NO_PAD.encode(secret));
        let record = ApiKey {
            hash: hash_key(&key),
            prefix: key[..10].to_owned(),
            principal,
            created_at: now_seconds(),
        };
        self.store.insert_api_key(&record).await?;
        self.misses.invalidate(&format!("key:{}", record.hash));
        self.keys.put(record.hash.clone(), record);
        Ok(key)
    }
}

fn hash_key(key: &str) -> String {
    lower_hex(&Sha256::digest(key.as_bytes()))
}

/// ClickHouse DateTime has second precision; catalog times are truncated to match what
/// a reload would read back.
fn now_seconds() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}
