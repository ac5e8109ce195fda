//! Telnyx Messaging (API v2): Ed25519 webhook signatures, the JSON webhook
//! events (`message.received`, `message.sent`, `message.finalized`) and the
//! `POST /v2/messages` request and error bodies.
//!
//! The signature: headers `telnyx-signature-ed25519` (base64 of a 64-byte
//! Ed25519 signature) and `telnyx-timestamp` (Unix seconds); the signed bytes
//! are `"<timestamp>|<raw body>"`, verified with the account's public key.
//! Binding the timestamp lets the receiver refuse replays outside a window.
//!
//! Sans-IO: the caller passes `now`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
pub use ed25519_dalek::VerifyingKey;
use ed25519_dalek::{Signature, Verifier};
use serde::{Deserialize, Serialize};

pub use crate::json::WebhookError;
pub use crate::signing::SignatureProblem;

/// Header with the base64 Ed25519 signature.
pub const SIGNATURE_HEADER: &str = "telnyx-signature-ed25519";
/// Header with the Unix-seconds timestamp.
pub const TIMESTAMP_HEADER: &str = "telnyx-timestamp";

/// Longest text accepted in one webhook, in characters.
pub const MAX_TEXT_CHARS: usize = 10_000;

/// Parses the account's public key (base64 of 32 bytes).
pub fn public_key(b64: &str) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = B64.decode(b64.trim()).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

/// The bytes Telnyx signs.
pub fn signed_bytes(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(timestamp.len() + 1 + body.len());
    m.extend_from_slice(timestamp.as_bytes());
    m.push(b'|');
    m.extend_from_slice(body);
    m
}

/// Verifies a webhook: the timestamp within `tolerance_secs` of `now`, and the
/// signature over `"<timestamp>|<body>"`. (Ed25519 verification compares the
/// recomputed point, not a secret-dependent MAC, so timing reveals nothing.)
pub fn verify(
    key: &VerifyingKey,
    signature_b64: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureProblem> {
    let (Some(sig), Some(ts)) = (signature_b64, timestamp) else {
        return Err(SignatureProblem::Malformed);
    };
    let ts = ts.trim();
    let t: i64 = ts.parse().map_err(|_| SignatureProblem::Malformed)?;
    let sig: [u8; 64] = B64
        .decode(sig.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(SignatureProblem::Malformed)?;
    if (now - t).abs() > tolerance_secs {
        return Err(SignatureProblem::Stale);
    }
    key.verify(&signed_bytes(ts, body), &Signature::from_bytes(&sig))
        .map_err(|_| SignatureProblem::Mismatch)
}

/// The webhook envelope `{"data": {...}, "meta": {...}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Webhook {
    /// The event.
    pub data: Event,
}

/// One event.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    /// Event id (unique per delivery attempt set).
    pub id: String,
    /// `message.received`, `message.sent`, `message.finalized`, …
    pub event_type: String,
    /// When it happened.
    #[serde(default)]
    pub occurred_at: Option<String>,
    /// The message the event is about.
    pub payload: MessagePayload,
}

/// A phone number with carrier details.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Party {
    /// E.164 number (or short code / alphanumeric sender).
    pub phone_number: String,
    /// Per-recipient status on outbound events (`queued`, `sent`, `delivered`,
    /// `sending_failed`, `delivery_failed`, `delivery_unconfirmed`).
    #[serde(default)]
    pub status: Option<String>,
}

/// A media item.
#[derive(Clone, Deserialize, PartialEq, Eq)]
pub struct Media {
    /// Where the file is.
    pub url: String,
    /// MIME type.
    #[serde(default)]
    pub content_type: Option<String>,
}

impl std::fmt::Debug for Media {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Media {{ <url redacted>, {:?} }}", self.content_type)
    }
}

/// One error entry (`errors[]` on failed messages and API answers).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
pub struct ApiErrorEntry {
    /// Numeric code as a string, e.g. `"40300"`.
    #[serde(default)]
    pub code: Option<String>,
    /// Short title.
    #[serde(default)]
    pub title: Option<String>,
}

/// The message record inside an event.
#[derive(Clone, Deserialize)]
pub struct MessagePayload {
    /// Telnyx message id (UUID).
    pub id: String,
    /// `inbound` / `outbound`.
    #[serde(default)]
    pub direction: Option<String>,
    /// `SMS` / `MMS`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Sender.
    pub from: Party,
    /// Recipients.
    #[serde(default)]
    pub to: Vec<Party>,
    /// Text.
    #[serde(default)]
    pub text: Option<String>,
    /// Media (MMS).
    #[serde(default)]
    pub media: Vec<Media>,
    /// Errors on a failed message.
    #[serde(default)]
    pub errors: Vec<ApiErrorEntry>,
}

impl std::fmt::Debug for MessagePayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessagePayload")
            .field("id", &self.id)
            .field("direction", &self.direction)
            .field("media", &self.media.len())
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// Parses and sanity-checks a webhook body.
    pub fn parse(body: &[u8]) -> Result<Self, WebhookError> {
        let w: Self = serde_json::from_slice(body).map_err(|e| WebhookError::json(&e))?;
        let p = &w.data.payload;
        if p.id.is_empty() || p.id.len() > 128 {
            return Err(WebhookError::Invalid("data.payload.id"));
        }
        if p.text.as_deref().unwrap_or("").chars().count() > MAX_TEXT_CHARS {
            return Err(WebhookError::Invalid("data.payload.text"));
        }
        if p.media.len() > 10 {
            return Err(WebhookError::Invalid("data.payload.media"));
        }
        Ok(w)
    }

    /// For `message.sent` / `message.finalized`: the gateway status, from the
    /// (first) recipient's status; `None` when nothing changes.
    pub fn gateway_status(&self) -> Option<&'static str> {
        let to = self.data.payload.to.first()?.status.as_deref()?;
        match to {
            "sent" => Some("sent"),
            "delivered" => Some("delivered"),
            "sending_failed" | "delivery_failed" => Some("failed"),
            // delivery_unconfirmed: the carrier never reported back; it was sent.
            "delivery_unconfirmed" => Some("sent"),
            _ => None,
        }
    }
}

/// `POST /v2/messages`.
#[derive(Serialize)]
pub struct SendRequest<'a> {
    /// Sender (number, short code or alphanumeric id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<&'a str>,
    /// Messaging profile (lets Telnyx pick the sender when `from` is absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messaging_profile_id: Option<&'a str>,
    /// Recipient, E.164.
    pub to: &'a str,
    /// Text.
    pub text: &'a str,
    /// MMS media URLs.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub media_urls: &'a [String],
    /// Where delivery-status webhooks go.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<&'a str>,
}

/// The path of the messages resource.
pub const SEND_PATH: &str = "/v2/messages";

/// `{"data": {"id": ...}}`, the answer to a send.
#[derive(Debug, Clone, Deserialize)]
pub struct SendAnswer {
    /// The created message.
    pub data: SendAnswerData,
}

/// The created message's id.
#[derive(Debug, Clone, Deserialize)]
pub struct SendAnswerData {
    /// Telnyx message id.
    pub id: String,
}

/// `{"errors": [...]}`.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct ErrorAnswer {
    /// Errors.
    #[serde(default)]
    pub errors: Vec<ApiErrorEntry>,
}

/// True when a failed send is worth retrying.
pub fn is_transient(http_status: u16, answer: &ErrorAnswer) -> bool {
    let codes: Vec<&str> = answer
        .errors
        .iter()
        .filter_map(|e| e.code.as_deref())
        .collect();
    // 40300: blocked due to STOP; 40310/40311: invalid/non-SMS destination;
    // 40012/40013: invalid source/destination number.
    if codes
        .iter()
        .any(|c| matches!(*c, "40300" | "40310" | "40311" | "40012" | "40013"))
    {
        return false;
    }
    http_status == 429 || http_status == 408 || http_status >= 500 || http_status == 401
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    const BODY: &[u8] = br#"{"data":{"event_type":"message.received","id":"e1","occurred_at":"2024-01-01T00:00:00Z","payload":{"id":"m1","direction":"inbound","type":"SMS","from":{"phone_number":"+14155550100"},"to":[{"phone_number":"+14155550101","status":"webhook_delivered"}],"text":"Hello","media":[]},"record_type":"event"},"meta":{"attempt":1}}"#;

    #[test]
    fn signature_round_trip_window_and_tamper() {
        let sk = SigningKey::from_bytes(&[7u8; 32]);
        let pk = public_key(&B64.encode(sk.verifying_key().as_bytes())).unwrap();
        let sig = B64.encode(sk.sign(&signed_bytes("1700000000", BODY)).to_bytes());
        assert_eq!(
            verify(
                &pk,
                Some(&sig),
                Some("1700000000"),
                BODY,
                1_700_000_100,
                300
            ),
            Ok(())
        );
        assert_eq!(
            verify(
                &pk,
                Some(&sig),
                Some("1700000000"),
                BODY,
                1_700_001_000,
                300
            ),
            Err(SignatureProblem::Stale)
        );
        assert_eq!(
            verify(
                &pk,
                Some(&sig),
                Some("1700000001"),
                BODY,
                1_700_000_000,
                300
            ),
            Err(SignatureProblem::Mismatch)
        );
        let mut other = BODY.to_vec();
        other[10] ^= 1;
        assert_eq!(
            verify(
                &pk,
                Some(&sig),
                Some("1700000000"),
                &other,
                1_700_000_000,
                300
            ),
            Err(SignatureProblem::Mismatch)
        );
        assert_eq!(
            verify(&pk, None, Some("1700000000"), BODY, 1_700_000_000, 300),
            Err(SignatureProblem::Malformed)
        );
        assert_eq!(
            verify(
                &pk,
                Some("AAAA"),
                Some("1700000000"),
                BODY,
                1_700_000_000,
                300
            ),
            Err(SignatureProblem::Malformed)
        );
        assert!(public_key("short").is_none());
    }

    #[test]
    fn parses_events() {
        let w = Webhook::parse(BODY).unwrap();
        assert_eq!(w.data.event_type, "message.received");
        assert_eq!(w.data.payload.from.phone_number, "+14155550100");
        assert_eq!(w.data.payload.text.as_deref(), Some("Hello"));
        assert!(!format!("{w:?}").contains("Hello"));
        let fin = br#"{"data":{"event_type":"message.finalized","id":"e2","payload":{"id":"m2","from":{"phone_number":"+1"},"to":[{"phone_number":"+2","status":"delivery_failed"}],"errors":[{"code":"40001","title":"x"}]}}}"#;
        assert_eq!(
            Webhook::parse(fin).unwrap().gateway_status(),
            Some("failed")
        );
        let e = Webhook::parse(br#"{"data":{"payload":"secret text"}}"#).unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn send_request_and_errors() {
        let r = SendRequest {
            from: Some("+14155550199"),
            messaging_profile_id: None,
            to: "+14155550101",
            text: "hi",
            media_urls: &[],
            webhook_url: Some("https://gw/webhooks/telnyx"),
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"from":"+14155550199","to":"+14155550101","text":"hi","webhook_url":"https://gw/webhooks/telnyx"})
        );
        let stop: ErrorAnswer = serde_json::from_str(
            r#"{"errors":[{"code":"40300","title":"Blocked due to STOP message"}]}"#,
        )
        .unwrap();
        assert!(!is_transient(400, &stop));
        assert!(is_transient(429, &ErrorAnswer::default()));
        assert!(is_transient(503, &ErrorAnswer::default()));
        assert!(!is_transient(422, &ErrorAnswer::default()));
    }
}
