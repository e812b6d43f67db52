//! What an affiliate earns for a conversion, from the campaign's rule for its event type.
//! All arithmetic is rust_decimal, rounded once, half-up, to the minor unit of the
//! currency the commission is paid in.

use std::fmt;

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::domain::{Amount, Currency, EventType};

/// One event type's rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommissionRule {
    /// A share of the conversion amount, 0-100, paid in the conversion's currency.
    Percent(Decimal),
    /// A fixed sum per conversion, paid in the campaign's currency.
    Flat(Decimal),
}

/// A campaign's rules, one optional rule per event type; no rule earns zero.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommissionRules {
    by_event: [Option<CommissionRule>; 4],
}

/// The commission owed for one conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commission {
    pub amount: Decimal,
    pub currency: Currency,
    pub rule: Option<CommissionRule>,
}

/// A rule that cannot be used, with the JSON path of the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RuleError {
    pub field: String,
    pub message: String,
}

impl CommissionRules {
    pub fn rule(&self, event: EventType) -> Option<CommissionRule> {
        self.by_event[Self::slot(event)]
    }

    pub fn with_rule(mut self, event: EventType, rule: CommissionRule) -> Self {
        self.by_event[Self::slot(event)] = Some(rule);
        self
    }

    /// The commission for `amount` of an `event`; flat sums are in `campaign_currency`.
    pub fn commission(
        &self,
        event: EventType,
        amount: Amount,
        campaign_currency: Currency,
    ) -> Commission {
        let rule = self.rule(event);
        let (raw, currency) = match rule {
            Some(CommissionRule::Percent(percent)) => (
                amount.value() * percent / Decimal::ONE_HUNDRED,
                amount.currency(),
            ),
            Some(CommissionRule::Flat(sum)) => (sum, campaign_currency),
            None => (Decimal::ZERO, amount.currency()),
        };
        Commission {
            amount: currency.round(raw),
            currency,
            rule,
        }
    }

    /// Reads `{"sale": {"percent": "10"}, "lead": {"flat": "2.50"}}`. Values may be
    /// strings or JSON numbers; percentages are 0-100, flat sums non-negative and in the
    /// campaign currency's minor units.
    pub fn from_json(value: &Value, campaign_currency: Currency) -> Result<Self, RuleError> {
        let error = |field: String, message: &str| RuleError {
            field,
            message: message.to_owned(),
        };
        let object = value
            .as_object()
            .ok_or_else(|| error("commission".into(), "must be an object keyed by event type"))?;
        let mut rules = Self::default();
        for (event_name, rule) in object {
            let field = format!("commission.{event_name}");
            let event: EventType = event_name.parse().map_err(|e: crate::domain::KindError| {
                error(field.clone(), &format!("event type {e}"))
            })?;
            let rule = Self::rule_from_json(rule, &field, campaign_currency)?;
            rules = rules.with_rule(event, rule);
        }
        Ok(rules)
    }

    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        for event in EventType::ALL {
            if let Some(rule) = self.rule(*event) {
                let (kind, value) = match rule {
                    CommissionRule::Percent(p) => ("percent", p),
                    CommissionRule::Flat(f) => ("flat", f),
                };
                let mut inner = Map::new();
                inner.insert(kind.into(), Value::String(value.to_string()));
                object.insert(event.as_str().into(), Value::Object(inner));
            }
        }
        Value::Object(object)
    }

    fn rule_from_json(
        rule: &Value,
        field: &str,
        campaign_currency: Currency,
    ) -> Result<CommissionRule, RuleError> {
        let error = |field: String, message: String| RuleError { field, message };
        let only_key = rule
            .as_object()
            .filter(|object| object.len() == 1)
            .and_then(|object| object.iter().next());
        let (kind, value) = only_key.ok_or_else(|| {
            error(
                field.into(),
                "must be {\"percent\": \"...\"} or {\"flat\": \"...\"}".into(),
            )
        })?;
        let field = format!("{field}.{kind}");
        let number = match value {
            Value::String(text) => text.parse::<Decimal>().ok(),
            Value::Number(number) => number.to_string().parse::<Decimal>().ok(),
            _ => None,
        }
        .ok_or_else(|| error(field.clone(), "must be a decimal number".into()))?;
        match kind.as_str() {
            "percent" if (Decimal::ZERO..=Decimal::ONE_HUNDRED).contains(&number) => {
                Ok(CommissionRule::Percent(number.normalize()))
            }
            "percent" => Err(error(field, "must be between 0 and 100".into())),
            "flat" => Amount::new(number, campaign_currency)
                .map(|sum| CommissionRule::Flat(sum.value()))
                .map_err(|e| error(field, e.to_string())),
            _ => Err(error(field, "the rule kind must be percent or flat".into())),
        }
    }

    fn slot(event: EventType) -> usize {
        match event {
            EventType::Sale => 0,
            EventType::Lead => 1,
            EventType::Signup => 2,
            EventType::Trial => 3,
        }
    }
}

impl fmt::Display for CommissionRule {
    /// The form stored beside each commission row: `percent:10`, `flat:2.50`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommissionRule::Percent(p) => write!(f, "percent:{p}"),
            CommissionRule::Flat(sum) => write!(f, "flat:{sum}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn currency(code: &str) -> Currency {
        code.parse().unwrap()
    }

    fn amount(text: &str, code: &str) -> Amount {
        Amount::parse(text, currency(code)).unwrap()
    }

    fn percent(p: &str) -> CommissionRules {
        CommissionRules::default()
            .with_rule(EventType::Sale, CommissionRule::Percent(p.parse().unwrap()))
    }

    fn paid(rules: &CommissionRules, event: EventType, amount: Amount, campaign: &str) -> String {
        let commission = rules.commission(event, amount, currency(campaign));
        commission.currency.format(commission.amount)
    }

    #[test]
    fn the_seed_example_ten_percent_of_99_99_is_10_00() {
        assert_eq!(
            paid(
                &percent("10"),
                EventType::Sale,
                amount("99.99", "USD"),
                "USD"
            ),
            "10.00"
        );
    }

    #[test]
    fn percent_rounds_half_up_to_the_currency_minor_unit() {
        // 12.5% of 0.04 = 0.005 -> 0.01
        assert_eq!(
            paid(
                &percent("12.5"),
                EventType::Sale,
                amount("0.04", "USD"),
                "USD"
            ),
            "0.01"
        );
        // 15% of 3 JPY = 0.45 -> 0; of 10 JPY = 1.5 -> 2
        assert_eq!(
            paid(&percent("15"), EventType::Sale, amount("3", "JPY"), "USD"),
            "0"
        );
        assert_eq!(
            paid(&percent("15"), EventType::Sale, amount("10", "JPY"), "USD"),
            "2"
        );
        // 7% of 1.235 BHD = 0.08645 -> 0.086; of 1.5 BHD = 0.105
        assert_eq!(
            paid(
                &percent("7"),
                EventType::Sale,
                amount("1.235", "BHD"),
                "USD"
            ),
            "0.086"
        );
        assert_eq!(
            paid(&percent("7"), EventType::Sale, amount("1.5", "BHD"), "USD"),
            "0.105"
        );
        // 33.333% of 100 USD = 33.333 -> 33.33
        assert_eq!(
            paid(
                &percent("33.333"),
                EventType::Sale,
                amount("100", "USD"),
                "USD"
            ),
            "33.33"
        );
    }

    #[test]
    fn flat_rules_pay_in_the_campaign_currency() {
        let rules = CommissionRules::default().with_rule(
            EventType::Lead,
            CommissionRule::Flat("2.5".parse().unwrap()),
        );
        let commission = rules.commission(EventType::Lead, amount("1000", "JPY"), currency("EUR"));
        assert_eq!(commission.currency, currency("EUR"));
        assert_eq!(commission.currency.format(commission.amount), "2.50");
    }

    #[test]
    fn events_without_a_rule_earn_zero() {
        assert_eq!(
            paid(&percent("10"), EventType::Trial, amount("50", "USD"), "USD"),
            "0.00"
        );
    }

    #[test]
    fn rules_are_read_from_json_and_written_back() {
        let json = json!({"sale": {"percent": "10"}, "lead": {"flat": 2.5}});
        let rules = CommissionRules::from_json(&json, currency("USD")).unwrap();
        assert_eq!(
            rules.rule(EventType::Sale),
            Some(CommissionRule::Percent(10.into()))
        );
        assert_eq!(
            rules.to_json(),
            json!({"sale": {"percent": "10"}, "lead": {"flat": "2.5"}})
        );
        assert_eq!(
            CommissionRules::from_json(&rules.to_json(), currency("USD")),
            Ok(rules)
        );
    }

    #[test]
    fn bad_rules_name_their_field() {
        let usd = currency("USD");
        let field = |json: Value| CommissionRules::from_json(&json, usd).unwrap_err().field;
        assert_eq!(
            field(json!({"sale": {"percent": "101"}})),
            "commission.sale.percent"
        );
        assert_eq!(
            field(json!({"sale": {"percent": "-1"}})),
            "commission.sale.percent"
        );
        assert_eq!(
            field(json!({"lead": {"flat": "-2"}})),
            "commission.lead.flat"
        );
        assert_eq!(
            field(json!({"lead": {"flat": "2.555"}})),
            "commission.lead.flat"
        );
        assert_eq!(
            field(json!({"lead": {"bonus": "2"}})),
            "commission.lead.bonus"
        );
        assert_eq!(field(json!({"refund": {"flat": "2"}})), "commission.refund");
        assert_eq!(
            field(json!({"sale": {"percent": "1", "flat": "2"}})),
            "commission.sale"
        );
        assert_eq!(field(json!(["sale"])), "commission");
    }
}
