//! `[twilio]`: Twilio Programmable Messaging's section.

use serde::Deserialize;

use crate::core::secrets::SecretRef;

/// Default environment variable of the Twilio auth token.
pub const TWILIO_TOKEN_ENV: &str = "GATEWAY_TWILIO_AUTH_TOKEN";

fn default_twilio_api() -> String {
    "https://api.twilio.com".into()
}
const fn yes() -> bool {
    true
}

/// Twilio Programmable Messaging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    /// Account SID (`AC…`): the REST API user and path.
    pub account_sid: String,
    /// REST API base URL (tests point it at a mock).
    #[serde(default = "default_twilio_api")]
    pub api_base: String,
    /// The public base URL Twilio calls the gateway at, e.g.
    /// `https://sms.example.com` (scheme and host as Twilio sees them, in
    /// front of any TLS-terminating proxy). The signature is computed over
    /// this plus the request path and query; `StatusCallback` points here.
    pub public_url: String,
    /// Sender used when a message names none.
    #[serde(default)]
    pub from: Option<String>,
    /// Messaging Service SID, sent instead of `From` when no sender is known.
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    /// Ask for status callbacks (`StatusCallback`); default true.
    #[serde(default = "yes")]
    pub status_callback: bool,
    /// The auth token: signs webhooks and authenticates REST calls
    /// (default env `GATEWAY_TWILIO_AUTH_TOKEN`).
    #[serde(flatten)]
    pub auth_token: SecretRef,
}

fn is_http(u: &str) -> bool {
    u.starts_with("http://") || u.starts_with("https://")
}

impl TwilioConfig {
    /// Semantic checks, appended to `problems`.
    pub fn validate(&self, problems: &mut Vec<String>) {
        if !is_http(&self.api_base) {
            problems.push("twilio.api_base must be an http(s) URL".into());
        }
        if !is_http(&self.public_url) {
            problems.push("twilio.public_url must be an http(s) URL".into());
        }
        if self.account_sid.is_empty()
            || !self.account_sid.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            problems.push("twilio.account_sid must be letters and digits".into());
        }
    }
}
