//! Addresses as they appear in SMS: E.164 numbers (normalised with the
//! `phonenumber` crate), short codes and alphanumeric sender ids.
//!
//! Parse, don't validate: an `Address` can only be built through a checking
//! constructor, so code that holds one never re-checks it.

use std::fmt;

use phonenumber::country::Id as Region;

use crate::error::{Error, Result};

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
        let n = phonenumber::parse(Some(region), trimmed)
            .map_err(|_| Error::invalid(field, "is not a phone number"))?;
        if !phonenumber::is_valid(&n) {
            return Err(Error::invalid(
                field,
                "is not a valid phone number for its country",
            ));
        }
        Ok(Self {
            value: n.format().mode(phonenumber::Mode::E164).to_string(),
            kind: AddressKind::E164,
        })
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
