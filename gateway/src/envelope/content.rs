//! What goes inside the sealed body.

use serde::{Deserialize, Serialize};

/// A reference to media held elsewhere (MMS, RCS file transfer); the URL lives
/// only inside the sealed body, because a link can reveal content.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MediaRef {
    /// Where the file can be fetched.
    pub url: String,
    /// MIME type, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// The plaintext of an envelope. `Debug` is redacted so a stray `{:?}` can
/// never put message text into a log. (Not `Eq`: RCS locations carry
/// floating-point coordinates.)
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Content {
    /// A text message, possibly with media references (MMS).
    Text {
        /// The text.
        text: String,
        /// Media references, in order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        media: Vec<MediaRef>,
    },
    /// One part of a multipart SMS held until its siblings arrive (modem
    /// adapter); sealed to the edge key in `pending_parts`, never delivered.
    #[serde(rename = "sms_part")]
    SmsPart {
        /// The part as the reassembler keeps it.
        part: adapters::sms::Part,
    },
    /// An RCS message from the private side (text, rich card, carousel,
    /// file, suggestions), checked against the standards' limits when it is
    /// parsed and again when it is opened. Sealed like any content; when it
    /// goes out as SMS, the SMS rendering is computed at send time from
    /// this, never stored.
    #[serde(rename = "rcs")]
    Rcs {
        /// The message.
        message: adapters::rcs::RcsMessage,
    },
    /// An 8-bit data SMS (TP-DCS 8-bit: WAP push, port-addressed
    /// application data, binary OTA): not text, so it travels as the
    /// octets of its user data (concatenated when it had parts, without
    /// the concatenation header); base64 in the sealed JSON.
    #[serde(rename = "data")]
    Data {
        /// The user data octets.
        #[serde(with = "base64_octets")]
        data: Vec<u8>,
    },
    /// What an RCS user sent (a tapped suggestion, a location, a file), or
    /// an SMS reply mapped to the numbered suggestion it names.
    #[serde(rename = "rcs_user")]
    RcsUser {
        /// The user's message.
        message: adapters::rcs::UserMessage,
    },
}

impl Content {
    /// A text message without media.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text {
            text: text.into(),
            media: Vec::new(),
        }
    }

    /// Media references (MMS), in order.
    pub fn media(&self) -> &[MediaRef] {
        match self {
            Self::Text { media, .. } => media,
            Self::SmsPart { .. } | Self::Data { .. } | Self::Rcs { .. } | Self::RcsUser { .. } => {
                &[]
            }
        }
    }

    /// The text part: the text of a text message or an RCS text message,
    /// the chip text of a tapped suggestion, else empty. SMS routes never
    /// see RCS content: the delivery step replaces it with its SMS
    /// rendering before the route is called.
    pub fn as_text(&self) -> &str {
        match self {
            Self::Text { text, .. } => text,
            Self::Rcs { message } => match &message.body {
                adapters::rcs::Body::Text(t) => t,
                _ => "",
            },
            Self::RcsUser { message } => message.as_text(),
            Self::SmsPart { .. } | Self::Data { .. } => "",
        }
    }
}

/// An inbound SMS's content as the envelope carries it: text as text,
/// 8-bit data as [`Content::Data`].
impl From<adapters::sms::Content> for Content {
    fn from(c: adapters::sms::Content) -> Self {
        match c {
            adapters::sms::Content::Text(t) => Self::text(t),
            adapters::sms::Content::Binary(data) => Self::Data { data },
        }
    }
}

/// Octets as standard base64 in JSON.
mod base64_octets {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(data))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD
            .decode(s.as_bytes())
            .map_err(|_| serde::de::Error::custom("data is not valid base64"))
    }
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Text { text, media } => write!(
                f,
                "Content::Text {{ <{} chars redacted>, {} media }}",
                text.chars().count(),
                media.len()
            ),
            Self::SmsPart { part } => write!(
                f,
                "Content::SmsPart {{ part {}/{}, <redacted> }}",
                part.sequence, part.total
            ),
            Self::Data { data } => {
                write!(f, "Content::Data {{ <{} octets redacted> }}", data.len())
            }
            Self::Rcs { message } => write!(f, "Content::Rcs {{ {message:?} }}"),
            Self::RcsUser { message } => write!(f, "Content::RcsUser {{ {message:?} }}"),
        }
    }
}
