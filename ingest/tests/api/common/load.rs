//! A small load for the fault tests: concurrent senders of new orders, each order's answer
//! remembered, and the check that ClickHouse holds exactly what was acknowledged.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::{Api, Network, clickhouse_rows_at};

#[derive(Debug, Clone)]
pub enum Answer {
    /// 201 or 200: the conversion as answered.
    Acked(Value),
    /// A 4xx or 5xx: nothing may be stored.
    Refused(u16),
    /// No answer (the service died, the connection broke): either outcome is allowed.
    Uncertain,
}

/// Senders running against one node.
pub struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    senders: Vec<JoinHandle<Vec<(String, Answer)>>>,
}

impl Load {
    /// `senders` tasks, each reporting new orders named `{prefix}-{sender}-{n}` with
    /// `click` one after another until stopped or, after a failed exchange, at once.
    pub fn start(api: &Api, net: &Network, click: &str, prefix: &str, senders: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let senders = (0..senders)
            .map(|sender| {
                let http = api.http.clone();
                let url = api.url("/api/conversions/track");
                let key = net.brand_key.clone();
                let click = click.to_owned();
                let prefix = format!("{prefix}-{sender}");
                let stop = Arc::clone(&stop);
                let acked = Arc::clone(&acked);
                tokio::spawn(async move {
                    let mut answers = Vec::new();
                    for n in 0.. {
                        if stop.load(Ordering::Acquire) {
                            break;
                        }
                        let order = format!("{prefix}-{n}");
                        let body =
                            json!({"click_id": click, "order_id": order, "amount": amount(n)});
                        let sent = http.post(&url).bearer_auth(&key).json(&body).send().await;
                        let answer = match sent {
                            Ok(response) if response.status().is_success() => {
                                match response.json::<Value>().await {
                                    Ok(body) => {
                                        acked.fetch_add(1, Ordering::Relaxed);
                                        Answer::Acked(body["data"].clone())
                                    }
                                    Err(_) => Answer::Uncertain,
                                }
                            }
                            Ok(response) => Answer::Refused(response.status().as_u16()),
                            Err(_) => Answer::Uncertain,
                        };
                        let broken = matches!(answer, Answer::Uncertain);
                        answers.push((order, answer));
                        if broken {
                            break;
                        }
                    }
                    answers
                })
            })
            .collect();
        Load {
            stop,
            acked,
            senders,
        }
    }

    /// Waits until at least `count` orders were acknowledged, at most 60 s.
    pub async fn until_acked(&self, count: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.acked.load(Ordering::Relaxed) < count {
            assert!(
                Instant::now() < deadline,
                "only {} orders acknowledged",
                self.acked.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the senders and returns every order's answer.
    pub async fn finish(self) -> HashMap<String, Answer> {
        self.stop.store(true, Ordering::Release);
        let mut answers = HashMap::new();
        for sender in self.senders {
            answers.extend(sender.await.unwrap());
        }
        answers
    }
}

/// Amounts vary by order so a mix-up between orders would show.
fn amount(n: u64) -> String {
    format!("{}.{:02}", 10 + n % 90, n % 100)
}

/// What the check found, for the test to assert on and print.
#[derive(Debug, Default)]
pub struct Verdict {
    pub acked: usize,
    pub refused: usize,
    pub uncertain: usize,
    pub problems: Vec<String>,
}

/// Holds ClickHouse (already drained into) to `answers`: every acknowledged order is one
/// conversion in `conversions FINAL`, in the brand's listing copy and with one commission
/// row, all with the acknowledged id, amount and commission; no refused order is stored.
pub async fn verify(
    clickhouse_url: &str,
    database: &str,
    brand_id: &str,
    answers: &HashMap<String, Answer>,
) -> Verdict {
    let stored = by_order(
        clickhouse_url,
        database,
        &format!(
            "SELECT order_id, any(conversion_id) AS id, toString(any(amount)) AS amount, \
                    toString(any(commission_amount)) AS commission, count() AS n \
             FROM conversions FINAL WHERE brand_id = '{brand_id}' GROUP BY order_id"
        ),
    )
    .await;
    let listed = by_order(
        clickhouse_url,
        database,
        &format!(
            "SELECT order_id, any(conversion_id) AS id, toString(any(amount)) AS amount, \
                    toString(any(commission_amount)) AS commission, count() AS n \
             FROM conversions_by_brand FINAL WHERE brand_id = '{brand_id}' GROUP BY order_id"
        ),
    )
    .await;
    let commissions: HashMap<String, (String, u64)> = clickhouse_rows_at(
        clickhouse_url,
        database,
        &format!(
            "SELECT conversion_id, toString(any(amount)) AS amount, count() AS n \
             FROM commissions FINAL WHERE brand_id = '{brand_id}' GROUP BY conversion_id"
        ),
    )
    .await
    .into_iter()
    .map(|row| {
        (
            text(&row["conversion_id"]),
            (text(&row["amount"]), count(&row["n"])),
        )
    })
    .collect();

    let mut verdict = Verdict::default();
    for (order, answer) in answers {
        let found = stored.get(order);
        match answer {
            Answer::Acked(data) => {
                verdict.acked += 1;
                let Some(row) = found else {
                    verdict
                        .problems
                        .push(format!("{order}: acknowledged, not stored"));
                    continue;
                };
                let same_id = row.id == text(&data["conversion_id"]);
                let same_amount = decimal(&row.amount) == decimal(&text(&data["amount"]));
                let same_commission =
                    decimal(&row.commission) == decimal(&text(&data["commission_amount"]));
                if row.n != 1 || !same_id || !same_amount || !same_commission {
                    verdict
                        .problems
                        .push(format!("{order}: stored {row:?}, acknowledged {data}"));
                }
                if listed.get(order) != Some(row) {
                    verdict.problems.push(format!(
                        "{order}: listing copy {:?}, conversions {row:?}",
                        listed.get(order)
                    ));
                }
                match commissions.get(&row.id) {
                    Some((amount, 1)) if decimal(amount) == decimal(&row.commission) => {}
                    other => verdict
                        .problems
                        .push(format!("{order}: commission rows {other:?}")),
                }
            }
            Answer::Refused(status) => {
                verdict.refused += 1;
                if found.is_some() {
                    verdict
                        .problems
                        .push(format!("{order}: refused with {status}, yet stored"));
                }
            }
            Answer::Uncertain => {
                verdict.uncertain += 1;
                if found.is_some_and(|row| row.n != 1) {
                    verdict.problems.push(format!("{order}: stored {found:?}"));
                }
            }
        }
    }
    let sent: std::collections::HashSet<&String> = answers.keys().collect();
    for order in stored.keys().filter(|order| !sent.contains(order)) {
        verdict
            .problems
            .push(format!("{order}: stored, never sent"));
    }
    verdict
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stored {
    id: String,
    amount: String,
    commission: String,
    n: u64,
}

async fn by_order(url: &str, database: &str, sql: &str) -> HashMap<String, Stored> {
    clickhouse_rows_at(url, database, sql)
        .await
        .into_iter()
        .map(|row| {
            let stored = Stored {
                id: text(&row["id"]),
                amount: text(&row["amount"]),
                commission: text(&row["commission"]),
                n: count(&row["n"]),
            };
            (text(&row["order_id"]), stored)
        })
        .collect()
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

fn count(value: &Value) -> u64 {
    match value {
        Value::String(text) => text.parse().unwrap_or(0),
        other => other.as_u64().unwrap_or(0),
    }
}

fn decimal(text: &str) -> Option<rust_decimal::Decimal> {
    text.parse().ok()
}
