//! The User Data Header (TS 23.040 §9.2.3.24): concatenation, application
//! ports and national language shifts.
//!
//! Known information elements with a wrong length or impossible values
//! (concatenation with sequence 0 or above the total) are kept as
//! [`InformationElement::Other`], exactly as received: TS 23.040 asks
//! receivers to ignore such elements, and keeping the bytes lets the TPDU
//! re-encode unchanged.

use serde::Serialize;

use super::reader::Reader;
use crate::Error;

/// IEI of concatenated messages with an 8-bit reference.
pub const IEI_CONCAT_8: u8 = 0x00;
/// IEI of application port addressing with 8-bit ports.
pub const IEI_PORTS_8: u8 = 0x04;
/// IEI of application port addressing with 16-bit ports.
pub const IEI_PORTS_16: u8 = 0x05;
/// IEI of concatenated messages with a 16-bit reference.
pub const IEI_CONCAT_16: u8 = 0x08;
/// IEI of the national language single-shift table.
pub const IEI_SINGLE_SHIFT: u8 = 0x24;
/// IEI of the national language locking-shift table.
pub const IEI_LOCKING_SHIFT: u8 = 0x25;

/// One information element of a UDH.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InformationElement {
    /// IEI 0x00: part `sequence` (1-based) of `total`, 8-bit reference.
    Concat8 {
        /// Reference shared by all parts of one message.
        reference: u8,
        /// Number of parts (1..=255).
        total: u8,
        /// This part's number (1..=total).
        sequence: u8,
    },
    /// IEI 0x08: like `Concat8` with a 16-bit reference.
    Concat16 {
        /// Reference shared by all parts of one message.
        reference: u16,
        /// Number of parts (1..=255).
        total: u8,
        /// This part's number (1..=total).
        sequence: u8,
    },
    /// IEI 0x04: application ports, 8-bit.
    Ports8 {
        /// Destination port.
        destination: u8,
        /// Originator port.
        origin: u8,
    },
    /// IEI 0x05: application ports, 16-bit (e.g. 2948 for WAP push).
    Ports16 {
        /// Destination port.
        destination: u16,
        /// Originator port.
        origin: u16,
    },
    /// IEI 0x24: national language single-shift table id.
    SingleShift(u8),
    /// IEI 0x25: national language locking-shift table id.
    LockingShift(u8),
    /// Any other element, or a known one that is malformed, kept verbatim.
    Other {
        /// The element identifier.
        iei: u8,
        /// The element data (at most 255 octets).
        data: Vec<u8>,
    },
}

/// Concatenation information of one part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Concat {
    /// Reference shared by all parts (8- or 16-bit).
    pub reference: u16,
    /// Number of parts.
    pub total: u8,
    /// This part's 1-based number.
    pub part: u8,
    /// True when the reference came from IEI 0x08 (16-bit).
    pub wide_reference: bool,
}

/// Application port addressing of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Ports {
    /// Destination port.
    pub destination: u16,
    /// Originator port.
    pub origin: u16,
}

impl InformationElement {
    /// The element identifier.
    pub fn iei(&self) -> u8 {
        match self {
            Self::Concat8 { .. } => IEI_CONCAT_8,
            Self::Concat16 { .. } => IEI_CONCAT_16,
            Self::Ports8 { .. } => IEI_PORTS_8,
            Self::Ports16 { .. } => IEI_PORTS_16,
            Self::SingleShift(_) => IEI_SINGLE_SHIFT,
            Self::LockingShift(_) => IEI_LOCKING_SHIFT,
            Self::Other { iei, .. } => *iei,
        }
    }

    /// Encoded size including IEI and length octets.
    pub fn encoded_len(&self) -> usize {
        2 + match self {
            Self::Concat8 { .. } => 3,
            Self::Concat16 { .. } | Self::Ports16 { .. } => 4,
            Self::Ports8 { .. } => 2,
            Self::SingleShift(_) | Self::LockingShift(_) => 1,
            Self::Other { data, .. } => data.len().min(255),
        }
    }

    /// Writes IEI, length and data.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.iei());
        match self {
            Self::Concat8 {
                reference,
                total,
                sequence,
            } => out.extend_from_slice(&[3, *reference, *total, *sequence]),
            Self::Concat16 {
                reference,
                total,
                sequence,
            } => {
                let [hi, lo] = reference.to_be_bytes();
                out.extend_from_slice(&[4, hi, lo, *total, *sequence]);
            }
            Self::Ports8 {
                destination,
                origin,
            } => out.extend_from_slice(&[2, *destination, *origin]),
            Self::Ports16 {
                destination,
                origin,
            } => {
                out.push(4);
                out.extend_from_slice(&destination.to_be_bytes());
                out.extend_from_slice(&origin.to_be_bytes());
            }
            Self::SingleShift(id) | Self::LockingShift(id) => out.extend_from_slice(&[1, *id]),
            Self::Other { data, .. } => {
                let data = data.get(..255).unwrap_or(data);
                out.push(data.len() as u8);
                out.extend_from_slice(data);
            }
        }
    }

    fn from_wire(iei: u8, data: &[u8]) -> Self {
        let valid_concat = |total: u8, seq: u8| total >= 1 && seq >= 1 && seq <= total;
        match (iei, data) {
            (IEI_CONCAT_8, &[reference, total, sequence]) if valid_concat(total, sequence) => {
                Self::Concat8 {
                    reference,
                    total,
                    sequence,
                }
            }
            (IEI_CONCAT_16, &[hi, lo, total, sequence]) if valid_concat(total, sequence) => {
                Self::Concat16 {
                    reference: u16::from_be_bytes([hi, lo]),
                    total,
                    sequence,
                }
            }
            (IEI_PORTS_8, &[destination, origin]) => Self::Ports8 {
                destination,
                origin,
            },
            (IEI_PORTS_16, &[d1, d2, o1, o2]) => Self::Ports16 {
                destination: u16::from_be_bytes([d1, d2]),
                origin: u16::from_be_bytes([o1, o2]),
            },
            (IEI_SINGLE_SHIFT, &[id]) => Self::SingleShift(id),
            (IEI_LOCKING_SHIFT, &[id]) => Self::LockingShift(id),
            _ => Self::Other {
                iei,
                data: data.to_vec(),
            },
        }
    }
}

/// A decoded User Data Header: its elements in wire order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Udh {
    /// The information elements, in the order they appear.
    pub elements: Vec<InformationElement>,
}

impl Udh {
    /// Encoded size including the UDHL octet.
    pub fn encoded_len(&self) -> usize {
        1 + self
            .elements
            .iter()
            .map(InformationElement::encoded_len)
            .sum::<usize>()
    }

    /// Writes UDHL and the elements.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push((self.encoded_len() - 1).min(255) as u8);
        for e in &self.elements {
            e.encode(out);
        }
    }

    /// Reads UDHL and the elements; `r` must hold at least the whole header.
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, Error> {
        let udhl = usize::from(r.u8("TP-UDHL")?);
        let mut h = r.sub(udhl, "TP-UDH")?;
        let mut elements = Vec::new();
        while !h.is_empty() {
            let iei = h.u8("TP-UDH information element identifier")?;
            let len_offset = h.offset();
            let len = usize::from(h.u8("TP-UDH information element length")?);
            if len > h.remaining() {
                return Err(Error::malformed(
                    "TP-UDH information element length",
                    len_offset,
                    "element runs past the end of the header",
                ));
            }
            let data = h.take(len, "TP-UDH information element data")?;
            elements.push(InformationElement::from_wire(iei, data));
        }
        Ok(Self { elements })
    }

    /// The concatenation element, if any (the first valid one).
    pub fn concat(&self) -> Option<Concat> {
        self.elements.iter().find_map(|e| match *e {
            InformationElement::Concat8 {
                reference,
                total,
                sequence,
            } => Some(Concat {
                reference: u16::from(reference),
                total,
                part: sequence,
                wide_reference: false,
            }),
            InformationElement::Concat16 {
                reference,
                total,
                sequence,
            } => Some(Concat {
                reference,
                total,
                part: sequence,
                wide_reference: true,
            }),
            _ => None,
        })
    }

    /// Application ports, if any.
    pub fn ports(&self) -> Option<Ports> {
        self.elements.iter().find_map(|e| match *e {
            InformationElement::Ports8 {
                destination,
                origin,
            } => Some(Ports {
                destination: u16::from(destination),
                origin: u16::from(origin),
            }),
            InformationElement::Ports16 {
                destination,
                origin,
            } => Some(Ports {
                destination,
                origin,
            }),
            _ => None,
        })
    }

    /// Language id of the single-shift element, if any.
    pub fn single_shift(&self) -> Option<u8> {
        self.elements.iter().find_map(|e| match *e {
            InformationElement::SingleShift(id) => Some(id),
            _ => None,
        })
    }

    /// Language id of the locking-shift element, if any.
    pub fn locking_shift(&self) -> Option<u8> {
        self.elements.iter().find_map(|e| match *e {
            InformationElement::LockingShift(id) => Some(id),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn roundtrip(hex: &str) -> Udh {
        let b = hex::decode(hex).unwrap();
        let mut r = Reader::new(&b);
        let u = Udh::decode(&mut r).unwrap();
        assert!(r.is_empty());
        let mut out = Vec::new();
        u.encode(&mut out);
        assert_eq!(hex::encode_upper(out), hex);
        u
    }

    #[test]
    fn concat_and_ports() {
        let u = roundtrip("050003A70302");
        assert_eq!(
            u.concat(),
            Some(Concat {
                reference: 0xA7,
                total: 3,
                part: 2,
                wide_reference: false
            })
        );
        let u = roundtrip("0C08041234020105040B840000");
        assert_eq!(
            u.concat().map(|c| (c.reference, c.wide_reference)),
            Some((0x1234, true))
        );
        let u = roundtrip("0605040B8423F0");
        assert_eq!(
            u.ports(),
            Some(Ports {
                destination: 2948,
                origin: 9200
            })
        );
        let u = roundtrip("03240101");
        assert_eq!(u.single_shift(), Some(1));
    }

    #[test]
    fn invalid_concat_is_kept_verbatim() {
        let u = roundtrip("050003A70304");
        assert_eq!(u.concat(), None);
        let u = roundtrip("050003A70000");
        assert_eq!(u.concat(), None);
    }

    #[test]
    fn element_past_header_end() {
        let b = hex::decode("0400050102").unwrap();
        let e = Udh::decode(&mut Reader::new(&b)).unwrap_err();
        assert_eq!(
            e,
            Error::malformed(
                "TP-UDH information element length",
                2,
                "element runs past the end of the header"
            )
        );
    }
}
