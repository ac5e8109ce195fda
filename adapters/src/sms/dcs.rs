//! TP-DCS, the data coding scheme (TS 23.038 §4).
//!
//! Kept as the raw octet so that decoding and re-encoding never loses bits;
//! the accessors interpret the coding groups. Compressed user data (bit 5 of
//! the general groups) is refused: TS 23.042 compression is not deployed and
//! decoding it as plain text would produce garbage.

use serde::Serialize;

use super::segment::Encoding;

/// Message class (TS 23.038 §4): where the receiving phone should put it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum MessageClass {
    /// Class 0, "flash": shown immediately, not stored.
    #[serde(rename = "0")]
    Class0,
    /// Class 1: mobile-equipment specific (stored in the phone).
    #[serde(rename = "1")]
    Class1,
    /// Class 2: SIM specific.
    #[serde(rename = "2")]
    Class2,
    /// Class 3: terminal-equipment specific (forwarded to attached TE).
    #[serde(rename = "3")]
    Class3,
}

impl MessageClass {
    const fn from_bits(b: u8) -> Self {
        match b & 0x03 {
            0 => Self::Class0,
            1 => Self::Class1,
            2 => Self::Class2,
            _ => Self::Class3,
        }
    }

    /// The class number 0..=3.
    pub const fn number(self) -> u8 {
        match self {
            Self::Class0 => 0,
            Self::Class1 => 1,
            Self::Class2 => 2,
            Self::Class3 => 3,
        }
    }
}

/// What kind of message is waiting (message-waiting indication groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitingKind {
    /// Voicemail message waiting.
    Voicemail,
    /// Fax message waiting.
    Fax,
    /// Electronic mail message waiting.
    Email,
    /// Other message waiting.
    Other,
}

/// A message-waiting indication decoded from DCS groups 0xC0..=0xEF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct MessageWaiting {
    /// True to set the indicator, false to clear it.
    pub active: bool,
    /// What kind of message waits.
    pub kind: WaitingKind,
    /// Group 0xC0: the phone may discard the message text after updating
    /// the indicator.
    pub discard: bool,
}

/// The TP-DCS octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct Dcs(pub u8);

impl Dcs {
    /// A general-group DCS (`00xx xxxx`) for an alphabet and optional class.
    /// `Dcs::general(Encoding::Gsm7, Some(MessageClass::Class0))` is 0x10,
    /// the usual "flash SMS".
    pub const fn general(encoding: Encoding, class: Option<MessageClass>) -> Self {
        let alphabet = match encoding {
            Encoding::Gsm7 => 0x00,
            Encoding::EightBit => 0x04,
            Encoding::Ucs2 => 0x08,
        };
        match class {
            None => Dcs(alphabet),
            Some(c) => Dcs(alphabet | 0x10 | c.number()),
        }
    }

    /// True for the general and auto-deletion groups (`0xxx xxxx`).
    const fn is_general(self) -> bool {
        self.0 & 0x80 == 0
    }

    /// True when bit 5 of a general group marks the user data as compressed.
    pub const fn is_compressed(self) -> bool {
        self.is_general() && self.0 & 0x20 != 0
    }

    /// True for the "marked for automatic deletion" group (`01xx xxxx`).
    pub const fn auto_delete(self) -> bool {
        self.0 & 0xC0 == 0x40
    }

    /// The alphabet of the user data, or why it cannot be decoded.
    /// Reserved alphabets and reserved groups are read as the GSM 7-bit
    /// default alphabet, as TS 23.038 §4 tells receivers to do.
    pub const fn encoding(self) -> Result<Encoding, &'static str> {
        if self.is_compressed() {
            return Err("compressed user data is not supported");
        }
        let b = self.0;
        Ok(match b >> 4 {
            0x0..=0x7 => match (b >> 2) & 0x03 {
                1 => Encoding::EightBit,
                2 => Encoding::Ucs2,
                _ => Encoding::Gsm7,
            },
            0xE => Encoding::Ucs2,
            0xF => {
                if b & 0x04 != 0 {
                    Encoding::EightBit
                } else {
                    Encoding::Gsm7
                }
            }
            _ => Encoding::Gsm7,
        })
    }

    /// The message class, when the DCS carries one.
    pub const fn class(self) -> Option<MessageClass> {
        if self.is_general() {
            if self.0 & 0x10 != 0 {
                Some(MessageClass::from_bits(self.0))
            } else {
                None
            }
        } else if self.0 & 0xF0 == 0xF0 {
            Some(MessageClass::from_bits(self.0))
        } else {
            None
        }
    }

    /// The message-waiting indication of groups 0xC0..=0xEF.
    pub const fn message_waiting(self) -> Option<MessageWaiting> {
        let group = self.0 >> 4;
        if group < 0xC || group > 0xE {
            return None;
        }
        let kind = match self.0 & 0x03 {
            0 => WaitingKind::Voicemail,
            1 => WaitingKind::Fax,
            2 => WaitingKind::Email,
            _ => WaitingKind::Other,
        };
        Some(MessageWaiting {
            active: self.0 & 0x08 != 0,
            kind,
            discard: group == 0xC,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_values() {
        assert_eq!(Dcs(0x00).encoding(), Ok(Encoding::Gsm7));
        assert_eq!(Dcs(0x04).encoding(), Ok(Encoding::EightBit));
        assert_eq!(Dcs(0x08).encoding(), Ok(Encoding::Ucs2));
        assert_eq!(Dcs(0x0C).encoding(), Ok(Encoding::Gsm7));
        assert_eq!(Dcs(0x10).class(), Some(MessageClass::Class0));
        assert_eq!(Dcs(0x18).encoding(), Ok(Encoding::Ucs2));
        assert_eq!(Dcs(0x18).class(), Some(MessageClass::Class0));
        assert_eq!(Dcs(0x11).class(), Some(MessageClass::Class1));
        assert_eq!(Dcs(0x00).class(), None);
        assert_eq!(Dcs(0xF5).encoding(), Ok(Encoding::EightBit));
        assert_eq!(Dcs(0xF5).class(), Some(MessageClass::Class1));
        assert_eq!(Dcs(0xF0).encoding(), Ok(Encoding::Gsm7));
        assert_eq!(Dcs(0xF0).class(), Some(MessageClass::Class0));
        assert!(Dcs(0x20).encoding().is_err());
        assert!(Dcs(0x6A).encoding().is_err());
        assert!(Dcs(0x48).auto_delete());
        assert_eq!(Dcs(0x48).encoding(), Ok(Encoding::Ucs2));
        assert_eq!(Dcs(0x90).encoding(), Ok(Encoding::Gsm7));
        assert_eq!(
            Dcs::general(Encoding::Ucs2, Some(MessageClass::Class0)),
            Dcs(0x18)
        );
        assert_eq!(Dcs::general(Encoding::Gsm7, None), Dcs(0x00));
    }

    #[test]
    fn message_waiting_groups() {
        let m = Dcs(0xC8).message_waiting();
        assert_eq!(
            m,
            Some(MessageWaiting {
                active: true,
                kind: WaitingKind::Voicemail,
                discard: true
            })
        );
        assert_eq!(Dcs(0xC8).encoding(), Ok(Encoding::Gsm7));
        let m = Dcs(0xD2).message_waiting();
        assert_eq!(
            m.map(|m| (m.active, m.kind, m.discard)),
            Some((false, WaitingKind::Email, false))
        );
        assert_eq!(Dcs(0xE0).encoding(), Ok(Encoding::Ucs2));
        assert_eq!(
            Dcs(0xEB).message_waiting().map(|m| m.kind),
            Some(WaitingKind::Other)
        );
        assert_eq!(Dcs(0xF0).message_waiting(), None);
        assert_eq!(Dcs(0xBF).message_waiting(), None);
    }
}
