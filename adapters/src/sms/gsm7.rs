//! The GSM 7-bit default alphabet and its extension table (3GPP TS 23.038
//! §6.2.1), septet packing (TS 23.038 §6.1.2.1) and the choice of national
//! language tables.
//!
//! Text is turned into *septets* (values 0..=127, one per byte) first and
//! packed into octets separately, because segmentation counts septets and the
//! fill bits after a User Data Header shift the packing of every part.
//! Characters of the extension table cost two septets (ESC 0x1B + code).
//! ASCII is never mapped byte-for-byte: `@` is 0x00, `$` is 0x02 and 0x5F is
//! `§`, not `_`.

use super::national::{DEFAULT_EXTENSION, NONE, NationalLanguage};

/// The escape septet that switches to the (single-shift) extension table.
pub const ESC: u8 = 0x1B;

/// The default alphabet, indexed by septet (TS 23.038 §6.2.1). Position 0x1B
/// is ESC and holds no character.
pub(crate) const DEFAULT_ALPHABET: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', NONE, 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// Marker in [`LOOKUP`] for "not in the default alphabet or extension".
const NO_CODE: u16 = 0xFFFF;
/// Flag in [`LOOKUP`] for "extension table code".
const EXT_FLAG: u16 = 0x100;
/// Every character of the default tables except '€' is below U+0400.
const LOOKUP_LEN: usize = 0x400;

/// Fast path for the default tables: char below U+0400 -> septet (or
/// EXT_FLAG | code), built at compile time from the tables themselves.
const LOOKUP: [u16; LOOKUP_LEN] = {
    let mut t = [NO_CODE; LOOKUP_LEN];
    let mut i = 0;
    while i < 128 {
        let c = DEFAULT_ALPHABET[i] as usize;
        if i != ESC as usize && c < LOOKUP_LEN {
            t[c] = i as u16;
        }
        i += 1;
    }
    let mut i = 0;
    while i < 128 {
        let c = DEFAULT_EXTENSION[i] as usize;
        if c < LOOKUP_LEN && t[c] == NO_CODE {
            t[c] = EXT_FLAG | i as u16;
        }
        i += 1;
    }
    t
};

/// How a character is written in 7-bit coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gsm7Char {
    /// One septet of the (locking-shift) table.
    Basic(u8),
    /// ESC followed by this septet of the (single-shift) extension table.
    Extended(u8),
}

impl Gsm7Char {
    /// Septets this character costs: 1 or 2.
    pub const fn cost(self) -> usize {
        match self {
            Self::Basic(_) => 1,
            Self::Extended(_) => 2,
        }
    }
}

/// Which tables a 7-bit text is written with: the default alphabet or a
/// national locking-shift table, and the default extension table or a
/// national single-shift table.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Gsm7Tables {
    /// Locking-shift language replacing the default alphabet, if any.
    pub locking: Option<NationalLanguage>,
    /// Single-shift language replacing the extension table, if any.
    pub single: Option<NationalLanguage>,
}

impl Gsm7Tables {
    /// The default alphabet and default extension table.
    pub const DEFAULT: Gsm7Tables = Gsm7Tables {
        locking: None,
        single: None,
    };

    /// Tables from the language ids found in a UDH. Unknown ids fall back to the
    /// default tables, as TS 23.038 leaves the receiver nothing better to do.
    pub fn from_ids(locking: Option<u8>, single: Option<u8>) -> Self {
        Self {
            locking: locking
                .and_then(NationalLanguage::from_id)
                .filter(|l| l.has_locking_table()),
            single: single.and_then(NationalLanguage::from_id),
        }
    }

    fn basic(&self) -> &'static [char; 128] {
        self.locking
            .and_then(NationalLanguage::locking_table)
            .unwrap_or(&DEFAULT_ALPHABET)
    }

    fn extension(&self) -> &'static [char; 128] {
        match self.single {
            Some(l) => l.single_shift_table(),
            None => &DEFAULT_EXTENSION,
        }
    }

    /// How `c` is written with these tables, or `None` if it cannot be.
    #[inline]
    pub fn lookup(&self, c: char) -> Option<Gsm7Char> {
        if self.locking.is_none() && self.single.is_none() {
            return lookup_default(c);
        }
        if c == NONE {
            return None;
        }
        let basic = self.basic();
        if let Some(i) = basic.iter().position(|&b| b == c) {
            if i != ESC as usize {
                return Some(Gsm7Char::Basic(i as u8));
            }
        }
        self.extension()
            .iter()
            .position(|&b| b == c)
            .map(|i| Gsm7Char::Extended(i as u8))
    }

    /// Septets needed for `text`, or the char index of the first character
    /// that cannot be written.
    pub fn count(&self, text: &str) -> Result<usize, usize> {
        let mut n = 0;
        for (i, c) in text.chars().enumerate() {
            n += self.lookup(c).ok_or(i)?.cost();
        }
        Ok(n)
    }

    /// Appends the septets of `text` to `out`; on failure returns the char
    /// index of the first character that cannot be written.
    pub fn encode(&self, text: &str, out: &mut Vec<u8>) -> Result<(), usize> {
        if self.locking.is_none() && self.single.is_none() {
            return encode_default(text, out);
        }
        for (i, c) in text.chars().enumerate() {
            match self.lookup(c).ok_or(i)? {
                Gsm7Char::Basic(s) => out.push(s),
                Gsm7Char::Extended(s) => {
                    out.push(ESC);
                    out.push(s);
                }
            }
        }
        Ok(())
    }

    /// Decodes septets to text. Never fails:
    /// * ESC followed by a code the extension table does not define shows the
    ///   character of the main table (TS 23.038 §6.2.1.1 note 1);
    /// * ESC ESC (reserved for a further extension table) and a dangling ESC at
    ///   the end show a space, as the same section asks for ESC ESC.
    ///
    /// Septet values are masked to 7 bits.
    pub fn decode(&self, septets: &[u8], out: &mut String) {
        if self.locking.is_none() && self.single.is_none() {
            return decode_default(septets, out);
        }
        let basic = self.basic();
        let ext = self.extension();
        out.reserve(septets.len());
        let mut escaped = false;
        for &s in septets {
            let s = (s & 0x7F) as usize;
            if escaped {
                escaped = false;
                if s == ESC as usize {
                    out.push(' ');
                    continue;
                }
                let c = match ext[s] {
                    NONE => basic[s],
                    c => c,
                };
                out.push(c);
            } else if s == ESC as usize {
                escaped = true;
            } else {
                out.push(basic[s]);
            }
        }
        if escaped {
            out.push(' ');
        }
    }
}

/// [`Gsm7Tables::encode`] for the default tables, with a fast path for
/// ASCII bytes (most traffic) that skips UTF-8 decoding.
fn encode_default(text: &str, out: &mut Vec<u8>) -> Result<(), usize> {
    out.reserve(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut char_index: usize = 0;
    while let Some(&b) = bytes.get(i) {
        let code = if b < 0x80 {
            i += 1;
            // `b` < 0x80 is a valid index into the table.
            match LOOKUP[usize::from(b)] {
                NO_CODE => None,
                v if v & EXT_FLAG != 0 => Some(Gsm7Char::Extended((v & 0x7F) as u8)),
                v => Some(Gsm7Char::Basic(v as u8)),
            }
        } else {
            let c = text
                .get(i..)
                .and_then(|rest| rest.chars().next())
                .ok_or(char_index)?;
            i += c.len_utf8();
            lookup_default(c)
        };
        match code.ok_or(char_index)? {
            Gsm7Char::Basic(s) => out.push(s),
            Gsm7Char::Extended(s) => {
                out.push(ESC);
                out.push(s);
            }
        }
        char_index += 1;
    }
    Ok(())
}

/// UTF-8 of each default-alphabet septet: length and up to 3 bytes.
const DEFAULT_UTF8: [(u8, [u8; 3]); 128] = {
    let mut t = [(0u8, [0u8; 3]); 128];
    let mut i = 0;
    while i < 128 {
        let c = DEFAULT_ALPHABET[i] as u32;
        t[i] = if c < 0x80 {
            (1, [c as u8, 0, 0])
        } else if c < 0x800 {
            (2, [0xC0 | (c >> 6) as u8, 0x80 | (c & 0x3F) as u8, 0])
        } else {
            (
                3,
                [
                    0xE0 | (c >> 12) as u8,
                    0x80 | ((c >> 6) & 0x3F) as u8,
                    0x80 | (c & 0x3F) as u8,
                ],
            )
        };
        i += 1;
    }
    t
};

/// [`Gsm7Tables::decode`] for the default tables: builds UTF-8 bytes from a
/// precomputed table (the hot path of every received SMS).
fn decode_default(septets: &[u8], out: &mut String) {
    let mut bytes = Vec::with_capacity(septets.len() + 4);
    let mut iter = septets.iter();
    while let Some(&s) = iter.next() {
        let s = s & 0x7F;
        if s == ESC {
            let c = match iter.next() {
                None => ' ',
                Some(&e) if e & 0x7F == ESC => ' ',
                Some(&e) => match DEFAULT_EXTENSION[usize::from(e & 0x7F)] {
                    NONE => DEFAULT_ALPHABET[usize::from(e & 0x7F)],
                    c => c,
                },
            };
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        // `s` < 128 after masking.
        let (len, utf8) = DEFAULT_UTF8[usize::from(s)];
        if len == 1 {
            bytes.push(utf8[0]);
        } else {
            bytes.extend_from_slice(utf8.get(..usize::from(len)).unwrap_or(&[]));
        }
    }
    // Every table entry is valid UTF-8, so this never takes the lossy path.
    match String::from_utf8(bytes) {
        Ok(s) if out.is_empty() => *out = s,
        Ok(s) => out.push_str(&s),
        Err(e) => out.push_str(&String::from_utf8_lossy(e.as_bytes())),
    }
}

/// Lookup in the default alphabet and default extension table.
#[inline]
fn lookup_default(c: char) -> Option<Gsm7Char> {
    let v = match LOOKUP.get(c as usize) {
        Some(&v) => v,
        None if c == '€' => return Some(Gsm7Char::Extended(0x65)),
        None => return None,
    };
    match v {
        NO_CODE => None,
        v if v & EXT_FLAG != 0 => Some(Gsm7Char::Extended((v & 0x7F) as u8)),
        v => Some(Gsm7Char::Basic(v as u8)),
    }
}

/// True when every character of `text` is in the default alphabet or the
/// default extension table.
pub fn is_default_alphabet(text: &str) -> bool {
    text.chars().all(|c| lookup_default(c).is_some())
}

/// Number of septets `count` septets occupy when packed after `fill_bits`
/// fill bits: the octet count of the packed form.
pub const fn packed_len(count: usize, fill_bits: usize) -> usize {
    (count * 7 + fill_bits).div_ceil(8)
}

/// Packs septets into octets, least significant bit first (TS 23.038
/// §6.1.2.1.1), after `fill_bits` zero bits (0..=6; used to align text to a
/// septet boundary after a UDH). Septet values are masked to 7 bits.
pub fn pack(septets: &[u8], fill_bits: usize, out: &mut Vec<u8>) {
    let fill = fill_bits % 8;
    out.reserve(packed_len(septets.len(), fill));
    // Eight septets fill exactly seven octets; with the fill bits carried in
    // `acc` the groups stay aligned, so whole groups go through a u64.
    let mut acc: u64 = 0;
    let mut nbits = fill as u32;
    let mut chunks = septets.chunks_exact(8);
    for group in &mut chunks {
        let mut g: u64 = 0;
        for (i, &s) in group.iter().enumerate() {
            g |= u64::from(s & 0x7F) << (7 * i);
        }
        // 56 bits of the group plus up to 7 pending bits fit in a u64.
        let combined = acc | (g << nbits);
        out.extend_from_slice(&combined.to_le_bytes()[..7]);
        acc = combined >> 56;
    }
    for &s in chunks.remainder() {
        acc |= u64::from(s & 0x7F) << nbits;
        nbits += 7;
        if nbits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            nbits -= 8;
        }
    }
    if nbits > 0 {
        out.push(acc as u8);
    }
}

/// Unpacks up to `count` septets from `data`, skipping `fill_bits` leading
/// bits. Stops early if `data` is too short (callers check lengths first).
pub fn unpack(data: &[u8], fill_bits: usize, count: usize, out: &mut Vec<u8>) {
    let fill = fill_bits % 8;
    let available = (data.len() * 8).saturating_sub(fill) / 7;
    let count = count.min(available);
    out.reserve(count);
    // Whole groups of eight septets (56 bits starting at bit 56k + fill, i.e.
    // octet 7k) are read through one u64 while eight octets remain.
    let mut i = 0;
    while i + 8 <= count {
        let start = i / 8 * 7;
        let Some(window) = data.get(start..start + 8) else {
            break;
        };
        let mut w = [0u8; 8];
        w.copy_from_slice(window);
        let g = u64::from_le_bytes(w) >> fill;
        for k in 0..8 {
            out.push(((g >> (7 * k)) & 0x7F) as u8);
        }
        i += 8;
    }
    while i < count {
        let bit = fill + 7 * i;
        let byte = bit / 8;
        let shift = bit % 8;
        // `byte` < data.len() because `count` <= `available`; the second
        // octet is only needed (and only present) when the septet crosses.
        let lo = u16::from(data.get(byte).copied().unwrap_or(0));
        let hi = u16::from(data.get(byte + 1).copied().unwrap_or(0));
        out.push((((hi << 8 | lo) >> shift) & 0x7F) as u8);
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn well_known_positions() {
        let t = Gsm7Tables::DEFAULT;
        assert_eq!(t.lookup('@'), Some(Gsm7Char::Basic(0x00)));
        assert_eq!(t.lookup('$'), Some(Gsm7Char::Basic(0x02)));
        assert_eq!(t.lookup('§'), Some(Gsm7Char::Basic(0x5F)));
        assert_eq!(t.lookup('_'), Some(Gsm7Char::Basic(0x11)));
        assert_eq!(t.lookup('`'), None);
        assert_eq!(t.lookup('€'), Some(Gsm7Char::Extended(0x65)));
        assert_eq!(t.lookup('\u{0C}'), Some(Gsm7Char::Extended(0x0A)));
        assert_eq!(t.lookup('\u{1B}'), None);
        assert_eq!(t.lookup(NONE), None);
    }

    #[test]
    fn fast_path_agrees_with_tables() {
        // Every char of the default tables found by the generic search must
        // get the same code from the fast path, and vice versa.
        for (i, &c) in DEFAULT_ALPHABET.iter().enumerate() {
            if i != ESC as usize {
                assert_eq!(lookup_default(c), Some(Gsm7Char::Basic(i as u8)), "{c:?}");
            }
        }
        for (i, &c) in DEFAULT_EXTENSION.iter().enumerate() {
            if c != NONE {
                assert_eq!(
                    lookup_default(c),
                    Some(Gsm7Char::Extended(i as u8)),
                    "{c:?}"
                );
            }
        }
        for code in 0u32..0x3000 {
            if let Some(c) = char::from_u32(code) {
                let in_tables =
                    c != NONE && (DEFAULT_ALPHABET.contains(&c) || DEFAULT_EXTENSION.contains(&c));
                assert_eq!(lookup_default(c).is_some(), in_tables, "{c:?}");
            }
        }
    }

    #[test]
    fn hellohello_packs_like_the_published_example() {
        let mut s = Vec::new();
        Gsm7Tables::DEFAULT.encode("hellohello", &mut s).unwrap();
        let mut p = Vec::new();
        pack(&s, 0, &mut p);
        assert_eq!(hex::encode_upper(&p), "E8329BFD4697D9EC37");
        let mut back = Vec::new();
        unpack(&p, 0, s.len(), &mut back);
        assert_eq!(back, s);
    }

    #[test]
    fn pack_unpack_with_fill_bits() {
        let septets: Vec<u8> = (0..50).map(|i| (i * 37 % 128) as u8).collect();
        for fill in 0..7 {
            let mut p = Vec::new();
            pack(&septets, fill, &mut p);
            assert_eq!(p.len(), packed_len(septets.len(), fill));
            let mut back = Vec::new();
            unpack(&p, fill, septets.len(), &mut back);
            assert_eq!(back, septets, "fill {fill}");
        }
    }

    #[test]
    fn decode_tolerates_odd_escapes() {
        let mut s = String::new();
        // ESC + undefined extension code 0x41 -> 'A' from main table;
        // ESC ESC -> space; dangling ESC -> space.
        Gsm7Tables::DEFAULT.decode(&[ESC, 0x41, ESC, ESC, 0x41, ESC], &mut s);
        assert_eq!(s, "A A ");
    }
}
