//! Order ids and the conversion ids derived from them. An order id is kept byte for byte
//! as sent (no trimming, no case folding): the README's only rules are 1-256 bytes and no
//! control characters, and a blank one is empty. The conversion id is a function of
//! (brand, order id) that every node and every release must compute alike, since
//! duplicates collapse on it.

use attributor::domain::{BrandId, ConversionId, OrderId, OrderIdError};
use proptest::prelude::*;

/// The README: "`order_id` is 1-256 bytes".
const MAX_ORDER_ID_BYTES: usize = 256;

/// Text of every kind an order id field might hold: typical ids, printable ASCII around
/// the length limit, any printable Unicode, whitespace at the edges, anything at all.
fn any_order_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_-]{1,40}",
        "[ -~]{1,40}",
        "[ -~]{250,262}",
        "\\PC{0,100}",
        "[\\s]{0,3}[a-zA-Z0-9]{0,3}[\\s]{0,3}",
        any::<String>(),
    ]
}

/// Order ids that are valid by the README's rules, some near the length limit in bytes.
fn valid_order_text() -> impl Strategy<Value = String> {
    prop_oneof!["[A-Za-z0-9_-]{1,40}", "[ -~]{1,256}", "\\PC{1,64}",]
        .prop_filter("not blank", |text| !text.trim().is_empty())
        .prop_filter("at most 256 bytes", |text| text.len() <= MAX_ORDER_ID_BYTES)
}

fn brand() -> impl Strategy<Value = BrandId> {
    any::<[u8; 8]>().prop_map(BrandId::from_bytes)
}

/// Another order id that a careless normalisation would fold into `order`.
fn near_miss(order: String) -> impl Strategy<Value = (String, String)> {
    let variants = vec![
        order.to_uppercase(),
        order.to_lowercase(),
        format!(" {order}"),
        format!("{order} "),
        format!("{order}\u{a0}"),
    ];
    let other = prop_oneof![proptest::sample::select(variants), valid_order_text()];
    (Just(order), other).prop_filter("two valid order ids", |(a, b)| {
        a != b && b.len() <= MAX_ORDER_ID_BYTES
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// An order id is accepted exactly when it is not blank, at most 256 bytes and free
    /// of control characters; a refusal names a reason that is true of the text.
    #[test]
    fn order_ids_are_accepted_exactly_by_the_rules(text in any_order_text()) {
        let blank = text.trim().is_empty();
        let too_long = text.len() > MAX_ORDER_ID_BYTES;
        let control = text.chars().any(char::is_control);
        match OrderId::parse(&text) {
            Ok(_) => prop_assert!(!blank && !too_long && !control, "{:?} accepted", text),
            Err(OrderIdError::Empty) => prop_assert!(blank, "{:?}", text),
            Err(OrderIdError::TooLong) => prop_assert!(too_long, "{:?}", text),
            Err(OrderIdError::ControlCharacter) => prop_assert!(control, "{:?}", text),
        }
    }

    /// A valid order id survives parsing byte for byte, and parsing what it became gives
    /// it back: parsing is idempotent.
    #[test]
    fn a_valid_order_id_is_kept_as_sent(text in valid_order_text()) {
        let id = OrderId::parse(&text);
        prop_assert!(id.is_ok(), "{:?}: {:?}", text, id);
        let id = id.unwrap();
        prop_assert_eq!(id.as_str(), text.as_str());
        prop_assert_eq!(id.to_string(), text.clone());
        prop_assert_eq!(OrderId::parse(id.as_str()), Ok(id));
    }

    /// A conversion id is the same however often it is derived, has the one form
    /// `conv_` + 32 lowercase hex digits, parses back, and its keys are its digits.
    #[test]
    fn a_conversion_id_is_a_stable_function_of_brand_and_order(
        brand in brand(),
        order in valid_order_text(),
    ) {
        let id = ConversionId::derive(&brand, &order);
        let again = ConversionId::derive(&BrandId::parse(brand.as_str()).unwrap(), &order);
        prop_assert_eq!(&id, &again);
        let hex = id.as_str().strip_prefix(ConversionId::PREFIX).unwrap_or_default();
        prop_assert_eq!(hex.len(), 32, "{}", id);
        prop_assert!(hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')), "{}", id);
        prop_assert_eq!(ConversionId::parse(id.as_str()), Ok(id.clone()));
        prop_assert_eq!(ConversionId::key_of(id.as_str()), Some(id.key()));
        prop_assert_eq!(u128::from_str_radix(hex, 16).ok(), Some(id.key()));
        prop_assert_eq!(id.dedup_key(), id.key() as u64);
    }

    /// One order reported by two brands is two conversions.
    #[test]
    fn brands_do_not_share_conversion_ids(
        (one, other) in (brand(), brand()).prop_filter("two brands", |(a, b)| a != b),
        order in valid_order_text(),
    ) {
        prop_assert_ne!(ConversionId::derive(&one, &order), ConversionId::derive(&other, &order));
    }

    /// Two order ids that differ in any byte (case, a space at either end, a no-break
    /// space) are two conversions of one brand, as the ids are kept as sent.
    #[test]
    fn order_ids_that_differ_are_different_conversions(
        brand in brand(),
        (order, other) in valid_order_text().prop_flat_map(near_miss),
    ) {
        prop_assert_ne!(ConversionId::derive(&brand, &order), ConversionId::derive(&brand, &other));
    }

    /// Any text parses as a conversion id or a brand id only in its one form, without a
    /// panic, and the key of a conversion id exists exactly when the id parses.
    #[test]
    fn any_text_is_an_id_only_in_its_one_form(
        text in prop_oneof![
            "conv_[0-9a-fA-F]{30,34}",
            "brd_[0-9a-fA-F]{14,18}",
            "(conv_|brd_)?.{0,40}",
            any::<String>(),
        ],
    ) {
        let hex_after = |prefix: &str, len: usize| {
            text.strip_prefix(prefix).is_some_and(|hex| {
                hex.len() == len && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            })
        };
        let conversion = hex_after("conv_", 32);
        prop_assert_eq!(ConversionId::parse(&text).is_ok(), conversion, "{:?}", text);
        prop_assert_eq!(ConversionId::key_of(&text).is_some(), conversion, "{:?}", text);
        let brand = BrandId::parse(&text);
        prop_assert_eq!(brand.is_ok(), hex_after("brd_", 16), "{:?}", text);
        if let Ok(brand) = brand {
            prop_assert_eq!(BrandId::from_bytes(brand.to_bytes()), brand);
        }
    }
}

/// Conversions already stored, and every other node, hold ids derived with today's hash;
/// a release that derived them differently would store every replayed order again.
#[test]
fn conversion_ids_of_known_orders_do_not_change() {
    let brand = BrandId::parse("brd_0000000000000001").unwrap();
    for (order, expected) in [
        ("order_456", "conv_9f6534d53fd97494b7fd932455610326"),
        (" order_456", "conv_743d234cf78d801accacecfcece95c73"),
        ("注文-1", "conv_515baddd0aa7be426b9d59c14420facb"),
    ] {
        assert_eq!(
            ConversionId::derive(&brand, order).as_str(),
            expected,
            "{order:?}"
        );
    }
}
