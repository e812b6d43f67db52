//! What this node has journaled that ClickHouse does not have yet, indexed for the reads
//! that must see it at once: "is this order already reported?" (dedup), "what is this
//! conversion?" (GET by id, PATCH), and "which click did this e-mail last come through?"
//! (cross-device attribution). Entries leave when the shipper has their rows in ClickHouse,
//! unless a newer version arrived meanwhile.
//!
//! Conversions are kept as their journal sequence number, not as rows: the index must stay
//! small while ClickHouse is away and the journal fills, and the rare read goes to disk.

use std::collections::HashMap;
use std::sync::Mutex;

use time::OffsetDateTime;

use crate::domain::{BrandId, ClickId, ConversionId, EmailHash, LinkId};
use crate::store::{ConversionRow, EmailTouch};

#[derive(Default)]
pub struct Unshipped {
    inner: Mutex<Inner>,
}

/// Keys derive from what brands choose (order ids); a seeded foldhash keeps them from
/// colliding on purpose at a fraction of SipHash's cost.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Default)]
struct Inner {
    /// Conversion id → sequence number of its latest journaled version.
    conversions: Map<u128, u64>,
    /// The latest touch per (brand, e-mail hash) among unshipped conversions.
    touches: Map<(BrandId, EmailHash), (EmailTouch, u64)>,
}

impl Unshipped {
    /// Records conversion versions just journaled, with their sequence numbers.
    pub(super) fn note(&self, journaled: impl IntoIterator<Item = (u64, Indexed)>) {
        let mut inner = self.lock();
        for (seq, indexed) in journaled {
            let latest = inner.conversions.entry(indexed.key).or_insert(seq);
            *latest = (*latest).max(seq);
            if let Some(touch) = indexed.touch {
                let key = (touch.brand.clone(), touch.email);
                match inner.touches.get(&key) {
                    Some((known, _)) if known.click_time > touch.click_time => {}
                    _ => {
                        inner.touches.insert(key, (touch, seq));
                    }
                }
            }
        }
    }

    /// The sequence number of the conversion's latest unshipped version, if any.
    pub fn seq_of(&self, id: &ConversionId) -> Option<u64> {
        self.lock().conversions.get(&id.key()).copied()
    }

    /// The latest unshipped touch of this e-mail hash at this brand.
    pub fn touch(&self, brand: &BrandId, email: EmailHash) -> Option<EmailTouch> {
        let inner = self.lock();
        let key = (brand.clone(), email);
        inner.touches.get(&key).map(|(touch, _)| touch.clone())
    }

    /// Forgets what ClickHouse now has: every version through `last`, unless a newer one
    /// of the same conversion is still waiting.
    pub fn forget_through(&self, last: u64) {
        let mut inner = self.lock();
        inner.conversions.retain(|_, seq| *seq > last);
        inner.touches.retain(|_, (_, seq)| *seq > last);
    }

    /// The dedup keys ([`ConversionId::dedup_key`], the low 64 bits of the id) of every
    /// unshipped conversion.
    pub fn dedup_keys(&self) -> Vec<u64> {
        self.lock()
            .conversions
            .keys()
            .map(|&key| key as u64)
            .collect()
    }

    pub fn conversions(&self) -> usize {
        self.lock().conversions.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("unshipped index lock poisoned")
    }
}

/// What the index keeps of a conversion version, worked out before the journal's write
/// lock is taken.
pub(super) struct Indexed {
    key: u128,
    touch: Option<EmailTouch>,
}

impl Indexed {
    pub fn of(row: &ConversionRow) -> Option<Indexed> {
        Some(Indexed {
            key: ConversionId::key_of(&row.conversion_id)?,
            touch: touch_of(row),
        })
    }
}

/// The touch a conversion row leaves for cross-device attribution, as `email_touches_mv`
/// derives it in ClickHouse: attributed, and reported with a customer e-mail.
fn touch_of(row: &ConversionRow) -> Option<EmailTouch> {
    if row.attribution_method.is_empty() {
        return None;
    }
    let email = EmailHash::from_hex(&row.customer_email_sha256)?;
    Some(EmailTouch {
        email,
        brand: BrandId::parse(&row.brand_id).ok()?,
        link: LinkId::parse(&row.link_id).ok()?,
        click_id: ClickId::from_stored(&row.click_id).ok()?,
        click_time: row.click_time.unwrap_or(OffsetDateTime::UNIX_EPOCH),
    })
}
