//! The generic HTTP SMSC adapter's wire shapes (the kind of "generic HTTP SMSC"
//! Kannel offers): a JSON POST for each outbound SMS, a JSON POST for each
//! inbound SMS, and a JSON status callback. All requests in both directions are
//! signed with [`crate::signing`].
//!
//! These are plain data types; the HTTP transport lives in the gateway.

use serde::{Deserialize, Serialize};

/// Largest inbound text accepted, in characters. Ten concatenated UCS-2 parts
/// is already far beyond what handsets send; anything bigger is an error, not a
/// message.
pub const MAX_TEXT_CHARS: usize = 10_000;

/// One outbound SMS as POSTed to the configured SMSC URL.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OutboundSms {
    /// The gateway's message id; status callbacks refer to it.
    pub id: String,
    /// `"<id>#<attempt>"`: stays the same when a send is retried after a crash
    /// that happened before the attempt was recorded, so the SMSC can drop
    /// duplicates by it. Also sent as the `Idempotency-Key` header.
    pub attempt_id: String,
    /// Sender (E.164, short code or alphanumeric id); absent means the SMSC's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Recipient in E.164.
    pub to: String,
    /// The message text.
    pub text: String,
    /// Number of SMS segments the text needs.
    pub segments: u32,
    /// `gsm7`, `ucs2` or `8bit`.
    pub encoding: String,
}

/// What the SMSC may answer to a submit (any 2xx means accepted).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SubmitAnswer {
    /// The SMSC's own id for the message, kept as a carrier correlation id.
    #[serde(default)]
    pub carrier_id: Option<String>,
    /// `delivered` when the SMSC already knows the message was delivered.
    #[serde(default)]
    pub status: Option<String>,
}

/// One inbound SMS as POSTed to `/webhooks/generic`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InboundSms {
    /// The SMSC's id for this message; a retried webhook with the same id is stored once.
    pub id: String,
    /// Sender (E.164, national number, short code or alphanumeric id).
    pub from: String,
    /// Recipient (the internal address).
    pub to: String,
    /// The message text.
    pub text: String,
    /// When the SMSC received it (RFC 3339), if known.
    #[serde(default)]
    pub received_at: Option<String>,
}

/// A delivery status callback POSTed to `/webhooks/generic/status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatusCallback {
    /// The gateway's message id (from [`OutboundSms::id`]).
    pub id: String,
    /// `delivered`, `failed` or `sent`.
    pub status: String,
    /// The SMSC's error code or reason when failed.
    #[serde(default)]
    pub error: Option<String>,
}

/// The batch form of an outbound submit (opt-in, `[generic] batch_max`):
/// many messages in one signed POST to the same URL. Each message carries
/// its own `attempt_id`, by which the far end drops duplicates; the request
/// as a whole has no idempotency key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SubmitBatch<T> {
    /// The messages, in no particular order; ids are distinct.
    pub messages: Vec<T>,
}

/// The far end's answer to a batch: one result per message it took a
/// decision on. A message without a result is retried, like a send that
/// timed out.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct BatchAnswer {
    /// Per-message results, in any order.
    #[serde(default)]
    pub results: Vec<BatchResult>,
}

/// What became of one message of a batch.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct BatchResult {
    /// The gateway's message id it answers for.
    pub id: String,
    /// An HTTP status code standing for this message alone, read exactly as
    /// the status of a single send: 2xx accepted; 408, 425, 429 and 5xx
    /// retried; any other code refused for good. Absent means 200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// As in [`SubmitAnswer::carrier_id`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier_id: Option<String>,
    /// As in [`SubmitAnswer::status`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}
