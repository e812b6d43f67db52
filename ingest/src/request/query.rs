//! Query strings and form bodies, read one way everywhere: `name=value` pairs split on `&`,
//! `+` read as a space, percent-escapes decoded, and the decoded bytes required to be
//! UTF-8. A value that is not is refused naming its parameter, never "repaired": replacing
//! the bad bytes with U+FFFD made `order_id=caf%E9` and `order_id=caf%E8` the same order.

use std::borrow::Cow;

use percent_encoding::percent_decode;

use crate::error::ApiError;

/// The decoded pairs, in order, duplicates kept.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct QueryPairs(Vec<(String, String)>);

impl QueryPairs {
    pub fn parse(input: &[u8]) -> Result<Self, ApiError> {
        Self::parse_where(input, |_| true)
    }

    /// Only the parameters named in `wanted`; the others are skipped unread, whatever
    /// their bytes (a tracking link carries parameters of other parties).
    pub fn parse_only(input: &[u8], wanted: &[&str]) -> Result<Self, ApiError> {
        Self::parse_where(input, |name| wanted.contains(&name))
    }

    fn parse_where(input: &[u8], wanted: impl Fn(&str) -> bool) -> Result<Self, ApiError> {
        let mut pairs = Vec::new();
        for part in input.split(|&b| b == b'&').filter(|part| !part.is_empty()) {
            let (name, value) = match part.iter().position(|&b| b == b'=') {
                Some(at) => (&part[..at], &part[at + 1..]),
                None => (part, &[][..]),
            };
            let Some(name) = decode(name) else {
                if wanted("") {
                    return Err(ApiError::BadRequest(
                        "a query parameter's name is not UTF-8 once percent-decoded".into(),
                    ));
                }
                continue;
            };
            if !wanted(&name) {
                continue;
            }
            let value = decode(value).ok_or_else(|| {
                ApiError::invalid(name.clone(), "is not UTF-8 once percent-decoded")
            })?;
            pairs.push((name, value));
        }
        Ok(Self(pairs))
    }

    /// The first value of `name`, if any.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn extend(&mut self, other: QueryPairs) {
        self.0.extend(other.0);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn decode(raw: &[u8]) -> Option<String> {
    let spaced: Cow<'_, [u8]> = if raw.contains(&b'+') {
        Cow::Owned(
            raw.iter()
                .map(|&b| if b == b'+' { b' ' } else { b })
                .collect(),
        )
    } else {
        Cow::Borrowed(raw)
    };
    percent_decode(&spaced)
        .decode_utf8()
        .ok()
        .map(Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn field_of(error: ApiError) -> String {
        match error {
            ApiError::Invalid { field, .. } => field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn pairs_decode_as_forms_do() {
        let pairs = QueryPairs::parse(b"a=1&b=x+y&c=%C3%A9t%C3%A9&d&&a=2").unwrap();
        assert_eq!(pairs.first("a"), Some("1"));
        assert_eq!(pairs.first("b"), Some("x y"));
        assert_eq!(pairs.first("c"), Some("été"));
        assert_eq!(pairs.first("d"), Some(""));
        assert_eq!(pairs.iter().filter(|(k, _)| *k == "a").count(), 2);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_refused_naming_the_parameter() {
        for query in ["order_id=caf%E9", "x=1&order_id=caf%E8", "order_id=%FF%FE"] {
            let error = QueryPairs::parse(query.as_bytes()).unwrap_err();
            assert_eq!(field_of(error), "order_id", "{query}");
        }
        assert!(matches!(
            QueryPairs::parse(b"%FF=1"),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn parameters_not_asked_for_are_skipped_whatever_their_bytes() {
        let pairs = QueryPairs::parse_only(b"utm=%FF&%FE=x&sub1=a+b", &["sub1"]).unwrap();
        assert_eq!(pairs.first("sub1"), Some("a b"));
        assert_eq!(pairs.first("utm"), None);
        let error = QueryPairs::parse_only(b"sub2=%FF", &["sub1", "sub2"]).unwrap_err();
        assert_eq!(field_of(error), "sub2");
    }

    proptest! {
        /// Any input either parses or is refused with a 4xx; and every value that parses
        /// is exactly what its UTF-8 text percent-encodes to.
        #[test]
        fn any_input_parses_or_is_refused(input in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = QueryPairs::parse(&input);
        }

        #[test]
        fn encoded_text_reads_back_as_itself(name in "[a-z_]{1,12}", value in "\\PC{0,24}") {
            let encoded: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair(&name, &value)
                .finish();
            let pairs = QueryPairs::parse(encoded.as_bytes()).unwrap();
            prop_assert_eq!(pairs.first(&name), Some(value.as_str()));
        }
    }
}
