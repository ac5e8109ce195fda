//! Which SMPP server client owns an inbound message's recipient.
//!
//! A client registers the numbers its application answers for
//! (`gateway smpp client add NAME --address …`). Inbound messages (from any
//! adapter) to one of them go to that client as `deliver_sm` instead of to
//! the private side. An address is one of:
//!
//! * an exact number: E.164 (`+14155550100`, national forms are normalised
//!   with the configured region) or a short code (3–8 digits);
//! * an E.164 prefix ending in `*` (`+1415555*`): every number starting
//!   with it, so a client can own a block of numbers without listing each.
//!
//! The most specific match wins: an exact number before any prefix, a
//! longer prefix before a shorter one. The same number or the same prefix
//! cannot belong to two clients (refused when the client is added), so a
//! match is never ambiguous. There are no ranges (`+1…00-+1…99`): a prefix
//! covers the blocks carriers hand out, and a range that is not a prefix
//! is rare enough to be written as several prefixes.
//!
//! Pure: no I/O. The server keeps one [`Owners`] built from the
//! `smpp_clients` table and rebuilds it when the table changes.

use std::collections::HashMap;

use phonenumber::country::Id as Region;

use crate::core::address::{Address, AddressKind};
use crate::core::error::{Error, Result};

/// Longest prefix: E.164 numbers have at most 15 digits.
const MAX_PREFIX_DIGITS: usize = 15;

/// Normalises one `--address` value into its stored form: the E.164 or
/// short-code number, or `+<digits>*` for a prefix.
pub fn normalise(input: &str, region: Region) -> Result<String> {
    let t = input.trim();
    if let Some(prefix) = t.strip_suffix('*') {
        let digits = prefix.strip_prefix('+').ok_or_else(|| {
            Error::invalid(
                "address",
                "a prefix is an international number start with + and ends in *",
            )
        })?;
        if digits.is_empty()
            || digits.len() >= MAX_PREFIX_DIGITS
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || digits.starts_with('0')
        {
            return Err(Error::invalid(
                "address",
                "a prefix is + and 1 to 14 digits (no leading 0), then *",
            ));
        }
        return Ok(format!("+{digits}*"));
    }
    let a = Address::sender(t, region, "address")?;
    if a.kind() == AddressKind::Alphanumeric {
        return Err(Error::invalid(
            "address",
            "must be a phone number, a short code or a +prefix*",
        ));
    }
    Ok(a.as_str().to_string())
}

/// The first address of `wanted` that another client already owns, with
/// that client's id.
pub fn conflict<'a>(
    clients: &'a [(String, Vec<String>)],
    system_id: &str,
    wanted: &'a [String],
) -> Option<(&'a str, &'a str)> {
    wanted.iter().find_map(|w| {
        clients
            .iter()
            .filter(|(sid, _)| sid != system_id)
            .find(|(_, addrs)| addrs.iter().any(|a| a == w))
            .map(|(sid, _)| (w.as_str(), sid.as_str()))
    })
}

/// Address → client, for the inbound path (one lookup per message).
#[derive(Debug, Default, Clone)]
pub struct Owners {
    exact: HashMap<String, String>,
    /// `(digits after +, client)`, longest first.
    prefixes: Vec<(String, String)>,
}

impl Owners {
    /// Builds the table from `(system_id, stored addresses)`. Values that
    /// do not parse (rows written by an older version without checks) are
    /// normalised once more and skipped when still invalid; returns them
    /// too, for a warning.
    pub fn build(clients: &[(String, Vec<String>)], region: Region) -> (Self, Vec<String>) {
        let mut out = Self::default();
        let mut skipped = Vec::new();
        for (sid, addrs) in clients {
            for a in addrs {
                match normalise(a, region) {
                    Ok(n) => match n.strip_suffix('*') {
                        Some(p) => out.prefixes.push((p.to_string(), sid.clone())),
                        None => {
                            out.exact.entry(n).or_insert_with(|| sid.clone());
                        }
                    },
                    Err(_) => skipped.push(sid.clone()),
                }
            }
        }
        // Longest first; ties (the same prefix twice, only possible in rows
        // written without the check) go to the smaller system_id, stably.
        out.prefixes
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.1.cmp(&b.1)));
        (out, skipped)
    }

    /// The client that owns `to` (a normalised address), if any.
    pub fn owner(&self, to: &str) -> Option<&str> {
        if let Some(sid) = self.exact.get(to) {
            return Some(sid);
        }
        if !to.starts_with('+') {
            return None;
        }
        self.prefixes
            .iter()
            .find(|(p, _)| to.starts_with(p.as_str()))
            .map(|(_, sid)| sid.as_str())
    }

    /// True when no client owns any address (the inbound path skips the lookup).
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn us() -> Region {
        Region::US
    }

    #[test]
    fn addresses_normalise_and_bad_ones_are_refused() {
        assert_eq!(normalise("+1 415 555 0100", us()).unwrap(), "+14155550100");
        assert_eq!(normalise("(415) 555-0100", us()).unwrap(), "+14155550100");
        assert_eq!(normalise("12345", us()).unwrap(), "12345");
        assert_eq!(normalise("+1415555*", us()).unwrap(), "+1415555*");
        for bad in [
            "ACME",
            "1415555*",
            "+*",
            "+0123*",
            "+1a*",
            "+123456789012345*",
            "",
        ] {
            assert!(normalise(bad, us()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_most_specific_owner_wins() {
        let clients = vec![
            ("wide".to_string(), vec!["+1415*".to_string()]),
            (
                "narrow".to_string(),
                vec!["+1415555*".to_string(), "12345".to_string()],
            ),
            ("one".to_string(), vec!["+14155550100".to_string()]),
            ("old-row".to_string(), vec!["not a number".to_string()]),
        ];
        let (o, skipped) = Owners::build(&clients, us());
        assert_eq!(skipped, vec!["old-row".to_string()]);
        assert_eq!(o.owner("+14155550100"), Some("one"));
        assert_eq!(o.owner("+14155550101"), Some("narrow"));
        assert_eq!(o.owner("+14159990000"), Some("wide"));
        assert_eq!(o.owner("+14165550100"), None);
        assert_eq!(o.owner("12345"), Some("narrow"));
        // A short code is not a prefix match of an E.164 prefix.
        assert_eq!(o.owner("1415"), None);
        assert!(!o.is_empty());
        assert!(Owners::build(&[], us()).0.is_empty());
    }

    #[test]
    fn an_address_belongs_to_one_client() {
        let clients = vec![
            ("a".to_string(), vec!["+14155550100".to_string()]),
            ("b".to_string(), vec!["+1415*".to_string()]),
        ];
        let wanted = vec!["+14155550199".to_string(), "+1415*".to_string()];
        assert_eq!(conflict(&clients, "c", &wanted), Some(("+1415*", "b")));
        // Overlapping (but not equal) patterns are fine.
        assert_eq!(conflict(&clients, "c", &wanted[..1]), None);
        // A client does not conflict with itself.
        assert_eq!(conflict(&clients, "b", &wanted), None);
    }
}
