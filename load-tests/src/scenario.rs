//! What each request of a scenario is, how it is sent, and whether its answer is the one
//! the API promises. Request `i` of a run always maps to the same call, so a run can be
//! spread over any number of connections.

use std::str::FromStr;
use std::sync::Arc;

use attributor::domain::{BrandId, ConversionId};
use bytes::Bytes;
use clap::ValueEnum;
use http::Method;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http_body_util::Full;
use serde::{Deserialize, Serialize};

use crate::connection::{Endpoint, Request};
use crate::pool::Pooled;
use crate::setup::Setup;
use crate::target::{Reply, Target};
use crate::verify::Answer;

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

/// How an answer compares with the API's promise.
#[derive(Debug)]
pub enum Verdict {
    Expected,
    /// 503 or 429: the service said "later" and stored nothing; allowed under load.
    Backpressure,
    Wrong(String),
}

/// A scenario bound to its setup and pool: builds request `i` and judges its answer.
pub struct Workload {
    pub scenario: Scenario,
    pub mix: Mix,
    /// Makes this run's order ids its own.
    pub tag: String,
    pub setup: Arc<Setup>,
    pub pool: Arc<Vec<Pooled>>,
    brand: Option<BrandId>,
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
                    if i % 2 == 0 {
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

    /// The answer to a new order, as the store check needs it, and its verdict.
    pub fn judge_new(&self, order: u64, reply: &Reply) -> (Answer, Verdict) {
        let answered = AnsweredConversion::read(&reply.body);
        let answer = match (&answered, reply.status) {
            (Some(a), 200..=299) => Answer::Acked {
                conversion_id: a.conversion_id.clone(),
                commission: a.commission_amount.clone(),
            },
            (None, 200..=299) => Answer::AckedUnreadable,
            (_, status) => Answer::Refused(status),
        };
        let verdict = match reply.status {
            201 => match (&answered, &self.brand) {
                (Some(a), Some(brand)) => {
                    let expected = ConversionId::derive(brand, &self.order_id(order));
                    if a.conversion_id == expected.as_str() {
                        Verdict::Expected
                    } else {
                        wrong(reply, &format!("conversion_id is not {expected}"))
                    }
                }
                _ => wrong(reply, "201 without a readable conversion"),
            },
            _ => backpressure_or_wrong(reply, "a new order should get 201"),
        };
        (answer, verdict)
    }

    pub fn judge(&self, call: Call, reply: &Reply) -> Verdict {
        match call {
            Call::Postback { order } | Call::Track { order } => self.judge_new(order, reply).1,
            Call::Replay { pool } => {
                let same = AnsweredConversion::read(&reply.body)
                    .is_some_and(|a| a.conversion_id == self.pool[pool].conversion_id);
                match (reply.status, reply.replayed, same) {
                    (200, true, true) => Verdict::Expected,
                    (200, false, _) => wrong(reply, "a replay lacks Idempotent-Replayed: true"),
                    (200, _, false) => wrong(reply, "a replay carries another conversion"),
                    _ => backpressure_or_wrong(reply, "a replay should get 200"),
                }
            }
            Call::Conflict { pool } => {
                let same = AnsweredConversion::read(&reply.body)
                    .is_some_and(|a| a.conversion_id == self.pool[pool].conversion_id);
                match (reply.status, same) {
                    (409, true) => Verdict::Expected,
                    (409, false) => wrong(reply, "a conflict should carry the original"),
                    _ => backpressure_or_wrong(reply, "a conflict should get 409"),
                }
            }
            Call::Click { .. } => {
                let has_click = reply
                    .location
                    .as_deref()
                    .is_some_and(|location| location.contains("afk_cid=clk_"));
                match (reply.status, has_click) {
                    (302, true) => Verdict::Expected,
                    (302, false) => wrong(reply, "the redirect carries no afk_cid"),
                    _ => backpressure_or_wrong(reply, "a click should get 302"),
                }
            }
        }
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

/// The fields of a conversion answer (201, 200 or 409's `data`) the checks use.
#[derive(Debug, Deserialize)]
pub struct AnsweredConversion {
    pub conversion_id: String,
    pub commission_amount: String,
}

impl AnsweredConversion {
    pub fn read(body: &[u8]) -> Option<Self> {
        #[derive(Deserialize)]
        struct Envelope {
            data: Option<AnsweredConversion>,
        }
        serde_json::from_slice::<Envelope>(body).ok()?.data
    }
}

fn backpressure_or_wrong(reply: &Reply, expectation: &str) -> Verdict {
    match reply.status {
        429 | 503 => Verdict::Backpressure,
        _ => wrong(reply, expectation),
    }
}

fn wrong(reply: &Reply, expectation: &str) -> Verdict {
    let body = String::from_utf8_lossy(&reply.body);
    let excerpt: String = body.chars().take(300).collect();
    Verdict::Wrong(format!("{expectation}; got {}: {excerpt}", reply.status))
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
