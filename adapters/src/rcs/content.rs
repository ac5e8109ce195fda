//! The RCS content model: what a business can send (text, rich cards,
//! carousels, files, suggestions) and what a user can answer (text, a tapped
//! suggestion, a location, a file).
//!
//! One model for every RCS wire form: the RBM JSON (`rbm`), the GSMA chatbot
//! JSON (`chatbot`), FT-HTTP XML (`ft_http`) and the SMS rendering (`render`)
//! are all produced from, or parsed into, these types. The JSON shape of the
//! types themselves (snake_case, below) is the gateway's API shape
//! (`"rcs"` in `POST /v1/messages`) and the shape sealed inside envelopes.
//!
//! Parse, don't validate: [`RcsMessage`] deserializes through [`RcsMessage::from_wire`],
//! which enforces the limits the standards set, so a value of the type is
//! always sendable. Limits come from the RBM API reference (text ≤ 3072,
//! suggestion text ≤ 25, postback ≤ 2048, ≤ 4 suggestions per card, 2..=10
//! carousel cards) and the GSMA RCC.07 chatbot schema (title ≤ 200,
//! description ≤ 2000, 1..=11 suggestions per list). Errors name the field
//! path the caller sent and never quote a value.
//!
//! ```json
//! {"rich_card": {"standalone": {"card": {"title": "Sale", "description": "Today only",
//!    "media": {"url": "https://x.example/a.jpg", "content_type": "image/jpeg", "height": "medium"},
//!    "suggestions": [{"reply": {"text": "Yes", "postback": "yes"}}]}}},
//!  "suggestions": [{"action": {"text": "Call us", "postback": "call", "dial": {"phone_number": "+14155550100"}}}]}
//! ```

use serde::{Deserialize, Serialize};

use crate::Error;

/// Longest text message (RBM `contentMessage.text`).
pub const MAX_TEXT_CHARS: usize = 3072;
/// Longest card title (GSMA RCC.07 chatbot schema; RBM agrees).
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest card description (GSMA RCC.07; RBM agrees).
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// Most suggestions in one list (GSMA RCC.07 `maxItems`, RBM chip list).
pub const MAX_SUGGESTIONS: usize = 11;
/// Most suggestions on one card (RBM `cardContent.suggestions`).
pub const MAX_CARD_SUGGESTIONS: usize = 4;
/// Longest suggestion text (RBM `reply.text` / `action.text`).
pub const MAX_SUGGESTION_TEXT_CHARS: usize = 25;
/// Longest postback data (RBM `postbackData`, GSMA `postback.data`).
pub const MAX_POSTBACK_CHARS: usize = 2048;
/// Fewest and most cards in a carousel (RBM `carouselCard.cardContents`).
pub const CAROUSEL_CARDS: std::ops::RangeInclusive<usize> = 2..=10;
/// Longest URL accepted anywhere in the model.
pub const MAX_URL_CHARS: usize = 2048;
/// Largest file or media size accepted (RBM's 100 MB limit for files).
pub const MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;
/// Longest file name.
pub const MAX_FILE_NAME_CHARS: usize = 255;
/// Longest calendar event title (RBM `createCalendarEventAction.title`).
pub const MAX_EVENT_TITLE_CHARS: usize = 100;
/// Longest calendar event description (RBM).
pub const MAX_EVENT_DESCRIPTION_CHARS: usize = 500;
/// Longest location label.
pub const MAX_LABEL_CHARS: usize = 100;

/// An RCS message a business (agent) sends.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Wire", into = "Wire")]
pub struct RcsMessage {
    /// What it shows.
    pub body: Body,
    /// Suggested replies and actions under the message (RBM chips),
    /// 0 or 1..=11.
    pub suggestions: Vec<Suggestion>,
}

/// The main part of an [`RcsMessage`].
#[derive(Clone, PartialEq)]
pub enum Body {
    /// Plain text, 1..=3072 characters.
    Text(String),
    /// A rich card or a carousel.
    RichCard(RichCard),
    /// A file (FT-HTTP / RBM `contentInfo`).
    File(FileTransfer),
}

/// A standalone card or a carousel of cards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RichCard {
    /// One card.
    Standalone(Standalone),
    /// 2..=10 cards shown side by side.
    Carousel(Carousel),
}

/// A standalone card with its layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Standalone {
    /// Vertical (media above text) or horizontal (side by side).
    #[serde(default)]
    pub orientation: Orientation,
    /// Where the media sits in a horizontal card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_alignment: Option<Alignment>,
    /// The card.
    pub card: Card,
}

/// A carousel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Carousel {
    /// Width of every card.
    #[serde(default)]
    pub card_width: CardWidth,
    /// The cards, in display order.
    pub cards: Vec<Card>,
}

/// Card orientation (RBM `cardOrientation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Orientation {
    /// Media above the text.
    #[default]
    Vertical,
    /// Media beside the text.
    Horizontal,
}

/// Media alignment of a horizontal card (RBM `thumbnailImageAlignment`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Alignment {
    /// Media on the left.
    Left,
    /// Media on the right.
    Right,
}

/// Carousel card width (RBM `cardWidth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardWidth {
    /// Narrow cards.
    Small,
    /// Wide cards.
    #[default]
    Medium,
}

/// Media height in a vertical card (RBM `height`, GSMA `*_HEIGHT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaHeight {
    /// Short.
    Short,
    /// Medium.
    #[default]
    Medium,
    /// Tall.
    Tall,
}

/// One card: at least one of title, description and media.
#[derive(Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Card {
    /// Title, ≤ 200 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Description, ≤ 2000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Image or video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<Media>,
    /// Suggestions on the card, 0 or 1..=4.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<Suggestion>,
}

/// Media of a card.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Media {
    /// Where the file is (http or https).
    pub url: String,
    /// MIME type, e.g. `image/jpeg`.
    pub content_type: String,
    /// Size in bytes, when known (the GSMA schema requires it; RBM does not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// A preview image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<Thumbnail>,
    /// Display height.
    #[serde(default)]
    pub height: MediaHeight,
}

/// A preview image of media or a file.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thumbnail {
    /// Where it is.
    pub url: String,
    /// MIME type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// A file sent by reference (RBM `contentInfo`, GSMA FT-HTTP).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTransfer {
    /// Where the file can be fetched.
    pub url: String,
    /// File name shown to the user.
    pub name: String,
    /// MIME type.
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
    /// Until when the URL works (RFC 3339), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<String>,
    /// A preview image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<Thumbnail>,
}

/// A suggested reply or action. (No `deny_unknown_fields` here: serde
/// does not support it together with the flattened [`Action`].)
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Suggestion {
    /// A reply the user can tap; the agent gets `postback` back.
    Reply {
        /// Text on the chip, ≤ 25 characters.
        text: String,
        /// Data sent back when tapped, ≤ 2048 characters.
        postback: String,
    },
    /// An action the device performs.
    Action {
        /// Text on the chip, ≤ 25 characters.
        text: String,
        /// Data sent back when tapped, ≤ 2048 characters.
        postback: String,
        /// What happens.
        #[serde(flatten)]
        action: Action,
    },
}

/// What a suggested action does.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Opens a web page.
    OpenUrl {
        /// http(s) URL.
        url: String,
    },
    /// Starts a call.
    Dial {
        /// E.164 number.
        phone_number: String,
    },
    /// Shows a place on a map.
    ViewLocation {
        /// Degrees, -90..=90.
        latitude: f64,
        /// Degrees, -180..=180.
        longitude: f64,
        /// A name for the pin.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// Asks the user to share their location.
    ShareLocation {},
    /// Offers to add a calendar event.
    CalendarEvent {
        /// Start (RFC 3339).
        start: String,
        /// End (RFC 3339), after the start.
        end: String,
        /// Title, ≤ 100 characters.
        title: String,
        /// Description, ≤ 500 characters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
}

impl Suggestion {
    /// The text on the chip.
    pub fn text(&self) -> &str {
        match self {
            Self::Reply { text, .. } | Self::Action { text, .. } => text,
        }
    }

    /// The postback data.
    pub fn postback(&self) -> &str {
        match self {
            Self::Reply { postback, .. } | Self::Action { postback, .. } => postback,
        }
    }
}

/// The API / sealed JSON shape of [`RcsMessage`]: exactly one of `text`,
/// `rich_card`, `file`, plus `suggestions`.
#[derive(Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Wire {
    /// Text body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Rich card body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rich_card: Option<RichCard>,
    /// File body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileTransfer>,
    /// Message-level suggestions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestions: Option<Vec<Suggestion>>,
}

impl TryFrom<Wire> for RcsMessage {
    type Error = Error;
    fn try_from(w: Wire) -> Result<Self, Error> {
        Self::from_wire(w)
    }
}

impl From<RcsMessage> for Wire {
    fn from(m: RcsMessage) -> Self {
        let mut w = Wire {
            suggestions: (!m.suggestions.is_empty()).then_some(m.suggestions),
            ..Wire::default()
        };
        match m.body {
            Body::Text(t) => w.text = Some(t),
            Body::RichCard(c) => w.rich_card = Some(c),
            Body::File(f) => w.file = Some(f),
        }
        w
    }
}

pub(crate) use crate::json::describe_error as describe_json_error;

impl RcsMessage {
    /// A plain text message.
    pub fn text(text: impl Into<String>) -> Result<Self, Error> {
        Self::from_wire(Wire {
            text: Some(text.into()),
            ..Wire::default()
        })
    }

    /// Parses the API shape from JSON bytes, naming the field on error.
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        let wire: Wire = serde_json::from_slice(bytes)
            .map_err(|e| Error::rcs("rcs", describe_json_error(&e)))?;
        Self::from_wire(wire)
    }

    /// Parses the API shape from an already parsed JSON value.
    pub fn from_value(v: serde_json::Value) -> Result<Self, Error> {
        let wire: Wire =
            serde_json::from_value(v).map_err(|e| Error::rcs("rcs", describe_json_error(&e)))?;
        Self::from_wire(wire)
    }

    /// Checks every limit and builds the message.
    pub fn from_wire(w: Wire) -> Result<Self, Error> {
        let body = match (w.text, w.rich_card, w.file) {
            (Some(t), None, None) => {
                check_len("text", &t, 1, MAX_TEXT_CHARS)?;
                Body::Text(t)
            }
            (None, Some(c), None) => {
                check_rich_card(&c)?;
                Body::RichCard(c)
            }
            (None, None, Some(f)) => {
                check_file("file", &f)?;
                Body::File(f)
            }
            (None, None, None) => {
                return Err(Error::rcs("rcs", "needs one of text, rich_card or file"));
            }
            _ => {
                return Err(Error::rcs(
                    "rcs",
                    "give only one of text, rich_card or file",
                ));
            }
        };
        let suggestions = match w.suggestions {
            None => Vec::new(),
            Some(s) => {
                check_suggestions("suggestions", &s, MAX_SUGGESTIONS)?;
                s
            }
        };
        Ok(Self { body, suggestions })
    }

    /// The cards of a rich card body, in order (empty for text and files).
    pub fn cards(&self) -> &[Card] {
        match &self.body {
            Body::RichCard(RichCard::Standalone(s)) => std::slice::from_ref(&s.card),
            Body::RichCard(RichCard::Carousel(c)) => &c.cards,
            Body::Text(_) | Body::File(_) => &[],
        }
    }

    /// Every suggestion in display order: each card's, then the message's.
    /// This is the numbering of the SMS rendering.
    pub fn all_suggestions(&self) -> impl Iterator<Item = &Suggestion> {
        self.cards()
            .iter()
            .flat_map(|c| c.suggestions.iter())
            .chain(self.suggestions.iter())
    }

    /// The RBM capability features (`GET .../capabilities` → `features`) a
    /// device needs to show this message; a device without one of them gets
    /// the SMS rendering instead.
    pub fn required_features(&self) -> Vec<&'static str> {
        let mut f = Vec::new();
        match &self.body {
            Body::RichCard(RichCard::Standalone(_)) => f.push("RICHCARD_STANDALONE"),
            Body::RichCard(RichCard::Carousel(_)) => f.push("RICHCARD_CAROUSEL"),
            Body::Text(_) | Body::File(_) => {}
        }
        for s in self.all_suggestions() {
            if let Suggestion::Action { action, .. } = s {
                let name = match action {
                    Action::OpenUrl { .. } => "ACTION_OPEN_URL",
                    Action::Dial { .. } => "ACTION_DIAL",
                    Action::ViewLocation { .. } => "ACTION_VIEW_LOCATION",
                    Action::ShareLocation {} => "ACTION_SHARE_LOCATION",
                    Action::CalendarEvent { .. } => "ACTION_CREATE_CALENDAR_EVENT",
                };
                if !f.contains(&name) {
                    f.push(name);
                }
            }
        }
        f
    }

    /// Total characters of every text field, for size accounting.
    pub fn kind(&self) -> &'static str {
        match &self.body {
            Body::Text(_) => "text",
            Body::RichCard(RichCard::Standalone(_)) => "standalone_card",
            Body::RichCard(RichCard::Carousel(_)) => "carousel",
            Body::File(_) => "file",
        }
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Checks a text field's length in characters.
pub(crate) fn check_len(field: &str, s: &str, min: usize, max: usize) -> Result<(), Error> {
    let n = chars(s);
    if n < min {
        return Err(Error::rcs(field, "must not be empty"));
    }
    if n > max {
        return Err(Error::rcs(field, format!("longer than {max} characters")));
    }
    Ok(())
}

/// Checks an http(s) URL without interpreting it further.
pub(crate) fn check_url(field: &str, url: &str) -> Result<(), Error> {
    check_len(field, url, 1, MAX_URL_CHARS)?;
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err(Error::rcs(field, "must be an http or https URL"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::rcs(
            field,
            "must not contain spaces or control characters",
        ));
    }
    Ok(())
}

fn check_content_type(field: &str, ct: &str) -> Result<(), Error> {
    check_len(field, ct, 3, 255)?;
    let ok = ct.split_once('/').is_some_and(|(a, b)| {
        !a.is_empty() && !b.is_empty() && ct.bytes().all(|c| c.is_ascii_graphic() || c == b' ')
    });
    if !ok {
        return Err(Error::rcs(field, "must be a MIME type like image/jpeg"));
    }
    Ok(())
}

fn check_size(field: &str, size: u64) -> Result<(), Error> {
    if size > MAX_FILE_BYTES {
        return Err(Error::rcs(field, "larger than 100 MiB"));
    }
    Ok(())
}

/// Checks an RFC 3339 timestamp.
pub(crate) fn parse_time(field: &str, s: &str) -> Result<time::OffsetDateTime, Error> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| Error::rcs(field, "must be an RFC 3339 timestamp"))
}

fn check_thumbnail(field: &str, t: &Thumbnail) -> Result<(), Error> {
    check_url(&format!("{field}.url"), &t.url)?;
    if let Some(ct) = &t.content_type {
        check_content_type(&format!("{field}.content_type"), ct)?;
    }
    if let Some(s) = t.size {
        check_size(&format!("{field}.size"), s)?;
    }
    Ok(())
}

fn check_file(field: &str, f: &FileTransfer) -> Result<(), Error> {
    check_url(&format!("{field}.url"), &f.url)?;
    check_len(&format!("{field}.name"), &f.name, 1, MAX_FILE_NAME_CHARS)?;
    if f.name
        .chars()
        .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return Err(Error::rcs(
            format!("{field}.name"),
            "must not contain slashes or control characters",
        ));
    }
    check_content_type(&format!("{field}.content_type"), &f.content_type)?;
    check_size(&format!("{field}.size"), f.size)?;
    if let Some(e) = &f.expiry {
        parse_time(&format!("{field}.expiry"), e)?;
    }
    if let Some(t) = &f.thumbnail {
        check_thumbnail(&format!("{field}.thumbnail"), t)?;
    }
    Ok(())
}

fn check_card(field: &str, c: &Card) -> Result<(), Error> {
    if c.title.is_none() && c.description.is_none() && c.media.is_none() {
        return Err(Error::rcs(
            field,
            "needs at least one of title, description or media",
        ));
    }
    if let Some(t) = &c.title {
        check_len(&format!("{field}.title"), t, 1, MAX_TITLE_CHARS)?;
    }
    if let Some(d) = &c.description {
        check_len(&format!("{field}.description"), d, 1, MAX_DESCRIPTION_CHARS)?;
    }
    if let Some(m) = &c.media {
        check_url(&format!("{field}.media.url"), &m.url)?;
        check_content_type(&format!("{field}.media.content_type"), &m.content_type)?;
        if let Some(s) = m.size {
            check_size(&format!("{field}.media.size"), s)?;
        }
        if let Some(t) = &m.thumbnail {
            check_thumbnail(&format!("{field}.media.thumbnail"), t)?;
        }
    }
    if !c.suggestions.is_empty() {
        check_suggestions(
            &format!("{field}.suggestions"),
            &c.suggestions,
            MAX_CARD_SUGGESTIONS,
        )?;
    }
    Ok(())
}

fn check_rich_card(c: &RichCard) -> Result<(), Error> {
    match c {
        RichCard::Standalone(s) => {
            if s.thumbnail_alignment.is_some() && s.orientation != Orientation::Horizontal {
                return Err(Error::rcs(
                    "rich_card.standalone.thumbnail_alignment",
                    "only applies to horizontal cards",
                ));
            }
            check_card("rich_card.standalone.card", &s.card)
        }
        RichCard::Carousel(k) => {
            if !CAROUSEL_CARDS.contains(&k.cards.len()) {
                return Err(Error::rcs(
                    "rich_card.carousel.cards",
                    format!(
                        "a carousel holds {} to {} cards",
                        CAROUSEL_CARDS.start(),
                        CAROUSEL_CARDS.end()
                    ),
                ));
            }
            for (i, card) in k.cards.iter().enumerate() {
                check_card(&format!("rich_card.carousel.cards[{i}]"), card)?;
            }
            Ok(())
        }
    }
}

fn check_suggestions(field: &str, list: &[Suggestion], max: usize) -> Result<(), Error> {
    if list.is_empty() || list.len() > max {
        return Err(Error::rcs(
            field,
            format!("must hold 1 to {max} suggestions when given"),
        ));
    }
    for (i, s) in list.iter().enumerate() {
        let at = match s {
            Suggestion::Reply { .. } => format!("{field}[{i}].reply"),
            Suggestion::Action { .. } => format!("{field}[{i}].action"),
        };
        check_len(
            &format!("{at}.text"),
            s.text(),
            1,
            MAX_SUGGESTION_TEXT_CHARS,
        )?;
        check_len(
            &format!("{at}.postback"),
            s.postback(),
            1,
            MAX_POSTBACK_CHARS,
        )?;
        if let Suggestion::Action { action, .. } = s {
            check_action(&at, action)?;
        }
    }
    Ok(())
}

/// True for `+` followed by 7 to 15 digits, the first not 0.
pub(crate) fn is_e164(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|d| {
        (7..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

fn check_action(at: &str, a: &Action) -> Result<(), Error> {
    match a {
        Action::OpenUrl { url } => check_url(&format!("{at}.open_url.url"), url),
        Action::Dial { phone_number } => {
            if is_e164(phone_number) {
                Ok(())
            } else {
                Err(Error::rcs(
                    format!("{at}.dial.phone_number"),
                    "must be an E.164 number",
                ))
            }
        }
        Action::ViewLocation {
            latitude,
            longitude,
            label,
        } => {
            if !(-90.0..=90.0).contains(latitude) {
                return Err(Error::rcs(
                    format!("{at}.view_location.latitude"),
                    "must be between -90 and 90",
                ));
            }
            if !(-180.0..=180.0).contains(longitude) {
                return Err(Error::rcs(
                    format!("{at}.view_location.longitude"),
                    "must be between -180 and 180",
                ));
            }
            if let Some(l) = label {
                check_len(&format!("{at}.view_location.label"), l, 1, MAX_LABEL_CHARS)?;
            }
            Ok(())
        }
        Action::ShareLocation {} => Ok(()),
        Action::CalendarEvent {
            start,
            end,
            title,
            description,
        } => {
            let s = parse_time(&format!("{at}.calendar_event.start"), start)?;
            let e = parse_time(&format!("{at}.calendar_event.end"), end)?;
            if e <= s {
                return Err(Error::rcs(
                    format!("{at}.calendar_event.end"),
                    "must be after the start",
                ));
            }
            check_len(
                &format!("{at}.calendar_event.title"),
                title,
                1,
                MAX_EVENT_TITLE_CHARS,
            )?;
            if let Some(d) = description {
                check_len(
                    &format!("{at}.calendar_event.description"),
                    d,
                    1,
                    MAX_EVENT_DESCRIPTION_CHARS,
                )?;
            }
            Ok(())
        }
    }
}

/// What a user sent to an agent (RBM user message, a CPIM chat message, or
/// an SMS reply mapped to a suggestion).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum UserMessage {
    /// Typed text.
    Text {
        /// The text.
        text: String,
    },
    /// A tapped suggestion (or an SMS reply naming its number).
    SuggestionResponse {
        /// The suggestion's text.
        text: String,
        /// Its postback data.
        postback: String,
    },
    /// A shared location.
    Location {
        /// Degrees.
        latitude: f64,
        /// Degrees.
        longitude: f64,
    },
    /// A file the user sent, by reference.
    File(UserFile),
}

/// A file a user sent.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserFile {
    /// Where it can be fetched.
    pub url: String,
    /// Its name, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// MIME type, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Size in bytes, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// A preview, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
}

impl UserMessage {
    /// The text part (typed text or the tapped suggestion's text).
    pub fn as_text(&self) -> &str {
        match self {
            Self::Text { text } | Self::SuggestionResponse { text, .. } => text,
            Self::Location { .. } | Self::File(_) => "",
        }
    }

    /// A short name of the kind, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::SuggestionResponse { .. } => "suggestion_response",
            Self::Location { .. } => "location",
            Self::File(_) => "file",
        }
    }
}

// Debug impls that never print content: a stray `{:?}` must not put text,
// URLs or postback data into a log.
macro_rules! redacted_debug {
    ($($t:ty => $name:literal),* $(,)?) => {
        $(impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!($name, " { <redacted> }"))
            }
        })*
    };
}
redacted_debug!(
    Card => "Card",
    Media => "Media",
    Thumbnail => "Thumbnail",
    FileTransfer => "FileTransfer",
    Suggestion => "Suggestion",
    Action => "Action",
    UserFile => "UserFile",
);

impl std::fmt::Debug for RcsMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RcsMessage {{ {}, {} cards, {} suggestions, <redacted> }}",
            self.kind(),
            self.cards().len(),
            self.all_suggestions().count()
        )
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Text(_) => "Body::Text(<redacted>)",
            Self::RichCard(_) => "Body::RichCard(<redacted>)",
            Self::File(_) => "Body::File(<redacted>)",
        })
    }
}

impl std::fmt::Debug for UserMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UserMessage::{} {{ <redacted> }}", self.kind())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(v: serde_json::Value) -> Result<RcsMessage, Error> {
        RcsMessage::from_value(v)
    }

    fn field_of(e: Error) -> String {
        match e {
            Error::Rcs { field, .. } => field,
            other => panic!("not an RCS error: {other}"),
        }
    }

    fn card_json(title: &str) -> serde_json::Value {
        serde_json::json!({"title": title, "description": "d",
            "media": {"url": "https://x.example/a.jpg", "content_type": "image/jpeg", "height": "tall"}})
    }

    #[test]
    fn shapes_round_trip_through_json() {
        for v in [
            serde_json::json!({"text": "hi", "suggestions": [{"reply": {"text": "Yes", "postback": "y"}}]}),
            serde_json::json!({"rich_card": {"standalone": {"orientation": "horizontal", "thumbnail_alignment": "left", "card": card_json("t")}}}),
            serde_json::json!({"rich_card": {"carousel": {"card_width": "small", "cards": [card_json("a"), card_json("b")]}}}),
            serde_json::json!({"file": {"url": "https://x.example/f.pdf", "name": "f.pdf", "content_type": "application/pdf", "size": 1234, "expiry": "2026-12-01T00:00:00Z"}}),
            serde_json::json!({"text": "t", "suggestions": [
                {"action": {"text": "Open", "postback": "o", "open_url": {"url": "https://x.example"}}},
                {"action": {"text": "Call", "postback": "c", "dial": {"phone_number": "+14155550100"}}},
                {"action": {"text": "Map", "postback": "m", "view_location": {"latitude": 37.4, "longitude": -122.1, "label": "HQ"}}},
                {"action": {"text": "Where?", "postback": "w", "share_location": {}}},
                {"action": {"text": "Save", "postback": "s", "calendar_event": {"start": "2026-12-01T10:00:00Z", "end": "2026-12-01T11:00:00Z", "title": "Visit"}}}]}),
        ] {
            let m = parse(v.clone()).unwrap();
            let back = serde_json::to_value(&m).unwrap();
            assert_eq!(parse(back.clone()).unwrap(), m);
            // Defaults are written out; otherwise the shape is the input's.
            let again = serde_json::to_value(parse(back).unwrap()).unwrap();
            assert_eq!(again, serde_json::to_value(&m).unwrap());
        }
    }

    #[test]
    fn limits_are_checked_with_field_paths() {
        let long = |n: usize| "x".repeat(n);
        let cases = [
            (serde_json::json!({}), "rcs"),
            (
                serde_json::json!({"text": "a", "file": {"url": "https://a.b", "name": "n", "content_type": "a/b", "size": 1}}),
                "rcs",
            ),
            (serde_json::json!({"text": ""}), "text"),
            (serde_json::json!({"text": long(3073)}), "text"),
            (
                serde_json::json!({"rich_card": {"standalone": {"card": {"title": long(201)}}}}),
                "rich_card.standalone.card.title",
            ),
            (
                serde_json::json!({"rich_card": {"standalone": {"card": {"description": long(2001)}}}}),
                "rich_card.standalone.card.description",
            ),
            (
                serde_json::json!({"rich_card": {"standalone": {"card": {}}}}),
                "rich_card.standalone.card",
            ),
            (
                serde_json::json!({"rich_card": {"carousel": {"cards": [card_json("a")]}}}),
                "rich_card.carousel.cards",
            ),
            (
                serde_json::json!({"rich_card": {"carousel": {"cards": [card_json("a"), {"title": "b", "media": {"url": "ftp://x", "content_type": "image/png"}}]}}}),
                "rich_card.carousel.cards[1].media.url",
            ),
            (
                serde_json::json!({"text": "t", "suggestions": []}),
                "suggestions",
            ),
            (
                serde_json::json!({"text": "t", "suggestions": (0..12).map(|i| serde_json::json!({"reply": {"text": format!("r{i}"), "postback": "p"}})).collect::<Vec<_>>()}),
                "suggestions",
            ),
            (
                serde_json::json!({"text": "t", "suggestions": [{"reply": {"text": long(26), "postback": "p"}}]}),
                "suggestions[0].reply.text",
            ),
            (
                serde_json::json!({"text": "t", "suggestions": [{"reply": {"text": "a", "postback": long(2049)}}]}),
                "suggestions[0].reply.postback",
            ),
            (
                serde_json::json!({"text": "t", "suggestions": [{"reply": {"text": "a", "postback": "p"}}, {"action": {"text": "a", "postback": "p", "dial": {"phone_number": "12"}}}]}),
                "suggestions[1].action.dial.phone_number",
            ),
            (
                serde_json::json!({"text": "t", "suggestions": [{"action": {"text": "a", "postback": "p", "view_location": {"latitude": 91.0, "longitude": 0.0}}}]}),
                "suggestions[0].action.view_location.latitude",
            ),
            (
                serde_json::json!({"text": "t", "suggestions": [{"action": {"text": "a", "postback": "p", "calendar_event": {"start": "2026-12-01T10:00:00Z", "end": "2026-12-01T09:00:00Z", "title": "x"}}}]}),
                "suggestions[0].action.calendar_event.end",
            ),
            (
                serde_json::json!({"rich_card": {"standalone": {"card": {"title": "t", "suggestions": (0..5).map(|i| serde_json::json!({"reply": {"text": format!("r{i}"), "postback": "p"}})).collect::<Vec<_>>()}}}}),
                "rich_card.standalone.card.suggestions",
            ),
            (
                serde_json::json!({"file": {"url": "https://a.b/f", "name": "a/b", "content_type": "a/b", "size": 1}}),
                "file.name",
            ),
            (
                serde_json::json!({"file": {"url": "https://a.b/f", "name": "f", "content_type": "a/b", "size": 1, "expiry": "tomorrow"}}),
                "file.expiry",
            ),
        ];
        for (v, want) in cases {
            let e = parse(v.clone()).unwrap_err();
            assert!(!e.to_string().contains("xxxxxxxx"), "{e}");
            assert_eq!(field_of(e), want, "{v}");
        }
    }

    #[test]
    fn json_errors_do_not_quote_values() {
        let e = RcsMessage::from_json(br#"{"text": ["secret words"]}"#).unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        let e = RcsMessage::from_json(br#"{"text": "a", "colour": "secret"}"#).unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
        assert!(!e.to_string().contains("secret"), "{e}");
        let e = RcsMessage::from_json(
            br#"{"rich_card": {"standalone": {"orientation": "secret", "card": {"title": "t"}}}}"#,
        )
        .unwrap_err();
        assert!(
            !e.to_string().contains("secret") && e.to_string().contains("vertical"),
            "{e}"
        );
        let e = RcsMessage::from_json(br#"{"text": "#).unwrap_err();
        assert!(e.to_string().contains("not valid JSON"), "{e}");
    }

    #[test]
    fn features_and_debug() {
        let m = parse(serde_json::json!({"rich_card": {"carousel": {"cards": [card_json("secret-a"), card_json("b")]}},
            "suggestions": [{"action": {"text": "Call", "postback": "c", "dial": {"phone_number": "+14155550100"}}}]}))
        .unwrap();
        assert_eq!(m.required_features(), ["RICHCARD_CAROUSEL", "ACTION_DIAL"]);
        let dbg = format!("{m:?} {:?}", m.body);
        assert!(!dbg.contains("secret"), "{dbg}");
        assert_eq!(m.all_suggestions().count(), 1);
    }
}
