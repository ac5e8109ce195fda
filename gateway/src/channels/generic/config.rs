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
    /// Messages per request at most; above 1 the route sends the batch form
    /// (the SMSC must speak it, see README "The generic HTTP adapter").
    #[serde(default = "one")]
    pub batch_max: usize,
    /// How long a batch that is not full may wait for more messages.
    #[serde(default)]
    pub batch_linger_ms: u64,
}

const fn one() -> usize {
    1
}

impl GenericConfig {
    /// Semantic checks, appended to `problems`.
    pub fn validate(&self, problems: &mut Vec<String>) {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            problems.push("generic.url must be an http(s) URL".to_string());
        }
        crate::delivery::batch::validate("generic", self.batch_max, self.batch_linger_ms, problems);
    }
}
