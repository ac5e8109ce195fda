//! Twilio Programmable Messaging: the `X-Twilio-Signature` scheme, the
//! form-encoded inbound and status-callback webhooks, the Messages REST API
//! request and its error bodies.
//!
//! Sans-IO: the gateway hands in the raw body, the URL it is reachable at and
//! the header; nothing here opens a socket or reads a clock.
//!
//! The signature (twilio-python `request_validator.py`): start with the full
//! URL Twilio called, append `name + value` for every form parameter with the
//! names sorted (code-point order, repeated names in sorted value order), then
//! `base64(HMAC-SHA1(auth token, that string))`. Twilio has signed both with
//! and without the default port (`:443` / `:80`) over the years, so
//! [`validate`] accepts either form, as the official helpers do.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha1::Sha1;
use subtle::ConstantTimeEq;

type HmacSha1 = Hmac<Sha1>;

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// Most form parameters accepted in one webhook (Twilio sends about 20, plus
/// two per media item, at most 10 media).
pub const MAX_PARAMS: usize = 200;

/// Longest message body Twilio delivers, in characters.
pub const MAX_BODY_CHARS: usize = 1600;

/// Most media items of one MMS.
pub const MAX_MEDIA: usize = 10;

/// Why a webhook could not be read. Never carries parameter values.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebhookError {
    /// More parameters than [`MAX_PARAMS`].
    TooManyParams,
    /// A required parameter is missing or empty; names it.
    Missing(&'static str),
    /// A parameter has an impossible value; names it.
    Invalid(&'static str),
}

impl std::fmt::Display for WebhookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooManyParams => write!(f, "more than {MAX_PARAMS} form parameters"),
            Self::Missing(n) => write!(f, "missing parameter {n}"),
            Self::Invalid(n) => write!(f, "invalid parameter {n}"),
        }
    }
}

impl std::error::Error for WebhookError {}

/// Decodes an `application/x-www-form-urlencoded` body into its pairs, in
/// order, refusing more than [`MAX_PARAMS`].
pub fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, WebhookError> {
    let mut out = Vec::new();
    for (k, v) in form_urlencoded::parse(body) {
        if out.len() >= MAX_PARAMS {
            return Err(WebhookError::TooManyParams);
        }
        out.push((k.into_owned(), v.into_owned()));
    }
    Ok(out)
}

fn mac(auth_token: &[u8], url: &str, params: &[(String, String)]) -> HmacSha1 {
    let mut mac = match HmacSha1::new_from_slice(auth_token) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC-SHA1 takes keys of any length"),
    };
    mac.update(url.as_bytes());
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // Names in code-point order; a repeated name contributes each value, sorted.
    sorted.sort();
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    mac
}

/// The signature Twilio sends for a form POST of `params` to `url`.
pub fn signature(auth_token: &[u8], url: &str, params: &[(String, String)]) -> String {
    B64.encode(mac(auth_token, url, params).finalize().into_bytes())
}

/// Splits `scheme://authority/rest` into its parts.
fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, tail) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    Some((scheme, authority, tail))
}

/// The URL as given, with the default port removed, and with it added: the
/// three spellings Twilio may have signed.
pub fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    let Some((scheme, authority, tail)) = split_url(url) else {
        return out;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return out,
    };
    // Userinfo (user:pass@) stays as it is; only the host:port part changes.
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        // An IPv6 literal without port ends in ']'.
        Some((h, p)) if !p.contains(']') => (h, Some(p)),
        _ => (hostport, None),
    };
    match port {
        Some(p) if p == default_port => {
            out.push(format!("{scheme}://{userinfo}{host}{tail}"));
        }
        Some(_) => {}
        None => out.push(format!("{scheme}://{userinfo}{host}:{default_port}{tail}")),
    }
    out
}

/// Checks `header` against the signature of `params` posted to `url`, in
/// constant time, accepting the URL with or without its default port.
pub fn validate(
    auth_token: &[u8],
    url: &str,
    params: &[(String, String)],
    header: Option<&str>,
) -> bool {
    let Some(given) = header.and_then(|h| B64.decode(h.trim()).ok()) else {
        return false;
    };
    let mut ok = subtle::Choice::from(0);
    for candidate in url_variants(url) {
        let expected = mac(auth_token, &candidate, params).finalize().into_bytes();
        ok |= expected.as_slice().ct_eq(given.as_slice());
    }
    bool::from(ok)
}

fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn required<'a>(
    params: &'a [(String, String)],
    name: &'static str,
) -> Result<&'a str, WebhookError> {
    match get(params, name) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(WebhookError::Missing(name)),
    }
}

/// One media item of an inbound MMS.
#[derive(Clone, PartialEq, Eq)]
pub struct Media {
    /// `MediaUrlN`: where Twilio holds the file.
    pub url: String,
    /// `MediaContentTypeN`.
    pub content_type: Option<String>,
}

impl std::fmt::Debug for Media {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A media URL can reveal content; keep it out of debug output.
        write!(f, "Media {{ <url redacted>, {:?} }}", self.content_type)
    }
}

/// An inbound SMS or MMS.
#[derive(Clone, PartialEq, Eq)]
pub struct Inbound {
    /// `MessageSid` (falls back to `SmsMessageSid` / `SmsSid`).
    pub message_sid: String,
    /// `AccountSid`.
    pub account_sid: Option<String>,
    /// `From`.
    pub from: String,
    /// `To`.
    pub to: String,
    /// `Body` (may be empty for a picture-only MMS).
    pub body: String,
    /// `MediaUrlN` / `MediaContentTypeN` for N in `0..NumMedia`.
    pub media: Vec<Media>,
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbound")
            .field("message_sid", &self.message_sid)
            .field(
                "body",
                &format_args!("<{} chars>", self.body.chars().count()),
            )
            .field("media", &self.media.len())
            .finish_non_exhaustive()
    }
}

fn message_sid(params: &[(String, String)]) -> Result<String, WebhookError> {
    let sid = ["MessageSid", "SmsMessageSid", "SmsSid"]
        .iter()
        .find_map(|n| get(params, n).filter(|v| !v.is_empty()))
        .ok_or(WebhookError::Missing("MessageSid"))?;
    if sid.len() > 64 || !sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(WebhookError::Invalid("MessageSid"));
    }
    Ok(sid.to_string())
}

impl Inbound {
    /// Reads an inbound message webhook's parameters.
    pub fn from_params(params: &[(String, String)]) -> Result<Self, WebhookError> {
        let body = get(params, "Body").unwrap_or_default();
        if body.chars().count() > MAX_BODY_CHARS {
            return Err(WebhookError::Invalid("Body"));
        }
        let num_media: usize = match get(params, "NumMedia") {
            None | Some("") => 0,
            Some(n) => n.parse().map_err(|_| WebhookError::Invalid("NumMedia"))?,
        };
        if num_media > MAX_MEDIA {
            return Err(WebhookError::Invalid("NumMedia"));
        }
        let mut media = Vec::with_capacity(num_media);
        for i in 0..num_media {
            let url = get(params, &format!("MediaUrl{i}"))
                .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
                .ok_or(WebhookError::Invalid("MediaUrlN"))?;
            media.push(Media {
                url: url.to_string(),
                content_type: get(params, &format!("MediaContentType{i}"))
                    .filter(|c| !c.is_empty() && c.len() <= 128)
                    .map(str::to_string),
            });
        }
        Ok(Self {
            message_sid: message_sid(params)?,
            account_sid: get(params, "AccountSid").map(str::to_string),
            from: required(params, "From")?.to_string(),
            to: required(params, "To")?.to_string(),
            body: body.to_string(),
            media,
        })
    }
}

/// A status callback of an outbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCallback {
    /// `MessageSid`: the `sid` the REST API answered with.
    pub message_sid: String,
    /// `MessageStatus` (`SmsStatus` on older callbacks).
    pub status: String,
    /// `ErrorCode`, when the message failed.
    pub error_code: Option<u32>,
}

impl StatusCallback {
    /// Reads a status callback's parameters.
    pub fn from_params(params: &[(String, String)]) -> Result<Self, WebhookError> {
        let status = get(params, "MessageStatus")
            .or_else(|| get(params, "SmsStatus"))
            .filter(|s| !s.is_empty())
            .ok_or(WebhookError::Missing("MessageStatus"))?;
        if status.len() > 32 || !status.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(WebhookError::Invalid("MessageStatus"));
        }
        let error_code = match get(params, "ErrorCode") {
            None | Some("") => None,
            Some(c) => Some(c.parse().map_err(|_| WebhookError::Invalid("ErrorCode"))?),
        };
        Ok(Self {
            message_sid: message_sid(params)?,
            status: status.to_string(),
            error_code,
        })
    }

    /// The gateway status this callback moves the message to: `sent`,
    /// `delivered`, `failed`, or `None` for intermediate states (`queued`,
    /// `sending`, `accepted`, …) that change nothing.
    pub fn gateway_status(&self) -> Option<&'static str> {
        match self.status.as_str() {
            "sent" => Some("sent"),
            "delivered" | "read" => Some("delivered"),
            "failed" | "undelivered" | "canceled" => Some("failed"),
            _ => None,
        }
    }
}

/// The empty TwiML answer to an inbound message: "received, no reply".
pub const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>";

/// One `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` request.
#[derive(Clone)]
pub struct SendRequest<'a> {
    /// `To` (E.164).
    pub to: &'a str,
    /// `From`; absent when a Messaging Service picks the sender.
    pub from: Option<&'a str>,
    /// `MessagingServiceSid`.
    pub messaging_service_sid: Option<&'a str>,
    /// `Body`.
    pub body: &'a str,
    /// `MediaUrl`, repeated.
    pub media_urls: &'a [String],
    /// `StatusCallback`: where Twilio posts status changes.
    pub status_callback: Option<&'a str>,
    /// `ValidityPeriod` in seconds (Twilio accepts 1..=36000).
    pub validity_period: Option<u32>,
}

impl SendRequest<'_> {
    /// The path of the Messages resource under the API base URL.
    pub fn path(account_sid: &str) -> String {
        format!("/2010-04-01/Accounts/{account_sid}/Messages.json")
    }

    /// The form-encoded body.
    pub fn encode(&self) -> String {
        let mut f = form_urlencoded::Serializer::new(String::new());
        f.append_pair("To", self.to);
        if let Some(from) = self.from {
            f.append_pair("From", from);
        }
        if let Some(ms) = self.messaging_service_sid {
            f.append_pair("MessagingServiceSid", ms);
        }
        f.append_pair("Body", self.body);
        for m in self.media_urls {
            f.append_pair("MediaUrl", m);
        }
        if let Some(cb) = self.status_callback {
            f.append_pair("StatusCallback", cb);
        }
        if let Some(v) = self.validity_period {
            f.append_pair("ValidityPeriod", &v.clamp(1, 36_000).to_string());
        }
        f.finish()
    }
}

/// The parts of the Message resource the gateway reads.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct MessageResource {
    /// `SM…` / `MM…`.
    pub sid: String,
    /// Initial status (`queued`, `accepted`, …).
    #[serde(default)]
    pub status: Option<String>,
}

/// A Twilio error body, legacy `{code, message, more_info, status}` or
/// RFC 9457 `{type, title, status, code, detail}`: both carry `code`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
pub struct ErrorBody {
    /// Twilio error code (e.g. 21211).
    #[serde(default)]
    pub code: Option<u32>,
}

/// What a failed send means for the next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Worth retrying later (throttling, Twilio trouble, a fixable account problem).
    Transient,
    /// Retrying cannot help (invalid or unreachable recipient, opted out).
    Permanent,
}

/// Classifies a non-2xx answer by HTTP status and Twilio error code.
pub fn classify(http_status: u16, code: Option<u32>) -> Failure {
    match code {
        // Too many requests; queue overflow; Twilio internal / unavailable.
        Some(20429 | 30001 | 20500 | 20503) => return Failure::Transient,
        // Authentication / account suspended: the operator can fix this, and
        // messages must not be lost meanwhile; the retry limit still applies.
        Some(20003 | 20005) => return Failure::Transient,
        // Invalid To / From, not SMS-capable, region not enabled, unsubscribed
        // recipient, blocked as SMS pumping, body too long.
        Some(
            21211 | 21212 | 21408 | 21606 | 21610 | 21612 | 21614 | 21617 | 21660 | 30450 | 30007,
        ) => return Failure::Permanent,
        _ => {}
    }
    if http_status == 429 || http_status == 408 || http_status >= 500 {
        Failure::Transient
    } else {
        Failure::Permanent
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The worked example of Twilio's security page (auth token 12345);
    /// the value was computed independently with Python's `hmac`.
    #[test]
    fn documented_example() {
        let params = p(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let sig = signature(b"12345", url, &params);
        assert_eq!(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(validate(b"12345", url, &params, Some(&sig)));
        // Port variants of the same URL validate too.
        assert!(validate(
            b"12345",
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            &params,
            Some(&sig)
        ));
        assert!(!validate(b"12346", url, &params, Some(&sig)));
        assert!(!validate(b"12345", url, &params[1..], Some(&sig)));
        assert!(!validate(b"12345", url, &params, None));
        assert!(!validate(b"12345", url, &params, Some("!!not base64")));
    }

    #[test]
    fn url_variants_add_and_strip_default_ports() {
        assert_eq!(
            url_variants("https://h.example/x?a=1"),
            ["https://h.example/x?a=1", "https://h.example:443/x?a=1"]
        );
        assert_eq!(
            url_variants("http://u:p@h.example:80/x"),
            ["http://u:p@h.example:80/x", "http://u:p@h.example/x"]
        );
        assert_eq!(url_variants("http://h:8080/x"), ["http://h:8080/x"]);
        assert_eq!(url_variants("nonsense"), ["nonsense"]);
    }

    #[test]
    fn repeated_names_sort_by_value() {
        let a = p(&[("B", "2"), ("A", "y"), ("A", "x")]);
        let b = p(&[("A", "x"), ("A", "y"), ("B", "2")]);
        assert_eq!(signature(b"t", "u", &a), signature(b"t", "u", &b));
    }

    #[test]
    fn inbound_mms_and_status() {
        let params = parse_form(
            b"MessageSid=MM123&From=%2B14155550100&To=%2B14155550101&Body=Hi+there&NumMedia=2\
              &MediaUrl0=https%3A%2F%2Fapi.twilio.com%2Fm0&MediaContentType0=image%2Fjpeg\
              &MediaUrl1=https%3A%2F%2Fapi.twilio.com%2Fm1",
        )
        .unwrap();
        let m = Inbound::from_params(&params).unwrap();
        assert_eq!(m.message_sid, "MM123");
        assert_eq!(m.from, "+14155550100");
        assert_eq!(m.body, "Hi there");
        assert_eq!(m.media.len(), 2);
        assert_eq!(m.media[0].content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(m.media[1].content_type, None);
        assert!(!format!("{m:?}").contains("Hi there"));

        let bad = parse_form(b"MessageSid=MM1&From=a&To=b&NumMedia=1").unwrap();
        assert_eq!(
            Inbound::from_params(&bad),
            Err(WebhookError::Invalid("MediaUrlN"))
        );
        let bad = parse_form(b"From=a&To=b").unwrap();
        assert_eq!(
            Inbound::from_params(&bad),
            Err(WebhookError::Missing("MessageSid"))
        );

        let s = StatusCallback::from_params(
            &parse_form(b"MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30003").unwrap(),
        )
        .unwrap();
        assert_eq!(s.gateway_status(), Some("failed"));
        assert_eq!(s.error_code, Some(30003));
        let s = StatusCallback::from_params(
            &parse_form(b"MessageSid=SM1&MessageStatus=sending").unwrap(),
        )
        .unwrap();
        assert_eq!(s.gateway_status(), None);
    }

    #[test]
    fn too_many_params_refused() {
        let body = "a=1&".repeat(MAX_PARAMS + 1);
        assert_eq!(
            parse_form(body.as_bytes()),
            Err(WebhookError::TooManyParams)
        );
    }

    #[test]
    fn send_request_encoding_and_classification() {
        let media = vec!["https://x/y.png".to_string()];
        let r = SendRequest {
            to: "+14155550101",
            from: Some("+14155550199"),
            messaging_service_sid: None,
            body: "Hi & bye",
            media_urls: &media,
            status_callback: Some("https://gw/webhooks/twilio/status"),
            validity_period: Some(99_999),
        };
        let enc = r.encode();
        let back = parse_form(enc.as_bytes()).unwrap();
        assert_eq!(
            back,
            p(&[
                ("To", "+14155550101"),
                ("From", "+14155550199"),
                ("Body", "Hi & bye"),
                ("MediaUrl", "https://x/y.png"),
                ("StatusCallback", "https://gw/webhooks/twilio/status"),
                ("ValidityPeriod", "36000"),
            ])
        );
        assert_eq!(classify(429, Some(20429)), Failure::Transient);
        assert_eq!(classify(400, Some(21211)), Failure::Permanent);
        assert_eq!(classify(400, Some(21610)), Failure::Permanent);
        assert_eq!(classify(503, None), Failure::Transient);
        assert_eq!(classify(400, None), Failure::Permanent);
        assert_eq!(classify(401, Some(20003)), Failure::Transient);
    }
}
