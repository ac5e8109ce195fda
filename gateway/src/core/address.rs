//! Addresses as they appear in SMS: E.164 numbers (normalised with the
//! `phonenumber` crate), short codes and alphanumeric sender ids.
//!
//! Parse, don't validate: an `Address` can only be built through a checking
//! constructor, so code that holds one never re-checks it.

use std::fmt;
use std::sync::OnceLock;

use phonenumber::country::Id as Region;

use crate::core::error::{Error, Result};

/// What kind of address this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressKind {
    /// A phone number in E.164 (`+` and digits).
    E164,
    /// A 3–8 digit short code.
    ShortCode,
    /// An alphanumeric sender id (up to 11 GSM characters, at least one letter).
    Alphanumeric,
}

/// A checked address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    value: String,
    kind: AddressKind,
}

impl Address {
    /// Parses a phone number (international with `+`, or national in
    /// `region`) into E.164. Used for recipients, which must be numbers.
    pub fn phone(input: &str, region: Region, field: &'static str) -> Result<Self> {
        let trimmed = input.trim();
        if trimmed.is_empty() || trimmed.len() > 32 {
            return Err(Error::invalid(field, "must be a phone number"));
        }
        // phonenumber reads letters as keypad digits ("+1415555O1O1" became
        // +14155556161): a typed O for 0 must be an error, not another person.
        if !trimmed
            .chars()
            .all(|c| c.is_ascii_digit() || "+()-. ".contains(c))
        {
            return Err(Error::invalid(
                field,
                "a phone number has only digits, a leading +, spaces and ()-.",
            ));
        }
        let normalised = if crate::core::numbers::parsed_here(trimmed) {
            normalise(trimmed, region)
        } else {
            let key = (region, trimmed.to_string());
            match cache().get(&key) {
                Some(hit) => hit,
                None => {
                    let fresh = normalise(trimmed, region);
                    cache().insert(key, fresh.clone());
                    fresh
                }
            }
        };
        match normalised {
            Ok(value) => Ok(Self {
                value,
                kind: AddressKind::E164,
            }),
            Err(reason) => Err(Error::invalid(field, reason)),
        }
    }

    /// Parses any sender: a phone number, a short code or an alphanumeric id.
    pub fn sender(input: &str, region: Region, field: &'static str) -> Result<Self> {
        let t = input.trim();
        if !t.is_empty() && t.len() <= 8 && t.len() >= 3 && t.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Self {
                value: t.to_string(),
                kind: AddressKind::ShortCode,
            });
        }
        let has_letter = t.chars().any(|c| c.is_ascii_alphabetic());
        if has_letter {
            let ok = t.chars().count() <= 11
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || " .-_&".contains(c));
            if !ok {
                return Err(Error::invalid(
                    field,
                    "alphanumeric sender ids are at most 11 letters, digits, spaces or .-_&",
                ));
            }
            return Ok(Self {
                value: t.to_string(),
                kind: AddressKind::Alphanumeric,
            });
        }
        Self::phone(t, region, field)
    }

    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The kind.
    pub fn kind(&self) -> AddressKind {
        self.kind
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

/// Numbers remembered by [`Address::phone`]. Each entry is a number and its
/// answer, under 100 bytes, so the cache stays within a few megabytes.
const CACHE_ENTRIES: usize = 32_768;

type Normalised = std::result::Result<String, &'static str>;

/// Parsing and validating with `phonenumber` runs its metadata regexes and
/// was a tenth of the gateway's CPU per message (perf). Traffic repeats its
/// numbers (a route's sender, a conversation's two ends, a sender's
/// recipients), so the answers are memoised in a bounded concurrent cache;
/// a pure function, so a hit answers exactly what a fresh parse would.
/// E.164 texts skip it: `core::numbers` parses those itself in about the
/// time of a lookup, and the insert of every new recipient (a write lock,
/// an eviction) cost more than the parse (perf: a third of what was left
/// of number handling).
fn cache() -> &'static quick_cache::sync::Cache<(Region, String), Normalised> {
    static CACHE: OnceLock<quick_cache::sync::Cache<(Region, String), Normalised>> =
        OnceLock::new();
    CACHE.get_or_init(|| quick_cache::sync::Cache::new(CACHE_ENTRIES))
}

fn normalise(trimmed: &str, region: Region) -> Normalised {
    match crate::core::numbers::normalise(Some(region), trimmed) {
        crate::core::numbers::Normalised::Valid(e164) => Ok(e164),
        crate::core::numbers::Normalised::Invalid => {
            Err("is not a valid phone number for its country")
        }
        crate::core::numbers::Normalised::Unparsable => Err("is not a phone number"),
    }
}

/// Parses a region code from the config (checked at load time).
pub fn region(code: &str) -> Region {
    code.parse().unwrap_or(Region::US)
}

/// A log-safe form of an address: country code and last two digits only, so
/// logs can correlate without holding whole numbers.
pub fn redact(addr: &str) -> String {
    let n = addr.chars().count();
    if n <= 4 {
        return "*".repeat(n);
    }
    let tail: String = addr.chars().skip(n - 2).collect();
    let head: String = addr
        .chars()
        .take(if addr.starts_with('+') { 2 } else { 0 })
        .collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn letters_in_a_number_are_refused_not_dialled() {
        let us = region("US");
        for bad in ["+1415555O1O1", "+1-800-FLOWERS", "415555010l"] {
            let e = Address::phone(bad, us, "to").unwrap_err().to_string();
            assert!(e.contains("to") && e.contains("only digits"), "{bad}: {e}");
        }
        assert_eq!(
            Address::phone("+1 (415) 555-0101", us, "to")
                .unwrap()
                .as_str(),
            "+14155550101"
        );
    }

    #[test]
    fn numbers_normalise_to_e164() {
        let us = region("US");
        assert_eq!(
            Address::phone("+1 415 555 0100", us, "to")
                .unwrap()
                .as_str(),
            "+14155550100"
        );
        assert_eq!(
            Address::phone("(415) 555-0101", us, "to").unwrap().as_str(),
            "+14155550101"
        );
        assert_eq!(
            Address::phone("+44 20 7946 0958", us, "to")
                .unwrap()
                .as_str(),
            "+442079460958"
        );
        assert!(Address::phone("12", us, "to").is_err());
        assert!(Address::phone("hello", us, "to").is_err());
        assert!(Address::phone("", us, "to").is_err());
    }

    #[test]
    fn senders_of_every_kind() {
        let us = region("US");
        assert_eq!(
            Address::sender("12345", us, "from").unwrap().kind(),
            AddressKind::ShortCode
        );
        assert_eq!(
            Address::sender("ACME Bank", us, "from").unwrap().kind(),
            AddressKind::Alphanumeric
        );
        assert!(Address::sender("WAYTOOLONGSENDER", us, "from").is_err());
        assert_eq!(
            Address::sender("+14155550100", us, "from").unwrap().kind(),
            AddressKind::E164
        );
    }

    #[test]
    fn redaction_keeps_little() {
        assert_eq!(redact("+14155550100"), "+1…00");
        assert_eq!(redact("ACME"), "****");
    }
}
