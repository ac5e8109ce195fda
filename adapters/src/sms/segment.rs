//! Choosing an encoding and cutting text into segments (TS 23.040 §9.2.3.24.1).
//!
//! One segment carries 140 octets of user data. Without a header that is 160
//! GSM 7-bit septets or 70 UTF-16 units; with the 6-octet concatenation header
//! (8-bit reference) 153 septets or 67 units, with the 7-octet one (16-bit
//! reference) 152 or 66. Extension-table characters cost two septets and
//! emoji two UTF-16 units, and neither pair is ever split between parts, so a
//! part may end one unit short of the limit.
//!
//! [`plan`] answers "how many segments, which encoding" for an API caller
//! without encoding anything; [`encode_text`] produces the user data of each
//! part with exactly the same choices.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::gsm7::{ESC, Gsm7Tables};
use super::national::NationalLanguage;
use super::udh::{InformationElement, Udh};
use super::user_data::{MAX_OCTETS, MAX_SEPTETS, UserData, header_septets};
use crate::Error;

/// Alphabet of the user data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Encoding {
    /// GSM 7-bit default alphabet (or national tables), packed septets.
    #[serde(rename = "gsm7")]
    Gsm7,
    /// UCS-2 / UTF-16BE.
    #[serde(rename = "ucs2")]
    Ucs2,
    /// 8-bit data, opaque octets.
    #[serde(rename = "8bit")]
    EightBit,
}

impl Encoding {
    /// The wire name used in JSON: `gsm7`, `ucs2` or `8bit`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Gsm7 => "gsm7",
            Self::Ucs2 => "ucs2",
            Self::EightBit => "8bit",
        }
    }
}

/// Options that change how text is encoded. The default is what every
/// handset understands: default GSM alphabet or UCS-2, 8-bit concatenation
/// references, text sent exactly as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsOptions {
    /// National language tables the planner may use, only when they save
    /// segments (older handsets may not render them). Empty = never.
    pub national_languages: Vec<NationalLanguage>,
    /// Replace look-alike Unicode (curly quotes, long dashes, NBSP, ellipsis)
    /// with GSM characters when that keeps the message in 7-bit coding.
    /// Off by default because it changes the text.
    pub smart_encoding: bool,
    /// Use 16-bit concatenation references (IEI 0x08): one fewer character
    /// per part, far fewer reference collisions.
    pub wide_concat_reference: bool,
}

/// What encoding a text would use and how many segments it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SegmentPlan {
    /// Chosen alphabet.
    pub encoding: Encoding,
    /// Number of SMS segments (may exceed 255, which cannot be sent).
    pub segments: usize,
    /// True when smart encoding replaced characters to stay in GSM 7-bit.
    pub smart_encoded: bool,
    /// Length of the (possibly smart-encoded) text in septets (GSM 7-bit)
    /// or UTF-16 units (UCS-2).
    pub units: usize,
    /// Units one segment can hold with this plan (160/153, 70/67, ...).
    pub units_per_segment: usize,
    /// National single-shift table used, if any.
    pub single_shift: Option<NationalLanguage>,
    /// National locking-shift table used, if any.
    pub locking_shift: Option<NationalLanguage>,
}

/// The user data of every part of a text, in part order, and its plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedText {
    /// The plan the parts follow.
    pub plan: SegmentPlan,
    /// User data of each part (header included), in part order.
    pub parts: Vec<UserData>,
}

/// An encoding choice for a text.
#[derive(Debug, Clone)]
struct Choice {
    encoding: Encoding,
    tables: Gsm7Tables,
    /// The whole text in septets (GSM 7-bit choices only).
    septets: Vec<u8>,
    units: usize,
    segments: usize,
    single_cap: usize,
    multi_cap: usize,
}

impl Choice {
    fn cap(&self) -> usize {
        if self.segments <= 1 {
            self.single_cap
        } else {
            self.multi_cap
        }
    }
}

fn concat_ie_octets(opts: &SmsOptions) -> usize {
    if opts.wide_concat_reference { 6 } else { 5 }
}

fn national_ie_octets(t: Gsm7Tables) -> usize {
    3 * usize::from(t.single.is_some()) + 3 * usize::from(t.locking.is_some())
}

/// Septet capacity of single and multi parts with tables `t`.
fn gsm7_caps(t: Gsm7Tables, opts: &SmsOptions) -> (usize, usize) {
    let ies = national_ie_octets(t);
    let single = if ies == 0 {
        MAX_SEPTETS
    } else {
        MAX_SEPTETS - header_septets(1 + ies)
    };
    let multi = MAX_SEPTETS - header_septets(1 + concat_ie_octets(opts) + ies);
    (single, multi)
}

/// Greedy count of parts for a sequence of costs, never splitting one cost.
fn count_parts(
    costs: impl Iterator<Item = usize>,
    total: usize,
    single: usize,
    multi: usize,
) -> usize {
    if total <= single {
        return 1;
    }
    let mut parts = 1;
    let mut used = 0;
    for c in costs {
        if used + c > multi {
            parts += 1;
            used = 0;
        }
        used += c;
    }
    parts
}

/// Cuts septets into parts of at most `cap`, never ending a part on the
/// ESC that starts an escape pair. (Text encoded by this crate has ESC only
/// as the first septet of a pair.)
fn split_gsm7(septets: &[u8], cap: usize) -> impl Iterator<Item = &[u8]> {
    let mut rest = septets;
    let mut first = true;
    std::iter::from_fn(move || {
        if rest.is_empty() && !first {
            return None;
        }
        first = false;
        let mut take = rest.len().min(cap);
        if take < rest.len() && take > 0 && rest.get(take - 1) == Some(&ESC) {
            take -= 1;
        }
        let (part, tail) = rest.split_at(take);
        rest = tail;
        Some(part)
    })
}

fn gsm7_choice(text: &str, t: Gsm7Tables, opts: &SmsOptions) -> Option<Choice> {
    let mut septets = Vec::with_capacity(text.len() + 8);
    t.encode(text, &mut septets).ok()?;
    let units = septets.len();
    let (single_cap, multi_cap) = gsm7_caps(t, opts);
    let segments = if units <= single_cap {
        1
    } else {
        split_gsm7(&septets, multi_cap).count()
    };
    Some(Choice {
        encoding: Encoding::Gsm7,
        tables: t,
        septets,
        units,
        segments,
        single_cap,
        multi_cap,
    })
}

fn ucs2_choice(text: &str, opts: &SmsOptions) -> Choice {
    let units = super::ucs2::units(text);
    let single_cap = MAX_OCTETS / 2;
    let multi_cap = (MAX_OCTETS - 1 - concat_ie_octets(opts)) / 2;
    let segments = count_parts(
        text.chars().map(char::len_utf16),
        units,
        single_cap,
        multi_cap,
    );
    Choice {
        encoding: Encoding::Ucs2,
        tables: Gsm7Tables::DEFAULT,
        septets: Vec::new(),
        units,
        segments,
        single_cap,
        multi_cap,
    }
}

/// The best choice for `text` without smart encoding.
fn choose_exact(text: &str, opts: &SmsOptions) -> Choice {
    let baseline =
        gsm7_choice(text, Gsm7Tables::DEFAULT, opts).unwrap_or_else(|| ucs2_choice(text, opts));
    let mut best = baseline;
    for &lang in &opts.national_languages {
        let single = Some(lang);
        let locking = lang.has_locking_table().then_some(lang);
        let candidates = [
            Gsm7Tables {
                locking: None,
                single,
            },
            Gsm7Tables {
                locking,
                single: None,
            },
            Gsm7Tables { locking, single },
        ];
        for t in candidates {
            if t == Gsm7Tables::DEFAULT {
                continue;
            }
            if let Some(c) = gsm7_choice(text, t, opts) {
                if c.segments < best.segments {
                    best = c;
                }
            }
        }
    }
    best
}

/// The choice for `text`, applying smart encoding when allowed and useful.
fn choose<'t>(text: &'t str, opts: &SmsOptions) -> (Cow<'t, str>, Choice, bool) {
    let exact = choose_exact(text, opts);
    if opts.smart_encoding && exact.encoding != Encoding::Gsm7 {
        if let Cow::Owned(replaced) = smart_replace(text) {
            let c = choose_exact(&replaced, opts);
            if c.encoding == Encoding::Gsm7 {
                return (Cow::Owned(replaced), c, true);
            }
        }
    }
    (Cow::Borrowed(text), exact, false)
}

fn to_plan(c: &Choice, smart_encoded: bool) -> SegmentPlan {
    SegmentPlan {
        encoding: c.encoding,
        segments: c.segments,
        smart_encoded,
        units: c.units,
        units_per_segment: c.cap(),
        single_shift: c.tables.single,
        locking_shift: c.tables.locking,
    }
}

/// How many segments `text` needs and in which encoding, without encoding it.
/// Agrees with [`encode_text`] by construction (same choice function).
pub fn plan(text: &str, opts: &SmsOptions) -> SegmentPlan {
    let (_, c, smart) = choose(text, opts);
    to_plan(&c, smart)
}

/// Encodes `text` into the user data of each part. `reference` is the
/// concatenation reference (its low byte when 8-bit references are used);
/// callers pick it, e.g. from a per-recipient counter, so this stays
/// deterministic. Fails with [`Error::TooManySegments`] past 255 parts.
pub fn encode_text(text: &str, opts: &SmsOptions, reference: u16) -> Result<EncodedText, Error> {
    let (text, mut c, smart) = choose(text, opts);
    if c.segments > 255 {
        return Err(Error::TooManySegments {
            segments: c.segments,
        });
    }
    let cap = c.cap();
    let bodies: Vec<Vec<u8>> = match c.encoding {
        Encoding::Gsm7 if c.segments == 1 => vec![std::mem::take(&mut c.septets)],
        Encoding::Gsm7 => split_gsm7(&c.septets, cap).map(<[u8]>::to_vec).collect(),
        Encoding::Ucs2 | Encoding::EightBit => {
            let mut bodies = Vec::with_capacity(c.segments);
            let mut cur: Vec<u8> = Vec::with_capacity(MAX_OCTETS);
            let mut used = 0;
            let mut buf = [0u16; 2];
            for ch in text.chars() {
                let units = ch.encode_utf16(&mut buf);
                if used + units.len() > cap {
                    bodies.push(std::mem::take(&mut cur));
                    used = 0;
                }
                used += units.len();
                for u in units.iter() {
                    cur.extend_from_slice(&u.to_be_bytes());
                }
            }
            bodies.push(cur);
            bodies
        }
    };
    let total = bodies.len();
    let mut parts = Vec::with_capacity(total);
    for (i, body) in bodies.into_iter().enumerate() {
        let mut elements = Vec::new();
        if total > 1 {
            // `total` <= 255 was checked above (the greedy split in this
            // function is the one `count_parts` simulates).
            let total = u8::try_from(total).unwrap_or(u8::MAX);
            let sequence = u8::try_from(i + 1).unwrap_or(u8::MAX);
            elements.push(if opts.wide_concat_reference {
                InformationElement::Concat16 {
                    reference,
                    total,
                    sequence,
                }
            } else {
                InformationElement::Concat8 {
                    reference: reference as u8,
                    total,
                    sequence,
                }
            });
        }
        if let Some(l) = c.tables.single {
            elements.push(InformationElement::SingleShift(l.id()));
        }
        if let Some(l) = c.tables.locking {
            elements.push(InformationElement::LockingShift(l.id()));
        }
        let header = (!elements.is_empty()).then_some(Udh { elements });
        // Sizes follow from the capacities above; `new` re-checks them.
        parts.push(UserData::new(header, c.encoding, body)?);
    }
    Ok(EncodedText {
        plan: to_plan(&c, smart),
        parts,
    })
}

/// Splits 8-bit data (e.g. a WAP push or an application payload) into parts:
/// 140 octets in one SMS, 134 per part with an 8-bit concatenation
/// reference (133 with a 16-bit one). `ports` adds an application port
/// element (IEI 0x05) to every part, which reduces the room accordingly.
pub fn encode_binary(
    data: &[u8],
    opts: &SmsOptions,
    reference: u16,
    ports: Option<super::udh::Ports>,
) -> Result<EncodedText, Error> {
    let port_octets = if ports.is_some() { 6 } else { 0 };
    let single_cap = MAX_OCTETS - if port_octets > 0 { 1 + port_octets } else { 0 };
    let multi_cap = MAX_OCTETS - 1 - concat_ie_octets(opts) - port_octets;
    let segments = if data.len() <= single_cap {
        1
    } else {
        data.len().div_ceil(multi_cap)
    };
    if segments > 255 {
        return Err(Error::TooManySegments { segments });
    }
    let cap = if segments == 1 { single_cap } else { multi_cap };
    let chunks: Vec<&[u8]> = if data.is_empty() {
        vec![data]
    } else {
        data.chunks(cap).collect()
    };
    let total = u8::try_from(chunks.len()).unwrap_or(u8::MAX);
    let mut parts = Vec::with_capacity(chunks.len());
    for (i, chunk) in chunks.iter().enumerate() {
        let mut elements = Vec::new();
        if total > 1 {
            let sequence = u8::try_from(i + 1).unwrap_or(u8::MAX);
            elements.push(if opts.wide_concat_reference {
                InformationElement::Concat16 {
                    reference,
                    total,
                    sequence,
                }
            } else {
                InformationElement::Concat8 {
                    reference: reference as u8,
                    total,
                    sequence,
                }
            });
        }
        if let Some(p) = ports {
            elements.push(InformationElement::Ports16 {
                destination: p.destination,
                origin: p.origin,
            });
        }
        let header = (!elements.is_empty()).then_some(Udh { elements });
        parts.push(UserData::new(header, Encoding::EightBit, chunk.to_vec())?);
    }
    Ok(EncodedText {
        plan: SegmentPlan {
            encoding: Encoding::EightBit,
            segments,
            smart_encoded: false,
            units: data.len(),
            units_per_segment: cap,
            single_shift: None,
            locking_shift: None,
        },
        parts,
    })
}

/// Replaces look-alike Unicode with GSM characters. Returns `Cow::Borrowed`
/// when nothing changed.
pub fn smart_replace(text: &str) -> Cow<'_, str> {
    fn replacement(c: char) -> Option<&'static str> {
        Some(match c {
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' | '\u{02BC}'
            | '\u{00B4}' | '`' => "'",
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' | '\u{00AB}'
            | '\u{00BB}' => "\"",
            '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2015}'
            | '\u{2212}' => "-",
            '\u{00A0}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}' | '\t' => {
                " "
            }
            '\u{2026}' => "...",
            '\u{2039}' => "<",
            '\u{203A}' => ">",
            '\u{02C6}' => "^",
            '\u{02DC}' => "~",
            '\u{200B}' | '\u{FEFF}' | '\u{00AD}' | '\u{2060}' => "",
            _ => return None,
        })
    }
    if !text.chars().any(|c| replacement(c).is_some()) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match replacement(c) {
            Some(r) => out.push_str(r),
            None => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn opts() -> SmsOptions {
        SmsOptions::default()
    }

    #[test]
    fn boundaries_gsm7() {
        let p = plan(&"a".repeat(160), &opts());
        assert_eq!(
            (p.encoding, p.segments, p.units_per_segment),
            (Encoding::Gsm7, 1, 160)
        );
        let p = plan(&"a".repeat(161), &opts());
        assert_eq!((p.segments, p.units_per_segment), (2, 153));
        assert_eq!(plan(&"a".repeat(306), &opts()).segments, 2);
        assert_eq!(plan(&"a".repeat(307), &opts()).segments, 3);
        assert_eq!(plan("", &opts()).segments, 1);
        let wide = SmsOptions {
            wide_concat_reference: true,
            ..opts()
        };
        assert_eq!(plan(&"a".repeat(304), &wide).segments, 2);
        assert_eq!(plan(&"a".repeat(305), &wide).segments, 3);
    }

    #[test]
    fn boundaries_ucs2() {
        let p = plan(&"ж".repeat(70), &opts());
        assert_eq!((p.encoding, p.segments), (Encoding::Ucs2, 1));
        let p = plan(&"ж".repeat(71), &opts());
        assert_eq!((p.segments, p.units_per_segment), (2, 67));
        assert_eq!(plan(&"ж".repeat(134), &opts()).segments, 2);
        assert_eq!(plan(&"ж".repeat(135), &opts()).segments, 3);
    }

    #[test]
    fn escape_pair_not_split() {
        // 152 'a' then '€' (2 septets) = 154 > 153: '€' moves to part 2 whole.
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(10));
        let e = encode_text(&text, &opts(), 7).unwrap();
        assert_eq!(e.parts.len(), 2);
        assert_eq!(e.parts[0].body().len(), 152);
        assert_eq!(&e.parts[1].body()[..2], &[ESC, 0x65]);
    }

    #[test]
    fn surrogate_pair_not_split() {
        let text = format!("{}😀x", "ж".repeat(66));
        let p = plan(&text, &opts());
        assert_eq!((p.units, p.segments), (69, 1));
        let text = format!("{}😀xxx", "ж".repeat(66));
        let e = encode_text(&text, &opts(), 7).unwrap();
        assert_eq!(e.parts.len(), 2);
        // 66 units of ж, then the pair would make 68 > 67: it moves whole.
        assert_eq!(e.parts[0].body().len(), 132);
        assert_eq!(&e.parts[1].body()[..4], &[0xD8, 0x3D, 0xDE, 0x00]);
    }

    #[test]
    fn national_only_when_it_saves() {
        let turkish = "Ğğ Şş ı İ ".repeat(10);
        let off = plan(&turkish, &opts());
        assert_eq!(off.encoding, Encoding::Ucs2);
        let on = SmsOptions {
            national_languages: vec![NationalLanguage::Turkish],
            ..opts()
        };
        let p = plan(&turkish, &on);
        assert_eq!(p.encoding, Encoding::Gsm7);
        assert!(p.segments < off.segments);
        assert_eq!(p.locking_shift, Some(NationalLanguage::Turkish));
        // Plain text never uses national tables.
        let p = plan("hello", &on);
        assert_eq!((p.single_shift, p.locking_shift), (None, None));
    }

    fn round_trip(text: &str, opts: &SmsOptions) -> (SegmentPlan, String) {
        let e = encode_text(text, opts, 3).unwrap();
        let mut out = String::new();
        for ud in &e.parts {
            out.push_str(&ud.text().unwrap());
        }
        (e.plan, out)
    }

    #[test]
    fn spanish_single_shift() {
        let text = "¿Cómo estás? Sí, ésta es la canción de mañana. ".repeat(4);
        assert_eq!(plan(&text, &opts()).encoding, Encoding::Ucs2);
        let es = SmsOptions {
            national_languages: vec![NationalLanguage::Spanish],
            ..opts()
        };
        let (p, back) = round_trip(&text, &es);
        assert_eq!(p.encoding, Encoding::Gsm7);
        assert_eq!(
            (p.single_shift, p.locking_shift),
            (Some(NationalLanguage::Spanish), None)
        );
        assert_eq!(back, text);
    }

    #[test]
    fn portuguese_tables() {
        let text = "Não, você está ótimo! Ação, coração, pão e avô. ".repeat(4);
        let pt = SmsOptions {
            national_languages: vec![NationalLanguage::Portuguese, NationalLanguage::Spanish],
            ..opts()
        };
        let (p, back) = round_trip(&text, &pt);
        assert_eq!(p.encoding, Encoding::Gsm7);
        assert!(p.segments < plan(&text, &opts()).segments);
        assert!(
            p.locking_shift == Some(NationalLanguage::Portuguese)
                || p.single_shift == Some(NationalLanguage::Portuguese)
        );
        assert_eq!(back, text);
    }

    #[test]
    fn smart_encoding() {
        let text = "It\u{2019}s \u{201C}fine\u{201D} \u{2014} really\u{2026}";
        let p = plan(text, &opts());
        assert_eq!((p.encoding, p.smart_encoded), (Encoding::Ucs2, false));
        let smart = SmsOptions {
            smart_encoding: true,
            ..opts()
        };
        let p = plan(text, &smart);
        assert_eq!((p.encoding, p.smart_encoded), (Encoding::Gsm7, true));
        let e = encode_text(text, &smart, 0).unwrap();
        assert_eq!(e.parts[0].text().unwrap(), "It's \"fine\" - really...");
        // Still UCS-2 after replacement: keep the original text.
        let p = plan("\u{201C}日本\u{201D}", &smart);
        assert_eq!((p.encoding, p.smart_encoded), (Encoding::Ucs2, false));
    }

    #[test]
    fn binary_boundaries() {
        let e = encode_binary(&[0xAB; 140], &opts(), 9, None).unwrap();
        assert_eq!((e.plan.segments, e.parts.len()), (1, 1));
        assert!(e.parts[0].header().is_none());
        let e = encode_binary(&[0xAB; 141], &opts(), 9, None).unwrap();
        assert_eq!(e.parts.len(), 2);
        assert_eq!(e.parts[0].body().len(), 134);
        assert_eq!(e.parts[0].wire_octets(), 140);
        assert_eq!(e.parts[1].body().len(), 7);
        let ports = crate::sms::udh::Ports {
            destination: 2948,
            origin: 9200,
        };
        let e = encode_binary(&[1; 300], &opts(), 9, Some(ports)).unwrap();
        assert!(e.parts.iter().all(|p| p.wire_octets() <= 140));
        assert!(
            e.parts
                .iter()
                .all(|p| p.header().and_then(|h| h.ports()) == Some(ports))
        );
        let joined: Vec<u8> = e.parts.iter().flat_map(|p| p.body().to_vec()).collect();
        assert_eq!(joined, vec![1; 300]);
        assert!(encode_binary(&[0; 134 * 255 + 1], &opts(), 0, None).is_err());
    }

    #[test]
    fn too_many_segments() {
        let text = "a".repeat(153 * 255 + 1);
        assert_eq!(plan(&text, &opts()).segments, 256);
        assert_eq!(
            encode_text(&text, &opts(), 0).unwrap_err(),
            Error::TooManySegments { segments: 256 }
        );
        assert!(encode_text(&"a".repeat(153 * 255), &opts(), 0).is_ok());
    }
}
