//! `[delivery]` (the queue and its retries), `[private_side]` (where
//! inbound envelopes go) and `[routing]` (which route sends which
//! outbound message).

use serde::Deserialize;

use crate::core::secrets::SecretRef;

/// Delivery queue settings, shared by every route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Attempts before a message is dead-lettered.
    pub max_attempts: u32,
    /// Age (seconds since accepted) after which a message is dead-lettered.
    pub max_age_secs: u64,
    /// First retry delay; doubles each attempt, with jitter.
    pub initial_backoff_ms: u64,
    /// Ceiling of the retry delay.
    pub max_backoff_secs: u64,
    /// Sends in flight at once per route.
    pub concurrency: usize,
    /// Timeout of one delivery HTTP request.
    pub request_timeout_secs: u64,
    /// Signature timestamp window for inbound webhooks, in seconds.
    pub signature_window_secs: i64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 15,
            max_age_secs: 2 * 24 * 3600,
            initial_backoff_ms: 1000,
            max_backoff_secs: 600,
            concurrency: 64,
            request_timeout_secs: 10,
            signature_window_secs: 300,
        }
    }
}

/// Default environment variable of the private-side webhook secret.
pub const PRIVATE_SECRET_ENV: &str = "GATEWAY_PRIVATE_SECRET";

/// The private side: where inbound envelopes are delivered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivateSideConfig {
    /// URL each inbound envelope is POSTed to; absent means envelopes wait in the store.
    pub webhook_url: Option<String>,
    /// Public key (base64, 32 bytes X25519) used when the recipient has no registered identity.
    pub service_public_key: Option<String>,
    /// HMAC secret for the webhook (default env `GATEWAY_PRIVATE_SECRET`).
    #[serde(flatten)]
    pub secret: SecretRef,
    /// Envelopes per request at most; above 1 the webhook gets the batch
    /// form (see README "The generic HTTP adapter").
    pub batch_max: usize,
    /// How long a batch that is not full may wait for more envelopes.
    pub batch_linger_ms: u64,
}

impl Default for PrivateSideConfig {
    fn default() -> Self {
        Self {
            webhook_url: None,
            service_public_key: None,
            secret: SecretRef::default(),
            batch_max: 1,
            batch_linger_ms: 0,
        }
    }
}

impl PrivateSideConfig {
    /// Semantic checks, appended to `problems`.
    pub fn validate(&self, problems: &mut Vec<String>) {
        if let Some(u) = &self.webhook_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                problems.push("private_side.webhook_url must be an http(s) URL".to_string());
            }
        }
        if let Some(k) = &self.service_public_key {
            if crate::envelope::keys::parse_public_key(k).is_err() {
                problems.push(
                    "private_side.service_public_key is not a base64 X25519 public key".to_string(),
                );
            }
        }
        super::batch::validate(
            "private_side",
            self.batch_max,
            self.batch_linger_ms,
            problems,
        );
    }
}

impl DeliveryConfig {
    /// Semantic checks, appended to `problems`.
    pub fn validate(&self, problems: &mut Vec<String>) {
        if self.concurrency == 0 {
            problems.push("delivery.concurrency must be at least 1".to_string());
        }
        if self.max_attempts == 0 {
            problems.push("delivery.max_attempts must be at least 1".to_string());
        }
    }
}

/// Routing rules, tried in order; the first that matches picks the route.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// Route for messages no rule matches; absent means the first configured route.
    pub default: Option<String>,
    /// Ordered rules.
    pub rules: Vec<RouteRule>,
}

/// One routing rule. Every condition given must hold; a rule with no
/// condition matches everything.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// Destination number prefix in E.164, e.g. `+44` or `+1415`.
    #[serde(default)]
    pub to_prefix: Option<String>,
    /// Destination country (ISO 3166 alpha-2), e.g. `GB`.
    #[serde(default)]
    pub to_country: Option<String>,
    /// Sender, exactly as normalised (E.164, short code or alphanumeric id).
    #[serde(default)]
    pub from: Option<String>,
    /// The route to use.
    pub route: String,
}

impl RoutingConfig {
    /// Semantic checks, appended to `problems`.
    pub fn validate(&self, problems: &mut Vec<String>) {
        for (i, r) in self.rules.iter().enumerate() {
            if let Some(p) = &r.to_prefix {
                if !p.starts_with('+') || !p[1..].bytes().all(|b| b.is_ascii_digit()) {
                    problems.push(format!("routing.rules[{i}].to_prefix must be + and digits"));
                }
            }
            if let Some(c) = &r.to_country {
                if c.parse::<phonenumber::country::Id>().is_err() {
                    problems.push(format!(
                        "routing.rules[{i}].to_country {c:?} is not an ISO 3166 region"
                    ));
                }
            }
        }
    }
}
