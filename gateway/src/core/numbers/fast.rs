//! `phonenumber::parse` for strict E.164 input (`+` and ASCII digits),
//! without `phonenumber`.
//!
//! Why: after validity moved to our own compiled patterns, parsing was what
//! was left of number handling in the profile (several µs a number): the
//! `nom` parsers, three static regexes run over the text, allocation, and
//! the default region's international and national prefix patterns matched
//! through `phonenumber`'s global `Mutex<LruCache<String, Regex>>`, which
//! recompiled patterns as they fell out of it. Nearly every number the
//! gateway sees is already E.164 (API clients, carriers' webhooks, its own
//! store), and for that shape the parser's many branches reduce to the few
//! steps below, each named after the `phonenumber` function it copies, run
//! with patterns compiled once per region (the same sources and options).
//! Anything else (spaces, punctuation, national form, `tel:` URIs) is still
//! parsed by `phonenumber` itself. The answers are compared with
//! `phonenumber`'s by the tests in `numbers.rs`, over generated numbers in
//! every region, with every region as the default.
//!
//! The steps keep `phonenumber`'s quirks on purpose, since its answers are
//! the reference: the *default* region's international prefix is stripped
//! after the `+`, and its national prefix from the national number, even when
//! the number belongs to another country.

use std::borrow::Cow;

use phonenumber::country::Id as Region;
use phonenumber::metadata::Metadata;
use regex::Regex;

use super::{Pattern, Uncompiled, anchored, entry, source_for, table};

/// What `phonenumber::parse` would answer for a strict E.164 text.
pub(super) enum Parse {
    /// Not `+` and digits: ask `phonenumber`.
    NotStrict,
    /// `phonenumber::parse` fails.
    Unparsable,
    /// The calling code and the national number (with its leading zeros,
    /// as `PhoneNumber::national().to_string()` writes it).
    Number { code: u16, national: String },
}

/// The longest national number `phonenumber` keeps (`MAX_LENGTH_FOR_NSN`).
const MAX_NATIONAL: usize = 17;

/// `phonenumber::parse(region, text)` for `text` = `+` and ASCII digits.
pub(super) fn parse(region: Option<Region>, text: &str) -> Result<Parse, Uncompiled> {
    let Some(digits) = text.strip_prefix('+').filter(|_| strict(text)) else {
        return Ok(Parse::NotStrict);
    };
    // `is_viable`: a `+` needs three digits after it.
    if digits.len() < 3 {
        return Ok(Parse::Unparsable);
    }
    let home = match region {
        Some(r) => match table().by_id.get(r.as_ref()) {
            Some(e) => Some((e.meta, e.parsing()?)),
            None => None,
        },
        None => None,
    };
    let digits = strip_idd(home.and_then(|(_, p)| p.idd.as_ref()), digits);
    let Some((code, national)) = country_code(digits) else {
        return Ok(Parse::Unparsable);
    };
    let meta: Option<(&Metadata, &Parsing)> = match home {
        Some(h) => Some(h),
        None => match source_for(code, national.trim_start_matches('0'))?.and_then(entry) {
            Some(e) => Some((e.meta, e.parsing()?)),
            None => None,
        },
    };
    let national = match meta {
        Some((meta, p)) => strip_national(meta, p, national),
        None => Cow::Borrowed(national),
    };
    if national.len() < 2 || national.len() > MAX_NATIONAL || !fits(&national) {
        return Ok(Parse::Unparsable);
    }
    Ok(Parse::Number {
        code,
        national: national.into_owned(),
    })
}

/// `+` and at least one ASCII digit, nothing else: the texts parsed here.
pub(super) fn strict(text: &str) -> bool {
    text.strip_prefix('+')
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// A region's patterns for parsing, compiled from `phonenumber`'s sources.
pub(super) struct Parsing {
    /// `international_prefix` (the IDD, "011" for the US).
    idd: Option<Regex>,
    /// `national_prefix_for_parsing`, with its number of capture groups.
    for_parsing: Option<(Regex, usize)>,
    // Both anchored: `phonenumber` uses the leftmost match only when it
    // starts at 0, and when a match at 0 exists the anchored search finds
    // that same match (same end, same groups), without scanning the rest
    // of the number for one (see `super::anchored`).
    /// The general descriptor (`Descriptor::is_match`) and its lengths.
    general: Pattern,
    local_lengths: Vec<u16>,
}

impl Parsing {
    pub(super) fn of(meta: &Metadata) -> Option<Self> {
        let idd = match meta.international_prefix() {
            Some(re) => Some(anchored(re.as_str())?),
            None => None,
        };
        let for_parsing = match meta.national_prefix_for_parsing() {
            Some(re) => {
                let re = anchored(re.as_str())?;
                let groups = re.captures_len();
                Some((re, groups))
            }
            None => None,
        };
        let general = meta.descriptors().general();
        Some(Self {
            idd,
            for_parsing,
            general: Pattern::of(general)?,
            local_lengths: general.possible_local_length().to_vec(),
        })
    }
}

/// `helper::international_prefix` after a `+`: the default region's IDD is
/// dropped when it starts the digits and is not followed by a 0.
fn strip_idd<'a>(idd: Option<&Regex>, digits: &'a str) -> &'a str {
    match idd.and_then(|re| re.find(digits)) {
        Some(m) if m.start() == 0 && !digits[m.end()..].starts_with('0') => &digits[m.end()..],
        _ => digits,
    }
}

/// `helper::country_code` for a number after a `+`: the first 1 to 3 digits
/// that are a known calling code.
fn country_code(digits: &str) -> Option<(u16, &str)> {
    if digits.len() <= 2 || digits.starts_with('0') {
        return None;
    }
    let t = table();
    (1..=3).find_map(|len| {
        let code: u16 = digits.get(..len)?.parse().ok()?;
        t.codes.contains(&code).then(|| (code, &digits[len..]))
    })
}

/// `parse_with`'s national prefix step: `helper::national_number`, then the
/// national prefix, kept unless that leaves the number too short.
fn strip_national<'a>(meta: &Metadata, p: &Parsing, national: &'a str) -> Cow<'a, str> {
    let mut potential = national_number(meta, p, national);
    if let Some(prefix) = meta.national_prefix()
        && potential.starts_with(prefix)
    {
        potential = match potential {
            Cow::Borrowed(s) => Cow::Borrowed(&s[prefix.len()..]),
            Cow::Owned(s) => Cow::Owned(s[prefix.len()..].to_string()),
        };
    }
    if too_short(p, potential.len()) {
        Cow::Borrowed(national)
    } else {
        potential
    }
}

/// `validator::length(meta, n, Type::Unknown) == Validation::TooShort`.
fn too_short(p: &Parsing, len: usize) -> bool {
    let len = u16::try_from(len).unwrap_or(u16::MAX);
    match p.general.lengths.first() {
        Some(&minimum) => !p.local_lengths.contains(&len) && len < minimum,
        None => false,
    }
}

/// `helper::national_number`: the national prefix for parsing (and carrier
/// code) dropped, or rewritten by the transform rule.
fn national_number<'a>(meta: &Metadata, p: &Parsing, national: &'a str) -> Cow<'a, str> {
    let Some((parsing, groups)) = &p.for_parsing else {
        return match meta.national_prefix() {
            Some(prefix) if national.starts_with(prefix) => {
                Cow::Borrowed(&national[prefix.len()..])
            }
            _ => Cow::Borrowed(national),
        };
    };
    // Most numbers do not start with it: answer that without `captures`.
    if !parsing.is_match(national) {
        return Cow::Borrowed(national);
    }
    let Some(caps) = parsing.captures(national) else {
        return Cow::Borrowed(national);
    };
    let Some(whole) = caps.get(0) else {
        return Cow::Borrowed(national);
    };
    if whole.start() != 0 {
        return Cow::Borrowed(national);
    }
    // `phonenumber` takes the last group as `c.get(c.len() - 1)`.
    let last = groups.checked_sub(1).and_then(|i| caps.get(i));
    match meta.national_prefix_transform_rule() {
        Some(transform) if last.is_some() => {
            let viable = p.general.matches(national);
            let transformed = parsing.replace(national, transform).into_owned();
            if viable && !p.general.matches(&transformed) {
                Cow::Borrowed(national)
            } else {
                Cow::Owned(transformed)
            }
        }
        // `phonenumber` checks here whether the number without the prefix
        // still matches, but slices from the match's start (always 0), so the
        // check never refuses: the prefix is always dropped.
        _ => Cow::Borrowed(&national[whole.end()..]),
    }
}

/// `NationalNumber::from_str`: the digits after the leading zeros must be a
/// number below 2^56.
fn fits(national: &str) -> bool {
    national
        .trim_start_matches('0')
        .parse::<u64>()
        .is_ok_and(|v| v < (1 << 56))
}
