//! Made-up but realistic conversions for `fill`, made by the attribution workers' own
//! code: `attribute` (cookie window, commission, status), reviews through
//! `Conversion::with_status`, and rows from `ConversionRow::from` / `CommissionRow::from` /
//! `StatusChangeRow::of`. A reviewed conversion is stored as the service stores it: its
//! pending version, the reviewed version and the change's history row (whose tombstone
//! retires the pending row from the status copy). Only the clock and the dice are ours.
//! Clicks come with them: the click each conversion was credited to, on its link at its
//! click time, and as many more clicks that did not convert, on random links over the same
//! days, as the fill asks for.

use std::sync::Arc;

use anyhow::Context;
use attributor::catalog::{Campaign, Link, ResolvedLink};
use attributor::commission::CommissionRules;
use attributor::domain::{
    AffiliateId, Amount, AttributionMethod, BrandId, CampaignId, ClickId, ClickSigner,
    ConversionId, Currency, EmailHash, EventType, LinkId, OrderId, Source, Status,
};
use attributor::pipeline::{Touch, attribute};
use attributor::store::{ClickRow, CommissionRow, ConversionRow, StatusChangeRow};
use attributor::{Conversion, NewConversion, ReportedClick};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use rust_decimal::Decimal;
use time::{Duration, OffsetDateTime};

use crate::cli::StatusShares;
use crate::setup::Setup;

const DAY_SECONDS: i64 = 86_400;

/// One INSERT's worth of rows for each table.
pub struct Batch {
    pub conversions: Vec<ConversionRow>,
    pub commissions: Vec<CommissionRow>,
    pub status_changes: Vec<StatusChangeRow>,
    pub clicks: Vec<ClickRow>,
}

/// Makes conversions for the setup's brand, spread over `days` before `now`.
pub struct History {
    brand: BrandId,
    links: Vec<ResolvedLink>,
    /// Click ids are signed like real ones, with a key of their own: they are history,
    /// never sent back to the service.
    signer: ClickSigner,
    rng: StdRng,
    now: OffsetDateTime,
    days: u32,
    tag: String,
    shares: StatusShares,
}

impl History {
    pub fn new(
        setup: &Setup,
        days: u32,
        tag: String,
        shares: StatusShares,
    ) -> anyhow::Result<Self> {
        let brand = BrandId::parse(&setup.brand_id).context("the setup's brand_id")?;
        let now = OffsetDateTime::now_utc().replace_nanosecond(0)?;
        let mut links = Vec::new();
        for l in &setup.links {
            let campaign = setup
                .campaigns
                .iter()
                .find(|c| c.campaign_id == l.campaign_id)
                .with_context(|| format!("link {} has no campaign in the setup", l.link_id))?;
            let terms = &campaign.terms;
            let currency: Currency = terms.currency.parse().context("a campaign's currency")?;
            let commission = CommissionRules::from_json(&terms.commission, currency)
                .map_err(|e| anyhow::anyhow!("campaign {}: {e}", campaign.campaign_id))?;
            let campaign = Campaign {
                id: CampaignId::parse(&l.campaign_id).context("a campaign_id")?,
                brand: brand.clone(),
                name: String::new(),
                landing_url: "https://shop.example/".parse()?,
                currency,
                cookie_window_days: terms.cookie_window_days,
                commission,
                created_at: now,
            };
            let link = Link {
                id: LinkId::parse(&l.link_id).context("a link_id")?,
                campaign: campaign.id.clone(),
                affiliate: AffiliateId::parse(&l.affiliate_id).context("an affiliate_id")?,
                brand: brand.clone(),
                created_at: now,
            };
            links.push(ResolvedLink {
                link: Arc::new(link),
                campaign: Arc::new(campaign),
            });
        }
        anyhow::ensure!(!links.is_empty(), "the setup has no links");
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        Ok(Self {
            brand,
            links,
            signer: ClickSigner::new(&secret),
            rng: StdRng::from_os_rng(),
            now,
            days: days.max(1),
            tag,
            shares,
        })
    }

    /// Conversions `first..first + count` as rows, with their clicks and more, `clicks`
    /// in all (at least one per conversion).
    pub fn batch(&mut self, first: u64, count: usize, clicks: usize) -> Batch {
        let mut batch = Batch {
            conversions: Vec::with_capacity(count),
            commissions: Vec::with_capacity(count),
            status_changes: Vec::new(),
            clicks: Vec::with_capacity(clicks.max(count)),
        };
        for n in first..first + count as u64 {
            let (conversion, link) = self.conversion(n);
            batch.conversions.push(ConversionRow::from(&conversion));
            batch.commissions.push(CommissionRow::from(&conversion));
            if let Some(reviewed) = self.review(&conversion) {
                batch.conversions.push(ConversionRow::from(&reviewed));
                batch.commissions.push(CommissionRow::from(&reviewed));
                batch.status_changes.push(StatusChangeRow::of(
                    &reviewed,
                    conversion.status,
                    "key:fill",
                ));
            }
            batch
                .clicks
                .push(self.click_row(link, &conversion.click_id));
        }
        while batch.clicks.len() < clicks {
            let link = self.rng.random_range(0..self.links.len());
            let at = self.now
                - Duration::seconds(self.rng.random_range(0..i64::from(self.days) * DAY_SECONDS));
            let click = self.signer.issue(&self.links[link].link.id, at);
            batch.clicks.push(self.click_row(link, &click));
        }
        batch
    }

    /// The clicks table's row of a click on the `link`th link.
    fn click_row(&self, link: usize, click: &ClickId) -> ClickRow {
        let resolved = &self.links[link];
        ClickRow {
            click_id: click.as_str().to_owned(),
            clicked_at: click.clicked_at(),
            link_id: resolved.link.id.to_string(),
            campaign_id: resolved.campaign.id.to_string(),
            affiliate_id: resolved.link.affiliate.to_string(),
            brand_id: self.brand.to_string(),
            ip: "198.51.100.7".into(),
            forwarded_for: String::new(),
            user_agent: "affilync-load fill".into(),
            referer: String::new(),
            sub1: String::new(),
            sub2: String::new(),
            sub3: String::new(),
            sub4: String::new(),
            sub5: String::new(),
        }
    }

    /// The `n`th conversion and the index of its link.
    fn conversion(&mut self, n: u64) -> (Conversion, usize) {
        let rng = &mut self.rng;
        let link = rng.random_range(0..self.links.len());
        let resolved = &self.links[link];
        let currency = resolved.campaign.currency;
        let created_at =
            self.now - Duration::seconds(rng.random_range(0..i64::from(self.days) * DAY_SECONDS));
        let seconds_from_click = seconds_from_click(rng);
        let click = self.signer.issue(
            &resolved.link.id,
            created_at - Duration::seconds(seconds_from_click),
        );
        let method = match rng.random_range(0..100) {
            0..85 => AttributionMethod::ClickId,
            85..95 => AttributionMethod::Cookie,
            _ => AttributionMethod::Email,
        };
        let event_type = if rng.random_bool(0.9) {
            EventType::Sale
        } else {
            EventType::Lead
        };
        let amount = match event_type {
            EventType::Sale => shop_amount(rng, currency),
            _ => Amount::new(Decimal::ZERO, currency).expect("zero is an amount"),
        };
        let email = rng
            .random_bool(0.6)
            .then(|| format!("customer{}@example.com", rng.random_range(0..200_000)))
            .and_then(|address| EmailHash::of_address(&address));
        let source = match rng.random_range(0..10) {
            0..5 => Source::Api,
            5..9 => Source::Postback,
            _ => Source::Pixel,
        };
        let mut metadata = Vec::new();
        if rng.random_bool(0.3) {
            let product = format!("prod_{}", rng.random_range(100..999));
            metadata.push(("product_id".to_owned(), product));
        }
        if rng.random_bool(0.1) {
            metadata.push(("coupon_code".to_owned(), "SUMMER20".to_owned()));
        }

        let order_id =
            OrderId::parse(&format!("ord-{}-{n:09}", self.tag)).expect("a short order id");
        let reported = ReportedClick {
            id: click.clone(),
            method: AttributionMethod::ClickId,
        };
        let new = NewConversion {
            id: ConversionId::derive(&self.brand, order_id.as_str()),
            brand: self.brand.clone(),
            order_id,
            // A conversion credited by e-mail came without a click of its own.
            click: (method != AttributionMethod::Email).then_some(reported),
            amount,
            event_type,
            email,
            metadata,
            source,
        };
        let touch = Touch {
            resolved: resolved.clone(),
            click_id: click.clone(),
            clicked_at: click.clicked_at(),
            method,
        };
        // As the workers do: outside the cookie window it is kept, rejected, unpaid.
        (attribute(&new, &touch, created_at), link)
    }

    /// The brand's decision on a pending conversion, if it made one: the shares of
    /// approved, pending and rejected asked for, decided between an hour and two weeks
    /// after the conversion came in (sooner for recent ones, so the shares hold).
    fn review(&mut self, conversion: &Conversion) -> Option<Conversion> {
        if conversion.status != Status::Pending {
            return None;
        }
        let shares = self.shares;
        let dice = self.rng.random_range(0..shares.total());
        let (status, note) = if dice < shares.approved {
            (Status::Approved, "verified in the shop system")
        } else if dice < shares.approved + shares.rejected {
            (Status::Rejected, "order cancelled")
        } else {
            return None;
        };
        let age = (self.now - conversion.created_at).whole_seconds();
        let latest = age.min(14 * DAY_SECONDS);
        if latest <= 3_600 {
            // Too recent to have been reviewed yet.
            return None;
        }
        let reviewed_at =
            conversion.created_at + Duration::seconds(self.rng.random_range(3_600..latest));
        Some(conversion.with_status(status, note, reviewed_at))
    }
}

/// Seconds between click and conversion: mostly the same day, some within the week, a
/// few near or past a 30-day cookie window (those are stored as rejected).
fn seconds_from_click(rng: &mut StdRng) -> i64 {
    match rng.random_range(0..100) {
        0..60 => rng.random_range(30..DAY_SECONDS),
        60..90 => rng.random_range(DAY_SECONDS..7 * DAY_SECONDS),
        90..98 => rng.random_range(7 * DAY_SECONDS..30 * DAY_SECONDS),
        _ => rng.random_range(31 * DAY_SECONDS..45 * DAY_SECONDS),
    }
}

/// Basket values between about 5 and 600, most of them a few tens, in whole cents.
fn shop_amount(rng: &mut StdRng, currency: Currency) -> Amount {
    let log_cents: f64 = rng.random_range(2.7..4.8);
    let cents = 10f64.powf(log_cents).round() as i64;
    let value = currency.round(Decimal::new(cents, 2));
    Amount::new(value, currency).expect("shop amounts are small positive numbers")
}
