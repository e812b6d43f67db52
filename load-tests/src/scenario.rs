//! What each request of a scenario is and how it is sent ([`crate::judge`] says whether
//! its answer is right). Request `i` of a run always maps to the same call, so a run can
//! be spread over any number of connections.

use std::str::FromStr;
use std::sync::Arc;

use attributor::domain::BrandId;
use bytes::Bytes;
use clap::ValueEnum;
use http::Method;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http_body_util::Full;
use serde::{Deserialize, Serialize};

pub use crate::judge::{AnsweredConversion, Verdict};

use crate::connection::{Endpoint, Request};
use crate::pool::Pooled;
use crate::setup::Setup;
use crate::target::Target;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Every request a new order, as a GET postback.
    PostbackUnique,
    /// Every request a new order, as a JSON POST to /api/conversions/track.
    TrackUnique,
    /// Stored orders sent again identically: 200 and Idempotent-Replayed.
    Replay,
    /// Stored orders sent again with another amount: 409 order_id_conflict.
    Conflict,
    /// The tracking link, without following the redirect: 302.
    Clicks,
    /// Clicks, new conversions (track and postback in turn) and replays, by `--mix`.
    Mixed,
}

impl Scenario {
    /// Whether stored conversions must exist before the run starts.
    pub fn needs_pool(self) -> bool {
        matches!(
            self,
            Scenario::Replay | Scenario::Conflict | Scenario::Mixed
        )
    }

    pub fn name(self) -> String {
        self.to_possible_value()
            .map(|value| value.get_name().to_owned())
            .unwrap_or_default()
    }
}

/// Shares of clicks : new conversions : replays in the mixed scenario, e.g. `5:3:2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mix {
    pub clicks: u64,
    pub conversions: u64,
    pub replays: u64,
}

impl FromStr for Mix {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts: Vec<u64> = text
            .split(':')
            .map(|part| part.trim().parse::<u64>())
            .collect::<Result<_, _>>()
            .map_err(|_| format!("{text:?} is not clicks:conversions:replays, like 5:3:2"))?;
        match parts[..] {
            [clicks, conversions, replays] if clicks + conversions + replays > 0 => Ok(Mix {
                clicks,
                conversions,
                replays,
            }),
            _ => Err(format!(
                "{text:?} is not three shares clicks:conversions:replays, like 5:3:2"
            )),
        }
    }
}

/// One request of a run.
#[derive(Debug, Clone, Copy)]
pub enum Call {
    Postback { order: u64 },
    Track { order: u64 },
    Replay { pool: usize },
    Conflict { pool: usize },
    Click { link: usize },
}

/// A scenario bound to its setup and pool: builds request `i` and judges its answer.
pub struct Workload {
    pub scenario: Scenario,
    pub mix: Mix,
    /// Makes this run's order ids its own.
    pub tag: String,
    pub setup: Arc<Setup>,
    pub pool: Arc<Vec<Pooled>>,
    /// Conversion ids of new orders are derived from it, as the service derives them.
    pub(crate) brand: Option<BrandId>,
    /// `Bearer <brand key>`, made once.
    bearer: HeaderValue,
}

impl Workload {
    pub fn new(
        scenario: Scenario,
        mix: Mix,
        tag: String,
        setup: Arc<Setup>,
        pool: Arc<Vec<Pooled>>,
    ) -> anyhow::Result<Self> {
        let brand = BrandId::parse(&setup.brand_id).ok();
        let bearer = HeaderValue::from_str(&format!("Bearer {}", setup.brand_key))?;
        Ok(Self {
            scenario,
            mix,
            tag,
            setup,
            pool,
            brand,
            bearer,
        })
    }

    pub fn call(&self, i: u64) -> Call {
        let pool = |i: u64| (i % self.pool.len().max(1) as u64) as usize;
        match self.scenario {
            Scenario::PostbackUnique => Call::Postback { order: i },
            Scenario::TrackUnique => Call::Track { order: i },
            Scenario::Replay => Call::Replay { pool: pool(i) },
            Scenario::Conflict => Call::Conflict { pool: pool(i) },
            Scenario::Clicks => Call::Click {
                link: (i % self.setup.links.len() as u64) as usize,
            },
            Scenario::Mixed => {
                let Mix {
                    clicks,
                    conversions,
                    replays,
                } = self.mix;
                let slot = i % (clicks + conversions + replays);
                if slot < clicks {
                    Call::Click {
                        link: (i % self.setup.links.len() as u64) as usize,
                    }
                } else if slot < clicks + conversions {
                    if i.is_multiple_of(2) {
                        Call::Track { order: i }
                    } else {
                        Call::Postback { order: i }
                    }
                } else {
                    Call::Replay { pool: pool(i) }
                }
            }
        }
    }

    pub fn order_id(&self, order: u64) -> String {
        format!("{}-{order}", self.tag)
    }

    pub fn click_for(&self, order: u64) -> &str {
        &self.setup.clicks[(order % self.setup.clicks.len() as u64) as usize]
    }

    /// Request `call` as sent on a sender's own connection.
    pub fn request(&self, endpoint: &Endpoint, call: Call) -> Request {
        let (order_id, click_id, amount) = match call {
            Call::Postback { order } => {
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("api_key", &self.setup.brand_key)
                    .append_pair("click_id", self.click_for(order))
                    .append_pair("order_id", &self.order_id(order))
                    .append_pair("amount", &amount_for(order))
                    .append_pair("currency", "USD")
                    .append_pair("event_type", "sale")
                    .finish();
                let path = format!("/api/conversions/postback?{query}");
                return empty(endpoint.request(Method::GET, &path));
            }
            Call::Click { link } => {
                let path = format!("/c/{}", self.setup.links[link].link_id);
                return empty(endpoint.request(Method::GET, &path));
            }
            Call::Track { order } => (
                self.order_id(order),
                self.click_for(order).to_owned(),
                amount_for(order),
            ),
            Call::Replay { pool } => {
                let p = &self.pool[pool];
                (p.order_id.clone(), p.click_id.clone(), p.amount.clone())
            }
            Call::Conflict { pool } => {
                let p = &self.pool[pool];
                let other = conflicting_amount(&p.amount);
                (p.order_id.clone(), p.click_id.clone(), other)
            }
        };
        endpoint
            .request(Method::POST, "/api/conversions/track")
            .header(AUTHORIZATION, self.bearer.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(track_body(&order_id, &click_id, &amount)))
            .expect("the request's parts are valid")
    }
}

/// A JSON POST to /api/conversions/track through the setup client, as the pool is stored.
pub fn track(
    target: &Target,
    key: &str,
    order_id: &str,
    click_id: &str,
    amount: &str,
) -> reqwest::RequestBuilder {
    target
        .http
        .post(target.url("/api/conversions/track"))
        .bearer_auth(key)
        .header(CONTENT_TYPE, "application/json")
        .body(track_body(order_id, click_id, amount))
}

/// The track body; a replay sends exactly the bytes its pooled conversion was stored with.
pub fn track_body(order_id: &str, click_id: &str, amount: &str) -> Bytes {
    let body = serde_json::json!({
        "click_id": click_id,
        "order_id": order_id,
        "amount": amount,
        "currency": "USD",
        "event_type": "sale",
    });
    Bytes::from(serde_json::to_vec(&body).expect("JSON values serialise"))
}

fn empty(builder: http::request::Builder) -> Request {
    builder
        .body(Full::new(Bytes::new()))
        .expect("the request's parts are valid")
}

/// Amounts from 5.00 to 499.99, different from order to order.
pub fn amount_for(order: u64) -> String {
    let cents = 500 + order.wrapping_mul(7_919) % 49_500;
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// The amount a conflicting report sends: one more than the stored one.
pub fn conflicting_amount(amount: &str) -> String {
    let value: rust_decimal::Decimal = amount.parse().unwrap_or_default();
    (value + rust_decimal::Decimal::ONE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_read_as_three_shares() {
        let mix: Mix = "5:3:2".parse().unwrap();
        assert_eq!((mix.clicks, mix.conversions, mix.replays), (5, 3, 2));
        assert!("5:3".parse::<Mix>().is_err());
        assert!("0:0:0".parse::<Mix>().is_err());
        assert!("a:b:c".parse::<Mix>().is_err());
    }

    #[test]
    fn amounts_are_valid_usd_and_conflicts_differ() {
        for order in 0..1_000 {
            let amount = amount_for(order);
            let value: rust_decimal::Decimal = amount.parse().unwrap();
            assert!(value >= 5.into() && value < 500.into(), "{amount}");
            assert_eq!(amount.split('.').nth(1).map(str::len), Some(2));
            assert_ne!(conflicting_amount(&amount), amount);
        }
    }
}
