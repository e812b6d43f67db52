//! Amounts, currencies and commissions. The README's field rules: an amount is a plain
//! decimal with at most the currency's minor digits (trailing zeros past them are fine), at
//! most 10^12; commissions are rounded half-up to the minor unit of the currency they are
//! paid in, a percent rule in the conversion's currency and a flat rule in the campaign's.
//! The expected commissions are computed here in exact integers, not with rust_decimal.

use attributor::commission::{CommissionRule, CommissionRules};
use attributor::domain::{Amount, AmountError, Currency, EventType, MAX_AMOUNT};
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// Currencies with 0 (JPY, KRW), 2 (USD, EUR), 3 (BHD, KWD) and 4 (CLF) minor digits.
const CODES: &[&str] = &["JPY", "KRW", "USD", "EUR", "BHD", "KWD", "CLF"];

fn currency() -> impl Strategy<Value = Currency> {
    proptest::sample::select(CODES).prop_map(|code| code.parse().expect("a currency in use"))
}

fn pow10(exponent: u32) -> i64 {
    10i64.pow(exponent)
}

/// A count of minor units from zero to 10^12 in the currency, small counts (where
/// rounding decides everything) as likely as the rest.
fn minor_units(currency: Currency) -> impl Strategy<Value = i64> {
    let max = pow10(12 + currency.minor_units());
    prop_oneof![0..=1_000i64, 0..=max]
}

fn amount_in(currency: Currency) -> impl Strategy<Value = Amount> {
    minor_units(currency).prop_map(move |units| {
        Amount::new(Decimal::new(units, currency.minor_units()), currency)
            .expect("at most 10^12 with the currency's digits")
    })
}

fn amount() -> impl Strategy<Value = Amount> {
    currency().prop_flat_map(amount_in)
}

/// The amount as a whole number of the currency's minor units.
fn in_minor_units(value: Decimal, currency: Currency) -> i128 {
    let scale = value.scale();
    assert!(
        scale <= currency.minor_units(),
        "{value} is finer than {currency}"
    );
    value.mantissa() * 10i128.pow(currency.minor_units() - scale)
}

/// `numerator / denominator` rounded half-up; both non-negative.
fn div_half_up(numerator: i128, denominator: i128) -> i128 {
    (2 * numerator + denominator) / (2 * denominator)
}

/// A rate of 0-100 with up to four decimals; 0 and 100 come up often.
fn percent() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        Just(Decimal::ZERO),
        Just(Decimal::ONE_HUNDRED),
        (0u32..=4).prop_flat_map(
            |scale| (0..=100 * pow10(scale)).prop_map(move |n| Decimal::new(n, scale))
        ),
    ]
}

fn percent_of_sales(percent: Decimal) -> CommissionRules {
    CommissionRules::default().with_rule(EventType::Sale, CommissionRule::Percent(percent))
}

/// What a percent rule must pay, in the amount's minor units: amount × rate / 100,
/// rounded half-up.
fn expected_percent_commission(amount: Amount, percent: Decimal) -> Decimal {
    let currency = amount.currency();
    let share = in_minor_units(amount.value(), currency) * percent.mantissa();
    let units = div_half_up(share, 100 * 10i128.pow(percent.scale()));
    Decimal::from_i128_with_scale(units, currency.minor_units())
}

/// Decimals to round: any value with up to eight decimals, and exact halfway cases at
/// the currency's minor unit, where half-up and other rules disagree.
fn value_to_round(currency: Currency) -> impl Strategy<Value = Decimal> {
    let minor = currency.minor_units();
    prop_oneof![
        (0..=pow10(15), 0u32..=8).prop_map(|(units, scale)| Decimal::new(units, scale)),
        (0..=pow10(10), 1u32..=4).prop_map(move |(whole, extra)| {
            Decimal::new((whole * 10 + 5) * pow10(extra - 1), minor + extra)
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// An amount written out has exactly its currency's digits and reads back as itself.
    #[test]
    fn a_written_amount_reads_back_as_itself(amount in amount()) {
        let text = amount.to_string();
        let digits = text.split_once('.').map_or(0, |(_, fraction)| fraction.len());
        prop_assert_eq!(digits, amount.currency().minor_units() as usize, "{}", text);
        prop_assert_eq!(Amount::parse(&text, amount.currency()), Ok(amount));
    }

    /// Zeros past the currency's digits change nothing: "99.990" USD is 99.99.
    #[test]
    fn trailing_zeros_are_accepted(amount in amount(), zeros in 1usize..=5) {
        let mut text = amount.to_string();
        if !text.contains('.') {
            text.push('.');
        }
        text.push_str(&"0".repeat(zeros));
        prop_assert_eq!(Amount::parse(&text, amount.currency()), Ok(amount));
    }

    /// A non-zero digit past the currency's minor unit is refused, never rounded away,
    /// whether the amount comes as text or as a decimal (a flat rule's sum).
    #[test]
    fn a_digit_past_the_minor_unit_is_refused(
        amount in amount(),
        zeros in 0usize..=3,
        last in 1u8..=9,
    ) {
        prop_assume!(amount.value() < MAX_AMOUNT);
        let currency = amount.currency();
        let mut text = amount.to_string();
        if !text.contains('.') {
            text.push('.');
        }
        text.push_str(&"0".repeat(zeros));
        text.push(char::from(b'0' + last));
        let too_precise = Err(AmountError::TooPrecise {
            currency: currency.code(),
            minor_units: currency.minor_units(),
        });
        prop_assert_eq!(Amount::parse(&text, currency), too_precise.clone(), "{}", text);
        let value = Decimal::from_str_exact(&text).expect("a plain decimal");
        prop_assert_eq!(Amount::new(value, currency), too_precise);
    }

    /// Anything above 10^12 is refused as too large, by a minor unit or by far.
    #[test]
    fn amounts_above_the_maximum_are_refused(
        currency in currency(),
        excess in prop_oneof![1..=10i64, 1..=pow10(15)],
    ) {
        let value = MAX_AMOUNT + Decimal::new(excess, currency.minor_units());
        let text = currency.format(value);
        prop_assert_eq!(Amount::parse(&text, currency), Err(AmountError::TooLarge), "{}", text);
        prop_assert_eq!(Amount::new(value, currency), Err(AmountError::TooLarge));
    }

    /// A minus sign in front of an amount is refused as negative, zero included.
    #[test]
    fn negative_amounts_are_refused(amount in amount()) {
        let text = format!("-{amount}");
        prop_assert_eq!(Amount::parse(&text, amount.currency()), Err(AmountError::Negative));
    }

    /// Any text is either refused or an amount that keeps every promise of the type:
    /// written as plain digits, exactly the value written, no finer than the currency,
    /// within 0..=10^12, and written back in a form that reads the same.
    #[test]
    fn any_text_is_a_valid_amount_or_refused(
        text in prop_oneof![
            "[0-9]{1,14}(\\.[0-9]{0,5})?",
            "[-+0-9.eE, _]{0,44}",
            any::<String>(),
        ],
        currency in currency(),
    ) {
        if let Ok(amount) = Amount::parse(&text, currency) {
            prop_assert!(text.bytes().all(|b| b.is_ascii_digit() || b == b'.'), "{:?}", text);
            prop_assert_eq!(Some(amount.value()), Decimal::from_str_exact(&text).ok());
            prop_assert!(amount.value().scale() <= currency.minor_units());
            prop_assert!(Decimal::ZERO <= amount.value() && amount.value() <= MAX_AMOUNT);
            prop_assert_eq!(Amount::parse(&amount.to_string(), currency), Ok(amount));
        }
    }

    /// Rounding is half-up (away from zero) to the currency's minor unit, and formatting
    /// writes the rounded value with exactly that many digits.
    #[test]
    fn rounding_is_half_up_to_the_minor_unit(
        (currency, value) in currency().prop_flat_map(|c| (Just(c), value_to_round(c))),
    ) {
        let minor = currency.minor_units();
        let expected = if value.scale() <= minor {
            value
        } else {
            let step = 10i128.pow(value.scale() - minor);
            Decimal::from_i128_with_scale(div_half_up(value.mantissa(), step), minor)
        };
        let rounded = currency.round(value);
        prop_assert_eq!(rounded, expected, "{} {}", value, currency);
        prop_assert!(rounded.scale() <= minor);
        let text = currency.format(value);
        prop_assert_eq!(text.parse::<Decimal>().ok(), Some(expected), "{}", text);
        let digits = text.split_once('.').map_or(0, |(_, fraction)| fraction.len());
        prop_assert_eq!(digits, minor as usize, "{}", text);
    }

    /// A percent rule pays amount × rate / 100 rounded half-up to the minor unit of the
    /// conversion's currency (whatever the campaign's): never negative and, for rates up
    /// to 100, never more than the amount.
    #[test]
    fn a_percent_commission_is_the_rounded_share(
        amount in amount(),
        percent in percent(),
        campaign in currency(),
    ) {
        let commission = percent_of_sales(percent).commission(EventType::Sale, amount, campaign);
        prop_assert_eq!(commission.amount, expected_percent_commission(amount, percent));
        prop_assert_eq!(commission.currency, amount.currency());
        prop_assert_eq!(commission.rule, Some(CommissionRule::Percent(percent)));
        prop_assert!(commission.amount.scale() <= amount.currency().minor_units());
        prop_assert!(Decimal::ZERO <= commission.amount && commission.amount <= amount.value());
        if percent == Decimal::ONE_HUNDRED {
            prop_assert_eq!(commission.amount, amount.value());
        }
    }

    /// A larger amount never earns less under the same percent rule; the pairs include
    /// amounts one minor unit apart, where rounding could break this.
    #[test]
    fn a_percent_commission_grows_with_the_amount(
        (low, high) in currency().prop_flat_map(|c| (
            amount_in(c),
            prop_oneof![0..=3i64, 0..=pow10(12 + c.minor_units())],
        ).prop_map(move |(low, step)| {
            let high = (low.value() + Decimal::new(step, c.minor_units())).min(MAX_AMOUNT);
            (low, Amount::new(high, c).expect("within range"))
        })),
        percent in percent(),
    ) {
        let rules = percent_of_sales(percent);
        let paid = |amount| rules.commission(EventType::Sale, amount, Currency::USD).amount;
        prop_assert!(paid(low) <= paid(high), "{} -> {}, {} -> {}", low, paid(low), high, paid(high));
    }

    /// A higher rate never earns less on the same amount.
    #[test]
    fn a_percent_commission_grows_with_the_rate(
        amount in amount(),
        rates in (percent(), percent()),
    ) {
        let (low, high) = if rates.0 <= rates.1 { rates } else { (rates.1, rates.0) };
        let paid = |p| percent_of_sales(p).commission(EventType::Sale, amount, Currency::USD).amount;
        prop_assert!(paid(low) <= paid(high), "{}% -> {}, {}% -> {}", low, paid(low), high, paid(high));
    }

    /// A flat rule, read from the campaign's JSON, pays exactly its sum in the campaign's
    /// currency, whatever the conversion's amount and currency.
    #[test]
    fn a_flat_commission_is_exact(
        (campaign, sum) in currency().prop_flat_map(|c| (Just(c), amount_in(c))),
        amount in amount(),
    ) {
        let rules = CommissionRules::from_json(
            &json!({"lead": {"flat": campaign.format(sum.value())}}),
            campaign,
        ).expect("a sum in the campaign currency's digits");
        let commission = rules.commission(EventType::Lead, amount, campaign);
        prop_assert_eq!(commission.amount, sum.value());
        prop_assert_eq!(commission.currency, campaign);
        prop_assert_eq!(commission.currency.format(commission.amount), sum.to_string());
    }

    /// Rules written to JSON read back the same, and a rule given as a JSON number reads
    /// as the same rule given as a string. The generated values have at most 15
    /// significant digits, all that a JSON number (read as an f64) is sure to keep.
    #[test]
    fn rules_read_back_from_json_and_numbers_read_as_strings(
        (campaign, rules) in currency().prop_flat_map(|c| (Just(c), rules_in(c))),
    ) {
        let written = rules.to_json();
        prop_assert_eq!(CommissionRules::from_json(&written, campaign), Ok(rules.clone()));
        let as_numbers = numbers_for_strings(&written);
        prop_assert_eq!(CommissionRules::from_json(&as_numbers, campaign), Ok(rules), "{}", as_numbers);
    }

    /// Any text offered as a percent is refused naming the field, or is a rate whose
    /// commission never exceeds the amount (and computing it does not panic).
    #[test]
    fn any_percent_text_is_refused_or_never_overpays(
        text in prop_oneof![
            "-?[0-9]{0,4}(\\.[0-9]{0,30})?",
            "[0-9]{0,32}(\\.[0-9]{0,32})?",
            any::<String>(),
        ],
        amount in amount(),
    ) {
        match CommissionRules::from_json(&json!({"sale": {"percent": text}}), Currency::USD) {
            Ok(rules) => {
                let commission = rules.commission(EventType::Sale, amount, Currency::USD);
                prop_assert!(Decimal::ZERO <= commission.amount, "{:?}", text);
                prop_assert!(commission.amount <= amount.value(), "{:?}", text);
            }
            Err(error) => prop_assert_eq!(error.field, "commission.sale.percent"),
        }
    }
}

/// Rules for some of the four event types: percents and flat sums in `campaign`.
fn rules_in(campaign: Currency) -> impl Strategy<Value = CommissionRules> {
    let rule = prop_oneof![
        percent().prop_map(CommissionRule::Percent),
        flat_sum_in(campaign).prop_map(CommissionRule::Flat),
    ];
    proptest::collection::vec(proptest::option::of(rule), EventType::ALL.len()).prop_map(|rules| {
        EventType::ALL
            .iter()
            .zip(rules)
            .fold(
                CommissionRules::default(),
                |all, (event, rule)| match rule {
                    Some(rule) => all.with_rule(*event, rule),
                    None => all,
                },
            )
    })
}

/// A flat sum in `campaign` with at most 15 significant digits (CLF's 10^12 has 16).
fn flat_sum_in(campaign: Currency) -> impl Strategy<Value = Decimal> {
    let max = pow10(12 + campaign.minor_units()).min(pow10(15) - 1);
    prop_oneof![0..=1_000i64, 0..=max]
        .prop_map(move |units| Decimal::new(units, campaign.minor_units()))
}

/// The same JSON with every string value that is a decimal written as a JSON number.
fn numbers_for_strings(value: &Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(key, value)| (key.clone(), numbers_for_strings(value)))
                .collect(),
        ),
        Value::String(text) => serde_json::from_str(text).unwrap_or_else(|_| value.clone()),
        other => other.clone(),
    }
}
