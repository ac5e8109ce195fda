//! Google RCS Business Messaging (RBM): the REST request bodies and paths,
//! the webhook, and the service-account OAuth2 assertion.
//!
//! Wire facts (reference: `rbm-api-examples`, the RBM webhook guide):
//! * send: `POST /v1/phones/{E164}/agentMessages?agentId=&messageId=` with
//!   `{"contentMessage": {...}, "ttl": "3600s"}`; revoke: `DELETE
//!   /v1/phones/{E164}/agentMessages/{messageId}?agentId=`; capability:
//!   `GET /v1/phones/{E164}/capabilities?agentId=&requestId=` (404 = not an
//!   RCS user);
//! * webhook: a setup handshake `{"clientToken","secret"}` answered by
//!   echoing the secret, then Pub/Sub push bodies `{"message": {"data":
//!   "<base64 JSON>"}}` signed with `X-Goog-Signature =
//!   base64(HMAC-SHA512(key = clientToken, msg = base64-decoded data))`;
//! * auth: a bearer token from the OAuth2 JWT-bearer grant (RFC 7523): an
//!   RS256 JWT signed with the service account's key, `scope`
//!   `.../auth/rcsbusinessmessaging`, posted to the token endpoint.
//!
//! The JWT is signed with `jsonwebtoken` 9, whose RS256 goes through `ring`
//! (constant-time RSA, already in the tree through rustls). The pure-Rust
//! `rsa` crate was the other candidate; it carries an unfixed timing
//! advisory (RUSTSEC-2023-0071, Marvin) for private-key operations.
//!
//! Sans-IO: the caller passes `now`, does the HTTP and hands bodies in.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha512;
use subtle::ConstantTimeEq;

use super::content::{
    Action, Alignment, Body, Card, CardWidth, MediaHeight, Orientation, RcsMessage, RichCard,
    Suggestion, UserFile, UserMessage, describe_json_error, is_e164,
};
use crate::Error;
pub use crate::signing::SignatureProblem;

/// The production API.
pub const DEFAULT_API_BASE: &str = "https://rcsbusinessmessaging.googleapis.com";
/// Google's OAuth2 token endpoint.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The OAuth2 scope of the RBM API.
pub const SCOPE: &str = "https://www.googleapis.com/auth/rcsbusinessmessaging";
/// The OAuth2 grant type of a signed JWT assertion (RFC 7523).
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Header carrying the webhook signature.
pub const SIGNATURE_HEADER: &str = "x-goog-signature";
/// Longest lifetime Google accepts for an assertion.
pub const ASSERTION_LIFETIME_SECS: i64 = 3600;
/// Longest user text accepted from a webhook, in characters.
pub const MAX_USER_TEXT_CHARS: usize = 10_000;

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn phone(msisdn: &str) -> Result<&str, Error> {
    if is_e164(msisdn) {
        Ok(msisdn)
    } else {
        Err(Error::rcs("phone", "must be an E.164 number"))
    }
}

/// `POST` path (with query) that sends an agent message.
pub fn send_path(msisdn: &str, agent_id: &str, message_id: &str) -> Result<String, Error> {
    Ok(format!(
        "/v1/phones/{}/agentMessages?agentId={}&messageId={}",
        phone(msisdn)?,
        enc(agent_id),
        enc(message_id)
    ))
}

/// `DELETE` path that revokes an agent message not yet delivered.
pub fn revoke_path(msisdn: &str, agent_id: &str, message_id: &str) -> Result<String, Error> {
    Ok(format!(
        "/v1/phones/{}/agentMessages/{}?agentId={}",
        phone(msisdn)?,
        enc(message_id),
        enc(agent_id)
    ))
}

/// `GET` path of a capability check.
pub fn capabilities_path(msisdn: &str, agent_id: &str, request_id: &str) -> Result<String, Error> {
    Ok(format!(
        "/v1/phones/{}/capabilities?agentId={}&requestId={}",
        phone(msisdn)?,
        enc(agent_id),
        enc(request_id)
    ))
}

/// `POST` path of an agent event (read receipt, typing indicator).
pub fn agent_event_path(msisdn: &str, agent_id: &str, event_id: &str) -> Result<String, Error> {
    Ok(format!(
        "/v1/phones/{}/agentEvents?eventId={}&agentId={}",
        phone(msisdn)?,
        enc(event_id),
        enc(agent_id)
    ))
}

/// Body of an agent event: `READ` (for a user message) or `IS_TYPING`.
pub fn agent_event_body(event_type: EventKind, message_id: Option<&str>) -> Value {
    let mut v = json!({"eventType": event_type.as_str()});
    if let Some(id) = message_id {
        v["messageId"] = json!(id);
    }
    v
}

fn suggestion_json(s: &Suggestion) -> Value {
    match s {
        Suggestion::Reply { text, postback } => {
            json!({"reply": {"text": text, "postbackData": postback}})
        }
        Suggestion::Action {
            text,
            postback,
            action,
        } => {
            let mut a = json!({"text": text, "postbackData": postback});
            match action {
                Action::OpenUrl { url } => a["openUrlAction"] = json!({"url": url}),
                Action::Dial { phone_number } => {
                    a["dialAction"] = json!({"phoneNumber": phone_number})
                }
                Action::ViewLocation {
                    latitude,
                    longitude,
                    label,
                } => {
                    let mut v = json!({"latLong": {"latitude": latitude, "longitude": longitude}});
                    if let Some(l) = label {
                        v["label"] = json!(l);
                    }
                    a["viewLocationAction"] = v;
                }
                Action::ShareLocation {} => a["shareLocationAction"] = json!({}),
                Action::CalendarEvent {
                    start,
                    end,
                    title,
                    description,
                } => {
                    let mut v = json!({"startTime": start, "endTime": end, "title": title});
                    if let Some(d) = description {
                        v["description"] = json!(d);
                    }
                    a["createCalendarEventAction"] = v;
                }
            }
            json!({ "action": a })
        }
    }
}

fn height(h: MediaHeight) -> &'static str {
    match h {
        MediaHeight::Short => "SHORT",
        MediaHeight::Medium => "MEDIUM",
        MediaHeight::Tall => "TALL",
    }
}

fn card_json(c: &Card) -> Value {
    let mut v = json!({});
    if let Some(t) = &c.title {
        v["title"] = json!(t);
    }
    if let Some(d) = &c.description {
        v["description"] = json!(d);
    }
    if let Some(m) = &c.media {
        let mut info = json!({"fileUrl": m.url, "forceRefresh": false});
        if let Some(t) = &m.thumbnail {
            info["thumbnailUrl"] = json!(t.url);
        }
        v["media"] = json!({"height": height(m.height), "contentInfo": info});
    }
    if !c.suggestions.is_empty() {
        v["suggestions"] = Value::Array(c.suggestions.iter().map(suggestion_json).collect());
    }
    v
}

/// The body of `POST .../agentMessages` for `msg`; `ttl_secs` becomes the
/// message's `ttl` (RBM drops it undelivered afterwards).
pub fn agent_message(msg: &RcsMessage, ttl_secs: Option<u64>) -> Value {
    let mut content = match &msg.body {
        Body::Text(t) => json!({"text": t}),
        Body::RichCard(RichCard::Standalone(s)) => {
            let mut card = json!({
                "cardOrientation": match s.orientation {
                    Orientation::Vertical => "VERTICAL",
                    Orientation::Horizontal => "HORIZONTAL",
                },
                "cardContent": card_json(&s.card),
            });
            if let Some(a) = s.thumbnail_alignment {
                card["thumbnailImageAlignment"] = json!(match a {
                    Alignment::Left => "LEFT",
                    Alignment::Right => "RIGHT",
                });
            }
            json!({"richCard": {"standaloneCard": card}})
        }
        Body::RichCard(RichCard::Carousel(k)) => json!({"richCard": {"carouselCard": {
            "cardWidth": match k.card_width { CardWidth::Small => "SMALL", CardWidth::Medium => "MEDIUM" },
            "cardContents": k.cards.iter().map(card_json).collect::<Vec<_>>(),
        }}}),
        Body::File(f) => {
            let mut info = json!({"fileUrl": f.url, "forceRefresh": false});
            if let Some(t) = &f.thumbnail {
                info["thumbnailUrl"] = json!(t.url);
            }
            json!({ "contentInfo": info })
        }
    };
    if !msg.suggestions.is_empty() {
        content["suggestions"] =
            Value::Array(msg.suggestions.iter().map(suggestion_json).collect());
    }
    let mut body = json!({ "contentMessage": content });
    if let Some(t) = ttl_secs {
        body["ttl"] = json!(format!("{}s", t.max(1)));
    }
    body
}

/// The answer of a capability check: the RBM features the device supports.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct Capabilities {
    /// `RICHCARD_STANDALONE`, `ACTION_DIAL`, …
    #[serde(default)]
    pub features: Vec<String>,
}

impl Capabilities {
    /// Parses a 200 answer.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        serde_json::from_slice(body)
            .map_err(|e| Error::rcs("capabilities", describe_json_error(&e)))
    }

    /// Whether a device with these features can show a message needing
    /// `required` (an empty feature list means "RCS, features unknown", which
    /// RBM answers for some carriers; text then goes, rich content too).
    pub fn supports(&self, required: &[&str]) -> bool {
        self.features.is_empty()
            || required
                .iter()
                .all(|r| self.features.iter().any(|f| f == r))
    }
}

/// Google's error body `{"error": {"code", "message", "status"}}`.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct ErrorAnswer {
    /// The error.
    #[serde(default)]
    pub error: ErrorDetail,
}

/// The inner error.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct ErrorDetail {
    /// HTTP-like code.
    #[serde(default)]
    pub code: Option<u16>,
    /// `NOT_FOUND`, `PERMISSION_DENIED`, `INVALID_ARGUMENT`, …
    #[serde(default)]
    pub status: Option<String>,
}

impl ErrorAnswer {
    /// Parses an error body; an unreadable body gives an empty answer.
    pub fn parse(body: &[u8]) -> Self {
        serde_json::from_slice(body).unwrap_or_default()
    }

    /// The status name if it is a plain upper-case token (never free text).
    pub fn status(&self) -> Option<&str> {
        self.error
            .status
            .as_deref()
            .filter(|s| s.len() <= 40 && s.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
    }
}

/// Whether an HTTP status from the RBM API is worth retrying.
pub fn is_transient(status: u16) -> bool {
    matches!(status, 401 | 408 | 425 | 429) || status >= 500
}

/// What the webhook received.
#[derive(Clone, PartialEq, Eq)]
pub enum Webhook {
    /// The one-time setup request: answer `{"secret": secret}` with 200 when
    /// `client_token` is the configured one.
    Handshake {
        /// The token Google was given for this webhook.
        client_token: String,
        /// What to echo back.
        secret: String,
    },
    /// A Pub/Sub push with one event.
    Push {
        /// `message.data`, base64-decoded: the signed bytes, a JSON event.
        data: Vec<u8>,
        /// Pub/Sub's message id, when present.
        pubsub_id: Option<String>,
    },
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Handshake { .. } => f.write_str("Webhook::Handshake { <redacted> }"),
            Self::Push { data, .. } => write!(f, "Webhook::Push {{ {} bytes }}", data.len()),
        }
    }
}

#[derive(Deserialize)]
struct RawWebhook {
    #[serde(default, rename = "clientToken")]
    client_token: Option<String>,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    message: Option<RawPubSub>,
}

#[derive(Deserialize)]
struct RawPubSub {
    #[serde(default)]
    data: Option<String>,
    #[serde(default, rename = "messageId")]
    message_id: Option<String>,
}

impl Webhook {
    /// Parses a webhook body (handshake or push).
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let raw: RawWebhook = serde_json::from_slice(body)
            .map_err(|e| Error::rcs("webhook", describe_json_error(&e)))?;
        if let Some(m) = raw.message {
            let data = m
                .data
                .ok_or_else(|| Error::rcs("message.data", "is missing"))?;
            let data = B64
                .decode(data.trim())
                .map_err(|_| Error::rcs("message.data", "is not base64"))?;
            let pubsub_id = m.message_id.filter(|i| !i.is_empty() && i.len() <= 128);
            return Ok(Self::Push { data, pubsub_id });
        }
        match (raw.client_token, raw.secret) {
            (Some(client_token), Some(secret)) => {
                if secret.is_empty() || secret.len() > 1024 {
                    return Err(Error::rcs("secret", "must be 1 to 1024 characters"));
                }
                Ok(Self::Handshake {
                    client_token,
                    secret,
                })
            }
            _ => Err(Error::rcs(
                "webhook",
                "neither a handshake (clientToken, secret) nor a push (message.data)",
            )),
        }
    }
}

fn mac(client_token: &[u8], data: &[u8]) -> Hmac<Sha512> {
    // HMAC takes keys of any length.
    let mut m = match Hmac::<Sha512>::new_from_slice(client_token) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC-SHA512 takes keys of any length"),
    };
    m.update(data);
    m
}

/// `X-Goog-Signature` over the decoded `message.data` (for mocks and tests).
pub fn sign(client_token: &[u8], data: &[u8]) -> String {
    B64.encode(mac(client_token, data).finalize().into_bytes())
}

/// Verifies `X-Goog-Signature` in constant time.
pub fn verify_signature(
    client_token: &[u8],
    header: Option<&str>,
    data: &[u8],
) -> Result<(), SignatureProblem> {
    let sig = header
        .and_then(|h| B64.decode(h.trim()).ok())
        .ok_or(SignatureProblem::Malformed)?;
    let want = mac(client_token, data).finalize().into_bytes();
    if sig.len() == want.len() && bool::from(sig.as_slice().ct_eq(want.as_slice())) {
        Ok(())
    } else {
        Err(SignatureProblem::Mismatch)
    }
}

/// Compares the handshake's client token with the configured one in
/// constant time.
pub fn client_token_matches(configured: &[u8], given: &str) -> bool {
    configured.len() == given.len() && bool::from(configured.ct_eq(given.as_bytes()))
}

/// An agent-message event a user's device reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The message reached the device.
    Delivered,
    /// The user opened it.
    Read,
    /// The user is typing.
    IsTyping,
}

impl EventKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "DELIVERED",
            Self::Read => "READ",
            Self::IsTyping => "IS_TYPING",
        }
    }
}

/// A decoded webhook event.
#[derive(Debug, Clone, PartialEq)]
pub enum UserEvent {
    /// A user sent something.
    Message {
        /// The user's number (E.164).
        sender: String,
        /// RBM's id of the user message (de-duplication key).
        message_id: String,
        /// The agent it was sent to, when given.
        agent_id: Option<String>,
        /// When the user sent it (RFC 3339), when given.
        send_time: Option<String>,
        /// What they sent.
        message: UserMessage,
    },
    /// A device event about an agent message (or, for typing, none).
    Event {
        /// The user's number (E.164).
        sender: String,
        /// RBM's event id.
        event_id: Option<String>,
        /// The agent message it is about (our `messageId`).
        message_id: Option<String>,
        /// What happened.
        kind: EventKind,
    },
}

fn str_field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

fn id_field(v: &Value, name: &str) -> Result<Option<String>, Error> {
    match str_field(v, name) {
        None => Ok(None),
        Some(s) if !s.is_empty() && s.len() <= 128 && !s.chars().any(char::is_control) => {
            Ok(Some(s.to_string()))
        }
        Some(_) => Err(Error::rcs(name, "must be 1 to 128 printable characters")),
    }
}

fn size_field(v: &Value) -> Option<u64> {
    // Proto int64 fields arrive as JSON strings; int32 as numbers.
    match v.get("fileSizeBytes") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
}

fn check_text(field: &str, s: &str) -> Result<(), Error> {
    if s.chars().count() > MAX_USER_TEXT_CHARS {
        return Err(Error::rcs(field, "longer than 10000 characters"));
    }
    Ok(())
}

impl UserEvent {
    /// Parses the decoded `message.data` of a push.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let v: Value = serde_json::from_slice(data)
            .map_err(|e| Error::rcs("message.data", describe_json_error(&e)))?;
        if !v.is_object() {
            return Err(Error::rcs("message.data", "must be a JSON object"));
        }
        let sender = str_field(&v, "senderPhoneNumber")
            .filter(|s| is_e164(s))
            .ok_or_else(|| Error::rcs("senderPhoneNumber", "must be an E.164 number"))?
            .to_string();
        if let Some(kind) = str_field(&v, "eventType") {
            let kind = match kind {
                "DELIVERED" => EventKind::Delivered,
                "READ" => EventKind::Read,
                "IS_TYPING" => EventKind::IsTyping,
                _ => {
                    return Err(Error::rcs(
                        "eventType",
                        "must be DELIVERED, READ or IS_TYPING",
                    ));
                }
            };
            let message_id = id_field(&v, "messageId")?;
            if kind != EventKind::IsTyping && message_id.is_none() {
                return Err(Error::rcs("messageId", "is required for this event"));
            }
            return Ok(Self::Event {
                sender,
                event_id: id_field(&v, "eventId")?,
                message_id,
                kind,
            });
        }
        let message_id =
            id_field(&v, "messageId")?.ok_or_else(|| Error::rcs("messageId", "is missing"))?;
        let message = if let Some(t) = str_field(&v, "text") {
            check_text("text", t)?;
            UserMessage::Text {
                text: t.to_string(),
            }
        } else if let Some(r) = v.get("suggestionResponse") {
            let postback = str_field(r, "postbackData").unwrap_or("");
            let text = str_field(r, "text").unwrap_or("");
            check_text("suggestionResponse.text", text)?;
            if postback.chars().count() > super::content::MAX_POSTBACK_CHARS {
                return Err(Error::rcs(
                    "suggestionResponse.postbackData",
                    "longer than 2048 characters",
                ));
            }
            UserMessage::SuggestionResponse {
                text: text.to_string(),
                postback: postback.to_string(),
            }
        } else if let Some(l) = v.get("location") {
            let coord = |name: &str, max: f64| {
                l.get(name)
                    .and_then(Value::as_f64)
                    .filter(|x| x.abs() <= max)
                    .ok_or_else(|| {
                        Error::rcs(format!("location.{name}"), "is missing or out of range")
                    })
            };
            UserMessage::Location {
                latitude: coord("latitude", 90.0)?,
                longitude: coord("longitude", 180.0)?,
            }
        } else if let Some(f) = v.get("userFile") {
            let payload = f
                .get("payload")
                .ok_or_else(|| Error::rcs("userFile.payload", "is missing"))?;
            let url = str_field(payload, "fileUri")
                .ok_or_else(|| Error::rcs("userFile.payload.fileUri", "is missing"))?;
            super::content::check_url("userFile.payload.fileUri", url)?;
            let thumbnail_url = match f.get("thumbnail").and_then(|t| str_field(t, "fileUri")) {
                Some(u) => {
                    super::content::check_url("userFile.thumbnail.fileUri", u)?;
                    Some(u.to_string())
                }
                None => None,
            };
            let short = |name: &str| {
                str_field(payload, name)
                    .filter(|s| !s.is_empty() && s.chars().count() <= 255)
                    .map(str::to_string)
            };
            UserMessage::File(UserFile {
                url: url.to_string(),
                name: short("fileName"),
                content_type: short("mimeType"),
                size: size_field(payload),
                thumbnail_url,
            })
        } else {
            return Err(Error::rcs(
                "message.data",
                "has none of eventType, text, suggestionResponse, location or userFile",
            ));
        };
        Ok(Self::Message {
            sender,
            message_id,
            agent_id: id_field(&v, "agentId")?,
            send_time: str_field(&v, "sendTime")
                .filter(|s| s.len() <= 40)
                .map(str::to_string),
            message,
        })
    }
}

/// A service-account key file (the JSON Google Cloud gives out). Only the
/// fields the JWT-bearer grant needs are read.
#[derive(Clone, Deserialize)]
pub struct ServiceAccount {
    /// The account: the assertion's issuer.
    pub client_email: String,
    /// PEM (PKCS#8) RSA private key.
    pub private_key: String,
    /// Key id, sent as the JWT `kid`.
    #[serde(default)]
    pub private_key_id: Option<String>,
    /// The token endpoint the file names.
    #[serde(default)]
    pub token_uri: Option<String>,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceAccount { <redacted> }")
    }
}

/// The claims of the assertion (RFC 7523 §3, Google's service-account flow).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The service account.
    pub iss: String,
    /// Space-separated scopes.
    pub scope: String,
    /// The token endpoint.
    pub aud: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds), at most an hour later.
    pub exp: i64,
}

impl ServiceAccount {
    /// Parses the key file and checks the key is a usable RSA PEM key.
    pub fn parse(json: &[u8]) -> Result<Self, Error> {
        let sa: Self = serde_json::from_slice(json)
            .map_err(|e| Error::rcs("service_account", describe_json_error(&e)))?;
        if sa.client_email.is_empty() || !sa.client_email.contains('@') {
            return Err(Error::rcs(
                "service_account.client_email",
                "must be the account's e-mail address",
            ));
        }
        jsonwebtoken::EncodingKey::from_rsa_pem(sa.private_key.as_bytes()).map_err(|_| {
            Error::rcs(
                "service_account.private_key",
                "is not an RSA private key in PEM form",
            )
        })?;
        Ok(sa)
    }

    /// The claims of an assertion for `token_uri` issued at `now`.
    pub fn claims(&self, token_uri: &str, now: i64) -> Claims {
        Claims {
            iss: self.client_email.clone(),
            scope: SCOPE.to_string(),
            aud: token_uri.to_string(),
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        }
    }

    /// A signed RS256 assertion (compact JWT) for `token_uri` at `now`.
    pub fn assertion(&self, token_uri: &str, now: i64) -> Result<String, Error> {
        let key =
            jsonwebtoken::EncodingKey::from_rsa_pem(self.private_key.as_bytes()).map_err(|_| {
                Error::rcs(
                    "service_account.private_key",
                    "is not an RSA private key in PEM form",
                )
            })?;
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = self.private_key_id.clone();
        jsonwebtoken::encode(&header, &self.claims(token_uri, now), &key).map_err(|_| {
            Error::rcs(
                "service_account.private_key",
                "signing the assertion failed",
            )
        })
    }
}

/// The form body of the token request.
pub fn token_request_body(assertion: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", JWT_BEARER_GRANT)
        .append_pair("assertion", assertion)
        .finish()
}

/// The token endpoint's answer.
#[derive(Clone, Deserialize)]
pub struct TokenAnswer {
    /// The bearer token.
    pub access_token: String,
    /// Seconds it stays valid.
    #[serde(default = "default_expires_in")]
    pub expires_in: u64,
    /// `Bearer`.
    #[serde(default)]
    pub token_type: Option<String>,
}

const fn default_expires_in() -> u64 {
    3600
}

impl std::fmt::Debug for TokenAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TokenAnswer {{ <redacted>, expires_in: {} }}",
            self.expires_in
        )
    }
}

impl TokenAnswer {
    /// Parses a 200 answer of the token endpoint.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let t: Self = serde_json::from_slice(body)
            .map_err(|e| Error::rcs("token", describe_json_error(&e)))?;
        if t.access_token.is_empty() || t.access_token.len() > 4096 {
            return Err(Error::rcs("token.access_token", "is empty or too long"));
        }
        if t.token_type
            .as_deref()
            .is_some_and(|k| !k.eq_ignore_ascii_case("bearer"))
        {
            return Err(Error::rcs("token.token_type", "must be Bearer"));
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        crate::rcs::fixture(name)
    }

    fn msg(v: Value) -> RcsMessage {
        RcsMessage::from_value(v).unwrap()
    }

    #[test]
    fn paths_encode_their_parameters() {
        assert_eq!(
            send_path("+14155550101", "my-agent", "0193-a").unwrap(),
            "/v1/phones/+14155550101/agentMessages?agentId=my-agent&messageId=0193-a"
        );
        assert_eq!(
            revoke_path("+14155550101", "a b", "m/1").unwrap(),
            "/v1/phones/+14155550101/agentMessages/m%2F1?agentId=a+b"
        );
        assert_eq!(
            capabilities_path("+14155550101", "a", "r").unwrap(),
            "/v1/phones/+14155550101/capabilities?agentId=a&requestId=r"
        );
        assert!(send_path("14155550101", "a", "m").is_err());
        assert!(send_path("+1/../x", "a", "m").is_err());
    }

    #[test]
    fn agent_message_bodies_have_the_reference_shapes() {
        let text = agent_message(
            &msg(
                json!({"text": "Hello World", "suggestions": [{"reply": {"text": "Yes", "postback": "y"}}]}),
            ),
            Some(3600),
        );
        assert_eq!(
            text,
            json!({"contentMessage": {"text": "Hello World", "suggestions": [{"reply": {"text": "Yes", "postbackData": "y"}}]}, "ttl": "3600s"})
        );
        let want: Value =
            serde_json::from_slice(&fixture("rbm/agent_message_standalone.json")).unwrap();
        let got = agent_message(
            &msg(serde_json::from_slice(&fixture("api/standalone_card.json")).unwrap()),
            None,
        );
        assert_eq!(got, want);
        let want: Value =
            serde_json::from_slice(&fixture("rbm/agent_message_carousel.json")).unwrap();
        let got = agent_message(
            &msg(serde_json::from_slice(&fixture("api/carousel.json")).unwrap()),
            None,
        );
        assert_eq!(got, want);
        let file = agent_message(
            &msg(
                json!({"file": {"url": "https://x.example/f.pdf", "name": "f.pdf", "content_type": "application/pdf", "size": 10}}),
            ),
            None,
        );
        assert_eq!(
            file,
            json!({"contentMessage": {"contentInfo": {"fileUrl": "https://x.example/f.pdf", "forceRefresh": false}}})
        );
    }

    #[test]
    fn webhook_handshake_push_and_signature() {
        let hs = Webhook::parse(&fixture("rbm/webhook_handshake.json")).unwrap();
        assert!(matches!(hs, Webhook::Handshake { ref secret, .. } if secret == "1234567890"));
        let body = fixture("rbm/webhook_text.json");
        let Webhook::Push { data, .. } = Webhook::parse(&body).unwrap() else {
            panic!("push expected")
        };
        let sig = sign(b"client-token", &data);
        assert!(verify_signature(b"client-token", Some(&sig), &data).is_ok());
        assert_eq!(
            verify_signature(b"other", Some(&sig), &data),
            Err(SignatureProblem::Mismatch)
        );
        assert_eq!(
            verify_signature(b"client-token", None, &data),
            Err(SignatureProblem::Malformed)
        );
        let mut tampered = data.clone();
        tampered.push(b' ');
        assert!(verify_signature(b"client-token", Some(&sig), &tampered).is_err());
        let UserEvent::Message {
            sender, message, ..
        } = UserEvent::parse(&data).unwrap()
        else {
            panic!("message expected")
        };
        assert_eq!(sender, "+14155550101");
        assert_eq!(message.as_text(), "Hello agent");
        assert!(client_token_matches(b"abc", "abc"));
        assert!(!client_token_matches(b"abc", "abd"));
        assert!(Webhook::parse(b"{}").is_err());
        assert!(Webhook::parse(br#"{"message": {"data": "!!"}}"#).is_err());
    }

    #[test]
    fn user_events_of_every_kind() {
        let decode = |name: &str| {
            let Webhook::Push { data, .. } = Webhook::parse(&fixture(name)).unwrap() else {
                panic!("push expected")
            };
            UserEvent::parse(&data).unwrap()
        };
        match decode("rbm/webhook_suggestion_response.json") {
            UserEvent::Message {
                message: UserMessage::SuggestionResponse { postback, text },
                ..
            } => assert_eq!((postback.as_str(), text.as_str()), ("reply_yes", "Yes")),
            other => panic!("{other:?}"),
        }
        match decode("rbm/webhook_location.json") {
            UserEvent::Message {
                message: UserMessage::Location { latitude, .. },
                ..
            } => assert!((latitude - 37.4220188).abs() < 1e-9),
            other => panic!("{other:?}"),
        }
        match decode("rbm/webhook_user_file.json") {
            UserEvent::Message {
                message: UserMessage::File(f),
                ..
            } => {
                assert_eq!(f.size, Some(1_250_000));
                assert_eq!(f.content_type.as_deref(), Some("image/jpeg"));
            }
            other => panic!("{other:?}"),
        }
        for (name, kind) in [
            ("rbm/webhook_delivered.json", EventKind::Delivered),
            ("rbm/webhook_read.json", EventKind::Read),
            ("rbm/webhook_is_typing.json", EventKind::IsTyping),
        ] {
            match decode(name) {
                UserEvent::Event { kind: k, .. } => assert_eq!(k, kind),
                other => panic!("{other:?}"),
            }
        }
        assert!(
            UserEvent::parse(br#"{"senderPhoneNumber": "+14155550101", "eventType": "DELIVERED"}"#)
                .is_err()
        );
        assert!(
            UserEvent::parse(br#"{"senderPhoneNumber": "nope", "text": "x", "messageId": "m"}"#)
                .is_err()
        );
    }

    #[test]
    fn assertion_is_rs256_with_the_service_account_claims() {
        let sa = ServiceAccount::parse(&fixture("keys/service_account.json")).unwrap();
        let jwt = sa
            .assertion("http://127.0.0.1:1/token", 1_700_000_000)
            .unwrap();
        let pem = fixture("keys/test_public.pem");
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(&pem).unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        v.validate_exp = false;
        v.set_audience(&["http://127.0.0.1:1/token"]);
        let got = jsonwebtoken::decode::<Claims>(&jwt, &key, &v).unwrap();
        assert_eq!(got.claims.iss, sa.client_email);
        assert_eq!(got.claims.scope, SCOPE);
        assert_eq!(got.claims.exp - got.claims.iat, 3600);
        assert_eq!(got.header.kid, sa.private_key_id);
        assert!(format!("{sa:?}").contains("redacted"));
        assert!(
            ServiceAccount::parse(br#"{"client_email": "a@b", "private_key": "nope"}"#).is_err()
        );
        let body = token_request_body(&jwt);
        assert!(body.starts_with(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="
        ));
        let t = TokenAnswer::parse(
            br#"{"access_token": "ya29.x", "expires_in": 3599, "token_type": "Bearer"}"#,
        )
        .unwrap();
        assert_eq!(t.expires_in, 3599);
    }

    #[test]
    fn capability_and_error_answers() {
        let c = Capabilities::parse(&fixture("rbm/capabilities.json")).unwrap();
        assert!(c.supports(&["RICHCARD_STANDALONE", "ACTION_DIAL"]));
        assert!(!c.supports(&["ACTION_CREATE_CALENDAR_EVENT"]));
        let e = ErrorAnswer::parse(br#"{"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}}"#);
        assert_eq!(e.status(), Some("NOT_FOUND"));
        assert!(is_transient(503) && is_transient(429) && !is_transient(404));
    }
}
