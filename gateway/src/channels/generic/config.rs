//! `[generic]`: the generic HTTP SMSC adapter's section.

use serde::Deserialize;

use crate::core::secrets::SecretRef;

/// Default environment variable of the generic adapter's secret.
pub const GENERIC_SECRET_ENV: &str = "GATEWAY_GENERIC_SECRET";

/// The generic HTTP SMSC adapter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericConfig {
    /// URL each outbound SMS is POSTed to.
    pub url: String,
    /// Sender used when a message names none.
    #[serde(default)]
    pub from: Option<String>,
    /// Shared HMAC secret for both directions (default env `GATEWAY_GENERIC_SECRET`).
    #[serde(flatten)]
    pub secret: SecretRef,
}

impl GenericConfig {
    /// Semantic checks, appended to `problems`.
    pub fn validate(&self, problems: &mut Vec<String>) {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            problems.push("generic.url must be an http(s) URL".to_string());
        }
    }
}
