//! National language single-shift and locking-shift tables (3GPP TS 23.038
//! §6.2.1.2 and Annex A).
//!
//! A single-shift table replaces the extension table reached through ESC; a
//! locking-shift table replaces the whole default alphabet. They let Turkish,
//! Spanish and Portuguese text stay in 7-bit coding (160 characters per
//! segment) instead of falling back to UCS-2 (70). They are signalled per
//! segment with UDH information elements 0x24 (single shift) and 0x25
//! (locking shift), and the segment planner only uses them when they save
//! segments, because not every handset renders them.

use serde::{Deserialize, Serialize};

/// Placeholder for table positions that hold no character (and for the ESC
/// position 0x1B of locking tables).
pub(crate) const NONE: char = '\u{FFFF}';

/// A national language with tables in TS 23.038 Annex A.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NationalLanguage {
    /// Turkish: language id 1, single-shift and locking-shift tables.
    Turkish,
    /// Spanish: language id 2, single-shift table only (TS 23.038 defines no
    /// Spanish locking-shift table).
    Spanish,
    /// Portuguese: language id 3, single-shift and locking-shift tables.
    Portuguese,
}

impl NationalLanguage {
    /// Every language this codec has tables for.
    pub const ALL: [NationalLanguage; 3] = [Self::Turkish, Self::Spanish, Self::Portuguese];

    /// The language identifier carried in UDH IEs 0x24/0x25.
    pub const fn id(self) -> u8 {
        match self {
            Self::Turkish => 1,
            Self::Spanish => 2,
            Self::Portuguese => 3,
        }
    }

    /// The language for an identifier, if this codec has its tables.
    pub const fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Self::Turkish),
            2 => Some(Self::Spanish),
            3 => Some(Self::Portuguese),
            _ => None,
        }
    }

    /// True when TS 23.038 defines a locking-shift table for the language.
    pub const fn has_locking_table(self) -> bool {
        !matches!(self, Self::Spanish)
    }

    pub(crate) fn locking_table(self) -> Option<&'static [char; 128]> {
        match self {
            Self::Turkish => Some(&TURKISH_LOCKING),
            Self::Spanish => None,
            Self::Portuguese => Some(&PORTUGUESE_LOCKING),
        }
    }

    pub(crate) fn single_shift_table(self) -> &'static [char; 128] {
        match self {
            Self::Turkish => &TURKISH_SINGLE,
            Self::Spanish => &SPANISH_SINGLE,
            Self::Portuguese => &PORTUGUESE_SINGLE,
        }
    }
}

/// Builds a 128-entry table from `(code, char)` pairs, other positions empty.
const fn table_from(entries: &[(u8, char)]) -> [char; 128] {
    let mut t = [NONE; 128];
    let mut i = 0;
    while i < entries.len() {
        t[entries[i].0 as usize] = entries[i].1;
        i += 1;
    }
    t
}

/// Builds a locking table from the default alphabet with some positions replaced.
const fn patch_default(entries: &[(u8, char)]) -> [char; 128] {
    let mut t = super::gsm7::DEFAULT_ALPHABET;
    let mut i = 0;
    while i < entries.len() {
        t[entries[i].0 as usize] = entries[i].1;
        i += 1;
    }
    t
}

/// The entries every single-shift table of Annex A.2 shares with the default
/// extension table (TS 23.038 §6.2.1.1).
macro_rules! common_shift {
    ($($extra:tt)*) => {
        [
            (0x0A, '\u{0C}'),
            (0x14, '^'),
            (0x28, '{'),
            (0x29, '}'),
            (0x2F, '\\'),
            (0x3C, '['),
            (0x3D, '~'),
            (0x3E, ']'),
            (0x40, '|'),
            (0x65, '€'),
            $($extra)*
        ]
    };
}

/// Default extension table (TS 23.038 §6.2.1.1), reached with ESC 0x1B.
pub(crate) const DEFAULT_EXTENSION: [char; 128] = table_from(&common_shift!());

/// Turkish single-shift table (TS 23.038 A.2.1).
const TURKISH_SINGLE: [char; 128] = table_from(&common_shift!(
    (0x47, 'Ğ'),
    (0x49, 'İ'),
    (0x53, 'Ş'),
    (0x63, 'ç'),
    (0x67, 'ğ'),
    (0x69, 'ı'),
    (0x73, 'ş'),
));

/// Spanish single-shift table (TS 23.038 A.2.2).
const SPANISH_SINGLE: [char; 128] = table_from(&common_shift!(
    (0x09, 'ç'),
    (0x41, 'Á'),
    (0x49, 'Í'),
    (0x4F, 'Ó'),
    (0x55, 'Ú'),
    (0x61, 'á'),
    (0x69, 'í'),
    (0x6F, 'ó'),
    (0x75, 'ú'),
));

/// Portuguese single-shift table (TS 23.038 A.2.3).
const PORTUGUESE_SINGLE: [char; 128] = table_from(&common_shift!(
    (0x05, 'ê'),
    (0x09, 'ç'),
    (0x0B, 'Ô'),
    (0x0C, 'ô'),
    (0x0E, 'Á'),
    (0x0F, 'á'),
    (0x12, 'Φ'),
    (0x13, 'Γ'),
    (0x15, 'Ω'),
    (0x16, 'Π'),
    (0x17, 'Ψ'),
    (0x18, 'Σ'),
    (0x19, 'Θ'),
    (0x1F, 'Ê'),
    (0x41, 'À'),
    (0x49, 'Í'),
    (0x4F, 'Ó'),
    (0x55, 'Ú'),
    (0x5B, 'Ã'),
    (0x5C, 'Õ'),
    (0x61, 'Â'),
    (0x69, 'í'),
    (0x6F, 'ó'),
    (0x75, 'ú'),
    (0x7B, 'ã'),
    (0x7C, 'õ'),
    (0x7F, 'â'),
));

/// Turkish locking-shift table (TS 23.038 A.3.1): the default alphabet with
/// eight positions replaced.
const TURKISH_LOCKING: [char; 128] = patch_default(&[
    (0x04, '€'),
    (0x07, 'ı'),
    (0x0B, 'Ğ'),
    (0x0C, 'ğ'),
    (0x1C, 'Ş'),
    (0x1D, 'ş'),
    (0x40, 'İ'),
    (0x60, 'ç'),
]);

/// Portuguese locking-shift table (TS 23.038 A.3.3).
const PORTUGUESE_LOCKING: [char; 128] = patch_default(&[
    (0x04, 'ê'),
    (0x06, 'ú'),
    (0x07, 'í'),
    (0x08, 'ó'),
    (0x09, 'ç'),
    (0x0B, 'Ô'),
    (0x0C, 'ô'),
    (0x0E, 'Á'),
    (0x0F, 'á'),
    (0x12, 'ª'),
    (0x13, 'Ç'),
    (0x14, 'À'),
    (0x15, '∞'),
    (0x16, '^'),
    (0x17, '\\'),
    (0x18, '€'),
    (0x19, 'Ó'),
    (0x1A, '|'),
    (0x1C, 'Â'),
    (0x1D, 'â'),
    (0x1E, 'Ê'),
    (0x24, 'º'),
    (0x40, 'Í'),
    (0x5B, 'Ã'),
    (0x5C, 'Õ'),
    (0x5D, 'Ú'),
    (0x60, '~'),
    (0x7B, 'ã'),
    (0x7C, 'õ'),
    (0x7D, '`'),
]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for l in NationalLanguage::ALL {
            assert_eq!(NationalLanguage::from_id(l.id()), Some(l));
        }
        assert_eq!(NationalLanguage::from_id(0), None);
        assert_eq!(NationalLanguage::from_id(13), None);
    }

    #[test]
    fn locking_tables_have_unique_characters() {
        for l in NationalLanguage::ALL {
            if let Some(t) = l.locking_table() {
                let mut seen = std::collections::HashSet::new();
                for (i, c) in t.iter().enumerate() {
                    if i != 0x1B {
                        assert!(seen.insert(*c), "{l:?} duplicate {c:?} at {i:#x}");
                    }
                }
            }
        }
    }
}
