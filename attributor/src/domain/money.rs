use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};

/// The largest amount accepted: 10^12 in any currency.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0);

/// An ISO 4217 currency that has minor units and is in use: "USD", "JPY", "BHD".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(iso_currency::Currency);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    #[error("must be an ISO 4217 code of three upper-case letters, like USD")]
    NotACode,
    #[error("{0} is not an ISO 4217 currency code")]
    Unknown(String),
    #[error("{0} is not a currency that amounts can be reported in")]
    NotMoney(String),
    #[error("{code} has been replaced by {by}")]
    Superseded { code: String, by: &'static str },
}

impl Currency {
    pub const USD: Currency = Currency(iso_currency::Currency::USD);

    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// Digits after the decimal point: 2 for USD, 0 for JPY, 3 for BHD.
    pub fn minor_units(self) -> u32 {
        self.0
            .exponent()
            .map(u32::from)
            .expect("only currencies with an exponent are constructed")
    }

    /// Rounds half away from zero (half-up for the non-negative amounts money takes here)
    /// to the currency's minor unit.
    pub fn round(self, value: Decimal) -> Decimal {
        value.round_dp_with_strategy(self.minor_units(), RoundingStrategy::MidpointAwayFromZero)
    }

    /// The amount with exactly the currency's minor digits: "10.00", "1500", "1.250".
    pub fn format(self, value: Decimal) -> String {
        self.with_minor_digits(value).to_string()
    }

    /// The amount rounded to the currency's minor unit and carrying exactly its minor
    /// digits, so that it displays as [`Currency::format`] writes it.
    pub fn with_minor_digits(self, value: Decimal) -> Decimal {
        let mut value = self.round(value);
        value.rescale(self.minor_units());
        value
    }
}

impl FromStr for Currency {
    type Err = CurrencyError;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(CurrencyError::NotACode);
        }
        let currency =
            iso_currency::Currency::from_code(code).ok_or(CurrencyError::Unknown(code.into()))?;
        if currency.is_special() || currency.exponent().is_none() {
            return Err(CurrencyError::NotMoney(code.into()));
        }
        if let Some(by) = currency.is_superseded() {
            return Err(CurrencyError::Superseded {
                code: code.into(),
                by: by.code(),
            });
        }
        Ok(Self(currency))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A non-negative amount of money, exact, with no more decimals than its currency has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount {
    value: Decimal,
    currency: Currency,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("must be a decimal number like \"99.99\"")]
    NotADecimal,
    #[error("must not be negative")]
    Negative,
    #[error("{currency} allows at most {minor_units} decimal places")]
    TooPrecise {
        currency: &'static str,
        minor_units: u32,
    },
    #[error("must not be above 1000000000000")]
    TooLarge,
}

impl Amount {
    /// Reads a plain decimal ("99.99", "100", "0.5"): digits with at most one point, no
    /// sign, exponent or spaces. Trailing zeros past the currency's minor unit are
    /// accepted ("99.990" USD is 99.99); other extra digits are not rounded away.
    pub fn parse(text: &str, currency: Currency) -> Result<Self, AmountError> {
        if text.starts_with('-') && Self::is_plain_decimal(&text[1..]) {
            return Err(AmountError::Negative);
        }
        if !Self::is_plain_decimal(text) {
            return Err(AmountError::NotADecimal);
        }
        let value = Decimal::from_str_exact(text).map_err(|_| AmountError::TooLarge)?;
        Self::new(value, currency)
    }

    pub fn new(value: Decimal, currency: Currency) -> Result<Self, AmountError> {
        let value = value.normalize();
        if value.is_sign_negative() && !value.is_zero() {
            return Err(AmountError::Negative);
        }
        if value.scale() > currency.minor_units() {
            return Err(AmountError::TooPrecise {
                currency: currency.code(),
                minor_units: currency.minor_units(),
            });
        }
        if value > MAX_AMOUNT {
            return Err(AmountError::TooLarge);
        }
        Ok(Self {
            value: value.abs(),
            currency,
        })
    }

    pub fn value(self) -> Decimal {
        self.value
    }

    pub fn currency(self) -> Currency {
        self.currency
    }

    fn is_plain_decimal(text: &str) -> bool {
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (text, None),
        };
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        // 40 digits is far past MAX_AMOUNT with any scale; longer input is not money.
        text.len() <= 40 && digits(whole) && fraction.is_none_or(digits)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.currency.format(self.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn currency(code: &str) -> Currency {
        code.parse().unwrap()
    }

    #[test]
    fn max_amount_is_ten_to_the_twelfth() {
        assert_eq!(MAX_AMOUNT, Decimal::from(1_000_000_000_000u64));
    }

    #[test]
    fn currencies_know_their_minor_units() {
        assert_eq!(currency("USD").minor_units(), 2);
        assert_eq!(currency("JPY").minor_units(), 0);
        assert_eq!(currency("BHD").minor_units(), 3);
    }

    #[test]
    fn codes_that_are_not_money_are_refused() {
        assert_eq!("usd".parse::<Currency>(), Err(CurrencyError::NotACode));
        assert_eq!("EURO".parse::<Currency>(), Err(CurrencyError::NotACode));
        assert_eq!(
            "XXX".parse::<Currency>(),
            Err(CurrencyError::NotMoney("XXX".into()))
        );
        assert_eq!(
            "ABC".parse::<Currency>(),
            Err(CurrencyError::Unknown("ABC".into()))
        );
    }

    #[test]
    fn amounts_are_exact_and_formatted_with_the_currency_digits() {
        let usd = currency("USD");
        let amount = Amount::parse("99.99", usd).unwrap();
        assert_eq!(amount.to_string(), "99.99");
        assert_eq!(Amount::parse("99.990", usd).unwrap(), amount);
        assert_eq!(Amount::parse("5", usd).unwrap().to_string(), "5.00");
        assert_eq!(
            Amount::parse("1500", currency("JPY")).unwrap().to_string(),
            "1500"
        );
        assert_eq!(
            Amount::parse("1.25", currency("BHD")).unwrap().to_string(),
            "1.250"
        );
        assert!(Amount::parse("1000000000000", usd).is_ok());
        assert!(Amount::parse("0", usd).is_ok());
    }

    #[test]
    fn malformed_amounts_say_why() {
        let usd = currency("USD");
        for text in [
            "abc", "", "1e3", "NaN", " 1", "1.", ".5", "+1", "1,5", "0x10",
        ] {
            assert_eq!(
                Amount::parse(text, usd),
                Err(AmountError::NotADecimal),
                "{text:?}"
            );
        }
        assert_eq!(Amount::parse("-1", usd), Err(AmountError::Negative));
        assert_eq!(
            Amount::parse("1.001", usd),
            Err(AmountError::TooPrecise {
                currency: "USD",
                minor_units: 2
            })
        );
        assert!(matches!(
            Amount::parse("1.5", currency("JPY")),
            Err(AmountError::TooPrecise { .. })
        ));
        assert_eq!(
            Amount::parse("1000000000000.01", usd),
            Err(AmountError::TooLarge)
        );
        assert_eq!(
            Amount::parse(&"9".repeat(35), usd),
            Err(AmountError::TooLarge)
        );
    }

    #[test]
    fn rounding_is_half_up_to_minor_units() {
        let usd = currency("USD");
        assert_eq!(usd.format(Decimal::new(9999, 3)), "10.00");
        assert_eq!(usd.format(Decimal::new(1005, 3)), "1.01");
        assert_eq!(usd.format(Decimal::new(1004, 3)), "1.00");
        assert_eq!(currency("JPY").format(Decimal::new(15, 1)), "2");
        assert_eq!(currency("BHD").format(Decimal::new(12345, 4)), "1.235");
    }
}
