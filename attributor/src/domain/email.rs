use std::fmt;

use sha2::{Digest, Sha256};

/// The SHA-256 of a customer's normalised e-mail address. The address itself is hashed
/// the moment it is read and never stored or logged; the hash is what cross-device
/// attribution matches on.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EmailHash([u8; 32]);

impl EmailHash {
    /// Normalises (trim, lowercase) and hashes. Returns `None` for a blank address.
    pub fn of_address(address: &str) -> Option<Self> {
        let normalised = address.trim().to_lowercase();
        if normalised.is_empty() {
            return None;
        }
        Some(Self(Sha256::digest(normalised.as_bytes()).into()))
    }

    pub fn to_hex(self) -> String {
        super::lower_hex(&self.0)
    }

    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(bytes))
    }
}

impl fmt::Debug for EmailHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailHash({})", &self.to_hex()[..12])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised_before_hashing() {
        let a = EmailHash::of_address("  Jane.Doe@Example.COM ").unwrap();
        let b = EmailHash::of_address("jane.doe@example.com").unwrap();
        assert_eq!(a, b);
        assert_eq!(EmailHash::from_hex(&b.to_hex()), Some(b));
        assert_eq!(EmailHash::of_address("   "), None);
    }

    #[test]
    fn the_hash_is_plain_sha256_of_the_normalised_address() {
        // Brands can match the stored hash in their own warehouse with SHA2 functions.
        let hash = EmailHash::of_address("ABC").unwrap();
        assert_eq!(
            hash.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
