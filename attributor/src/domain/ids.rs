use std::fmt;

use rand::RngCore;
use xxhash_rust::xxh3::xxh3_128;

/// Why a string is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be an id of the form {prefix}<16 hex digits>")]
pub struct IdError {
    pub prefix: &'static str,
}

fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Ids the network hands out: a prefix and 8 random bytes in lowercase hex. Random rather
/// than sequential so that nothing about volume leaks through them.
macro_rules! random_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn generate() -> Self {
                Self::from_bytes(rand::rng().next_u64().to_be_bytes())
            }

            pub fn from_bytes(bytes: [u8; 8]) -> Self {
                Self(format!("{}{:016x}", $prefix, u64::from_be_bytes(bytes)))
            }

            pub fn parse(text: &str) -> Result<Self, IdError> {
                text.strip_prefix($prefix)
                    .filter(|hex| is_lower_hex(hex, 16))
                    .map(|_| Self(text.to_owned()))
                    .ok_or(IdError { prefix: $prefix })
            }

            /// The 8 bytes behind the hex digits.
            pub fn to_bytes(&self) -> [u8; 8] {
                let value = u64::from_str_radix(&self.0[$prefix.len()..], 16)
                    .expect("ids are checked to be 16 hex digits when built");
                value.to_be_bytes()
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

random_id!(
    /// An advertiser reporting conversions.
    BrandId,
    "brd_"
);
random_id!(
    /// A publisher earning commissions.
    AffiliateId,
    "usr_"
);
random_id!(CampaignId, "camp_");
random_id!(
    /// One affiliate's tracking link for one campaign.
    LinkId,
    "lnk_"
);

/// A conversion's id is a function of (brand, order_id), so every node and every restart
/// derives the same id for the same order without asking anyone: that is what makes
/// concurrent duplicates collapse into one row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ConversionId(String);

impl ConversionId {
    pub const PREFIX: &'static str = "conv_";

    pub fn derive(brand: &BrandId, order_id: &str) -> Self {
        Self(format!("conv_{:032x}", Self::hash(brand, order_id)))
    }

    /// The 64 bits the dedup bloom filter is keyed by; stored beside the row as `dedup_key`
    /// so that the filter can be seeded from one narrow column.
    pub fn dedup_key(&self) -> u64 {
        let hex = &self.0[Self::PREFIX.len() + 16..];
        u64::from_str_radix(hex, 16).expect("conversion ids are 32 hex digits")
    }

    /// The 128 bits behind the hex digits: a compact key for maps of many conversions.
    pub fn key(&self) -> u128 {
        Self::key_of(&self.0).expect("conversion ids are checked when built")
    }

    /// The key of a conversion id given as text, without building the id; `None` if the
    /// text is not a conversion id.
    pub fn key_of(text: &str) -> Option<u128> {
        let hex = text.strip_prefix(Self::PREFIX)?;
        if !is_lower_hex(hex, 32) {
            return None;
        }
        u128::from_str_radix(hex, 16).ok()
    }

    pub fn parse(text: &str) -> Result<Self, IdError> {
        text.strip_prefix(Self::PREFIX)
            .filter(|hex| is_lower_hex(hex, 32))
            .map(|_| Self(text.to_owned()))
            .ok_or(IdError {
                prefix: Self::PREFIX,
            })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn hash(brand: &BrandId, order_id: &str) -> u128 {
        // The brand id has a fixed length, so brand + order_id is unambiguous.
        let mut key = Vec::with_capacity(brand.as_str().len() + order_id.len());
        key.extend_from_slice(brand.as_str().as_bytes());
        key.extend_from_slice(order_id.as_bytes());
        xxh3_128(&key)
    }
}

impl fmt::Display for ConversionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back() {
        let brand = BrandId::generate();
        assert_eq!(BrandId::parse(brand.as_str()), Ok(brand.clone()));
        assert_eq!(BrandId::from_bytes(brand.to_bytes()), brand);
    }

    #[test]
    fn ids_of_another_kind_are_refused() {
        let link = LinkId::generate();
        assert!(BrandId::parse(link.as_str()).is_err());
        assert!(LinkId::parse("lnk_0123").is_err());
        assert!(LinkId::parse("lnk_0123456789ABCDEF").is_err());
    }

    #[test]
    fn conversion_ids_depend_on_brand_and_order_only() {
        let a = BrandId::parse("brd_0000000000000001").unwrap();
        let b = BrandId::parse("brd_0000000000000002").unwrap();
        assert_eq!(
            ConversionId::derive(&a, "o-1"),
            ConversionId::derive(&a, "o-1")
        );
        assert_ne!(
            ConversionId::derive(&a, "o-1"),
            ConversionId::derive(&b, "o-1")
        );
        assert_ne!(
            ConversionId::derive(&a, "o-1"),
            ConversionId::derive(&a, "o-2")
        );
        let id = ConversionId::derive(&a, "o-1");
        assert_eq!(ConversionId::parse(id.as_str()), Ok(id.clone()));
        assert_eq!(id.as_str().len(), "conv_".len() + 32);
    }
}
