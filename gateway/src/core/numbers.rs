//! Number validity and the region of a number, answered from `phonenumber`'s
//! own metadata but with the patterns compiled once per region and kept.
//!
//! Why: `phonenumber` keeps its compiled patterns in one global
//! `Mutex<LruCache<String, Regex>>` of 100 entries, and every pattern match
//! locks it, hashes the pattern's source text and, once more than 100
//! patterns are in use (the +1 plan alone has 25 regions), recompiles. The
//! profile put that at a tenth of the gateway's CPU per message, more than
//! the matching itself. Here each region's patterns are compiled on first
//! use into plain `regex::Regex`es (lock-free to share), and the functions
//! below are line-for-line the same decisions as `phonenumber`'s
//! `is_valid` and `PhoneNumber::country().id()`, so the answers are the same
//! (a seeded test compares them over many generated numbers in every
//! region). Should a pattern ever fail to compile here, that number is
//! answered by `phonenumber` itself.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use phonenumber::PhoneNumber;
use phonenumber::country::Id as Region;
use phonenumber::metadata::{DATABASE, Database, Descriptor, Metadata};
use regex::Regex;

mod fast;

/// Loads `phonenumber`'s metadata and this module's table, and compiles
/// the patterns of `sample`'s region and of the default `region` (the
/// parse of E.164 input uses the default region's prefixes), so that the
/// first request does not pay for them. Measured: the first message after
/// start took 200 ms (1.3 ms after), which put every connection's first
/// request of a benchmark in its p99; at start it is paid once, before the
/// listener opens.
pub fn warm_up(region: Region, sample: &str) {
    let _ = table();
    if let Ok(n) = phonenumber::parse(None, sample) {
        let _ = (is_valid(&n), self::region(&n));
    }
    let _ = (normalise(Some(region), sample), region_of(sample));
}

/// Whether `n` is a valid number: `phonenumber::is_valid`, without its
/// global regex cache.
pub fn is_valid(n: &PhoneNumber) -> bool {
    let national = n.national().to_string();
    match valid(n.code().value(), &national) {
        Ok(answer) => answer,
        Err(Uncompiled) => phonenumber::is_valid(n),
    }
}

/// The region `n` belongs to: `n.country().id()`, without `phonenumber`'s
/// global regex cache. `None` for non-geographic codes (+800, +882, ...).
pub fn region(n: &PhoneNumber) -> Option<Region> {
    let national = n.national().value().to_string();
    match metadata(n.code().value(), &national) {
        Ok(meta) => meta.and_then(|m| m.id().parse().ok()),
        Err(Uncompiled) => n.country().id(),
    }
}

/// What a text comes to as a phone number: `phonenumber::parse`, then
/// `phonenumber::is_valid`, then E.164 formatting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Normalised {
    /// A valid number, in E.164.
    Valid(String),
    /// A number, but not a valid one for its country.
    Invalid,
    /// Not a phone number (`phonenumber::parse` fails).
    Unparsable,
}

/// `text` parsed as a number (national ones in `region`), checked and
/// formatted in E.164: the same answers as `phonenumber`, but E.164 input
/// (`+` and digits, what nearly all traffic carries) is parsed here with
/// precompiled patterns instead of by `phonenumber::parse` (see `fast.rs`).
pub fn normalise(region: Option<Region>, text: &str) -> Normalised {
    if let Ok(parsed) = fast::parse(region, text) {
        match parsed {
            fast::Parse::Unparsable => return Normalised::Unparsable,
            fast::Parse::Number { code, national } => {
                if let Ok(known) = valid(code, &national) {
                    return if known {
                        Normalised::Valid(format!("+{code}{national}"))
                    } else {
                        Normalised::Invalid
                    };
                }
            }
            fast::Parse::NotStrict => {}
        }
    }
    let Ok(n) = phonenumber::parse(region, text) else {
        return Normalised::Unparsable;
    };
    if !is_valid(&n) {
        return Normalised::Invalid;
    }
    Normalised::Valid(n.format().mode(phonenumber::Mode::E164).to_string())
}

/// Whether `text` has the shape [`normalise`] parses itself (`+` and
/// ASCII digits) rather than handing it to `phonenumber`.
pub fn parsed_here(text: &str) -> bool {
    fast::strict(text)
}

/// The region of a number in international form:
/// `phonenumber::parse(None, text)` then [`region`], with E.164 input
/// parsed here (see [`normalise`]).
pub fn region_of(text: &str) -> Option<Region> {
    if let Ok(parsed) = fast::parse(None, text) {
        match parsed {
            fast::Parse::Unparsable => return None,
            fast::Parse::Number { code, national } => {
                // `region` looks up the national number without its zeros.
                if let Ok(meta) = metadata(code, national.trim_start_matches('0')) {
                    return meta.and_then(|m| m.id().parse().ok());
                }
            }
            fast::Parse::NotStrict => {}
        }
    }
    phonenumber::parse(None, text).ok().and_then(|n| region(&n))
}

/// A region's patterns failed to compile here; ask `phonenumber`.
struct Uncompiled;

/// One descriptor: the national number pattern and the possible lengths.
struct Pattern {
    re: Regex,
    lengths: Vec<u16>,
}

impl Pattern {
    fn of(d: &Descriptor) -> Option<Self> {
        Some(Self {
            re: anchored(d.national_number().as_str())?,
            lengths: d.possible_length().to_vec(),
        })
    }

    /// Matches where any of `members` (all with these possible lengths)
    /// matches.
    fn any_of(lengths: &[u16], members: &[&Descriptor]) -> Option<Self> {
        let alternation: Vec<String> = members
            .iter()
            .map(|d| format!("(?:\n{}\n)", d.national_number().as_str()))
            .collect();
        Some(Self {
            re: anchored(&alternation.join("|"))?,
            lengths: lengths.to_vec(),
        })
    }

    /// `Descriptor::is_match`.
    fn matches(&self, value: &str) -> bool {
        let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
        if !self.lengths.is_empty() && !self.lengths.contains(&len) {
            return false;
        }
        starts(&self.re, value)
    }
}

/// Compiled the way `phonenumber`'s database compiles them.
fn compile(source: &str) -> Option<Regex> {
    regex::RegexBuilder::new(source)
        .ignore_whitespace(true)
        .build()
        .ok()
}

/// `source` compiled to match only at the start of the text. `phonenumber`
/// asks whether `find` (the leftmost match) starts at 0; a match starting
/// at 0 exists exactly when the leftmost one starts there, so the anchored
/// `is_match` gives the same answer without looking for a match at every
/// later position and without finding where the match ends. The newlines
/// keep a `#` comment (whitespace mode) from swallowing the parenthesis.
fn anchored(source: &str) -> Option<Regex> {
    compile(&format!("^(?:\n{source}\n)"))
}

/// `re.find(value)` starts at 0 (what `phonenumber` checks everywhere), for
/// `re` built by [`anchored`].
fn starts(re: &Regex, value: &str) -> bool {
    re.is_match(value)
}

/// A region's compiled patterns.
struct Compiled {
    general: Pattern,
    /// The types `number_type` tries after the general pattern (premium
    /// rate, toll free, shared cost, VoIP, personal, pager, UAN, voicemail,
    /// fixed line, mobile); any match means "not Unknown". Types with the
    /// same possible lengths share one pattern, their alternation (see
    /// [`Compiled::of`]).
    types: Vec<Pattern>,
    leading_digits: Option<Regex>,
}

impl Compiled {
    fn of(meta: &Metadata) -> Option<Self> {
        let d = meta.descriptors();
        // Grouped by possible lengths, in `number_type`'s order. Only "does
        // any type match" is asked, so one alternation per group answers
        // it: a US number used to be tried against up to ten patterns
        // (fixed line and mobile come last), each a regex call with its
        // cache checkout; now against one or two.
        let mut groups: Vec<(&[u16], Vec<&Descriptor>)> = Vec::new();
        for t in [
            d.premium_rate(),
            d.toll_free(),
            d.shared_cost(),
            d.voip(),
            d.personal_number(),
            d.pager(),
            d.uan(),
            d.voicemail(),
            d.fixed_line(),
            d.mobile(),
        ]
        .into_iter()
        .flatten()
        {
            match groups.iter_mut().find(|(l, _)| *l == t.possible_length()) {
                Some((_, members)) => members.push(t),
                None => groups.push((t.possible_length(), vec![t])),
            }
        }
        let mut types = Vec::new();
        for (lengths, members) in groups {
            match Pattern::any_of(lengths, &members) {
                Some(p) => types.push(p),
                // Too big together (the regex size limit): one by one.
                None => {
                    for t in members {
                        types.push(Pattern::of(t)?);
                    }
                }
            }
        }
        let leading_digits = match meta.leading_digits() {
            Some(ld) => Some(anchored(ld.as_str())?),
            None => None,
        };
        Some(Self {
            general: Pattern::of(d.general())?,
            types,
            leading_digits,
        })
    }

    /// `validator::number_type(meta, value) != Type::Unknown`.
    fn known(&self, value: &str) -> bool {
        self.general.matches(value) && self.types.iter().any(|p| p.matches(value))
    }
}

/// A metadata entry and its patterns, compiled on first use.
struct Entry {
    meta: &'static Metadata,
    compiled: OnceLock<Option<Compiled>>,
    parsing: OnceLock<Option<fast::Parsing>>,
}

impl Entry {
    fn new(meta: &'static Metadata) -> Self {
        Self {
            meta,
            compiled: OnceLock::new(),
            parsing: OnceLock::new(),
        }
    }

    fn parsing(&self) -> Result<&fast::Parsing, Uncompiled> {
        self.parsing
            .get_or_init(|| fast::Parsing::of(self.meta))
            .as_ref()
            .ok_or(Uncompiled)
    }

    fn compiled(&self) -> Result<&Compiled, Uncompiled> {
        self.compiled
            .get_or_init(|| Compiled::of(self.meta))
            .as_ref()
            .ok_or(Uncompiled)
    }
}

/// Every entry `phonenumber` would look up: by region id (`by_id`) and the
/// first entry per calling code (`by_code(..).next()`, the non-geographic
/// codes), plus each code's regions in `phonenumber`'s order, and the
/// calling codes `by_code` knows.
struct Table {
    by_id: HashMap<&'static str, Entry>,
    by_code: HashMap<u16, Entry>,
    regions: HashMap<u16, Vec<&'static str>>,
    codes: HashSet<u16>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let db: &'static Database = &DATABASE;
        let mut t = Table {
            by_id: HashMap::new(),
            by_code: HashMap::new(),
            regions: HashMap::new(),
            codes: HashSet::new(),
        };
        for meta in db.iter() {
            let id = meta.id();
            if let Some(m) = db.by_id(id) {
                t.by_id.entry(m.id()).or_insert_with(|| Entry::new(m));
            }
        }
        // Calling codes are 1 to 3 digits.
        for code in 1..1000u16 {
            if let Some(all) = db.by_code(&code) {
                t.codes.insert(code);
                if let Some(first) = all.into_iter().next() {
                    t.by_code.insert(code, Entry::new(first));
                }
            }
            if let Some(regions) = db.region(&code) {
                t.regions.insert(code, regions);
            }
        }
        t
    })
}

/// Where a number's metadata comes from (`validator::source_for`).
enum Source {
    Region(&'static str),
    /// A region chosen because the number is valid there (no leading
    /// digits to go by): its validity is already known.
    Valid(&'static str),
    Code(u16),
}

fn source_for(code: u16, national: &str) -> Result<Option<Source>, Uncompiled> {
    let t = table();
    let Some(regions) = t.regions.get(&code) else {
        return Ok(None);
    };
    if let [only] = regions.as_slice() {
        return Ok(if *only == "001" {
            Some(Source::Code(code))
        } else {
            only.parse::<Region>().ok().map(|_| Source::Region(only))
        });
    }
    for region in regions {
        let Some(entry) = t.by_id.get(region) else {
            return Err(Uncompiled);
        };
        let c = entry.compiled()?;
        match &c.leading_digits {
            Some(ld) => {
                if starts(ld, national) {
                    return Ok(Some(Source::Region(region)));
                }
            }
            None => {
                if c.known(national) {
                    return Ok(Some(Source::Valid(region)));
                }
            }
        }
    }
    Ok(None)
}

fn entry(source: Source) -> Option<&'static Entry> {
    let t = table();
    match source {
        Source::Region(id) | Source::Valid(id) => t.by_id.get(id),
        Source::Code(code) => t.by_code.get(&code),
    }
}

/// `validator::is_valid_with`.
fn valid(code: u16, national: &str) -> Result<bool, Uncompiled> {
    match source_for(code, national)? {
        // Chosen because `known` said yes for this very text.
        Some(Source::Valid(_)) => Ok(true),
        source => match source.and_then(entry) {
            Some(e) => Ok(e.compiled()?.known(national)),
            None => Ok(false),
        },
    }
}

/// `PhoneNumber::metadata`.
fn metadata(code: u16, national: &str) -> Result<Option<&'static Metadata>, Uncompiled> {
    Ok(source_for(code, national)?.and_then(entry).map(|e| e.meta))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A small seeded generator (xorshift), so a failure reproduces.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn digit(&mut self) -> char {
            char::from(b'0' + (self.next() % 10) as u8)
        }
    }

    /// Numbers near real ones: every region's example numbers, with digits
    /// changed, dropped or added, and random digit strings, in E.164 and
    /// national form.
    fn candidates(rng: &mut Rng) -> Vec<(Region, String)> {
        let db: &Database = &DATABASE;
        let mut metas: Vec<&Metadata> = db.iter().collect();
        metas.sort_by_key(|m| (m.country_code(), m.id().to_string()));
        let mut out = Vec::new();
        for meta in metas {
            let region: Region = meta.id().parse().unwrap_or(Region::US);
            let d = meta.descriptors();
            let examples: Vec<&str> = [
                Some(d.general()),
                d.fixed_line(),
                d.mobile(),
                d.toll_free(),
                d.premium_rate(),
                d.shared_cost(),
                d.personal_number(),
                d.voip(),
                d.pager(),
                d.uan(),
                d.voicemail(),
            ]
            .into_iter()
            .flatten()
            .filter_map(|x| x.example())
            .collect();
            let code = meta.country_code();
            for ex in examples {
                for _ in 0..24 {
                    let mut digits: Vec<char> = ex.chars().collect();
                    match rng.below(5) {
                        0 => {}
                        1 => {
                            for _ in 0..=rng.below(3) {
                                let i = rng.below(digits.len());
                                digits[i] = rng.digit();
                            }
                        }
                        2 if digits.len() > 1 => {
                            digits.remove(rng.below(digits.len()));
                        }
                        3 => digits.insert(rng.below(digits.len() + 1), rng.digit()),
                        _ => {
                            let len = 4 + rng.below(12);
                            digits = (0..len).map(|_| rng.digit()).collect();
                        }
                    }
                    let nat: String = digits.into_iter().collect();
                    out.push((region, format!("+{code}{nat}")));
                    let prefix = meta.national_prefix().unwrap_or("");
                    out.push((region, format!("{prefix}{nat}")));
                }
            }
        }
        out
    }

    #[test]
    fn same_answers_as_phonenumber_across_regions() {
        let mut rng = Rng(0x5eed_2026_1206);
        let all = candidates(&mut rng);
        assert!(all.len() > 20_000, "{}", all.len());
        let others = [Region::US, Region::GB, Region::DE, Region::IN];
        let (mut valid_seen, mut compared) = (0, 0);
        for (i, (home, s)) in all.iter().enumerate() {
            let default = if i % 3 == 0 {
                others[i % others.len()]
            } else {
                *home
            };
            for parsed in [
                phonenumber::parse(Some(default), s),
                phonenumber::parse(None, s),
            ]
            .into_iter()
            .flatten()
            {
                let theirs = phonenumber::is_valid(&parsed);
                assert_eq!(is_valid(&parsed), theirs, "is_valid {s} ({default:?})");
                assert_eq!(
                    region(&parsed),
                    parsed.country().id(),
                    "region {s} ({default:?})"
                );
                valid_seen += usize::from(theirs);
                compared += 1;
            }
        }
        // Not vacuous: many of both answers.
        assert!(valid_seen > compared / 10, "{valid_seen} of {compared}");
        assert!(valid_seen < compared * 9 / 10, "{valid_seen} of {compared}");
    }

    /// `phonenumber`'s own answer, what [`normalise`] must give.
    fn reference(region: Option<Region>, s: &str) -> Normalised {
        match phonenumber::parse(region, s) {
            Err(_) => Normalised::Unparsable,
            Ok(n) if !phonenumber::is_valid(&n) => Normalised::Invalid,
            Ok(n) => Normalised::Valid(n.format().mode(phonenumber::Mode::E164).to_string()),
        }
    }

    /// Malformed and odd texts: the fast path must refuse what is not `+`
    /// and digits, and answer the short, long, zero-led and prefix-led ones
    /// as `phonenumber` does.
    fn malformed(rng: &mut Rng) -> Vec<String> {
        let mut out: Vec<String> = [
            "",
            "+",
            "++1",
            "+0",
            "+1",
            "+12",
            "+123",
            "+1234",
            "+0014155550100",
            "+011441632960000",
            "+00441632960000",
            "+810123456789",
            "+8101234567890",
            "+99999999999999999999",
            "+18005550100000000000000",
            "+1 415 555 0100",
            "+1-415-555-0100",
            "+1.415.555.0100",
            "+1(415)5550100",
            "+１4155550100",
            "+14155550100;ext=12",
            "tel:+14155550100",
            "+14155550100x12",
            "+14155550100#",
            "+14155550100 ",
            " +14155550100",
            "1415555O1O1",
            "+4400000000000",
            "+440",
            "+4401632960000",
            "+49030123456",
            "+5491123456789",
            "+54 9 11 2345 6789",
            "+5215512345678",
            "+390612345678",
            "+79123456789",
            "+7 912 345 67 89",
            "+80012345678",
            "+882123456789",
            "+999123456789",
            "+2125123456789",
            "+35312345678",
            "+6403311234",
        ]
        .map(String::from)
        .to_vec();
        // Random digit strings after a `+`, every length up to 20.
        for len in 0..=20 {
            for _ in 0..40 {
                let digits: String = (0..len).map(|_| rng.digit()).collect();
                out.push(format!("+{digits}"));
                out.push(format!("+{}{digits}", 1 + rng.below(9)));
            }
        }
        out
    }

    #[test]
    fn normalise_gives_phonenumbers_answers() {
        let mut rng = Rng(0x5eed_2026_1206);
        let mut all: Vec<(Region, String)> = candidates(&mut rng);
        let mut rng = Rng(0x0dd_face);
        all.extend(malformed(&mut rng).into_iter().map(|s| (Region::US, s)));
        let others = [Region::US, Region::GB, Region::DE, Region::IN, Region::RU];
        let (mut fast, mut valid_seen, mut compared) = (0, 0, 0);
        for (i, (home, s)) in all.iter().enumerate() {
            let default = if i % 3 == 0 {
                others[i % others.len()]
            } else {
                *home
            };
            for region in [Some(default), None] {
                let theirs = reference(region, s);
                assert_eq!(normalise(region, s), theirs, "normalise {s} ({region:?})");
                fast += usize::from(matches!(
                    fast::parse(region, s),
                    Ok(fast::Parse::Number { .. } | fast::Parse::Unparsable)
                ));
                valid_seen += usize::from(matches!(theirs, Normalised::Valid(_)));
                compared += 1;
            }
            let theirs = phonenumber::parse(None, s)
                .ok()
                .and_then(|n| n.country().id());
            assert_eq!(region_of(s), theirs, "region_of {s}");
        }
        // Not vacuous: the fast path answered most, many valid, many not.
        assert!(fast > compared / 3, "{fast} of {compared}");
        assert!(valid_seen > compared / 10, "{valid_seen} of {compared}");
        assert!(valid_seen < compared * 9 / 10, "{valid_seen} of {compared}");
    }

    /// The default region's international and national prefixes are what
    /// the fast path copies from `phonenumber` (quirks included): every
    /// region as the default, over E.164 numbers of every region.
    #[test]
    fn every_default_region_strips_as_phonenumber_does() {
        let mut rng = Rng(0x1dd_2026);
        let all = candidates(&mut rng);
        let e164: Vec<&str> = all
            .iter()
            .map(|(_, s)| s.as_str())
            .filter(|s| s.starts_with('+'))
            .step_by(97)
            .collect();
        let db: &Database = &DATABASE;
        let mut regions: Vec<Region> = db.iter().filter_map(|m| m.id().parse().ok()).collect();
        regions.sort_by_key(|r| r.as_ref().to_string());
        regions.dedup();
        assert!(regions.len() > 200, "{}", regions.len());
        let mut compared = 0;
        for (i, r) in regions.iter().enumerate() {
            // Every region's IDD and national prefix, glued after the `+`.
            let meta = db.by_id(r.as_ref()).unwrap();
            let mut texts: Vec<String> = e164
                .iter()
                .skip(i % 7)
                .step_by(7)
                .map(|s| s.to_string())
                .collect();
            for s in e164.iter().skip(i % 13).step_by(41) {
                if let Some(np) = meta.national_prefix() {
                    texts.push(format!("+{}{np}{}", &s[1..3], &s[3..]));
                }
                if let Some(idd) = meta.preferred_international_prefix() {
                    texts.push(format!("+{idd}{}", &s[1..]));
                }
                for p in ["00", "011", "810", "0011", "001"] {
                    texts.push(format!("+{p}{}", &s[1..]));
                }
            }
            for s in &texts {
                assert_eq!(
                    normalise(Some(*r), s),
                    reference(Some(*r), s),
                    "normalise {s} ({r:?})"
                );
                compared += 1;
            }
        }
        assert!(compared > 15_000, "{compared}");
    }

    /// Every region's patterns compile here, so no number silently falls
    /// back to `phonenumber` (same answers, but the cost this module exists
    /// to avoid).
    #[test]
    fn every_region_compiles_here() {
        let t = table();
        assert!(t.by_id.len() > 200, "{}", t.by_id.len());
        for (id, e) in t.by_id.iter() {
            assert!(e.compiled().is_ok(), "validity patterns of {id}");
            assert!(e.parsing().is_ok(), "parsing patterns of {id}");
        }
        for (code, e) in t.by_code.iter() {
            assert!(e.compiled().is_ok(), "validity patterns of +{code}");
            assert!(e.parsing().is_ok(), "parsing patterns of +{code}");
        }
    }

    #[test]
    fn bench_shaped_and_plan_sharing_numbers() {
        for (s, valid, reg) in [
            ("+14155550100", true, Some(Region::US)),
            ("+14162223333", true, Some(Region::CA)),
            ("+18092345678", true, Some(Region::DO)),
            ("+442079460958", true, Some(Region::GB)),
            ("+80012345678", true, None),
            ("+1415555010", false, None),
        ] {
            let n = phonenumber::parse(None, s).unwrap();
            assert_eq!(is_valid(&n), valid, "{s}");
            assert_eq!(region(&n), n.country().id(), "{s}");
            if valid {
                assert_eq!(region(&n), reg, "{s}");
            }
        }
    }
}
