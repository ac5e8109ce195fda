//! TP-UDL + TP-UD: the user data of a TPDU, with its optional header.
//!
//! The body is kept in its wire coding (septets for GSM 7-bit, octets for
//! UCS-2 and 8-bit) rather than as text. That keeps decoding lossless and
//! lets the reassembler join the bodies of all parts before turning them into
//! text, which repairs escape pairs and surrogate pairs that other senders
//! split across parts.

use super::gsm7::{self, Gsm7Tables};
use super::reader::Reader;
use super::segment::Encoding;
use super::ucs2;
use super::udh::Udh;
use crate::Error;

/// Maximum user data: 140 octets (TS 23.040 §9.2.3.16).
pub const MAX_OCTETS: usize = 140;
/// Maximum 7-bit user data: 160 septets.
pub const MAX_SEPTETS: usize = 160;

/// User data of one TPDU: optional header and a body in its wire coding.
///
/// Built by [`UserData::new`] or the decoder, both of which enforce the
/// 140-octet limit, so encoding cannot overflow TP-UDL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserData {
    header: Option<Udh>,
    encoding: Encoding,
    body: Vec<u8>,
}

/// Septets a header of `udh_octets` octets occupies in 7-bit user data,
/// fill bits included (TS 23.040 §9.2.3.24).
pub const fn header_septets(udh_octets: usize) -> usize {
    (udh_octets * 8).div_ceil(7)
}

impl UserData {
    /// User data from a header and a body: septets (0..=127 each) for
    /// [`Encoding::Gsm7`], octets otherwise. Fails if it exceeds 140 octets.
    pub fn new(header: Option<Udh>, encoding: Encoding, body: Vec<u8>) -> Result<Self, Error> {
        let udh_octets = header.as_ref().map_or(0, Udh::encoded_len);
        if udh_octets > MAX_OCTETS {
            return Err(Error::Parameter {
                name: "TP-UDH",
                reason: "header longer than the user data field",
            });
        }
        let fits = match encoding {
            Encoding::Gsm7 => {
                body.iter().fold(0u8, |acc, &s| acc | s) < 0x80
                    && header_septets(udh_octets) + body.len() <= MAX_SEPTETS
            }
            Encoding::Ucs2 | Encoding::EightBit => udh_octets + body.len() <= MAX_OCTETS,
        };
        if !fits {
            return Err(Error::Parameter {
                name: "TP-UD",
                reason: "user data longer than 140 octets",
            });
        }
        Ok(Self {
            header,
            encoding,
            body,
        })
    }

    /// The header, if TP-UDHI is set.
    pub fn header(&self) -> Option<&Udh> {
        self.header.as_ref()
    }

    /// The coding of the body.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The body in its wire coding: septets for GSM 7-bit, octets otherwise.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The GSM 7-bit tables the header selects (default when none).
    pub fn gsm7_tables(&self) -> Gsm7Tables {
        match &self.header {
            Some(h) => Gsm7Tables::from_ids(h.locking_shift(), h.single_shift()),
            None => Gsm7Tables::DEFAULT,
        }
    }

    /// The body as text, or `None` for 8-bit data.
    pub fn text(&self) -> Option<String> {
        let mut s = String::with_capacity(self.body.len() + 8);
        match self.encoding {
            Encoding::Gsm7 => self.gsm7_tables().decode(&self.body, &mut s),
            Encoding::Ucs2 => ucs2::decode(&self.body, &mut s),
            Encoding::EightBit => return None,
        }
        Some(s)
    }

    /// The TP-UDL value: septets (header and fill included) for 7-bit,
    /// octets otherwise.
    pub fn udl(&self) -> usize {
        let udh = self.header.as_ref().map_or(0, Udh::encoded_len);
        match self.encoding {
            Encoding::Gsm7 => header_septets(udh) + self.body.len(),
            _ => udh + self.body.len(),
        }
    }

    /// Octets of TP-UD on the wire (TP-UDL octet not included).
    pub fn wire_octets(&self) -> usize {
        match self.encoding {
            Encoding::Gsm7 => gsm7::packed_len(self.udl(), 0),
            _ => self.udl(),
        }
    }

    /// Writes TP-UDL and TP-UD.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.udl() as u8);
        let start = out.len();
        if let Some(h) = &self.header {
            h.encode(out);
        }
        let udh = out.len() - start;
        match self.encoding {
            Encoding::Gsm7 => {
                let fill = header_septets(udh) * 7 - udh * 8;
                gsm7::pack(&self.body, fill, out);
            }
            _ => out.extend_from_slice(&self.body),
        }
    }

    /// Reads TP-UDL and TP-UD for the alphabet the DCS names; `udhi` is the
    /// TP-UDHI bit of the first octet. Length caps are checked before any
    /// allocation.
    pub(crate) fn decode(
        r: &mut Reader<'_>,
        encoding: Encoding,
        udhi: bool,
    ) -> Result<Self, Error> {
        let udl_offset = r.offset();
        let udl = usize::from(r.u8("TP-UDL")?);
        let (octets, max) = match encoding {
            Encoding::Gsm7 => (gsm7::packed_len(udl, 0), MAX_SEPTETS),
            _ => (udl, MAX_OCTETS),
        };
        if udl > max {
            return Err(Error::malformed(
                "TP-UDL",
                udl_offset,
                "longer than 140 octets of user data",
            ));
        }
        let mut ud = r.sub(octets, "TP-UD")?;
        let header = if udhi {
            if ud.is_empty() {
                return Err(Error::malformed(
                    "TP-UDHL",
                    ud.offset(),
                    "TP-UDHI set but user data is empty",
                ));
            }
            let udhl_offset = ud.offset();
            let udhl = usize::from(ud.peek().unwrap_or(0));
            if udhl + 1 > ud.remaining() {
                return Err(Error::malformed(
                    "TP-UDHL",
                    udhl_offset,
                    "header longer than the user data",
                ));
            }
            Some(Udh::decode(&mut ud)?)
        } else {
            None
        };
        let udh_octets = header.as_ref().map_or(0, Udh::encoded_len);
        let body = match encoding {
            Encoding::Gsm7 => {
                let hs = header_septets(udh_octets);
                let count = udl.checked_sub(hs).ok_or(Error::malformed(
                    "TP-UDHL",
                    udl_offset + 1,
                    "header longer than TP-UDL septets",
                ))?;
                let fill = hs * 7 - udh_octets * 8;
                let mut septets = Vec::with_capacity(count);
                gsm7::unpack(ud.rest(), fill, count, &mut septets);
                septets
            }
            _ => ud.rest().to_vec(),
        };
        Ok(Self {
            header,
            encoding,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::sms::udh::InformationElement;

    #[test]
    fn seven_bit_with_header_uses_fill_bits() {
        // 6-octet concat header -> 7 septets incl. 1 fill bit; "hi" follows.
        let udh = Udh {
            elements: vec![InformationElement::Concat8 {
                reference: 1,
                total: 2,
                sequence: 1,
            }],
        };
        let mut septets = Vec::new();
        Gsm7Tables::DEFAULT.encode("hi", &mut septets).unwrap();
        let ud = UserData::new(Some(udh), Encoding::Gsm7, septets).unwrap();
        let mut out = Vec::new();
        ud.encode(&mut out);
        // UDL 9 septets; one fill bit, then 'h' (0x68) fills bits 1..7 of
        // the next octet (0xD0) and 'i' (0x69) starts on a fresh octet.
        assert_eq!(hex::encode_upper(&out), "09050003010201D069");
        let back = UserData::decode(&mut Reader::new(&out), Encoding::Gsm7, true).unwrap();
        assert_eq!(back, ud);
        assert_eq!(back.text().as_deref(), Some("hi"));
    }

    #[test]
    fn rejects_oversized() {
        assert!(UserData::new(None, Encoding::Gsm7, vec![0; 161]).is_err());
        assert!(UserData::new(None, Encoding::Gsm7, vec![0; 160]).is_ok());
        assert!(UserData::new(None, Encoding::Ucs2, vec![0; 141]).is_err());
        let e = UserData::decode(&mut Reader::new(&[161]), Encoding::Gsm7, false).unwrap_err();
        assert_eq!(
            e,
            Error::malformed("TP-UDL", 0, "longer than 140 octets of user data")
        );
        let e = UserData::decode(&mut Reader::new(&[141]), Encoding::EightBit, false).unwrap_err();
        assert_eq!(
            e,
            Error::malformed("TP-UDL", 0, "longer than 140 octets of user data")
        );
    }

    #[test]
    fn header_longer_than_udl() {
        // 8-bit: UDL 3 but UDHL says 5.
        let e = UserData::decode(&mut Reader::new(&[3, 5, 0, 3]), Encoding::EightBit, true)
            .unwrap_err();
        assert_eq!(
            e,
            Error::malformed("TP-UDHL", 1, "header longer than the user data")
        );
        // 7-bit: UDL 2 septets = 2 octets, UDHL 0 -> header 1 octet = 2 septets, body 0.
        let ud = UserData::decode(&mut Reader::new(&[2, 0, 0]), Encoding::Gsm7, true).unwrap();
        assert_eq!(ud.body(), &[] as &[u8]);
    }
}
