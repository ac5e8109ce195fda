//! Sender types and number helpers.
//!
//! Throughput norms and abuse patterns differ by sender type (protocols.md §8):
//! a person's long code sends about one message per second at most, a short
//! code a hundred. The type is derived from the sender id; only an Android SIM
//! relay cannot be recognized from the number, so the gateway says so.

use serde::{Deserialize, Serialize};

/// NANP toll-free area codes (after `+1`).
const TOLL_FREE_NPAS: [&str; 7] = ["800", "833", "844", "855", "866", "877", "888"];

/// What kind of sender id a message comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SenderKind {
    /// An ordinary E.164 number (10DLC or P2P long code).
    LongCode,
    /// A NANP toll-free number (+1 800/833/844/855/866/877/888).
    TollFree,
    /// A short code: 3–8 digits without `+` (5–6 in North America).
    ShortCode,
    /// An alphanumeric sender id (letters present).
    Alphanumeric,
    /// A SIM in an Android phone relay (only the gateway knows this).
    AndroidSim,
}

impl SenderKind {
    /// All kinds, in feature order.
    pub const ALL: [SenderKind; 5] = [
        SenderKind::LongCode,
        SenderKind::TollFree,
        SenderKind::ShortCode,
        SenderKind::Alphanumeric,
        SenderKind::AndroidSim,
    ];

    /// Derives the kind from a sender id. Android SIMs look like long codes;
    /// the gateway overrides the kind for them.
    pub fn classify(id: &str) -> SenderKind {
        let b = id.as_bytes();
        if let Some(rest) = id.strip_prefix("+") {
            if !rest.is_empty() && rest.bytes().all(|c| c.is_ascii_digit()) {
                if rest.len() == 11
                    && rest.starts_with('1')
                    && TOLL_FREE_NPAS.iter().any(|npa| rest[1..].starts_with(npa))
                {
                    return SenderKind::TollFree;
                }
                return SenderKind::LongCode;
            }
            return SenderKind::Alphanumeric;
        }
        if !b.is_empty() && b.iter().all(u8::is_ascii_digit) {
            // Short codes are 5-6 digits in North America, but 3-8 elsewhere
            // (UK and France 5, Indonesia 4-5, Australia 6-8): a digits-only
            // id too short to be a national number is a short code.
            return if (3..=8).contains(&b.len()) {
                SenderKind::ShortCode
            } else {
                SenderKind::LongCode
            };
        }
        SenderKind::Alphanumeric
    }

    /// Position of this kind in [`SenderKind::ALL`].
    pub fn index(self) -> usize {
        match self {
            SenderKind::LongCode => 0,
            SenderKind::TollFree => 1,
            SenderKind::ShortCode => 2,
            SenderKind::Alphanumeric => 3,
            SenderKind::AndroidSim => 4,
        }
    }
}

/// Numeric value of an E.164 number (`+` and 7–15 digits), used to measure
/// how close two recipients are in number space. `None` for anything else.
pub fn e164_value(number: &str) -> Option<u64> {
    let rest = number.strip_prefix('+')?;
    if !(7..=15).contains(&rest.len()) {
        return None;
    }
    let mut v = 0u64;
    for c in rest.bytes() {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(c - b'0');
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_sender_ids() {
        assert_eq!(SenderKind::classify("+14155550100"), SenderKind::LongCode);
        assert_eq!(SenderKind::classify("+18005550100"), SenderKind::TollFree);
        assert_eq!(SenderKind::classify("+18885550100"), SenderKind::TollFree);
        assert_eq!(SenderKind::classify("+18015550100"), SenderKind::LongCode);
        assert_eq!(SenderKind::classify("+448005550100"), SenderKind::LongCode);
        assert_eq!(SenderKind::classify("12345"), SenderKind::ShortCode);
        assert_eq!(SenderKind::classify("123456"), SenderKind::ShortCode);
        assert_eq!(SenderKind::classify("1234"), SenderKind::ShortCode);
        assert_eq!(SenderKind::classify("12"), SenderKind::LongCode);
        assert_eq!(SenderKind::classify("123456789"), SenderKind::LongCode);
        assert_eq!(SenderKind::classify("ACME Bank"), SenderKind::Alphanumeric);
        assert_eq!(SenderKind::classify("+1ACME"), SenderKind::Alphanumeric);
        assert_eq!(SenderKind::classify(""), SenderKind::Alphanumeric);
    }

    #[test]
    fn e164_values() {
        assert_eq!(e164_value("+14155550100"), Some(14_155_550_100));
        assert_eq!(e164_value("14155550100"), None);
        assert_eq!(e164_value("+1415"), None);
        assert_eq!(e164_value("+1415555010x"), None);
    }
}
