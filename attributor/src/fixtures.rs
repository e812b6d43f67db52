//! A small network in memory for tests and benches (feature `fixtures`, and this crate's
//! own tests): one brand with a USD campaign paying 10% of sales, one affiliate with a
//! link to it, a click on that link made just now, and what is built from them.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::Clock;
use crate::catalog::{Affiliate, Brand, Campaign, Catalog, Link, ResolvedLink};
use crate::commission::{CommissionRule, CommissionRules};
use crate::conversion::{Conversion, NewConversion, ReportedClick};
use crate::domain::{
    AffiliateId, Amount, AttributionMethod, BrandId, CampaignId, ClickId, ClickSigner,
    ConversionId, Currency, EventType, LinkId, OrderId, Source,
};
use crate::pipeline::{Touch, attribute};
use crate::store::{CatalogSnapshot, Store};

pub struct SampleNetwork {
    pub signer: ClickSigner,
    pub brand: Brand,
    pub affiliate: Affiliate,
    pub campaign: Campaign,
    pub link: Link,
    /// A click on `link`, made when the network was.
    pub click: ClickId,
}

impl SampleNetwork {
    pub fn new() -> Self {
        let now = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| OffsetDateTime::now_utc());
        let brand = Brand {
            id: BrandId::generate(),
            name: "sample brand".into(),
            created_at: now,
        };
        let affiliate = Affiliate {
            id: AffiliateId::generate(),
            name: "sample affiliate".into(),
            created_at: now,
        };
        let campaign = Campaign {
            id: CampaignId::generate(),
            brand: brand.id.clone(),
            name: "sample campaign".into(),
            landing_url: "https://shop.example/".parse().expect("a valid url"),
            currency: Currency::USD,
            cookie_window_days: Campaign::DEFAULT_COOKIE_WINDOW_DAYS,
            commission: CommissionRules::default()
                .with_rule(EventType::Sale, CommissionRule::Percent(10.into())),
            created_at: now,
        };
        let link = Link {
            id: LinkId::generate(),
            campaign: campaign.id.clone(),
            affiliate: affiliate.id.clone(),
            brand: brand.id.clone(),
            created_at: now,
        };
        let signer = ClickSigner::new(b"sample secret");
        let click = signer.issue(&link.id, now);
        Self {
            signer,
            brand,
            affiliate,
            campaign,
            link,
            click,
        }
    }

    /// A catalog holding this network; `store` is only asked about what it lacks
    /// ([`Store::detached`] for none).
    pub fn catalog(&self, store: Store) -> Catalog {
        let snapshot = CatalogSnapshot {
            brands: vec![self.brand.clone()],
            affiliates: vec![self.affiliate.clone()],
            campaigns: vec![self.campaign.clone()],
            links: vec![self.link.clone()],
            ..CatalogSnapshot::default()
        };
        Catalog::from_snapshot(store, snapshot, Clock::system())
    }

    /// The link and campaign, as attribution resolves them.
    pub fn resolved(&self) -> ResolvedLink {
        ResolvedLink {
            link: Arc::new(self.link.clone()),
            campaign: Arc::new(self.campaign.clone()),
        }
    }

    /// The network's click as a worker finds it for a report.
    pub fn touch(&self) -> Touch {
        Touch {
            resolved: self.resolved(),
            click_id: self.click.clone(),
            clicked_at: self.click.clicked_at(),
            method: AttributionMethod::ClickId,
        }
    }

    /// A sale of `amount` USD reported for `order` with this network's click.
    pub fn report(&self, order: &str, amount: &str) -> NewConversion {
        NewConversion {
            id: ConversionId::derive(&self.brand.id, order),
            brand: self.brand.id.clone(),
            order_id: OrderId::parse(order).expect("a valid order id"),
            click: Some(ReportedClick {
                id: self.click.clone(),
                method: AttributionMethod::ClickId,
            }),
            amount: Amount::parse(amount, Currency::USD).expect("a valid USD amount"),
            event_type: EventType::Sale,
            email: None,
            metadata: vec![],
            source: Source::Api,
        }
    }

    /// `new` as a worker stores it: attributed to this network's click, with commission.
    pub fn attributed(&self, new: &NewConversion) -> Conversion {
        attribute(new, &self.touch(), OffsetDateTime::now_utc())
    }
}

impl Default for SampleNetwork {
    fn default() -> Self {
        Self::new()
    }
}
