//! `[rbm]`: Google RCS Business Messaging's section.

use serde::Deserialize;

use crate::core::address::{self, Address};
use crate::core::secrets::SecretRef;

/// Name of the RBM route (and the adapter name of inbound RBM messages).
pub use crate::delivery::interwork::RCS_ROUTE as ROUTE;
/// Default environment variable holding the service-account key (JSON).
pub const SERVICE_ACCOUNT_ENV: &str = "GATEWAY_RBM_SERVICE_ACCOUNT";
/// Default environment variable holding the webhook client token.
pub const CLIENT_TOKEN_ENV: &str = "GATEWAY_RBM_CLIENT_TOKEN";

fn default_api_base() -> String {
    adapters::rcs::rbm::DEFAULT_API_BASE.into()
}
const fn default_capability_ttl_secs() -> u64 {
    3600
}
const fn default_fallback_secs() -> u64 {
    60
}
/// Most SMS segments the rendering of rich content may take, by default.
pub const fn default_sms_segment_budget() -> usize {
    4
}
const fn default_suggestion_ttl_secs() -> u64 {
    24 * 3600
}
const fn default_capability_timeout_ms() -> u64 {
    3000
}

/// `[rbm]`: Google RCS Business Messaging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RbmConfig {
    /// The RBM agent id (`my-agent@rbm.goog` or the bare id).
    pub agent_id: String,
    /// The business's own number or sender id: the sender of outbound RCS
    /// messages that name none (their SMS fallback then sends from the SMS
    /// route's default), and the `to` of inbound RBM messages (the private
    /// side's identity for this agent).
    pub from: String,
    /// REST API base URL (tests point it at a mock).
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// OAuth2 token endpoint; absent means the key file's `token_uri`, else Google's.
    #[serde(default)]
    pub token_uri: Option<String>,
    /// The service-account key file (JSON) (default env `GATEWAY_RBM_SERVICE_ACCOUNT`
    /// holding the JSON itself; or `service_account = { secret_file = "…" }`).
    #[serde(default)]
    pub service_account: SecretRef,
    /// The webhook client token given to Google at setup (default env
    /// `GATEWAY_RBM_CLIENT_TOKEN`): checked in the handshake and the HMAC
    /// key of `X-Goog-Signature`.
    #[serde(default)]
    pub client_token: SecretRef,
    /// How long a capability answer (capable or not) is trusted.
    #[serde(default = "default_capability_ttl_secs")]
    pub capability_ttl_secs: u64,
    /// How long a capability check may take before the message goes SMS.
    #[serde(default = "default_capability_timeout_ms")]
    pub capability_timeout_ms: u64,
    /// `auto` messages not DELIVERED within this are revoked and sent as SMS.
    #[serde(default = "default_fallback_secs")]
    pub fallback_secs: u64,
    /// Most SMS segments the rendering of rich content may take.
    #[serde(default = "default_sms_segment_budget")]
    pub sms_segment_budget: usize,
    /// SMS route for fallbacks; absent means the routing rules decide.
    #[serde(default)]
    pub sms_route: Option<String>,
    /// RBM `ttl` of every agent message (RBM drops it undelivered after);
    /// a message's own `ttl_seconds` wins when shorter.
    #[serde(default)]
    pub ttl_secs: Option<u64>,
    /// How long the numbered suggestions of an SMS rendering stay open for
    /// a "reply with a number".
    #[serde(default = "default_suggestion_ttl_secs")]
    pub suggestion_ttl_secs: u64,
}

fn is_http(u: &str) -> bool {
    u.starts_with("http://") || u.starts_with("https://")
}

impl RbmConfig {
    /// Semantic checks of the section, appended to `problems`; `region`
    /// reads a national `from`.
    pub fn validate(&self, region: &str, problems: &mut Vec<String>) {
        if self.agent_id.is_empty()
            || self.agent_id.len() > 128
            || !self.agent_id.bytes().all(|b| b.is_ascii_graphic())
        {
            problems.push("rbm.agent_id must be 1-128 printable characters".into());
        }
        if !is_http(&self.api_base) {
            problems.push("rbm.api_base must be an http(s) URL".into());
        }
        if self.token_uri.as_deref().is_some_and(|u| !is_http(u)) {
            problems.push("rbm.token_uri must be an http(s) URL".into());
        }
        if self.fallback_secs == 0 {
            problems.push("rbm.fallback_secs must be at least 1".into());
        }
        if !(1..=10).contains(&self.sms_segment_budget) {
            problems.push("rbm.sms_segment_budget must be 1 to 10".into());
        }
        if Address::sender(&self.from, address::region(region), "rbm.from").is_err() {
            problems.push("rbm.from must be a phone number, short code or sender id".into());
        }
    }
}
