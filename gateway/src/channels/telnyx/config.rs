//! `[telnyx]`: Telnyx Messaging's section.

use serde::Deserialize;

use crate::core::secrets::SecretRef;

/// Default environment variable of the Telnyx API key.
pub const TELNYX_KEY_ENV: &str = "GATEWAY_TELNYX_API_KEY";

fn default_telnyx_api() -> String {
    "https://api.telnyx.com".into()
}

/// Telnyx Messaging (API v2).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelnyxConfig {
    /// REST API base URL (tests point it at a mock).
    #[serde(default = "default_telnyx_api")]
    pub api_base: String,
    /// The account's webhook public key (base64 Ed25519, Mission Control →
    /// Keys & Credentials → Public Key). Public, so it may sit in the file.
    pub public_key: String,
    /// Sender used when a message names none.
    #[serde(default)]
    pub from: Option<String>,
    /// Messaging profile id sent with each message.
    #[serde(default)]
    pub messaging_profile_id: Option<String>,
    /// Where Telnyx sends delivery-status webhooks for outbound messages,
    /// normally `https://<gateway>/webhooks/telnyx`; absent means the
    /// messaging profile's webhook URL.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// The API key (default env `GATEWAY_TELNYX_API_KEY`).
    #[serde(flatten)]
    pub api_key: SecretRef,
}

impl TelnyxConfig {
    /// Semantic checks, appended to `problems`.
    pub fn validate(&self, problems: &mut Vec<String>) {
        if !(self.api_base.starts_with("http://") || self.api_base.starts_with("https://")) {
            problems.push("telnyx.api_base must be an http(s) URL".into());
        }
        if adapters::telnyx::public_key(&self.public_key).is_none() {
            problems.push("telnyx.public_key is not a base64 Ed25519 public key".into());
        }
    }
}
