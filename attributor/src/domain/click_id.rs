use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use time::OffsetDateTime;

use super::LinkId;

const VERSION: u8 = 1;
const PAYLOAD_LEN: usize = 1 + 8 + 4 + 8;
const MAC_LEN: usize = 12;
const PREFIX: &str = "clk_";

/// Why a click id was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClickIdError {
    #[error("is not an Affilync click id")]
    Malformed,
    #[error("was not issued by this network")]
    Forged,
}

/// A click id carries the link it came through and when, under a MAC. Attribution reads
/// both straight out of the id, so a conversion never waits for the clicks table, and a
/// forged or altered id is refused without a database round trip.
///
/// Layout before base64url: version (1) ‖ link (8) ‖ unix seconds (4) ‖ random (8) ‖
/// HMAC-SHA256 truncated to 96 bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickId {
    text: String,
    link: LinkId,
    clicked_at: OffsetDateTime,
}

impl ClickId {
    /// A click id read back from this network's own tables, where it was written only
    /// after [`ClickSigner::verify`] or [`ClickSigner::issue`]: its layout is checked, its
    /// MAC is not (the secret may have been rotated since).
    pub fn from_stored(text: &str) -> Result<ClickId, ClickIdError> {
        Ok(ClickId::from_raw(text, &decode(text)?))
    }

    fn from_raw(text: &str, raw: &[u8; PAYLOAD_LEN + MAC_LEN]) -> ClickId {
        let link = LinkId::from_bytes(raw[1..9].try_into().expect("8 bytes"));
        let seconds = u32::from_be_bytes(raw[9..13].try_into().expect("4 bytes"));
        ClickId {
            text: text.to_owned(),
            link,
            clicked_at: OffsetDateTime::from_unix_timestamp(seconds.into())
                .expect("u32 seconds are a valid time"),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn link(&self) -> &LinkId {
        &self.link
    }

    pub fn clicked_at(&self) -> OffsetDateTime {
        self.clicked_at
    }
}

/// The bytes under the prefix and base64url, if they have the layout of this version.
fn decode(text: &str) -> Result<[u8; PAYLOAD_LEN + MAC_LEN], ClickIdError> {
    let encoded = text.strip_prefix(PREFIX).ok_or(ClickIdError::Malformed)?;
    let mut raw = [0u8; PAYLOAD_LEN + MAC_LEN];
    match URL_SAFE_NO_PAD.decode_slice(encoded, &mut raw) {
        Ok(len) if len == raw.len() && raw[0] == VERSION => Ok(raw),
        _ => Err(ClickIdError::Malformed),
    }
}

impl std::fmt::Display for ClickId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Issues and verifies click ids with the network's click secret. Every node that shares
/// the secret accepts every other node's ids.
#[derive(Clone)]
pub struct ClickSigner {
    mac: Hmac<Sha256>,
}

impl ClickSigner {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            mac: Hmac::new_from_slice(secret).expect("hmac accepts keys of any length"),
        }
    }

    pub fn issue(&self, link: &LinkId, clicked_at: OffsetDateTime) -> ClickId {
        let mut raw = [0u8; PAYLOAD_LEN + MAC_LEN];
        raw[0] = VERSION;
        raw[1..9].copy_from_slice(&link.to_bytes());
        let seconds = u32::try_from(clicked_at.unix_timestamp()).unwrap_or(u32::MAX);
        raw[9..13].copy_from_slice(&seconds.to_be_bytes());
        rand::rng().fill_bytes(&mut raw[13..PAYLOAD_LEN]);
        let tag = self.tag(&raw[..PAYLOAD_LEN]);
        raw[PAYLOAD_LEN..].copy_from_slice(&tag[..MAC_LEN]);

        let mut text = String::with_capacity(PREFIX.len() + 44);
        text.push_str(PREFIX);
        URL_SAFE_NO_PAD.encode_string(raw, &mut text);
        ClickId {
            text,
            link: link.clone(),
            clicked_at: OffsetDateTime::from_unix_timestamp(seconds.into())
                .expect("u32 seconds are a valid time"),
        }
    }

    pub fn verify(&self, text: &str) -> Result<ClickId, ClickIdError> {
        let raw = decode(text)?;
        let mut mac = self.mac.clone();
        mac.update(&raw[..PAYLOAD_LEN]);
        mac.verify_truncated_left(&raw[PAYLOAD_LEN..])
            .map_err(|_| ClickIdError::Forged)?;
        Ok(ClickId::from_raw(text, &raw))
    }

    fn tag(&self, payload: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(payload);
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for ClickSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClickSigner(<secret>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> ClickSigner {
        ClickSigner::new(b"test secret")
    }

    #[test]
    fn issued_ids_verify_and_carry_link_and_time() {
        let link = LinkId::generate();
        let at = OffsetDateTime::from_unix_timestamp(1_774_000_000).unwrap();
        let id = signer().issue(&link, at);
        let back = signer().verify(id.as_str()).unwrap();
        assert_eq!(back.link(), &link);
        assert_eq!(back.clicked_at(), at);
        assert!(id.as_str().starts_with("clk_"));
    }

    #[test]
    fn stored_ids_decode_under_any_secret_but_garbage_does_not() {
        let link = LinkId::generate();
        let at = OffsetDateTime::from_unix_timestamp(1_774_000_000).unwrap();
        let id = signer().issue(&link, at);
        assert_eq!(ClickId::from_stored(id.as_str()), Ok(id.clone()));
        assert_eq!(
            ClickId::from_stored("clk_garbage"),
            Err(ClickIdError::Malformed)
        );
        assert_eq!(ClickId::from_stored(""), Err(ClickIdError::Malformed));
    }

    #[test]
    fn two_clicks_on_one_link_get_different_ids() {
        let link = LinkId::generate();
        let now = OffsetDateTime::now_utc();
        assert_ne!(signer().issue(&link, now), signer().issue(&link, now));
    }

    #[test]
    fn a_changed_character_or_another_secret_is_refused() {
        let id = signer().issue(&LinkId::generate(), OffsetDateTime::now_utc());
        let mut bytes = id.as_str().as_bytes().to_vec();
        let i = 10;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(bytes).unwrap();
        assert_eq!(signer().verify(&altered), Err(ClickIdError::Forged));
        assert_eq!(
            ClickSigner::new(b"other").verify(id.as_str()),
            Err(ClickIdError::Forged)
        );
    }

    #[test]
    fn strings_that_are_not_click_ids_are_malformed() {
        for text in ["", "clk_abc123", "abc", "clk_!!!!", &"clk_".repeat(20)] {
            assert_eq!(
                signer().verify(text),
                Err(ClickIdError::Malformed),
                "{text}"
            );
        }
    }
}
