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
/// never put message text into a log.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
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
            Self::SmsPart { .. } => &[],
        }
    }

    /// The text part, for rendering as SMS.
    pub fn as_text(&self) -> &str {
        match self {
            Self::Text { text, .. } => text,
            Self::SmsPart { .. } => "",
        }
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
        }
    }
}
