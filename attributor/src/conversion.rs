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
    /// The next version of this conversion with a new status, changed at `now`.
    ///
    /// The version is this one's plus a step drawn from the change itself, not from the
    /// clock: the same change made to the same version is the same row wherever and
    /// whenever it is made, so a bulk call retried on another node before the first
    /// node's journal reached ClickHouse collapses into the first one's rows (conversion
    /// and history alike) instead of adding a second change. Two different changes of
    /// one version get different versions (bar a 2⁻²⁰ chance), and the higher one wins.
    pub fn with_status(&self, status: Status, note: &str, now: OffsetDateTime) -> Conversion {
        let mut next = self.clone();
        next.version = self.version + change_step(status, note);
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

/// How far a status change moves the version: 1 to 2²⁰ (about a second of microsecond
/// versions), the same for the same status and note.
fn change_step(status: Status, note: &str) -> u64 {
    let change = format!("{}\0{note}", status.as_str());
    1 + xxhash_rust::xxh3::xxh3_64(change.as_bytes()) % (1 << 20)
}

/// A new conversion's version: microseconds since the epoch. Later versions are this
/// plus the steps of its status changes.
pub fn version_at(at: OffsetDateTime) -> u64 {
    u64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::fixtures::SampleNetwork;

    #[test]
    fn the_same_change_of_the_same_version_is_the_same_version_whenever_made() {
        let network = SampleNetwork::new();
        let pending = network.attributed(&network.report("o-1", "10.00"));
        let here = pending.with_status(Status::Approved, "ok", datetime!(2026-11-02 10:00 UTC));
        let there = pending.with_status(Status::Approved, "ok", datetime!(2026-11-02 10:07 UTC));
        assert_eq!(here.version, there.version);
        assert!(here.version > pending.version);

        let other_note =
            pending.with_status(Status::Approved, "checked", datetime!(2026-11-02 10:00 UTC));
        let other_status =
            pending.with_status(Status::Rejected, "ok", datetime!(2026-11-02 10:00 UTC));
        assert_ne!(other_note.version, here.version);
        assert_ne!(other_status.version, here.version);
        let reversed = here.with_status(Status::Rejected, "fraud", datetime!(2026-11-03 09:00 UTC));
        assert!(reversed.version > here.version);
    }
}
