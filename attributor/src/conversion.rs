//! A conversion as it arrives (`NewConversion`, validated, not yet attributed) and as it
//! is stored (`Conversion`, the latest version of its row).

use rust_decimal::Decimal;
use time::OffsetDateTime;

use crate::domain::{
    AffiliateId, Amount, AttributionMethod, BrandId, CampaignId, ClickId, ConversionId, Currency,
    EmailHash, EventType, LinkId, OrderId, Source, Status,
};

/// A click a report points at, and how the reporter knew it: sent as the click id (API,
/// postback, the pixel's explicit option or landing URL) or kept in a cookie.
#[derive(Debug, Clone)]
pub struct ReportedClick {
    pub id: ClickId,
    pub method: AttributionMethod,
}

/// A brand's report of a conversion, every field checked, before attribution.
#[derive(Debug, Clone)]
pub struct NewConversion {
    pub id: ConversionId,
    pub brand: BrandId,
    pub order_id: OrderId,
    /// `None` asks for cross-device attribution by `email`.
    pub click: Option<ReportedClick>,
    pub amount: Amount,
    pub event_type: EventType,
    pub email: Option<EmailHash>,
    pub metadata: Vec<(String, String)>,
    pub source: Source,
}

impl NewConversion {
    /// Whether a repeat of an order is the same report (answered as a replay) or a
    /// different one (a conflict): click, amount as a decimal, currency and event type.
    /// A repeat without a click matches whatever click the order was credited to.
    pub fn is_same_report_as(&self, stored: &Conversion) -> bool {
        self.click
            .as_ref()
            .is_none_or(|click| click.id == stored.click_id)
            && self.amount.value() == stored.amount
            && self.amount.currency() == stored.currency
            && self.event_type == stored.event_type
    }
}

/// How a conversion was tied to its click.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribution {
    pub method: AttributionMethod,
    pub click_time: OffsetDateTime,
    pub seconds_from_click: u32,
}

/// The latest stored version of a conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    pub id: ConversionId,
    pub brand: BrandId,
    pub order_id: OrderId,
    pub version: u64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub source: Source,
    pub campaign: CampaignId,
    pub affiliate: AffiliateId,
    pub link: LinkId,
    pub click_id: ClickId,
    pub attribution: Option<Attribution>,
    pub event_type: EventType,
    pub amount: Decimal,
    pub currency: Currency,
    pub commission_amount: Decimal,
    pub commission_currency: Currency,
    pub commission_rule: String,
    pub status: Status,
    pub status_reason: String,
    pub note: String,
    pub email_hash: Option<EmailHash>,
    pub metadata: Vec<(String, String)>,
}

impl Conversion {
    /// The next version of this conversion with a new status. Versions are microsecond
    /// timestamps, kept strictly increasing so the change always wins over what it
    /// replaces even if two nodes' clocks disagree slightly.
    pub fn with_status(&self, status: Status, note: &str, now: OffsetDateTime) -> Conversion {
        let mut next = self.clone();
        next.version = version_at(now).max(self.version + 1);
        next.updated_at = now;
        next.status = status;
        note.clone_into(&mut next.note);
        if status == Status::Rejected {
            // A rejected conversion earns nothing; the rule stays recorded beside it.
            next.commission_amount = Decimal::ZERO;
            if next.status_reason.is_empty() {
                next.status_reason = "rejected by the brand".into();
            }
        }
        next
    }
}

/// Row versions are microseconds since the epoch.
pub fn version_at(at: OffsetDateTime) -> u64 {
    u64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(0)
}
