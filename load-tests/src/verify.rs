//! After a run, ClickHouse is asked what the run's brand has stored, and that is held to
//! what the service answered: every acknowledged conversion (2xx) is there exactly once in
//! the latest-version (FINAL) view, with the acknowledged conversion id, amount and
//! commission, and has exactly one commission row; nothing is there that was refused or
//! never sent. Requests that got no answer (timeout, broken connection) are "uncertain":
//! either outcome is allowed for them, and both are counted.

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use attributor::domain::BrandId;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::clickhouse_http::ClickhouseHttp;

/// Problems of each kind listed by order id in the report.
const EXAMPLES_PER_KIND: usize = 3;

/// What the service said about one order.
#[derive(Debug, Clone)]
pub enum Answer {
    Acked {
        conversion_id: String,
        commission: String,
    },
    /// A 2xx whose body could not be read: it must be stored, its values are unknown.
    AckedUnreadable,
    Refused(u16),
    /// No answer: timed out or failed at the transport level.
    Uncertain,
}

/// An order the run sent, with the amount it sent.
#[derive(Debug, Clone)]
pub struct Sent {
    pub amount: String,
    pub answer: Answer,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Verification {
    pub acknowledged: u64,
    pub refused: u64,
    pub uncertain: u64,
    /// Conversions of the brand in the FINAL view, and rows before merging.
    pub stored_logical: u64,
    pub stored_physical: u64,
    pub commission_rows_logical: u64,
    pub commission_rows_physical: u64,
    pub lost: u64,
    pub duplicated: u64,
    /// Stored, but with another conversion id, amount or commission than acknowledged.
    pub mismatched: u64,
    /// Stored although refused, or never sent at all.
    pub unexpected: u64,
    pub uncertain_stored: u64,
    pub uncertain_absent: u64,
    pub commissions_missing: u64,
    pub commissions_duplicated: u64,
    pub commissions_mismatched: u64,
    /// Commission rows of the brand whose conversion is not stored.
    pub commissions_orphaned: u64,
    pub examples: Vec<String>,
    pub passed: bool,
}

struct StoredConversion {
    rows: u64,
    conversion_id: String,
    amount: String,
    commission: String,
}

/// Checks the store against `sent`, keyed by order id, for the brand `brand_id`.
pub async fn check(
    clickhouse: &ClickhouseHttp,
    brand_id: &str,
    sent: &HashMap<String, Sent>,
) -> anyhow::Result<Verification> {
    // Checked so it can be written into the SQL: servers before 19 take no query parameters.
    let brand = BrandId::parse(brand_id).context("the setup's brand id")?;
    let conversions = clickhouse
        .rows(&format!(
            "SELECT order_id, count(), any(conversion_id), toString(any(amount)), \
             toString(any(commission_amount)) FROM conversions FINAL \
             WHERE brand_id = '{brand}' GROUP BY order_id"
        ))
        .await?;
    let commissions = clickhouse
        .rows(&format!(
            "SELECT conversion_id, count(), toString(any(amount)) FROM commissions FINAL \
             WHERE brand_id = '{brand}' GROUP BY conversion_id"
        ))
        .await?;
    let mut v = Verification {
        stored_physical: clickhouse
            .count(&format!(
                "SELECT count() FROM conversions WHERE brand_id = '{brand}'"
            ))
            .await?,
        commission_rows_physical: clickhouse
            .count(&format!(
                "SELECT count() FROM commissions WHERE brand_id = '{brand}'"
            ))
            .await?,
        ..Verification::default()
    };

    let mut stored: HashMap<String, StoredConversion> = HashMap::new();
    for row in conversions {
        let [order_id, rows, conversion_id, amount, commission] = &row[..] else {
            anyhow::bail!("unexpected conversion row {row:?}");
        };
        let rows: u64 = rows.parse().unwrap_or(0);
        v.stored_logical += rows;
        stored.insert(
            order_id.clone(),
            StoredConversion {
                rows,
                conversion_id: conversion_id.clone(),
                amount: amount.clone(),
                commission: commission.clone(),
            },
        );
    }
    let mut commission_rows: HashMap<String, (u64, String)> = HashMap::new();
    for row in commissions {
        let [conversion_id, rows, amount] = &row[..] else {
            anyhow::bail!("unexpected commission row {row:?}");
        };
        let rows: u64 = rows.parse().unwrap_or(0);
        v.commission_rows_logical += rows;
        commission_rows.insert(conversion_id.clone(), (rows, amount.clone()));
    }

    let mut examples = Examples::default();
    for (order_id, sent) in sent {
        let found = stored.get(order_id);
        if let Some(found) = found.filter(|found| found.rows > 1) {
            v.duplicated += 1;
            examples.note("duplicated", order_id, &format!("{} rows", found.rows));
        }
        match (&sent.answer, found) {
            (Answer::Acked { .. } | Answer::AckedUnreadable, None) => {
                v.acknowledged += 1;
                v.lost += 1;
                examples.note("lost", order_id, "acknowledged but not stored");
            }
            (
                Answer::Acked {
                    conversion_id,
                    commission,
                },
                Some(found),
            ) => {
                v.acknowledged += 1;
                let same = found.conversion_id == *conversion_id
                    && same_decimal(&found.amount, &sent.amount)
                    && same_decimal(&found.commission, commission);
                if !same {
                    v.mismatched += 1;
                    let detail = format!(
                        "acknowledged {conversion_id} amount {} commission {commission}, stored \
                         {} amount {} commission {}",
                        sent.amount, found.conversion_id, found.amount, found.commission
                    );
                    examples.note("mismatched", order_id, &detail);
                }
                match commission_rows.get(&found.conversion_id) {
                    None => {
                        v.commissions_missing += 1;
                        examples.note("commission missing", order_id, &found.conversion_id);
                    }
                    Some((rows, _)) if *rows > 1 => v.commissions_duplicated += 1,
                    Some((_, amount)) if !same_decimal(amount, commission) => {
                        v.commissions_mismatched += 1;
                        examples.note("commission mismatched", order_id, amount);
                    }
                    Some(_) => {}
                }
            }
            (Answer::AckedUnreadable, Some(_)) => v.acknowledged += 1,
            (Answer::Refused(status), found) => {
                v.refused += 1;
                if found.is_some() {
                    v.unexpected += 1;
                    examples.note("unexpected", order_id, &format!("stored after a {status}"));
                }
            }
            (Answer::Uncertain, found) => {
                v.uncertain += 1;
                if found.is_some() {
                    v.uncertain_stored += 1;
                } else {
                    v.uncertain_absent += 1;
                }
            }
        }
    }
    for order_id in stored
        .keys()
        .filter(|order_id| !sent.contains_key(*order_id))
    {
        v.unexpected += 1;
        examples.note("unexpected", order_id, "stored but never sent");
    }
    let stored_ids: HashSet<&str> = stored.values().map(|s| s.conversion_id.as_str()).collect();
    for conversion_id in commission_rows.keys() {
        if !stored_ids.contains(conversion_id.as_str()) {
            v.commissions_orphaned += 1;
            examples.note("commission orphaned", conversion_id, "no conversion row");
        }
    }

    v.examples = examples.lines;
    v.passed = v.lost == 0
        && v.duplicated == 0
        && v.mismatched == 0
        && v.unexpected == 0
        && v.commissions_missing == 0
        && v.commissions_duplicated == 0
        && v.commissions_mismatched == 0
        && v.commissions_orphaned == 0;
    Ok(v)
}

/// Waits until the brand's row counts stop changing, at most `longest`. The service goes
/// on writing requests the generator stopped waiting for, commission rows first: checked
/// too early, those would look absent or orphaned.
/// ClickHouse prints Decimal(18, 4) with all four places: 10.0000 is 10.00.
fn same_decimal(a: &str, b: &str) -> bool {
    match (a.parse::<Decimal>(), b.parse::<Decimal>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[derive(Default)]
struct Examples {
    lines: Vec<String>,
    per_kind: HashMap<&'static str, usize>,
}

impl Examples {
    fn note(&mut self, kind: &'static str, id: &str, detail: &str) {
        let seen = self.per_kind.entry(kind).or_default();
        if *seen < EXAMPLES_PER_KIND {
            self.lines.push(format!("{kind}: {id}: {detail}"));
        }
        *seen += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_compare_by_value_whatever_their_scale() {
        assert!(same_decimal("10.0000", "10.00"));
        assert!(same_decimal("0.0000", "0.00"));
        assert!(!same_decimal("10.0100", "10.00"));
    }
}
