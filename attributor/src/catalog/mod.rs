//! The network's brands, affiliates, campaigns, links and API keys. They live in ClickHouse
//! and are held in memory: loaded whole at start, updated on every create made through this
//! node, and refreshed every few seconds with what other nodes created ([`Catalog::refresh`]).
//! Look-ups never go to ClickHouse: an unknown key or link, which anyone on the internet can
//! send, costs a hash-map probe, however many there are and however slow ClickHouse is. What
//! another node created is known here from its next refresh on.

mod model;

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

pub use model::{Affiliate, ApiKey, Brand, Campaign, KeyRateLimit, Link, Principal, RateLimit};

use crate::clock::Clock;
use crate::domain::{AffiliateId, BrandId, CampaignId, LinkId, lower_hex};
use crate::metrics::CatalogMetrics;
use crate::runtime::spawn_background;
use crate::store::{CatalogSnapshot, Store, StoreError};

/// Each refresh reads back this far before the newest version it has seen: a row another
/// node wrote with a clock a little behind this node's still arrives.
const REFRESH_OVERLAP: Duration = Duration::from_secs(60);

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
    /// By key hash; a key without an entry has the node's default.
    key_limits: Table<String, KeyRateLimit>,
    /// The newest row version read from ClickHouse.
    newest_version: AtomicU64,
    clock: Clock,
}

struct Table<K, V>(RwLock<HashMap<K, Arc<V>>>);

impl<K: Eq + Hash, V> Table<K, V> {
    fn new(entries: impl IntoIterator<Item = (K, V)>) -> Self {
        let map = entries.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
        Self(RwLock::new(map))
    }

    fn get<Q>(&self, key: &Q) -> Option<Arc<V>>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
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
    pub async fn load(store: Store, clock: Clock) -> Result<Self, StoreError> {
        let (snapshot, newest_version) = store.load_catalog_changed_since(0).await?;
        tracing::info!(
            brands = snapshot.brands.len(),
            campaigns = snapshot.campaigns.len(),
            links = snapshot.links.len(),
            api_keys = snapshot.api_keys.len(),
            "catalog loaded"
        );
        let catalog = Self::from_snapshot(store, snapshot, clock);
        catalog
            .newest_version
            .store(newest_version, Ordering::Release);
        Ok(catalog)
    }

    /// A catalog holding `snapshot`; creates and refreshes go to `store`, on connections of
    /// the asking thread's own (the catalog is used from many runtimes).
    pub fn from_snapshot(store: Store, snapshot: CatalogSnapshot, clock: Clock) -> Self {
        Self {
            store: store.unpooled(),
            brands: Table::new(snapshot.brands.into_iter().map(|b| (b.id.clone(), b))),
            affiliates: Table::new(snapshot.affiliates.into_iter().map(|a| (a.id.clone(), a))),
            campaigns: Table::new(snapshot.campaigns.into_iter().map(|c| (c.id.clone(), c))),
            links: Table::new(snapshot.links.into_iter().map(|l| (l.id.clone(), l))),
            keys: Table::new(snapshot.api_keys.into_iter().map(|k| (k.hash.clone(), k))),
            key_limits: Table::new(
                snapshot
                    .key_limits
                    .into_iter()
                    .map(|l| (l.key_hash.clone(), l)),
            ),
            newest_version: AtomicU64::new(0),
            clock,
        }
    }

    /// Refreshes the catalog every `every` on a background thread, until the catalog is
    /// dropped.
    pub fn keep_refreshed(self: &Arc<Self>, every: Duration, metrics: CatalogMetrics) {
        let catalog = Arc::downgrade(self);
        spawn_background("catalog-refresh", move || async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(catalog) = catalog.upgrade() else {
                    return;
                };
                let outcome = match catalog.refresh().await {
                    Ok(_) => "ok",
                    Err(error) => {
                        tracing::warn!(%error, "refreshing the catalog failed");
                        "failed"
                    }
                };
                metrics.refreshes_total.with_label_values(&[outcome]).inc();
            }
        });
    }

    /// Reads what changed in ClickHouse since the last refresh (what other nodes created)
    /// into memory; returns how many rows it read.
    pub async fn refresh(&self) -> Result<usize, StoreError> {
        let overlap = u64::try_from(REFRESH_OVERLAP.as_micros()).unwrap_or(u64::MAX);
        let since = self
            .newest_version
            .load(Ordering::Acquire)
            .saturating_sub(overlap);
        let (changed, newest) = self.store.load_catalog_changed_since(since).await?;
        let rows = changed.brands.len()
            + changed.affiliates.len()
            + changed.campaigns.len()
            + changed.links.len()
            + changed.api_keys.len()
            + changed.key_limits.len();
        for brand in changed.brands {
            self.brands.put(brand.id.clone(), brand);
        }
        for affiliate in changed.affiliates {
            self.affiliates.put(affiliate.id.clone(), affiliate);
        }
        for campaign in changed.campaigns {
            self.campaigns.put(campaign.id.clone(), campaign);
        }
        for link in changed.links {
            self.links.put(link.id.clone(), link);
        }
        for key in changed.api_keys {
            self.keys.put(key.hash.clone(), key);
        }
        for limit in changed.key_limits {
            self.key_limits.put(limit.key_hash.clone(), limit);
        }
        self.newest_version.fetch_max(newest, Ordering::AcqRel);
        Ok(rows)
    }

    pub fn brand(&self, id: &BrandId) -> Option<Arc<Brand>> {
        self.brands.get(id)
    }

    pub fn affiliate(&self, id: &AffiliateId) -> Option<Arc<Affiliate>> {
        self.affiliates.get(id)
    }

    pub fn campaign(&self, id: &CampaignId) -> Option<Arc<Campaign>> {
        self.campaigns.get(id)
    }

    /// The link and its campaign, or `None` if this node knows no such link.
    pub fn resolve_link(&self, id: &LinkId) -> Option<ResolvedLink> {
        let link = self.links.get(id)?;
        let campaign = self.campaigns.get(&link.campaign)?;
        Some(ResolvedLink { link, campaign })
    }

    /// Who a presented API key speaks for, or `None` for a key this node does not know.
    pub fn principal_for_key(&self, key: &str) -> Option<Principal> {
        self.key(key).map(|found| found.principal.clone())
    }

    /// The presented key's record, or `None` for a key this node does not know.
    pub fn key(&self, presented: &str) -> Option<Arc<ApiKey>> {
        self.keys.get(&hash_key(presented))
    }

    /// The operator's rate limit for the key with this hash.
    pub fn rate_limit(&self, key_hash: &str) -> RateLimit {
        self.key_limits
            .get(key_hash)
            .map_or(RateLimit::Default, |found| found.limit)
    }

    /// Sets the rate limit of a key; `None` if no such key exists.
    pub async fn set_rate_limit(
        &self,
        presented: &str,
        limit: RateLimit,
    ) -> Result<Option<KeyRateLimit>, StoreError> {
        let Some(key) = self.key(presented) else {
            return Ok(None);
        };
        let now = self.clock.now();
        let record = KeyRateLimit {
            key_hash: key.hash.clone(),
            limit,
            changed_at: seconds(now),
        };
        self.store
            .insert_key_limit(&record, crate::conversion::version_at(now))
            .await?;
        self.key_limits.put(record.key_hash.clone(), record.clone());
        Ok(Some(record))
    }

    pub async fn create_brand(&self, name: String) -> Result<Arc<Brand>, StoreError> {
        let brand = Brand {
            id: BrandId::generate(),
            name,
            created_at: seconds(self.clock.now()),
        };
        self.store.insert_brand(&brand).await?;
        Ok(self.brands.put(brand.id.clone(), brand))
    }

    pub async fn create_affiliate(&self, name: String) -> Result<Arc<Affiliate>, StoreError> {
        let affiliate = Affiliate {
            id: AffiliateId::generate(),
            name,
            created_at: seconds(self.clock.now()),
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
            created_at: seconds(self.clock.now()),
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
            created_at: seconds(self.clock.now()),
        };
        self.store.insert_link(&link).await?;
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
            created_at: seconds(self.clock.now()),
        };
        self.store.insert_api_key(&record).await?;
        self.keys.put(record.hash.clone(), record);
        Ok(key)
    }
}

fn hash_key(key: &str) -> String {
    lower_hex(&Sha256::digest(key.as_bytes()))
}

/// ClickHouse DateTime has second precision; catalog times are truncated to match what
/// a reload would read back.
fn seconds(now: OffsetDateTime) -> OffsetDateTime {
    now.replace_nanosecond(0).unwrap_or(now)
}
