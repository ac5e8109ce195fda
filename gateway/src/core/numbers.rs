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

use std::collections::HashMap;
use std::sync::OnceLock;

use phonenumber::PhoneNumber;
use phonenumber::country::Id as Region;
use phonenumber::metadata::{DATABASE, Database, Descriptor, Metadata};
use regex::Regex;

/// Loads `phonenumber`'s metadata and this module's table, and compiles
/// the patterns of `sample`'s region, so that the first request does not
/// pay for them. Measured: the first message after start took 200 ms (1.3
/// ms after), which put every connection's first request of a benchmark
/// in its p99; at start it is paid once, before the listener opens.
pub fn warm_up(sample: &str) {
    let _ = table();
    if let Ok(n) = phonenumber::parse(None, sample) {
        let _ = (is_valid(&n), region(&n));
    }
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
            re: compile(d.national_number().as_str())?,
            lengths: d.possible_length().to_vec(),
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

/// `re.find(value)` starts at 0 (what `phonenumber` checks everywhere).
fn starts(re: &Regex, value: &str) -> bool {
    re.find(value).is_some_and(|m| m.start() == 0)
}

/// A region's compiled patterns.
struct Compiled {
    general: Pattern,
    /// The types `number_type` tries after the general pattern (premium
    /// rate, toll free, shared cost, VoIP, personal, pager, UAN, voicemail,
    /// fixed line, mobile); any match means "not Unknown".
    types: Vec<Pattern>,
    leading_digits: Option<Regex>,
}

impl Compiled {
    fn of(meta: &Metadata) -> Option<Self> {
        let d = meta.descriptors();
        let mut types = Vec::new();
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
            types.push(Pattern::of(t)?);
        }
        let leading_digits = match meta.leading_digits() {
            Some(ld) => Some(compile(ld.as_str())?),
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
}

impl Entry {
    fn new(meta: &'static Metadata) -> Self {
        Self {
            meta,
            compiled: OnceLock::new(),
        }
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
/// codes), plus each code's regions in `phonenumber`'s order.
struct Table {
    by_id: HashMap<&'static str, Entry>,
    by_code: HashMap<u16, Entry>,
    regions: HashMap<u16, Vec<&'static str>>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let db: &'static Database = &DATABASE;
        let mut t = Table {
            by_id: HashMap::new(),
            by_code: HashMap::new(),
            regions: HashMap::new(),
        };
        for meta in db.iter() {
            let id = meta.id();
            if let Some(m) = db.by_id(id) {
                t.by_id.entry(m.id()).or_insert_with(|| Entry::new(m));
            }
        }
        // Calling codes are 1 to 3 digits.
        for code in 1..1000u16 {
            if let Some(first) = db.by_code(&code).and_then(|m| m.into_iter().next()) {
                t.by_code.insert(code, Entry::new(first));
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
                    return Ok(Some(Source::Region(region)));
                }
            }
        }
    }
    Ok(None)
}

fn entry(source: Source) -> Option<&'static Entry> {
    let t = table();
    match source {
        Source::Region(id) => t.by_id.get(id),
        Source::Code(code) => t.by_code.get(&code),
    }
}

/// `validator::is_valid_with`.
fn valid(code: u16, national: &str) -> Result<bool, Uncompiled> {
    match source_for(code, national)?.and_then(entry) {
        Some(e) => Ok(e.compiled()?.known(national)),
        None => Ok(false),
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
