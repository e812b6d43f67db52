//! Hold periods. A campaign may hold its conversions for `hold_days` after they are
//! reported: they stay `pending` until `scheduled_approval_at` (created + hold), and are
//! then approved automatically unless the brand decided first.
//!
//! The automatic approval is a status change like a brand's, journaled with its history
//! row, but every part of it is fixed by the conversion and the hold (its time is the
//! scheduled time, its version the next after the pending one): every node that approves
//! the same conversion journals the same rows, and ClickHouse keeps one.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use time::OffsetDateTime;

use crate::conversion::Conversion;
use crate::domain::{BrandId, CampaignId, Status};
use crate::runtime::spawn_background;
use crate::store::{CampaignHoldRow, StatusChangeRow, Store, StoreError};

/// Who an automatic approval is recorded as.
pub const HOLD_ACTOR: &str = "system:hold";
pub const MAX_HOLD_DAYS: u16 = 365;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub campaign: CampaignId,
    pub brand: BrandId,
    pub days: u16,
}

impl Hold {
    pub fn period(&self) -> time::Duration {
        time::Duration::days(self.days.into())
    }

    pub fn scheduled_approval_at(&self, created_at: OffsetDateTime) -> OffsetDateTime {
        created_at + self.period()
    }

    /// The automatic approval of `current` if it is this campaign's, still pending, and
    /// its hold is over at `now`. The same for every node and every attempt.
    pub fn approval(
        &self,
        current: &Conversion,
        now: OffsetDateTime,
    ) -> Option<(Conversion, StatusChangeRow)> {
        let due = self.scheduled_approval_at(current.created_at);
        if current.campaign != self.campaign || current.status != Status::Pending || due > now {
            return None;
        }
        let note = format!(
            "approved automatically: the campaign's {}-day hold ended",
            self.days
        );
        let next = current.with_status(Status::Approved, &note, due);
        let change = StatusChangeRow::of(&next, current.status, HOLD_ACTOR);
        Some((next, change))
    }
}

/// Every campaign's hold, in memory, refreshed from ClickHouse so that a hold set on one
/// node reaches the others.
pub struct CampaignHolds {
    store: Store,
    holds: RwLock<HashMap<CampaignId, Hold>>,
}

impl CampaignHolds {
    pub async fn load(store: Store) -> Result<Self, StoreError> {
        let holds = Self {
            store: store.unpooled(),
            holds: RwLock::default(),
        };
        holds.refresh().await?;
        Ok(holds)
    }

    pub async fn refresh(&self) -> Result<(), StoreError> {
        let rows = self.store.campaign_holds().await?;
        let mut read = HashMap::with_capacity(rows.len());
        for row in rows {
            let (Ok(campaign), Ok(brand)) = (
                CampaignId::parse(&row.campaign_id),
                BrandId::parse(&row.brand_id),
            ) else {
                tracing::warn!(campaign = %row.campaign_id, "unreadable campaign hold skipped");
                continue;
            };
            if row.hold_days > 0 {
                read.insert(
                    campaign.clone(),
                    Hold {
                        campaign,
                        brand,
                        days: row.hold_days,
                    },
                );
            }
        }
        let mut holds = self
            .holds
            .write()
            .expect("the holds lock is never poisoned");
        // What this node set and ClickHouse does not show yet stays.
        holds.extend(read);
        Ok(())
    }

    /// Refreshes every `every` on a background thread until the holds are dropped.
    pub fn keep_refreshed(self: &Arc<Self>, every: Duration) {
        let holds = Arc::downgrade(self);
        spawn_background("hold-refresh", move || async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(holds) = holds.upgrade() else {
                    return;
                };
                if let Err(error) = holds.refresh().await {
                    tracing::warn!(%error, "refreshing campaign holds failed");
                }
            }
        });
    }

    /// Records a new campaign's hold; a hold of 0 days is no hold and is not stored.
    pub async fn set(
        &self,
        campaign: &CampaignId,
        brand: &BrandId,
        days: u16,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if days == 0 {
            return Ok(());
        }
        self.store
            .insert_campaign_hold(&CampaignHoldRow {
                campaign_id: campaign.to_string(),
                brand_id: brand.to_string(),
                hold_days: days,
                created_at: now,
                version: crate::conversion::version_at(now),
            })
            .await?;
        self.holds
            .write()
            .expect("the holds lock is never poisoned")
            .insert(
                campaign.clone(),
                Hold {
                    campaign: campaign.clone(),
                    brand: brand.clone(),
                    days,
                },
            );
        Ok(())
    }

    pub fn get(&self, campaign: &CampaignId) -> Option<Hold> {
        self.read().get(campaign).cloned()
    }

    pub fn of_brand(&self, brand: &BrandId) -> Vec<Hold> {
        self.read()
            .values()
            .filter(|hold| &hold.brand == brand)
            .cloned()
            .collect()
    }

    pub fn all(&self) -> Vec<Hold> {
        self.read().values().cloned().collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<CampaignId, Hold>> {
        self.holds.read().expect("the holds lock is never poisoned")
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;
    use time::macros::datetime;

    use super::*;
    use crate::conversion::version_at;
    use crate::domain::{
        AffiliateId, ClickSigner, ConversionId, Currency, EventType, LinkId, OrderId, Source,
    };

    fn pending(hold: &Hold, created_at: OffsetDateTime) -> Conversion {
        Conversion {
            id: ConversionId::derive(&hold.brand, "o-1"),
            brand: hold.brand.clone(),
            order_id: OrderId::parse("o-1").unwrap(),
            version: version_at(created_at),
            created_at,
            updated_at: created_at,
            source: Source::Api,
            campaign: hold.campaign.clone(),
            affiliate: AffiliateId::generate(),
            link: LinkId::generate(),
            click_id: ClickSigner::new(b"s").issue(&LinkId::generate(), created_at),
            attribution: None,
            event_type: EventType::Sale,
            amount: Decimal::new(2_000, 2),
            currency: Currency::USD,
            commission_amount: Decimal::new(200, 2),
            commission_currency: Currency::USD,
            commission_rule: String::new(),
            status: Status::Pending,
            status_reason: String::new(),
            note: String::new(),
            email_hash: None,
            metadata: Vec::new(),
        }
    }

    fn hold() -> Hold {
        Hold {
            campaign: CampaignId::generate(),
            brand: BrandId::generate(),
            days: 14,
        }
    }

    #[test]
    fn an_approval_is_the_same_whenever_and_wherever_it_is_made() {
        let hold = hold();
        let created = datetime!(2026-03-01 10:00:00 UTC);
        let conversion = pending(&hold, created);
        assert_eq!(
            hold.approval(&conversion, datetime!(2026-03-15 09:59:59 UTC)),
            None
        );
        let due = datetime!(2026-03-15 10:00:00 UTC);
        let on_time = hold.approval(&conversion, due).unwrap();
        let late = hold
            .approval(&conversion, datetime!(2026-04-30 00:00:00 UTC))
            .unwrap();
        assert_eq!(on_time, late);
        let (next, change) = on_time;
        assert_eq!(next.status, Status::Approved);
        assert_eq!(next.updated_at, due);
        assert!(next.version > conversion.version);
        assert_eq!(change.version, next.version);
        assert_eq!(change.actor, HOLD_ACTOR);
        assert_eq!(change.from_status, "pending");
    }

    #[test]
    fn decided_or_other_campaigns_conversions_are_left_alone() {
        let hold = hold();
        let later = datetime!(2026-06-01 00:00:00 UTC);
        let mut decided = pending(&hold, datetime!(2026-03-01 10:00:00 UTC));
        decided.status = Status::Rejected;
        assert_eq!(hold.approval(&decided, later), None);
        let mut elsewhere = pending(&hold, datetime!(2026-03-01 10:00:00 UTC));
        elsewhere.campaign = CampaignId::generate();
        assert_eq!(hold.approval(&elsewhere, later), None);
    }
}
