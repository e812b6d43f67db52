//! Token buckets (GCRA, by `governor`) per API key and, for what has no key (the pixel and
//! tracking links), per client address. A shop platform firing one postback in a loop is
//! answered 429 with `Retry-After` while every other key goes on as before. The defaults
//! are far above what a real network sends per key or per visitor; the operator can give a
//! key its own limit, or none, through the admin API (`RateLimit` in the catalog).
//!
//! Buckets live in bounded caches: an evicted bucket was idle long enough to have refilled,
//! so forgetting it changes nothing, and a flood of addresses costs bounded memory.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use attributor::catalog::RateLimit;
use attributor::metrics::counter_vec;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use moka::sync::Cache;
use prometheus::{IntCounterVec, Registry};

/// A token bucket's size and refill rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

impl Bucket {
    /// `None` when `per_second` is 0: no limit. A burst of 0 means one second's worth.
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        let per_second = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst).unwrap_or(per_second);
        Some(Self { per_second, burst })
    }

    /// How long an emptied bucket takes to fill again.
    fn refill_time(&self) -> Duration {
        Duration::from_secs_f64(f64::from(self.burst.get()) / f64::from(self.per_second.get()))
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RateLimitConfig {
    /// Every API key's bucket unless the operator set another; `None`: unlimited.
    pub per_key: Option<Bucket>,
    /// Each client address's bucket for the pixel and tracking links; `None`: unlimited.
    pub per_address: Option<Bucket>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_key: Bucket::new(2_000, 10_000),
            per_address: Bucket::new(100, 1_000),
        }
    }
}

/// What kind of caller a refusal is counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerKind {
    BrandKey,
    AffiliateKey,
    Address,
}

impl CallerKind {
    pub const LABELS: [&'static str; 3] = ["brand_key", "affiliate_key", "address"];

    fn label(self) -> &'static str {
        match self {
            CallerKind::BrandKey => "brand_key",
            CallerKind::AffiliateKey => "affiliate_key",
            CallerKind::Address => "address",
        }
    }
}

/// The bucket is empty; a token comes back after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
}

impl Throttled {
    /// What `Retry-After` says: whole seconds, at least one.
    pub fn retry_after_seconds(&self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }
}

struct Limiter {
    bucket: Bucket,
    cells: DefaultDirectRateLimiter,
}

impl Limiter {
    fn new(bucket: Bucket) -> Arc<Self> {
        let quota = Quota::per_second(bucket.per_second).allow_burst(bucket.burst);
        Arc::new(Self {
            bucket,
            cells: DefaultDirectRateLimiter::direct(quota),
        })
    }
}

pub struct RateLimiter {
    config: RateLimitConfig,
    /// By key hash.
    keys: Cache<String, Arc<Limiter>>,
    addresses: Cache<IpAddr, Arc<Limiter>>,
    clock: DefaultClock,
    limited_total: IntCounterVec,
}

/// Buckets kept for keys (few) and addresses (many, bounded so a flood costs bounded memory).
const MAX_KEYS: u64 = 100_000;
const MAX_ADDRESSES: u64 = 200_000;
/// Keys' buckets may be set to refill slowly; an hour covers any sane setting.
const KEY_IDLE: Duration = Duration::from_secs(3_600);

impl RateLimiter {
    pub fn new(config: RateLimitConfig, registry: &Registry) -> Self {
        let address_idle = config
            .per_address
            .map_or(Duration::from_secs(60), |bucket| bucket.refill_time())
            .max(Duration::from_secs(10))
            + Duration::from_secs(1);
        Self {
            config,
            keys: Cache::builder()
                .max_capacity(MAX_KEYS)
                .time_to_idle(KEY_IDLE)
                .build(),
            addresses: Cache::builder()
                .max_capacity(MAX_ADDRESSES)
                .time_to_idle(address_idle)
                .build(),
            clock: DefaultClock::default(),
            limited_total: counter_vec(
                registry,
                "affilync_rate_limited_total",
                "Requests answered 429, by kind of caller",
                &["kind"],
                CallerKind::LABELS.map(|kind| [kind]),
            ),
        }
    }

    /// Takes a token from the key's bucket: the operator's setting for the key, else the
    /// node's default.
    pub fn check_key(
        &self,
        key_hash: &str,
        setting: RateLimit,
        kind: CallerKind,
    ) -> Result<(), Throttled> {
        let bucket = match setting {
            RateLimit::Default => self.config.per_key,
            RateLimit::Unlimited => None,
            RateLimit::Limited { per_second, burst } => Bucket::new(per_second, burst),
        };
        let Some(bucket) = bucket else {
            return Ok(());
        };
        let mut limiter = self.keys.get_with_by_ref(key_hash, || Limiter::new(bucket));
        if limiter.bucket != bucket {
            // The operator changed the key's limit: a fresh bucket with the new terms.
            limiter = Limiter::new(bucket);
            self.keys.insert(key_hash.to_owned(), Arc::clone(&limiter));
        }
        self.take(&limiter, kind)
    }

    /// Takes a token from the client address's bucket.
    pub fn check_address(&self, address: IpAddr) -> Result<(), Throttled> {
        let Some(bucket) = self.config.per_address else {
            return Ok(());
        };
        let limiter = self.addresses.get_with(address, || Limiter::new(bucket));
        self.take(&limiter, CallerKind::Address)
    }

    fn take(&self, limiter: &Limiter, kind: CallerKind) -> Result<(), Throttled> {
        limiter.cells.check().map_err(|not_until| {
            self.limited_total.with_label_values(&[kind.label()]).inc();
            Throttled {
                retry_after: not_until.wait_time_from(self.clock.now()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(config: RateLimitConfig) -> RateLimiter {
        RateLimiter::new(config, &Registry::new())
    }

    #[test]
    fn a_key_gets_its_burst_then_is_throttled_while_another_is_not() {
        let limits = limiter(RateLimitConfig {
            per_key: Bucket::new(1, 5),
            per_address: None,
        });
        let kind = CallerKind::BrandKey;
        for _ in 0..5 {
            assert_eq!(limits.check_key("a", RateLimit::Default, kind), Ok(()));
        }
        let throttled = limits.check_key("a", RateLimit::Default, kind).unwrap_err();
        assert!(throttled.retry_after <= Duration::from_secs(1));
        assert_eq!(throttled.retry_after_seconds(), 1);
        assert_eq!(limits.check_key("b", RateLimit::Default, kind), Ok(()));
        assert_eq!(
            limits.limited_total.with_label_values(&["brand_key"]).get(),
            1
        );
    }

    #[test]
    fn the_operators_setting_wins_over_the_default() {
        let limits = limiter(RateLimitConfig {
            per_key: Bucket::new(1, 1),
            per_address: None,
        });
        let kind = CallerKind::AffiliateKey;
        for _ in 0..100 {
            assert_eq!(limits.check_key("free", RateLimit::Unlimited, kind), Ok(()));
        }
        let tight = RateLimit::Limited {
            per_second: 1,
            burst: 2,
        };
        assert!(limits.check_key("k", RateLimit::Default, kind).is_ok());
        assert!(limits.check_key("k", RateLimit::Default, kind).is_err());
        // A changed setting starts a fresh bucket on the new terms.
        assert!(limits.check_key("k", tight, kind).is_ok());
        assert!(limits.check_key("k", tight, kind).is_ok());
        assert!(limits.check_key("k", tight, kind).is_err());
    }

    #[test]
    fn addresses_have_their_own_buckets_and_zero_means_unlimited() {
        let limits = limiter(RateLimitConfig {
            per_key: None,
            per_address: Bucket::new(1, 2),
        });
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let two: IpAddr = "2001:db8::2".parse().unwrap();
        assert!(limits.check_address(one).is_ok());
        assert!(limits.check_address(one).is_ok());
        assert!(limits.check_address(one).is_err());
        assert!(limits.check_address(two).is_ok());
        for _ in 0..100 {
            assert!(
                limits
                    .check_key("k", RateLimit::Default, CallerKind::BrandKey)
                    .is_ok()
            );
        }
        assert_eq!(Bucket::new(0, 10), None);
        assert_eq!(Bucket::new(5, 0).map(|b| b.burst.get()), Some(5));
    }
}
