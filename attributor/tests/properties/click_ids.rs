//! Click ids: `clk_` and 44 base64url characters carrying the link and the click's second
//! under an HMAC of the network's click secret. Attribution trusts what a verified id
//! says without asking the clicks table, so any change to an id must be refused.

use attributor::domain::{ClickIdError, ClickSigner, LinkId};
use proptest::prelude::*;
use proptest::sample::Index;
use time::{Duration, OffsetDateTime};

const PREFIX: &str = "clk_";
const ENCODED_LEN: usize = 44;
const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A click secret as the configuration holds it: text from an environment variable, which
/// cannot contain NUL. (HMAC pads short keys with zero bytes, so "k" and "k\0" would be
/// one key.)
fn secret() -> impl Strategy<Value = String> {
    "[^\\x00]{1,80}"
}

fn link() -> impl Strategy<Value = LinkId> {
    any::<[u8; 8]>().prop_map(LinkId::from_bytes)
}

/// Any instant an id can carry: the unix seconds of a u32, with a fraction of a second.
fn clicked_at() -> impl Strategy<Value = OffsetDateTime> {
    (0..=i64::from(u32::MAX), 0..1_000_000_000i64).prop_map(|(seconds, nanos)| {
        OffsetDateTime::from_unix_timestamp(seconds).expect("u32 seconds")
            + Duration::nanoseconds(nanos)
    })
}

fn replaced(text: &str, at: usize, with: char) -> String {
    text.char_indices()
        .map(|(i, c)| if i == at { with } else { c })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// An issued id verifies, on any node with the same secret, to the link and the
    /// whole second it was issued for, and is safe in a URL and a cookie as it is.
    #[test]
    fn an_issued_id_verifies_to_its_link_and_second(
        secret in secret(),
        link in link(),
        at in clicked_at(),
    ) {
        let id = ClickSigner::new(secret.as_bytes()).issue(&link, at);
        let encoded = id.as_str().strip_prefix(PREFIX).unwrap_or_default();
        prop_assert_eq!(encoded.len(), ENCODED_LEN, "{}", id.as_str());
        prop_assert!(encoded.bytes().all(|b| BASE64URL.contains(&b)), "{}", id.as_str());

        let verified = ClickSigner::new(secret.as_bytes()).verify(id.as_str());
        prop_assert_eq!(verified.as_ref(), Ok(&id));
        prop_assert_eq!(id.link(), &link);
        prop_assert_eq!(id.clicked_at(), at.replace_nanosecond(0).expect("zero is valid"));
    }

    /// Changing any one character of an id is refused: a character of the payload or
    /// of the MAC as forged, anything else (prefix, version, a character outside
    /// base64url) as forged or malformed.
    #[test]
    fn changing_any_one_character_is_refused(
        secret in secret(),
        link in link(),
        at in clicked_at(),
        position in any::<Index>(),
        with in prop_oneof![
            3 => proptest::sample::select(BASE64URL).prop_map(char::from),
            1 => any::<char>(),
        ],
    ) {
        let signer = ClickSigner::new(secret.as_bytes());
        let id = signer.issue(&link, at);
        let i = position.index(id.as_str().len());
        prop_assume!(!id.as_str()[i..].starts_with(with));
        let altered = replaced(id.as_str(), i, with);
        let verified = signer.verify(&altered);
        // Characters 4 and 5 encode the version byte; from 6 on, the payload and MAC.
        if i >= PREFIX.len() + 2 && with.is_ascii() && BASE64URL.contains(&(with as u8)) {
            prop_assert_eq!(verified, Err(ClickIdError::Forged), "{}", altered);
        } else {
            prop_assert!(verified.is_err(), "{} verified", altered);
        }
    }

    /// An id cut short or with anything added is malformed.
    #[test]
    fn a_shortened_or_lengthened_id_is_malformed(
        secret in secret(),
        link in link(),
        cut in 1usize..=ENCODED_LEN,
        added in "[A-Za-z0-9_=-]{1,8}",
    ) {
        let signer = ClickSigner::new(secret.as_bytes());
        let id = signer.issue(&link, OffsetDateTime::UNIX_EPOCH);
        let text = id.as_str();
        prop_assert_eq!(signer.verify(&text[..text.len() - cut]), Err(ClickIdError::Malformed));
        prop_assert_eq!(signer.verify(&format!("{text}{added}")), Err(ClickIdError::Malformed));
    }

    /// An id issued under another secret is forged.
    #[test]
    fn an_id_issued_under_another_secret_is_forged(
        (ours, theirs) in (secret(), secret()).prop_filter("two secrets", |(a, b)| a != b),
        link in link(),
        at in clicked_at(),
    ) {
        let id = ClickSigner::new(theirs.as_bytes()).issue(&link, at);
        prop_assert_eq!(
            ClickSigner::new(ours.as_bytes()).verify(id.as_str()),
            Err(ClickIdError::Forged)
        );
    }

    /// Any text is refused without a panic; text that cannot hold 33 bytes behind the
    /// prefix is malformed rather than forged. (A random string passing a 96-bit MAC
    /// is not a case a test can meet.)
    #[test]
    fn any_text_is_refused(
        secret in secret(),
        text in prop_oneof![
            "clk_[A-Za-z0-9_-]{40,48}",
            "clk_[A-Za-z0-9_=+/-]{0,60}",
            "clk_.{0,50}",
            any::<String>(),
        ],
    ) {
        let verified = ClickSigner::new(secret.as_bytes()).verify(&text);
        prop_assert!(verified.is_err(), "{} verified", text);
        let holds_an_id = text
            .strip_prefix(PREFIX)
            .is_some_and(|encoded| encoded.len() == ENCODED_LEN);
        if !holds_an_id {
            prop_assert_eq!(verified, Err(ClickIdError::Malformed), "{}", text);
        }
    }
}
