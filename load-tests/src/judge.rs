//! Whether an answer is the one the API promises for its request: 201 with the derived
//! conversion id for a new order, 200 with `Idempotent-Replayed` and the original for a
//! replay, 409 with the original for a conflict, 302 with a click id for a click. 503 and
//! 429 are the service's allowed "later".

use attributor::domain::ConversionId;
use serde::Deserialize;

use crate::scenario::{Call, Workload};
use crate::target::Reply;
use crate::verify::Answer;

/// How an answer compares with the API's promise.
#[derive(Debug)]
pub enum Verdict {
    Expected,
    /// 503 or 429: the service said "later"; allowed under load. It stored nothing, unless
    /// it says its store stopped answering mid-write (then the store check allows both).
    Backpressure,
    Wrong(String),
}

impl Workload {
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
