//! Keyed pseudonyms for phone numbers in stored metadata and exports.
//!
//! A pseudonym is `p:` and the first 128 bits of HMAC-SHA256(key, number)
//! in hex: the same number always gives the same pseudonym under one key,
//! so per-sender counts and the spam features built on them keep working,
//! but without the key nobody can test a guessed number against the store
//! (a plain hash of a phone number is reversed by enumerating the number
//! space in minutes).
//!
//! The key is 32 random bytes in `<data_dir>/pseudonym.key` (0600), made on
//! first use. Rotation: move the file aside (or delete it) and restart; a new
//! key is made and applies to pseudonyms made from then on. Old pseudonyms
//! stay as they are (they cannot be turned back into numbers either way), so
//! a sender's counts split at the rotation.

use std::path::Path;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::core::error::{Error, Result};

/// File name of the pseudonym key inside the data directory.
pub const KEY_FILE: &str = "pseudonym.key";
/// What every pseudonym starts with (never a phone number, short code or
/// alphanumeric sender id: those have no colon).
pub const PREFIX: &str = "p:";

/// Turns numbers into pseudonyms with the deployment's key.
pub struct Pseudonyms {
    key: [u8; 32],
}

impl std::fmt::Debug for Pseudonyms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonyms(..)")
    }
}

impl Pseudonyms {
    /// A pseudonymiser with `key` (tests).
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// Reads the key from `data_dir`, making one (0600) when there is none.
    pub fn open_or_create(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join(KEY_FILE);
        if let Ok(bytes) = std::fs::read(&path) {
            let key: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| Error::Keys(format!("{} must hold 32 bytes", path.display())))?;
            return Ok(Self { key });
        }
        crate::core::fs::create_private_dir(data_dir)?;
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        crate::core::fs::write_private_file(&path, &key)?;
        Ok(Self { key })
    }

    /// The pseudonym of `number`.
    pub fn of(&self, number: &str) -> String {
        // HMAC takes a key of any length; 32 bytes cannot fail.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return format!("{PREFIX}unkeyed");
        };
        mac.update(number.as_bytes());
        let tag = mac.finalize().into_bytes();
        format!("{PREFIX}{}", hex::encode(&tag[..16]))
    }

    /// `address` as metadata may keep it: numbers (`+…`) pseudonymised,
    /// short codes, sender ids and pseudonyms unchanged.
    pub fn address(&self, address: &str) -> String {
        if address.starts_with('+') {
            self.of(address)
        } else {
            address.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn consistent_keyed_and_kept_in_its_file() {
        let dir = crate::core::fs::test_dir("pseudonym");
        let a = Pseudonyms::open_or_create(&dir).unwrap();
        let b = Pseudonyms::open_or_create(&dir).unwrap();
        let p = a.of("+14155550100");
        assert_eq!(p, b.of("+14155550100"), "the same key after a restart");
        assert!(p.starts_with(PREFIX) && p.len() == 34, "{p}");
        assert!(!p.contains("4155550100"));
        assert_ne!(p, a.of("+14155550101"));
        assert_ne!(p, Pseudonyms::new([7; 32]).of("+14155550100"), "keyed");
        assert_eq!(a.address("ACME"), "ACME");
        assert_eq!(a.address(&p), p);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
