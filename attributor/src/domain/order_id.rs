use std::fmt;

/// The brand's own identifier for an order: the idempotency key of a conversion within
/// its brand. Kept byte for byte as sent; only its size and printability are checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderId(String);

pub const MAX_ORDER_ID_BYTES: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderIdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_ORDER_ID_BYTES} bytes")]
    TooLong,
    #[error("must not contain control characters")]
    ControlCharacter,
}

impl OrderId {
    pub fn parse(text: &str) -> Result<Self, OrderIdError> {
        if text.trim().is_empty() {
            return Err(OrderIdError::Empty);
        }
        if text.len() > MAX_ORDER_ID_BYTES {
            return Err(OrderIdError::TooLong);
        }
        if text.chars().any(char::is_control) {
            return Err(OrderIdError::ControlCharacter);
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_are_checked_for_size_and_control_characters() {
        assert!(OrderId::parse("order_456").is_ok());
        assert!(OrderId::parse(&"x".repeat(256)).is_ok());
        assert_eq!(OrderId::parse(&"x".repeat(257)), Err(OrderIdError::TooLong));
        assert_eq!(OrderId::parse(""), Err(OrderIdError::Empty));
        assert_eq!(OrderId::parse("  "), Err(OrderIdError::Empty));
        assert_eq!(OrderId::parse("a\nb"), Err(OrderIdError::ControlCharacter));
    }
}
