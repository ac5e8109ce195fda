//! `[[android]]`: one phone running SMS Gateway for Android.

use serde::Deserialize;

use crate::core::secrets::SecretRef;

const fn yes() -> bool {
    true
}
const fn default_kdf_iterations() -> u32 {
    adapters::android_relay::DEFAULT_ITERATIONS
}
const fn default_segments_per_minute() -> u32 {
    // 0.4 segments/s: under Android's 30 segments/min/app with headroom.
    24
}
const fn default_burst() -> u32 {
    5
}
const fn default_per_hour() -> u32 {
    120
}
const fn default_max_pacing_wait_ms() -> u64 {
    15_000
}

/// One Android phone running SMS Gateway for Android in local-server mode.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AndroidRelayConfig {
    /// Name: the route is `android:<name>` and its webhooks arrive at
    /// `/webhooks/android/<name>`. Letters, digits, `-` and `_`.
    pub name: String,
    /// The phone's local API, e.g. `http://192.168.1.20:8080`.
    pub url: String,
    /// Basic-auth user shown in the app.
    pub username: String,
    /// Basic-auth password (default env `GATEWAY_ANDROID_<NAME>_PASSWORD`).
    #[serde(default)]
    pub password: SecretRef,
    /// Webhook signing key from the app's settings (default env
    /// `GATEWAY_ANDROID_<NAME>_SIGNING_KEY`).
    #[serde(default)]
    pub signing_key: SecretRef,
    /// End-to-end encryption passphrase (default env
    /// `GATEWAY_ANDROID_<NAME>_PASSPHRASE`); absent means no encryption.
    #[serde(default)]
    pub passphrase: SecretRef,
    /// The URL the phone should post webhooks to (this gateway's
    /// `/webhooks/android/<name>` as the phone reaches it). When set, the
    /// gateway registers its webhooks with the phone at start.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// The phone's own number: the sender of outbound messages and the
    /// recipient of inbound ones when the phone does not report it.
    #[serde(default)]
    pub from: Option<String>,
    /// SIM slot to send from (1-based); absent means the app's default.
    #[serde(default)]
    pub sim_number: Option<u8>,
    /// Seconds the phone keeps trying a message before giving up.
    #[serde(default)]
    pub ttl_secs: Option<u64>,
    /// Ask for delivery reports; default true.
    #[serde(default = "yes")]
    pub with_delivery_report: bool,
    /// PBKDF2 iterations for encryption (the app's default 75 000).
    #[serde(default = "default_kdf_iterations")]
    pub kdf_iterations: u32,
    /// Sustained sending rate, in segments per minute (default 24).
    #[serde(default = "default_segments_per_minute")]
    pub segments_per_minute: u32,
    /// Segments that may go out back to back (default 5).
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// Segments per rolling hour (default 120).
    #[serde(default = "default_per_hour")]
    pub per_hour: u32,
    /// Longest a send waits for its pacing slot before it is rescheduled.
    #[serde(default = "default_max_pacing_wait_ms")]
    pub max_pacing_wait_ms: u64,
}

impl AndroidRelayConfig {
    /// Name of this phone's route.
    pub fn route_name(&self) -> String {
        format!("android:{}", self.name)
    }

    /// The default environment variable of one of this phone's secrets
    /// (`PASSWORD`, `SIGNING_KEY`, `PASSPHRASE`).
    pub fn env(&self, what: &str) -> String {
        let n: String = self
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("GATEWAY_ANDROID_{n}_{what}")
    }
}

fn is_http(u: &str) -> bool {
    u.starts_with("http://") || u.starts_with("https://")
}

impl AndroidRelayConfig {
    /// Semantic checks of every `[[android]]` entry, appended to `problems`.
    pub fn validate_all(all: &[AndroidRelayConfig], problems: &mut Vec<String>) {
        let mut names = std::collections::HashSet::new();
        for (i, a) in all.iter().enumerate() {
            if a.name.is_empty()
                || a.name.len() > 32
                || !a
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                problems.push(format!(
                    "android[{i}].name must be 1-32 letters, digits, - or _"
                ));
            }
            if !names.insert(a.name.clone()) {
                problems.push(format!("android[{i}].name {:?} is used twice", a.name));
            }
            if !is_http(&a.url) {
                problems.push(format!("android[{i}].url must be an http(s) URL"));
            }
            if a.webhook_url.as_deref().is_some_and(|u| !is_http(u)) {
                problems.push(format!("android[{i}].webhook_url must be an http(s) URL"));
            }
            if a.sim_number == Some(0) {
                problems.push(format!("android[{i}].sim_number is 1-based"));
            }
            if a.kdf_iterations == 0 || a.kdf_iterations > adapters::android_relay::MAX_ITERATIONS {
                problems.push(format!("android[{i}].kdf_iterations is out of range"));
            }
        }
    }
}
