use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use attributor::catalog::{Affiliate, Brand, Campaign, Catalog, Link, ResolvedLink};
use attributor::commission::{CommissionRule, CommissionRules};
use attributor::domain::{
    AffiliateId, AttributionMethod, BrandId, CampaignId, ClickId, ClickSigner, Currency, EmailHash,
    EventType, LinkId, Source,
};
use attributor::pipeline::{Touch, attribute};
use attributor::store::{CatalogSnapshot, StoreTimeouts};
use attributor::{Conversion, NewConversion, Store, StoreSettings};
use ingest::request::ConversionInput;
use time::OffsetDateTime;

/// One brand running one USD campaign that pays 10% of sales, one affiliate promoting it
/// through one link, and a click on that link made just now.
pub struct Network {
    pub signer: ClickSigner,
    pub brand: Brand,
    pub affiliate: Affiliate,
    pub campaign: Campaign,
    pub link: Link,
    pub click: ClickId,
}

impl Network {
    pub fn new() -> Self {
        let now = OffsetDateTime::now_utc();
        let brand = Brand {
            id: BrandId::generate(),
            name: "bench brand".into(),
            created_at: now,
        };
        let affiliate = Affiliate {
            id: AffiliateId::generate(),
            name: "bench affiliate".into(),
            created_at: now,
        };
        let campaign = Campaign {
            id: CampaignId::generate(),
            brand: brand.id.clone(),
            name: "bench campaign".into(),
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
        let signer = ClickSigner::new(b"bench secret");
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

    /// A catalog holding this network; `store` is only asked about what it lacks.
    pub fn catalog(&self, store: Store) -> Catalog {
        let snapshot = CatalogSnapshot {
            brands: vec![self.brand.clone()],
            affiliates: vec![self.affiliate.clone()],
            campaigns: vec![self.campaign.clone()],
            links: vec![self.link.clone()],
            api_keys: Vec::new(),
        };
        Catalog::from_snapshot(store, snapshot, attributor::Clock::system())
    }

    /// A 99.99 USD sale credited to this network's click, checked as the track endpoint
    /// checks it.
    pub fn report(&self, order_id: &str) -> NewConversion {
        let input = ConversionInput {
            click_id: Some(self.click.as_str().to_owned()),
            order_id: Some(order_id.to_owned()),
            amount: Some("99.99".into()),
            currency: Some("USD".into()),
            event_type: Some("sale".into()),
            ..ConversionInput::default()
        };
        input
            .into_conversion(&self.brand.id, &self.signer, Source::Api)
            .expect("the bench report is valid")
    }

    /// A sale as a typical report makes it, attributed as a worker stores it: a customer
    /// e-mail and four metadata pairs beside the attributed fields, so that encoding and
    /// journaling benches handle rows of a realistic size.
    pub fn typical_conversion(&self) -> Conversion {
        let mut report = self.report(&unique_order_id());
        report.email = EmailHash::of_address("jane.doe@example.com");
        let metadata = [
            ("sku", "TSHIRT-RED-M"),
            ("coupon", "SPRING10"),
            ("channel", "web"),
            ("quantity", "2"),
        ];
        report.metadata = metadata
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect();
        self.attributed(&report)
    }

    /// `new` as a worker stores it: attributed to this network's click, with commission.
    pub fn attributed(&self, new: &NewConversion) -> Conversion {
        let touch = Touch {
            resolved: ResolvedLink {
                link: Arc::new(self.link.clone()),
                campaign: Arc::new(self.campaign.clone()),
            },
            click_id: self.click.as_str().to_owned(),
            clicked_at: self.click.clicked_at(),
            method: AttributionMethod::ClickId,
        };
        attribute(new, &touch, OffsetDateTime::now_utc())
    }
}

impl Default for Network {
    fn default() -> Self {
        Self::new()
    }
}

/// An order id no other call in this process returns, so the dedup front sees it as new.
pub fn unique_order_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("bench-order-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A store for code that holds one but, in a bench, must never use it: nothing listens on
/// the discard port, so a query that should not happen fails instead of going unnoticed.
pub fn unreachable_store() -> Store {
    Store::unconnected(&StoreSettings {
        url: "http://127.0.0.1:9".into(),
        cluster: None,
        database: "bench".into(),
        user: "default".into(),
        password: String::new(),
        timeouts: StoreTimeouts::default(),
    })
}
