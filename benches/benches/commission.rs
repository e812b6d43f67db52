//! Commission computation, per conversion: a percent rule against a flat rule, in a
//! currency with two decimals (USD), none (JPY) and three (BHD). A percent rule multiplies
//! and divides rust_decimal values before rounding to the currency's minor unit; a flat
//! rule only rounds a sum it already has, so the gap is the cost of the arithmetic.

use std::hint::black_box;

use attributor::commission::{CommissionRule, CommissionRules};
use attributor::domain::{Amount, Currency, EventType};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rust_decimal::Decimal;

/// Conversions per iteration, each with its own amount, so rounding meets varied digits.
const CONVERSIONS: usize = 1_000;

fn amounts(currency: Currency) -> Vec<Amount> {
    let scale = currency.minor_units();
    (0..CONVERSIONS as i64)
        .map(|n| {
            // 19.99 USD, 1999 JPY, 1.999 BHD and up: ordinary basket sizes.
            let minor = 1_999 + n * 3_571;
            Amount::new(Decimal::new(minor, scale), currency).expect("a valid amount")
        })
        .collect()
}

fn commission(c: &mut Criterion) {
    let mut group = c.benchmark_group("commission");
    group.throughput(Throughput::Elements(CONVERSIONS as u64));
    for code in ["USD", "JPY", "BHD"] {
        let currency: Currency = code.parse().expect("a known currency");
        let amounts = amounts(currency);
        // 7.5% needs rounding in every currency; the flat sum is 250 minor units.
        let rules = [
            ("percent", CommissionRule::Percent(Decimal::new(75, 1))),
            (
                "flat",
                CommissionRule::Flat(Decimal::new(250, currency.minor_units())),
            ),
        ];
        for (kind, rule) in rules {
            let rules = CommissionRules::default().with_rule(EventType::Sale, rule);
            group.bench_with_input(BenchmarkId::new(kind, code), &amounts, |b, amounts| {
                b.iter(|| {
                    for amount in black_box(amounts) {
                        black_box(rules.commission(EventType::Sale, *amount, currency));
                    }
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, commission);
criterion_main!(benches);
