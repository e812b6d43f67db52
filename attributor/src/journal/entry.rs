//! One journal record: what it holds and how it is laid out on disk.
//!
//! A record is `format (1) ‖ journaled_at_ms (8, LE) ‖ postcard(Entry) ‖ xxh3_64 (8, LE)`;
//! the checksum covers everything before it. The store engine has checksums of its own for
//! its pages and its log; this one is end to end, from the encoder to the shipper, so a
//! record damaged anywhere on the way is dropped and logged instead of being shipped wrong.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use xxhash_rust::xxh3::xxh3_64;

use crate::store::{ClickRow, ConversionRow, StatusChangeRow};

/// Bumped when `Entry` changes shape; a record of an unknown format is refused, never
/// guessed at.
const FORMAT: u8 = 1;
const HEADER_BYTES: usize = 1 + 8;
const CHECKSUM_BYTES: usize = 8;

/// What the journal holds: everything the shipper needs to write a row, fixed when the
/// record is written. A conversion row is a conversion's first version or a later one (a
/// status change); its commission row is derived from it, so the two can never disagree.
/// A status change also leaves its history row, in the same append.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Entry {
    Conversion(ConversionRow),
    Click(ClickRow),
    // Last, so that records journaled before it existed still decode.
    StatusChange(StatusChangeRow),
}

/// Why a stored record could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the record is {0} bytes, shorter than any record")]
    Truncated(usize),
    #[error("the record's checksum does not match its contents")]
    Checksum,
    #[error("the record has format {0}, which this build does not know")]
    UnknownFormat(u8),
    #[error("the record's contents do not decode: {0}")]
    Contents(String),
}

/// A record as read back: when it was journaled and what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub journaled_at_ms: u64,
    pub entry: Entry,
}

impl Entry {
    /// The record's bytes, checksum included.
    pub fn encode(&self, journaled_at: OffsetDateTime) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(768);
        bytes.push(FORMAT);
        bytes.extend_from_slice(&unix_ms(journaled_at).to_le_bytes());
        let mut bytes = postcard::to_extend(self, bytes)
            .expect("journal entries always serialize: every field is a plain value");
        let checksum = xxh3_64(&bytes);
        bytes.extend_from_slice(&checksum.to_le_bytes());
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
        if bytes.len() < HEADER_BYTES + CHECKSUM_BYTES {
            return Err(DecodeError::Truncated(bytes.len()));
        }
        let (body, checksum) = bytes.split_at(bytes.len() - CHECKSUM_BYTES);
        let checksum = u64::from_le_bytes(checksum.try_into().expect("8 bytes"));
        if xxh3_64(body) != checksum {
            return Err(DecodeError::Checksum);
        }
        if body[0] != FORMAT {
            return Err(DecodeError::UnknownFormat(body[0]));
        }
        let journaled_at_ms = u64::from_le_bytes(body[1..HEADER_BYTES].try_into().expect("8"));
        let entry = postcard::from_bytes(&body[HEADER_BYTES..])
            .map_err(|error| DecodeError::Contents(error.to_string()))?;
        Ok(Decoded {
            journaled_at_ms,
            entry,
        })
    }
}

pub fn unix_ms(at: OffsetDateTime) -> u64 {
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn click() -> Entry {
        Entry::Click(ClickRow {
            click_id: "clk_x".into(),
            clicked_at: datetime!(2026-03-20 14:30:00 UTC),
            link_id: "lnk_0000000000000001".into(),
            campaign_id: "camp_0000000000000001".into(),
            affiliate_id: "usr_0000000000000001".into(),
            brand_id: "brd_0000000000000001".into(),
            ip: "203.0.113.7".into(),
            forwarded_for: String::new(),
            user_agent: "Mozilla/5.0".into(),
            referer: String::new(),
            sub1: "a".into(),
            sub2: String::new(),
            sub3: String::new(),
            sub4: String::new(),
            sub5: String::new(),
        })
    }

    #[test]
    fn records_read_back_as_written() {
        let at = datetime!(2026-03-20 14:30:00.250 UTC);
        let bytes = click().encode(at);
        let decoded = Entry::decode(&bytes).unwrap();
        assert_eq!(decoded.entry, click());
        assert_eq!(decoded.journaled_at_ms, unix_ms(at));
    }

    #[test]
    fn any_changed_byte_is_caught() {
        let bytes = click().encode(OffsetDateTime::now_utc());
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x01;
            assert!(Entry::decode(&damaged).is_err(), "byte {i}");
        }
        assert_eq!(
            Entry::decode(&bytes[..bytes.len() - 3]),
            Err(DecodeError::Checksum)
        );
        assert_eq!(Entry::decode(&bytes[..5]), Err(DecodeError::Truncated(5)));
    }
}
