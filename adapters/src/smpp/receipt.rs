//! SMPP delivery receipts: the `short_message` text of a `deliver_sm` with
//! `esm_class` 0x04 (SMPP 3.4 appendix B), and the `message_state` TLV that
//! SMPP 3.4+ SMSCs add.
//!
//! The text format is informative in the specification, so SMSCs vary: keys
//! in any case (`Text:` / `text:`), fields missing, dates with or without
//! seconds, the id in hex in `submit_sm_resp` but decimal in the receipt
//! (Jasmin's `dlr_msgid` option exists for that). The parser is therefore
//! lenient about everything except the two fields a receipt is useless
//! without: `id` and `stat`.
//!
//! The `text:` field (the first characters of the message in the original
//! format) is never parsed into a value and never written by
//! [`Receipt::format`]: message text must not travel in receipts the gateway
//! makes, and is not needed from receipts it reads.

use time::OffsetDateTime;

use crate::Error;

/// Longest receipt text accepted (a `short_message` holds 254 octets; some
/// SMSCs put it in `message_payload`, so allow more but stay bounded).
pub const MAX_RECEIPT_LEN: usize = 1024;

/// The final (or intermediate) state a receipt reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stat {
    /// `ENROUTE`: still on its way (intermediate).
    Enroute,
    /// `DELIVRD`: delivered to the handset.
    Delivered,
    /// `EXPIRED`: validity period passed.
    Expired,
    /// `DELETED`: deleted by the SMSC or an operator.
    Deleted,
    /// `UNDELIV`: undeliverable.
    Undeliverable,
    /// `ACCEPTD`: accepted on behalf of the subscriber (intermediate).
    Accepted,
    /// `UNKNOWN`: state unknown.
    Unknown,
    /// `REJECTD`: rejected.
    Rejected,
}

impl Stat {
    /// The seven-letter word of SMPP 3.4 appendix B.
    pub const fn word(self) -> &'static str {
        match self {
            Self::Enroute => "ENROUTE",
            Self::Delivered => "DELIVRD",
            Self::Expired => "EXPIRED",
            Self::Deleted => "DELETED",
            Self::Undeliverable => "UNDELIV",
            Self::Accepted => "ACCEPTD",
            Self::Unknown => "UNKNOWN",
            Self::Rejected => "REJECTD",
        }
    }

    /// Reads a stat word; also the long spellings some SMSCs use
    /// (`DELIVERED`, `UNDELIVERABLE`, `FAILED`, …). Case-insensitive.
    pub fn parse(word: &str) -> Option<Self> {
        let w = word.trim().to_ascii_uppercase();
        Some(match w.as_str() {
            "ENROUTE" => Self::Enroute,
            "DELIVRD" | "DELIVERED" => Self::Delivered,
            "EXPIRED" => Self::Expired,
            "DELETED" => Self::Deleted,
            "UNDELIV" | "UNDELIVERABLE" | "FAILED" => Self::Undeliverable,
            "ACCEPTD" | "ACCEPTED" => Self::Accepted,
            "UNKNOWN" => Self::Unknown,
            "REJECTD" | "REJECTED" => Self::Rejected,
            _ => return None,
        })
    }

    /// From the `message_state` TLV (0x0427) value.
    pub const fn from_message_state(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Enroute,
            2 => Self::Delivered,
            3 => Self::Expired,
            4 => Self::Deleted,
            5 => Self::Undeliverable,
            6 => Self::Accepted,
            7 => Self::Unknown,
            8 => Self::Rejected,
            _ => return None,
        })
    }

    /// The `message_state` TLV value of this state.
    pub const fn message_state(self) -> u8 {
        match self {
            Self::Enroute => 1,
            Self::Delivered => 2,
            Self::Expired => 3,
            Self::Deleted => 4,
            Self::Undeliverable => 5,
            Self::Accepted => 6,
            Self::Unknown => 7,
            Self::Rejected => 8,
        }
    }

    /// The gateway status this state means: `Some("delivered")`,
    /// `Some("failed")`, or `None` for intermediate states (`ENROUTE`,
    /// `ACCEPTD`), which change nothing. `UNKNOWN` counts as failed: it is
    /// final in SMPP, and "delivered" would be a claim nobody made.
    pub const fn gateway_status(self) -> Option<&'static str> {
        match self {
            Self::Enroute | Self::Accepted => None,
            Self::Delivered => Some("delivered"),
            Self::Expired
            | Self::Deleted
            | Self::Undeliverable
            | Self::Unknown
            | Self::Rejected => Some("failed"),
        }
    }
}

/// A parsed (or to-be-formatted) delivery receipt, without its `text:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The message id the SMSC gave in `submit_sm_resp` (maybe in another base).
    pub id: String,
    /// `sub:` submitted parts (as written, usually `001`).
    pub sub: Option<String>,
    /// `dlvrd:` delivered parts.
    pub dlvrd: Option<String>,
    /// `submit date:` as written (`YYMMDDhhmm` or `YYMMDDhhmmss`).
    pub submit_date: Option<String>,
    /// `done date:` as written.
    pub done_date: Option<String>,
    /// `stat:`.
    pub stat: Stat,
    /// `err:` network-specific error code as written (e.g. `000`).
    pub err: Option<String>,
}

/// The longest value of a receipt field (an SMPP message id's limit).
const MAX_FIELD_LEN: usize = 65;

const KEYS: [&str; 8] = [
    "id:",
    "sub:",
    "dlvrd:",
    "submit date:",
    "done date:",
    "stat:",
    "err:",
    "text:",
];

fn bad(reason: &'static str) -> Error {
    Error::Smpp {
        field: "delivery receipt",
        reason,
    }
}

impl Receipt {
    /// Parses receipt text. Unknown fields are skipped; `id` and `stat` are
    /// required. Everything after `text:` is ignored unread.
    pub fn parse(raw: &[u8]) -> Result<Self, Error> {
        if raw.len() > MAX_RECEIPT_LEN {
            return Err(bad("longer than 1024 octets"));
        }
        // Receipts are ASCII; anything else (in the text field) is cut off
        // below, so a lossy view costs nothing.
        let s = String::from_utf8_lossy(raw);
        let lower = s.to_ascii_lowercase();
        // Positions where a known key starts: at the start or after a space.
        let mut marks: Vec<(usize, usize)> = Vec::new(); // (key index, start)
        let bytes = lower.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if i == 0 || bytes[i - 1] == b' ' {
                if let Some(k) = KEYS.iter().position(|k| lower[i..].starts_with(k)) {
                    marks.push((k, i));
                    if KEYS[k] == "text:" {
                        break;
                    }
                    i += KEYS[k].len();
                    continue;
                }
            }
            i += lower[i..].chars().next().map_or(1, char::len_utf8);
        }
        let mut fields: [Option<String>; 8] = Default::default();
        for (n, &(k, start)) in marks.iter().enumerate() {
            if KEYS[k] == "text:" {
                break;
            }
            let from = start + KEYS[k].len();
            let to = marks.get(n + 1).map_or(s.len(), |&(_, st)| st);
            // Every value is one token (dates have no spaces); whatever
            // follows it up to the next key is an unknown field.
            let v = s
                .get(from..to)
                .and_then(|v| v.split_whitespace().next())
                .unwrap_or("");
            if fields[k].is_none() {
                fields[k] = Some(v.to_string());
            }
        }
        // A message id is at most 65 octets, and the other fields are a few
        // digits or a word; anything longer is not a receipt (and would not
        // fit one formatted again).
        if fields.iter().flatten().any(|v| v.len() > MAX_FIELD_LEN) {
            return Err(bad("a field longer than 65 octets"));
        }
        let [id, sub, dlvrd, submit_date, done_date, stat, err, _] = fields;
        let id = id.filter(|v| !v.is_empty()).ok_or(bad("no id field"))?;
        let stat = stat.ok_or(bad("no stat field"))?;
        let stat = Stat::parse(&stat).ok_or(bad("unknown stat word"))?;
        Ok(Self {
            id,
            sub,
            dlvrd,
            submit_date,
            done_date,
            stat,
            err,
        })
    }

    /// Formats the receipt in the SMPP 3.4 appendix B layout, with an empty
    /// `text:` (see the module comment).
    pub fn format(&self) -> String {
        let or = |v: &Option<String>, d: &str| v.clone().unwrap_or_else(|| d.to_string());
        format!(
            "id:{} sub:{} dlvrd:{} submit date:{} done date:{} stat:{} err:{} text:",
            self.id,
            or(&self.sub, "001"),
            or(&self.dlvrd, "000"),
            or(&self.submit_date, "0000000000"),
            or(&self.done_date, "0000000000"),
            self.stat.word(),
            or(&self.err, "000"),
        )
    }

    /// A receipt date, `YYMMDDhhmm` in UTC.
    pub fn date(t: OffsetDateTime) -> String {
        let t = t.to_offset(time::UtcOffset::UTC);
        format!(
            "{:02}{:02}{:02}{:02}{:02}",
            t.year().rem_euclid(100),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        )
    }
}

/// The forms an SMSC message id may take in a receipt: as given, and the
/// same number in the other base (hex in `submit_sm_resp`, decimal in the
/// receipt, or the reverse). Callers look each up until one matches.
pub fn id_forms(id: &str) -> Vec<String> {
    let mut out = vec![id.to_string()];
    let mut push = |s: String| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    if !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = id.parse::<u64>() {
            push(format!("{n:x}"));
            push(format!("{n:X}"));
        }
    }
    if !id.is_empty() && id.len() <= 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        if let Ok(n) = u64::from_str_radix(id, 16) {
            push(n.to_string());
            push(format!("{n:x}"));
            push(format!("{n:X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_the_appendix_b_layout_and_real_variants() {
        let r = Receipt::parse(
            b"id:1234567890 sub:001 dlvrd:001 submit date:2603011200 done date:2603011201 stat:DELIVRD err:000 text:Hello wor",
        )
        .unwrap();
        assert_eq!(r.id, "1234567890");
        assert_eq!(r.stat, Stat::Delivered);
        assert_eq!(r.submit_date.as_deref(), Some("2603011200"));
        assert_eq!(r.done_date.as_deref(), Some("2603011201"));
        assert_eq!(r.err.as_deref(), Some("000"));
        // ksmppd #63 style: seconds in dates, capital "Text:", hex id.
        let r = Receipt::parse(
            b"id:6C1B9D4A sub:001 dlvrd:000 submit date:260301120000 done date:260301120105 stat:UNDELIV err:034 Text:",
        )
        .unwrap();
        assert_eq!((r.id.as_str(), r.stat), ("6C1B9D4A", Stat::Undeliverable));
        assert_eq!(r.stat.gateway_status(), Some("failed"));
        // Keys in other case, fields missing, extra spaces.
        let r = Receipt::parse(b"ID:abc  STAT:enroute").unwrap();
        assert_eq!((r.id.as_str(), r.stat), ("abc", Stat::Enroute));
        assert_eq!(r.stat.gateway_status(), None);
        assert_eq!(r.sub, None);
    }

    #[test]
    fn text_never_shadows_fields() {
        // A text that looks like fields must not override the real ones.
        let r =
            Receipt::parse(b"id:7 sub:001 dlvrd:001 stat:DELIVRD err:000 text:id:9 stat:REJECTD")
                .unwrap();
        assert_eq!((r.id.as_str(), r.stat), ("7", Stat::Delivered));
        // "id:" inside another word is not a key.
        let r = Receipt::parse(b"id:5 xid:6 stat:EXPIRED").unwrap();
        assert_eq!(r.id, "5");
    }

    #[test]
    fn rejects_what_is_not_a_receipt() {
        for raw in [
            &b"hello there"[..],
            b"stat:DELIVRD",
            b"id: stat:DELIVRD",
            b"id:1 stat:MAYBE",
            b"id:1 text:stat:DELIVRD",
        ] {
            assert!(Receipt::parse(raw).is_err(), "{raw:?}");
        }
        assert!(Receipt::parse(&vec![b'a'; 2000]).is_err());
        let long_id = format!("id:{} stat:DELIVRD", "9".repeat(66));
        assert!(Receipt::parse(long_id.as_bytes()).is_err());
        // Any field that long (found by the fuzzer: an `err:` of 300 octets,
        // invalid UTF-8 widening it, parsed but formatted past 1024 octets).
        let mut long_err = b"id:1 stat:UNDELIV err:".to_vec();
        long_err.extend(std::iter::repeat_n(0xffu8, 100));
        assert!(Receipt::parse(&long_err).is_err());
        let ok_err = format!("id:1 stat:UNDELIV err:{}", "0".repeat(65));
        let r = Receipt::parse(ok_err.as_bytes()).unwrap();
        assert_eq!(Receipt::parse(r.format().as_bytes()).unwrap().err, r.err);
    }

    #[test]
    fn format_round_trips_without_text() {
        let r = Receipt {
            id: "0193-abc".into(),
            sub: Some("001".into()),
            dlvrd: Some("001".into()),
            submit_date: Some("2603011200".into()),
            done_date: Some("2603011201".into()),
            stat: Stat::Delivered,
            err: Some("000".into()),
        };
        let s = r.format();
        assert_eq!(
            s,
            "id:0193-abc sub:001 dlvrd:001 submit date:2603011200 done date:2603011201 stat:DELIVRD err:000 text:"
        );
        assert_eq!(Receipt::parse(s.as_bytes()).unwrap(), r);
        for st in [
            Stat::Enroute,
            Stat::Delivered,
            Stat::Expired,
            Stat::Deleted,
            Stat::Undeliverable,
            Stat::Accepted,
            Stat::Unknown,
            Stat::Rejected,
        ] {
            assert_eq!(Stat::parse(st.word()), Some(st));
            assert_eq!(Stat::from_message_state(st.message_state()), Some(st));
        }
        assert_eq!(Stat::from_message_state(0), None);
    }

    #[test]
    fn date_is_yymmddhhmm_utc() {
        let t = time::macros::datetime!(2026-03-01 12:05:59 +01:00);
        assert_eq!(Receipt::date(t), "2603011105");
    }

    #[test]
    fn ids_in_both_bases() {
        let f = id_forms("255");
        assert!(f.contains(&"ff".to_string()) && f.contains(&"FF".to_string()));
        let f = id_forms("6C1B");
        assert!(f.contains(&"27675".to_string()));
        assert_eq!(id_forms("0193-abc"), vec!["0193-abc".to_string()]);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = Receipt::parse(&raw);
        }

        #[test]
        fn formatted_receipts_parse_back(id in "[0-9A-Za-z-]{1,65}", st in 1u8..=8) {
            let r = Receipt {
                id, sub: Some("001".into()), dlvrd: Some("000".into()),
                submit_date: Some("2603011200".into()), done_date: Some("2603011200".into()),
                stat: Stat::from_message_state(st).unwrap(), err: Some("000".into()),
            };
            proptest::prop_assert_eq!(Receipt::parse(r.format().as_bytes()).unwrap(), r);
        }
    }
}
