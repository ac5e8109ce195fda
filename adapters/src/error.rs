//! The one error type of the `adapters` crate.
//!
//! Every adapter reports failures through [`Error`] so callers (the gateway's
//! pipeline, the CLI, retry logic) can decide what to do with
//! [`Error::is_transient`] / [`Error::is_permanent`] instead of matching on
//! strings. Messages name fields, offsets and positions, never message text:
//! errors end up in logs, and logs must never carry content.

use std::fmt;

/// Why a PDU field could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PduReason {
    /// The input ended before the field was complete.
    Truncated,
    /// The field is present but its value breaks the specification.
    Malformed(&'static str),
    /// The field is valid but uses a feature this codec deliberately refuses.
    Unsupported(&'static str),
    /// Bytes remain after a complete PDU.
    TrailingBytes,
}

impl fmt::Display for PduReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("truncated PDU"),
            Self::Malformed(_) => f.write_str("malformed PDU"),
            Self::Unsupported(_) => f.write_str("unsupported PDU"),
            Self::TrailingBytes => f.write_str("trailing bytes in PDU"),
        }
    }
}

impl PduReason {
    fn detail(&self) -> &'static str {
        match self {
            Self::Malformed(d) | Self::Unsupported(d) => d,
            Self::Truncated | Self::TrailingBytes => "",
        }
    }
}

/// Helper for the `Pdu` variant's message: `": detail"` or nothing.
struct Detail(&'static str);

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, ": {}", self.0)
        }
    }
}

/// Errors of every adapter in this crate.
///
/// Variants are named for the protocol domain they belong to (`Pdu`, `Alphabet`,
/// ...) so that later adapters can add their own without ambiguity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An SMS TPDU (or its SMSC prefix) could not be decoded: `field` names the
    /// 3GPP TS 23.040 field and `offset` is the byte offset in the input where
    /// that field starts (or where the input ran out).
    #[error("{reason}: {field} at offset {offset}{}", Detail(reason.detail()))]
    Pdu {
        /// The TS 23.040 name of the field, e.g. `"TP-OA address digits"`.
        field: &'static str,
        /// Byte offset in the decoded input.
        offset: usize,
        /// What is wrong with it.
        reason: PduReason,
    },
    /// Hex text given for a PDU is not hex (odd length or a non-hex digit at
    /// `position`, counted in characters).
    #[error("invalid hex in PDU at character {position}")]
    Hex {
        /// Character position of the first problem.
        position: usize,
    },
    /// A character of the text cannot be represented in the requested alphabet.
    /// Only the character position is reported, never the character itself.
    #[error("character at position {position} cannot be encoded in {alphabet}")]
    Alphabet {
        /// Index (in chars) of the first unencodable character.
        position: usize,
        /// The alphabet that was asked for.
        alphabet: &'static str,
    },
    /// An address (phone number, SMSC number, alphanumeric sender) given for
    /// encoding is not valid. The address itself is not repeated.
    #[error("invalid SMS address: {reason}")]
    Address {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The text needs more parts than concatenation allows (255).
    #[error("message needs {segments} segments; at most 255 are possible")]
    TooManySegments {
        /// Number of segments the text would need.
        segments: usize,
    },
    /// A value given to an SMS encoder is outside what the wire format can carry.
    #[error("invalid SMS parameter {name}: {reason}")]
    Parameter {
        /// The parameter or field name.
        name: &'static str,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// A part given to the multipart reassembler is inconsistent (for example
    /// a sequence number of 0 or above the part count).
    #[error("invalid multipart SMS part: {reason}")]
    Reassembly {
        /// Why the part is rejected.
        reason: &'static str,
    },
    /// A modem answered an AT command with an error. `command` is the
    /// log-safe wire form (a PIN is masked), `answer` the final result code
    /// (or a short description); neither ever holds message text.
    #[error("modem refused {command}: {answer}")]
    Modem {
        /// The command, e.g. `AT+CMGS=23`.
        command: String,
        /// The modem's answer, e.g. `+CMS ERROR: 332`.
        answer: String,
        /// True when trying again later may succeed.
        transient: bool,
    },
    /// A modem's answer did not follow the AT protocol (for example `OK`
    /// before the `AT+CMGS` prompt).
    #[error("unexpected modem answer: {reason}")]
    AtProtocol {
        /// What was unexpected.
        reason: &'static str,
    },
    /// RCS content, or an RCS wire body (RBM JSON, CPIM, IMDN or FT-HTTP
    /// XML, chatbot JSON), is invalid. `field` is the path to the offending
    /// value (`rich_card.cards[2].suggestions[0].reply.text`); `reason` says
    /// what is wrong without quoting the value, which may be content.
    #[error("invalid RCS {field}: {reason}")]
    Rcs {
        /// Path of the field, in the shape the caller sent.
        field: String,
        /// Why it is refused.
        reason: String,
    },
    /// An SMPP field (short_message, a TLV, a delivery receipt) could not be
    /// used: `field` names it as the SMPP specification does. Never carries
    /// the field's value.
    #[error("invalid SMPP {field}: {reason}")]
    Smpp {
        /// The SMPP field, e.g. `"short_message"` or `"sar_total_segments"`.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl Error {
    /// Builds a [`Error::Pdu`] for a field that ran past the end of the input.
    pub(crate) const fn truncated(field: &'static str, offset: usize) -> Self {
        Self::Pdu {
            field,
            offset,
            reason: PduReason::Truncated,
        }
    }

    /// Builds a [`Error::Pdu`] for a field whose value is invalid.
    pub(crate) const fn malformed(field: &'static str, offset: usize, why: &'static str) -> Self {
        Self::Pdu {
            field,
            offset,
            reason: PduReason::Malformed(why),
        }
    }

    /// Builds a [`Error::Pdu`] for a valid but refused feature.
    pub(crate) const fn unsupported(field: &'static str, offset: usize, why: &'static str) -> Self {
        Self::Pdu {
            field,
            offset,
            reason: PduReason::Unsupported(why),
        }
    }

    /// Builds an [`Error::Rcs`].
    pub fn rcs(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Rcs {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// True when retrying the same operation later may succeed (a network or
    /// device hiccup). Codec errors never are: the same input fails again.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Pdu { .. }
            | Self::Hex { .. }
            | Self::Alphabet { .. }
            | Self::Address { .. }
            | Self::TooManySegments { .. }
            | Self::Parameter { .. }
            | Self::Reassembly { .. }
            | Self::Rcs { .. }
            | Self::Smpp { .. } => false,
            Self::Modem { transient, .. } => *transient,
            Self::AtProtocol { .. } => true,
        }
    }

    /// True when retrying cannot help; the input or request must change.
    pub fn is_permanent(&self) -> bool {
        !self.is_transient()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdu_error_names_field_and_offset() {
        let e = Error::truncated("TP-OA address digits", 9);
        assert_eq!(
            e.to_string(),
            "truncated PDU: TP-OA address digits at offset 9"
        );
        let e = Error::unsupported("TP-DCS", 12, "compressed user data");
        assert_eq!(
            e.to_string(),
            "unsupported PDU: TP-DCS at offset 12: compressed user data"
        );
        assert!(e.is_permanent());
        assert!(!e.is_transient());
    }
}
