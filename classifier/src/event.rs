//! The metadata the classifier sees, and nothing else.
//!
//! These types are the whole input surface of the crate. They hold who sent to
//! whom, when, over which channel, how many segments in which encoding, how many
//! bytes, what happened to delivery and who complained. There is deliberately no
//! field that could carry message text: the gateway converts its own message type
//! into these, and the conversion is the only place both types meet.
//!
//! The JSON shape is the metadata trace format of DESIGN.md:
//! ```text
//! {"at":"2026-03-01T12:00:00.000Z","event":"message","id":"m-1","from":"+14155550100","to":"+14155550101","channel":"sms","segments":1,"encoding":"gsm7","bytes":42}
//! {"at":"2026-03-01T12:00:04.000Z","event":"status","id":"m-1","status":"delivered"}
//! {"at":"2026-03-01T13:00:00.000Z","event":"report","reporter":"+14155550101","sender":"+14155550100"}
//! ```
//! Two optional message fields extend it compatibly: `sender_type` (the gateway
//! knows when a sender is an Android SIM, which the number alone cannot tell) and
//! `route` (the outbound route, for the per-route rate limit). Unknown fields are
//! ignored so older readers accept newer traces.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::sender::SenderKind;
use crate::timestamp::Timestamp;

/// Transport channel of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// Short Message Service.
    Sms,
    /// Multimedia Messaging Service.
    Mms,
    /// Rich Communication Services.
    Rcs,
}

/// Payload encoding as sent on the wire (never the payload itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Encoding {
    /// GSM 03.38 7-bit default alphabet.
    #[serde(rename = "gsm7")]
    Gsm7,
    /// UCS-2 (16-bit), used when any character is outside GSM-7.
    #[serde(rename = "ucs2")]
    Ucs2,
    /// 8-bit binary data SMS.
    #[serde(rename = "8bit")]
    Binary8,
    /// UTF-8 (RCS).
    #[serde(rename = "utf8")]
    Utf8,
}

/// Final delivery outcome reported by a carrier, modem or relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Delivered to the handset.
    Delivered,
    /// Not delivered (unknown subscriber, blocked, expired...).
    Failed,
}

/// Metadata of one message: the classifier's view of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageMeta {
    /// When the gateway saw the message.
    pub at: Timestamp,
    /// Message id, used to attribute later status events.
    pub id: String,
    /// Sender: E.164 number, short code digits, or alphanumeric sender id.
    pub from: String,
    /// Recipient, same forms as `from`.
    pub to: String,
    /// Transport channel.
    pub channel: Channel,
    /// Number of segments (SMS parts); RCS counts as 1.
    pub segments: u16,
    /// Wire encoding.
    pub encoding: Encoding,
    /// Payload size in bytes (not the payload).
    pub bytes: u32,
    /// Sender type when the gateway knows it (e.g. an Android SIM); derived
    /// from `from` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_type: Option<SenderKind>,
    /// Outbound route (adapter or carrier account), for the per-route limit;
    /// derived from channel and destination country otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
}

/// A delivery status for an earlier message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusMeta {
    /// When the status arrived.
    pub at: Timestamp,
    /// Id of the message it refers to.
    pub id: String,
    /// Outcome.
    pub status: DeliveryStatus,
}

/// A recipient's spam complaint about a sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportMeta {
    /// When the complaint arrived.
    pub at: Timestamp,
    /// Who complained.
    pub reporter: String,
    /// Who they complained about.
    pub sender: String,
}

/// One line of a metadata trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum MetadataEvent {
    /// A message passed through the gateway.
    Message(MessageMeta),
    /// A delivery status arrived.
    Status(StatusMeta),
    /// A spam complaint arrived.
    Report(ReportMeta),
}

impl MetadataEvent {
    /// When the event happened.
    pub fn at(&self) -> Timestamp {
        match self {
            MetadataEvent::Message(m) => m.at,
            MetadataEvent::Status(s) => s.at,
            MetadataEvent::Report(r) => r.at,
        }
    }

    /// A borrowed view, the form the engine consumes.
    pub fn view(&self) -> EventView<'_> {
        match self {
            MetadataEvent::Message(m) => EventView::Message(MessageView {
                at: m.at,
                id: &m.id,
                from: &m.from,
                to: &m.to,
                channel: m.channel,
                segments: m.segments,
                encoding: m.encoding,
                bytes: m.bytes,
                sender_type: m.sender_type,
                route: m.route.as_deref(),
            }),
            MetadataEvent::Status(s) => EventView::Status {
                at: s.at,
                id: &s.id,
                status: s.status,
            },
            MetadataEvent::Report(r) => EventView::Report {
                at: r.at,
                reporter: &r.reporter,
                sender: &r.sender,
            },
        }
    }
}

/// Borrowed form of [`MessageMeta`], so replay can parse and process a line
/// without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageView<'a> {
    /// See [`MessageMeta::at`].
    pub at: Timestamp,
    /// See [`MessageMeta::id`].
    pub id: &'a str,
    /// See [`MessageMeta::from`].
    pub from: &'a str,
    /// See [`MessageMeta::to`].
    pub to: &'a str,
    /// See [`MessageMeta::channel`].
    pub channel: Channel,
    /// See [`MessageMeta::segments`].
    pub segments: u16,
    /// See [`MessageMeta::encoding`].
    pub encoding: Encoding,
    /// See [`MessageMeta::bytes`].
    pub bytes: u32,
    /// See [`MessageMeta::sender_type`].
    pub sender_type: Option<SenderKind>,
    /// See [`MessageMeta::route`].
    pub route: Option<&'a str>,
}

impl MessageView<'_> {
    /// An owned copy.
    pub fn to_owned_meta(&self) -> MessageMeta {
        MessageMeta {
            at: self.at,
            id: self.id.to_owned(),
            from: self.from.to_owned(),
            to: self.to.to_owned(),
            channel: self.channel,
            segments: self.segments,
            encoding: self.encoding,
            bytes: self.bytes,
            sender_type: self.sender_type,
            route: self.route.map(str::to_owned),
        }
    }
}

/// Borrowed form of [`MetadataEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventView<'a> {
    /// See [`MetadataEvent::Message`].
    Message(MessageView<'a>),
    /// See [`MetadataEvent::Status`].
    Status {
        /// When the status arrived.
        at: Timestamp,
        /// Message id it refers to.
        id: &'a str,
        /// Outcome.
        status: DeliveryStatus,
    },
    /// See [`MetadataEvent::Report`].
    Report {
        /// When the complaint arrived.
        at: Timestamp,
        /// Who complained.
        reporter: &'a str,
        /// Who they complained about.
        sender: &'a str,
    },
}

impl EventView<'_> {
    /// When the event happened.
    pub fn at(&self) -> Timestamp {
        match self {
            EventView::Message(m) => m.at,
            EventView::Status { at, .. } | EventView::Report { at, .. } => *at,
        }
    }

    /// An owned copy.
    pub fn to_owned_event(&self) -> MetadataEvent {
        match *self {
            EventView::Message(m) => MetadataEvent::Message(m.to_owned_meta()),
            EventView::Status { at, id, status } => MetadataEvent::Status(StatusMeta {
                at,
                id: id.to_owned(),
                status,
            }),
            EventView::Report {
                at,
                reporter,
                sender,
            } => MetadataEvent::Report(ReportMeta {
                at,
                reporter: reporter.to_owned(),
                sender: sender.to_owned(),
            }),
        }
    }
}

/// Flat wire form used for fast, allocation-free parsing. `Cow` borrows from
/// the line unless a string contains JSON escapes.
#[derive(Deserialize)]
pub(crate) struct RawEvent<'a> {
    #[serde(borrow)]
    at: Cow<'a, str>,
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    from: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    to: Option<Cow<'a, str>>,
    #[serde(default)]
    channel: Option<Channel>,
    #[serde(default)]
    segments: Option<u16>,
    #[serde(default)]
    encoding: Option<Encoding>,
    #[serde(default)]
    bytes: Option<u32>,
    #[serde(default)]
    status: Option<DeliveryStatus>,
    #[serde(default, borrow)]
    reporter: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    sender: Option<Cow<'a, str>>,
    #[serde(default)]
    sender_type: Option<SenderKind>,
    #[serde(default, borrow)]
    route: Option<Cow<'a, str>>,
}

/// A parsed line whose strings may borrow from the line buffer.
pub(crate) struct ParsedLine<'a> {
    raw: RawEvent<'a>,
    at: Timestamp,
}

/// Parses one trace line. Errors are plain messages; the reader adds the line
/// number.
pub(crate) fn parse_line(line: &str) -> Result<ParsedLine<'_>, String> {
    let raw: RawEvent<'_> = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let at = Timestamp::parse(&raw.at).map_err(|e| e.to_string())?;
    let need = |v: bool, field: &str| -> Result<(), String> {
        if v {
            Ok(())
        } else {
            Err(format!("{} event is missing `{field}`", raw.event))
        }
    };
    match &*raw.event {
        "message" => {
            need(raw.id.is_some(), "id")?;
            need(raw.from.is_some(), "from")?;
            need(raw.to.is_some(), "to")?;
            need(raw.channel.is_some(), "channel")?;
            need(raw.segments.is_some(), "segments")?;
            need(raw.encoding.is_some(), "encoding")?;
            need(raw.bytes.is_some(), "bytes")?;
            if raw.from.as_deref().is_some_and(str::is_empty)
                || raw.to.as_deref().is_some_and(str::is_empty)
            {
                return Err("message event has an empty `from` or `to`".into());
            }
        }
        "status" => {
            need(raw.id.is_some(), "id")?;
            need(raw.status.is_some(), "status")?;
        }
        "report" => {
            need(raw.reporter.is_some(), "reporter")?;
            need(raw.sender.is_some(), "sender")?;
        }
        other => {
            return Err(format!(
                "unknown event type {other:?} (expected message, status or report)"
            ));
        }
    }
    Ok(ParsedLine { raw, at })
}

impl ParsedLine<'_> {
    /// The view of a validated line. Fields checked by [`parse_line`] are
    /// present; the defaults below are therefore never used.
    pub(crate) fn view(&self) -> EventView<'_> {
        let r = &self.raw;
        fn s<'b>(v: &'b Option<Cow<'_, str>>) -> &'b str {
            v.as_deref().unwrap_or("")
        }
        match &*r.event {
            "message" => EventView::Message(MessageView {
                at: self.at,
                id: s(&r.id),
                from: s(&r.from),
                to: s(&r.to),
                channel: r.channel.unwrap_or(Channel::Sms),
                segments: r.segments.unwrap_or(1),
                encoding: r.encoding.unwrap_or(Encoding::Gsm7),
                bytes: r.bytes.unwrap_or(0),
                sender_type: r.sender_type,
                route: r.route.as_deref(),
            }),
            "status" => EventView::Status {
                at: self.at,
                id: s(&r.id),
                status: r.status.unwrap_or(DeliveryStatus::Delivered),
            },
            _ => EventView::Report {
                at: self.at,
                reporter: s(&r.reporter),
                sender: s(&r.sender),
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const LINES: [&str; 3] = [
        r#"{"at":"2026-03-01T12:00:00.000Z","event":"message","id":"m-1","from":"+14155550100","to":"+14155550101","channel":"sms","segments":1,"encoding":"gsm7","bytes":42}"#,
        r#"{"at":"2026-03-01T12:00:04.000Z","event":"status","id":"m-1","status":"delivered"}"#,
        r#"{"at":"2026-03-01T13:00:00.000Z","event":"report","reporter":"+14155550101","sender":"+14155550100"}"#,
    ];

    #[test]
    fn design_examples_parse_and_round_trip() {
        for line in LINES {
            let parsed = parse_line(line).unwrap();
            let owned = parsed.view().to_owned_event();
            let back = serde_json::to_string(&owned).unwrap();
            let via_serde: MetadataEvent = serde_json::from_str(line).unwrap();
            assert_eq!(owned, via_serde);
            assert_eq!(serde_json::from_str::<MetadataEvent>(&back).unwrap(), owned);
        }
    }

    #[test]
    fn missing_field_is_named() {
        let err = parse_line(r#"{"at":"2026-03-01T12:00:00Z","event":"status","id":"m-1"}"#)
            .err()
            .unwrap();
        assert!(err.contains("status"), "{err}");
        let err = parse_line(r#"{"at":"2026-03-01T12:00:00Z","event":"call"}"#)
            .err()
            .unwrap();
        assert!(err.contains("unknown event type"), "{err}");
    }

    #[test]
    fn escaped_strings_are_accepted() {
        let line = r#"{"at":"2026-03-01T12:00:00Z","event":"report","reporter":"+1415\u0035550101","sender":"ACME"}"#;
        let parsed = parse_line(line).unwrap();
        assert!(matches!(
            parsed.view(),
            EventView::Report {
                reporter: "+14155550101",
                ..
            }
        ));
    }
}
