//! TP-OA / TP-DA / TP-RA and SMSC addresses (TS 23.040 §9.1.2.5, TS 24.011
//! §8.2.5.1).
//!
//! A number is a type-of-address octet (`1 TTT NNNN`: type of number, numbering
//! plan) followed by semi-octet digits with nibbles swapped and an `F` filler
//! for odd counts. An alphanumeric sender (TON 101, TOA 0xD0) carries GSM
//! 7-bit packed text instead. The TP address length counts *useful
//! semi-octets*; the SMSC length counts *octets* including the TOA octet, which
//! is why the two have separate codecs here.

use std::fmt;

use super::gsm7::{self, Gsm7Tables};
use super::reader::Reader;
use crate::Error;

/// Longest address value: 10 octets = 20 digits (TS 23.040 §9.1.2.5).
pub const MAX_DIGITS: usize = 20;
/// Longest alphanumeric address: 11 septets fit in 10 octets.
pub const MAX_ALPHANUMERIC_SEPTETS: usize = 11;

/// Type of number, bits 6..4 of the type-of-address octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TypeOfNumber {
    /// 000: the network decides.
    Unknown,
    /// 001: international number, shown with a leading `+`.
    International,
    /// 010: national number (no country code).
    National,
    /// 011: network-specific number (short codes, services).
    NetworkSpecific,
    /// 100: subscriber number.
    Subscriber,
    /// 101: alphanumeric, GSM 7-bit text.
    Alphanumeric,
    /// 110: abbreviated number.
    Abbreviated,
    /// 111: reserved for extension.
    Reserved,
}

impl TypeOfNumber {
    const fn from_bits(b: u8) -> Self {
        match b & 0x07 {
            0 => Self::Unknown,
            1 => Self::International,
            2 => Self::National,
            3 => Self::NetworkSpecific,
            4 => Self::Subscriber,
            5 => Self::Alphanumeric,
            6 => Self::Abbreviated,
            _ => Self::Reserved,
        }
    }

    const fn bits(self) -> u8 {
        match self {
            Self::Unknown => 0,
            Self::International => 1,
            Self::National => 2,
            Self::NetworkSpecific => 3,
            Self::Subscriber => 4,
            Self::Alphanumeric => 5,
            Self::Abbreviated => 6,
            Self::Reserved => 7,
        }
    }
}

/// An SMS address: type of number, numbering plan and value.
///
/// Constructed only through validating constructors or the decoder, so every
/// `Address` can be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    ton: TypeOfNumber,
    npi: u8,
    value: String,
}

/// Semi-octet digit values 0..=15 as characters (TS 23.040 §9.1.2.3: 1010
/// `*`, 1011 `#`, 1100..1110 `a`..`c`; 1111 is the filler).
const DIGITS: &[u8; 15] = b"0123456789*#abc";

fn nibble_of(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'a' | 'A' => Some(12),
        'b' | 'B' => Some(13),
        'c' | 'C' => Some(14),
        _ => None,
    }
}

/// Names of the sub-fields of one address field, for error messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AddressField {
    pub length: &'static str,
    pub toa: &'static str,
    pub digits: &'static str,
}

pub(crate) const TP_OA: AddressField = AddressField {
    length: "TP-OA length",
    toa: "TP-OA type of address",
    digits: "TP-OA address digits",
};
pub(crate) const TP_DA: AddressField = AddressField {
    length: "TP-DA length",
    toa: "TP-DA type of address",
    digits: "TP-DA address digits",
};
pub(crate) const TP_RA: AddressField = AddressField {
    length: "TP-RA length",
    toa: "TP-RA type of address",
    digits: "TP-RA address digits",
};
const SMSC: AddressField = AddressField {
    length: "SMSC address length",
    toa: "SMSC type of address",
    digits: "SMSC address digits",
};

impl Address {
    /// An address with an explicit type of number and numbering plan (0..=15).
    /// For `Alphanumeric`, `value` is text in the GSM default alphabet (at
    /// most 11 septets); otherwise 1..=20 of `0-9 * # a b c`.
    pub fn new(ton: TypeOfNumber, npi: u8, value: &str) -> Result<Self, Error> {
        if npi > 0x0F {
            return Err(Error::Address {
                reason: "numbering plan must be 0..=15",
            });
        }
        if ton == TypeOfNumber::Alphanumeric {
            let septets = Gsm7Tables::DEFAULT
                .count(value)
                .map_err(|_| Error::Address {
                    reason: "alphanumeric address outside the GSM 7-bit alphabet",
                })?;
            if septets == 0 || septets > MAX_ALPHANUMERIC_SEPTETS {
                return Err(Error::Address {
                    reason: "alphanumeric address must be 1 to 11 septets",
                });
            }
            return Ok(Self {
                ton,
                npi,
                value: value.to_owned(),
            });
        }
        let mut digits = String::with_capacity(value.len());
        for c in value.chars() {
            let n = nibble_of(c).ok_or(Error::Address {
                reason: "digits must be 0-9, *, #, a, b or c",
            })?;
            digits.push(char::from(DIGITS[usize::from(n)]));
        }
        if digits.is_empty() || digits.len() > MAX_DIGITS {
            return Err(Error::Address {
                reason: "a number must have 1 to 20 digits",
            });
        }
        Ok(Self {
            ton,
            npi,
            value: digits,
        })
    }

    /// Parses a number as a user writes it: `+` and digits is international
    /// (TOA 0x91); bare digits are of unknown type (TOA 0x81, the network
    /// decides). Spaces, dashes, dots and parentheses are ignored.
    pub fn parse_number(text: &str) -> Result<Self, Error> {
        let trimmed = text.trim();
        let (ton, rest) = match trimmed.strip_prefix('+') {
            Some(rest) => (TypeOfNumber::International, rest),
            None => (TypeOfNumber::Unknown, trimmed),
        };
        let digits: String = rest
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        if digits.chars().any(|c| !c.is_ascii_digit()) {
            return Err(Error::Address {
                reason: "a phone number may only hold digits after an optional +",
            });
        }
        Self::new(ton, 1, &digits)
    }

    /// International ISDN number (TOA 0x91) from its digits (no `+`).
    pub fn international(digits: &str) -> Result<Self, Error> {
        Self::new(TypeOfNumber::International, 1, digits)
    }

    /// National ISDN number (TOA 0xA1).
    pub fn national(digits: &str) -> Result<Self, Error> {
        Self::new(TypeOfNumber::National, 1, digits)
    }

    /// Number of unknown type, ISDN plan (TOA 0x81).
    pub fn unknown(digits: &str) -> Result<Self, Error> {
        Self::new(TypeOfNumber::Unknown, 1, digits)
    }

    /// Alphanumeric sender id (TOA 0xD0), e.g. a brand name.
    pub fn alphanumeric(text: &str) -> Result<Self, Error> {
        Self::new(TypeOfNumber::Alphanumeric, 0, text)
    }

    /// Type of number.
    pub fn ton(&self) -> TypeOfNumber {
        self.ton
    }

    /// Numbering plan identification (0..=15; 1 = ISDN/E.164).
    pub fn npi(&self) -> u8 {
        self.npi
    }

    /// The digits (or the alphanumeric text), without any `+`.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The type-of-address octet.
    pub fn toa(&self) -> u8 {
        0x80 | (self.ton.bits() << 4) | self.npi
    }

    fn is_alphanumeric(&self) -> bool {
        self.ton == TypeOfNumber::Alphanumeric
    }

    /// Encoded address value (digits as swapped semi-octets, or packed text)
    /// and the number of useful semi-octets.
    fn value_bytes(&self, out: &mut Vec<u8>) -> usize {
        if self.is_alphanumeric() {
            let mut septets = Vec::with_capacity(MAX_ALPHANUMERIC_SEPTETS);
            // Validated in `new`/decode: every char is in the default tables.
            let _ = Gsm7Tables::DEFAULT.encode(&self.value, &mut septets);
            gsm7::pack(&septets, 0, out);
            (septets.len() * 7).div_ceil(4)
        } else {
            let mut nibbles = self.value.chars().filter_map(nibble_of);
            let mut count = 0;
            while let Some(lo) = nibbles.next() {
                let hi = nibbles.next();
                count += 1 + usize::from(hi.is_some());
                out.push(lo | (hi.unwrap_or(0x0F) << 4));
            }
            count
        }
    }

    /// Writes a TP address (length in useful semi-octets).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let len_at = out.len();
        out.push(0);
        out.push(self.toa());
        let semi_octets = self.value_bytes(out);
        if let Some(len) = out.get_mut(len_at) {
            *len = semi_octets as u8;
        }
    }

    /// Reads a TP address (TP-OA, TP-DA or TP-RA).
    pub(crate) fn decode_tp(r: &mut Reader<'_>, field: AddressField) -> Result<Self, Error> {
        let len_offset = r.offset();
        let semi_octets = usize::from(r.u8(field.length)?);
        if semi_octets > MAX_DIGITS {
            return Err(Error::malformed(
                field.length,
                len_offset,
                "longer than 20 semi-octets",
            ));
        }
        let toa = r.u8(field.toa)?;
        let value_offset = r.offset();
        let bytes = r.take(semi_octets.div_ceil(2), field.digits)?;
        Self::from_wire(toa, bytes, semi_octets, field, value_offset)
    }

    /// Reads the SMSC prefix of a modem PDU: `None` for `00` (use the SIM's
    /// default SMSC).
    pub(crate) fn decode_smsc(r: &mut Reader<'_>) -> Result<Option<Self>, Error> {
        let len_offset = r.offset();
        let octets = usize::from(r.u8(SMSC.length)?);
        if octets == 0 {
            return Ok(None);
        }
        if octets > 11 {
            return Err(Error::malformed(
                SMSC.length,
                len_offset,
                "longer than 11 octets",
            ));
        }
        let toa = r.u8(SMSC.toa)?;
        let value_offset = r.offset();
        let bytes = r.take(octets - 1, SMSC.digits)?;
        let semi_octets = match bytes.last() {
            Some(b) if b >> 4 == 0x0F => bytes.len() * 2 - 1,
            _ => bytes.len() * 2,
        };
        if TypeOfNumber::from_bits(toa >> 4) == TypeOfNumber::Alphanumeric {
            // A service centre is always a number (TS 24.011 RP-address);
            // an octet count cannot say how many septets an alphanumeric
            // value would hold.
            return Err(Error::malformed(
                SMSC.toa,
                value_offset - 1,
                "alphanumeric SMSC address",
            ));
        }
        Self::from_wire(toa, bytes, semi_octets, SMSC, value_offset).map(Some)
    }

    /// Writes the SMSC prefix: `00` for `None`, else octet length, TOA, digits.
    pub fn encode_smsc(smsc: Option<&Address>, out: &mut Vec<u8>) {
        match smsc {
            None => out.push(0),
            Some(a) => {
                let len_at = out.len();
                out.push(0);
                out.push(a.toa());
                a.value_bytes(out);
                let octets = out.len() - len_at - 1;
                if let Some(len) = out.get_mut(len_at) {
                    *len = octets as u8;
                }
            }
        }
    }

    fn from_wire(
        toa: u8,
        bytes: &[u8],
        semi_octets: usize,
        field: AddressField,
        offset: usize,
    ) -> Result<Self, Error> {
        let ton = TypeOfNumber::from_bits(toa >> 4);
        let npi = toa & 0x0F;
        if ton == TypeOfNumber::Alphanumeric {
            let count = semi_octets * 4 / 7;
            let mut septets = Vec::with_capacity(count);
            gsm7::unpack(bytes, 0, count, &mut septets);
            let mut value = String::with_capacity(count);
            Gsm7Tables::DEFAULT.decode(&septets, &mut value);
            // Some senders pad with CR or '@' (septet 0); the count is exact so
            // anything decoded is part of the value.
            return Ok(Self { ton, npi, value });
        }
        let mut value = String::with_capacity(semi_octets);
        for i in 0..semi_octets {
            let b = bytes.get(i / 2).copied().unwrap_or(0xFF);
            let n = if i % 2 == 0 { b & 0x0F } else { b >> 4 };
            match DIGITS.get(usize::from(n)) {
                Some(&d) => value.push(char::from(d)),
                None => {
                    // An F filler inside the digits: tolerated only as the
                    // last semi-octet (some SMSCs count it).
                    if i + 1 == semi_octets {
                        break;
                    }
                    return Err(Error::malformed(
                        field.digits,
                        offset + i / 2,
                        "filler semi-octet inside the number",
                    ));
                }
            }
        }
        Ok(Self { ton, npi, value })
    }
}

impl fmt::Display for Address {
    /// International numbers with a leading `+`; everything else as is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ton == TypeOfNumber::International {
            write!(f, "+{}", self.value)
        } else {
            f.write_str(&self.value)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tp(a: &Address) -> String {
        let mut v = Vec::new();
        a.encode(&mut v);
        hex::encode_upper(v)
    }

    #[test]
    fn international_odd_digits() {
        let a = Address::parse_number("+1 (415) 555-0101").unwrap();
        assert_eq!(tp(&a), "0B914151550501F1");
        assert_eq!(a.to_string(), "+14155550101");
        let b = Address::decode_tp(
            &mut Reader::new(&hex::decode("0B914151550501F1").unwrap()),
            TP_DA,
        )
        .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn alphanumeric_lengths() {
        // Length field = useful semi-octets = ceil(7 * septets / 4).
        for (text, len) in [
            ("A", 2),
            ("MMoney", 11),
            ("Brand12", 13),
            ("Design@Home", 20),
        ] {
            let a = Address::alphanumeric(text).unwrap();
            let mut v = Vec::new();
            a.encode(&mut v);
            assert_eq!(v[0], len, "{text}");
            assert_eq!(v[1], 0xD0);
            let b = Address::decode_tp(&mut Reader::new(&v), TP_OA).unwrap();
            assert_eq!(b.value(), text);
        }
        assert!(Address::alphanumeric("TwelveChars!").is_err());
        assert!(Address::alphanumeric("").is_err());
    }

    #[test]
    fn smsc_prefix() {
        let raw = hex::decode("07917283010010F5").unwrap();
        let a = Address::decode_smsc(&mut Reader::new(&raw))
            .unwrap()
            .unwrap();
        assert_eq!(a.to_string(), "+27381000015");
        let mut v = Vec::new();
        Address::encode_smsc(Some(&a), &mut v);
        assert_eq!(v, raw);
        assert_eq!(Address::decode_smsc(&mut Reader::new(&[0])).unwrap(), None);
    }

    #[test]
    fn rejects_bad_numbers() {
        assert!(Address::parse_number("+").is_err());
        assert!(Address::parse_number("12a").is_err());
        assert!(Address::parse_number(&"1".repeat(21)).is_err());
        let e = Address::decode_tp(&mut Reader::new(&[0x15, 0x91]), TP_OA).unwrap_err();
        assert_eq!(
            e,
            Error::malformed("TP-OA length", 0, "longer than 20 semi-octets")
        );
    }
}
