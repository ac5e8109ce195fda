//! Carrier adapters of the gateway: Twilio, Telnyx and SMS Gateway for
//! Android phones. Their configuration, the secrets resolved at start, the
//! routes they add, and the start-up registration of the phones' webhooks.
//!
//! Wire formats live in `adapters::{twilio, telnyx, android_relay}`; the HTTP
//! handlers in `http::webhooks::{twilio, telnyx, android}`; the senders in
//! `routes::{twilio, telnyx, android}`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, SecretRef};
use crate::error::{Error, Result};
use crate::routes::Routes;
use crate::state::AppState;

/// Default environment variable of the Twilio auth token.
pub const TWILIO_TOKEN_ENV: &str = "GATEWAY_TWILIO_AUTH_TOKEN";
/// Default environment variable of the Telnyx API key.
pub const TELNYX_KEY_ENV: &str = "GATEWAY_TELNYX_API_KEY";

fn default_twilio_api() -> String {
    "https://api.twilio.com".into()
}
fn default_telnyx_api() -> String {
    "https://api.telnyx.com".into()
}
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

    fn env(&self, what: &str) -> String {
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

/// Semantic checks of the carrier sections, appended to `problems`.
pub fn validate(cfg: &Config, problems: &mut Vec<String>) {
    if let Some(t) = &cfg.twilio {
        if !is_http(&t.api_base) {
            problems.push("twilio.api_base must be an http(s) URL".into());
        }
        if !is_http(&t.public_url) {
            problems.push("twilio.public_url must be an http(s) URL".into());
        }
        if t.account_sid.is_empty() || !t.account_sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            problems.push("twilio.account_sid must be letters and digits".into());
        }
    }
    if let Some(t) = &cfg.telnyx {
        if !is_http(&t.api_base) {
            problems.push("telnyx.api_base must be an http(s) URL".into());
        }
        if adapters::telnyx::public_key(&t.public_key).is_none() {
            problems.push("telnyx.public_key is not a base64 Ed25519 public key".into());
        }
    }
    let mut names = std::collections::HashSet::new();
    for (i, a) in cfg.android.iter().enumerate() {
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

/// Twilio's webhook-side settings.
pub struct TwilioSide {
    /// Auth token (HMAC key).
    pub auth_token: Vec<u8>,
    /// Public base URL, without a trailing slash.
    pub public_url: String,
}

/// Telnyx's webhook-side settings.
pub struct TelnyxSide {
    /// The account's webhook verification key.
    pub key: adapters::telnyx::VerifyingKey,
}

/// One phone's webhook-side settings.
pub struct AndroidSide {
    /// The phone's configuration.
    pub config: AndroidRelayConfig,
    /// HMAC key of `X-Signature`.
    pub signing_key: Vec<u8>,
    /// Encryption passphrase, when configured.
    pub passphrase: Option<String>,
    /// Basic-auth password.
    pub password: String,
}

/// Resolved carrier settings, shared by handlers and routes.
#[derive(Default)]
pub struct Carriers {
    /// Twilio, when configured.
    pub twilio: Option<TwilioSide>,
    /// Telnyx, when configured.
    pub telnyx: Option<TelnyxSide>,
    /// Phones by name.
    pub android: BTreeMap<String, Arc<AndroidSide>>,
}

impl std::fmt::Debug for Carriers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Carriers { <redacted> }")
    }
}

fn text_secret(bytes: Vec<u8>, what: &str) -> Result<String> {
    String::from_utf8(bytes).map_err(|_| Error::Config(format!("{what} is not UTF-8")))
}

impl Carriers {
    /// Resolves secrets and adds the carriers' routes to `routes`.
    pub fn build(config: &Config, http: &reqwest::Client, routes: &mut Routes) -> Result<Self> {
        let mut out = Self::default();
        if let Some(t) = &config.twilio {
            let token = t.auth_token.resolve(TWILIO_TOKEN_ENV)?.ok_or_else(|| {
                Error::Config(format!(
                    "[twilio] needs an auth token: set {TWILIO_TOKEN_ENV} or twilio.secret_env / secret_file"
                ))
            })?;
            let public_url = t.public_url.trim_end_matches('/').to_string();
            routes.add(
                crate::routes::twilio::NAME,
                Arc::new(crate::routes::twilio::TwilioRoute::new(
                    http.clone(),
                    t,
                    token.clone(),
                    &public_url,
                    config.sms.clone(),
                )),
            );
            out.twilio = Some(TwilioSide {
                auth_token: token,
                public_url,
            });
        }
        if let Some(t) = &config.telnyx {
            let key = t.api_key.resolve(TELNYX_KEY_ENV)?.ok_or_else(|| {
                Error::Config(format!(
                    "[telnyx] needs an API key: set {TELNYX_KEY_ENV} or telnyx.secret_env / secret_file"
                ))
            })?;
            let public = adapters::telnyx::public_key(&t.public_key).ok_or_else(|| {
                Error::Config("telnyx.public_key is not a base64 Ed25519 public key".into())
            })?;
            routes.add(
                crate::routes::telnyx::NAME,
                Arc::new(crate::routes::telnyx::TelnyxRoute::new(
                    http.clone(),
                    t,
                    text_secret(key, "the Telnyx API key")?,
                    config.sms.clone(),
                )),
            );
            out.telnyx = Some(TelnyxSide { key: public });
        }
        for a in &config.android {
            let password = a.password.resolve(&a.env("PASSWORD"))?.ok_or_else(|| {
                Error::Config(format!(
                    "android {:?} needs a password: set {} or password.secret_env / secret_file",
                    a.name,
                    a.env("PASSWORD")
                ))
            })?;
            let signing_key = a.signing_key.resolve(&a.env("SIGNING_KEY"))?.ok_or_else(|| {
                Error::Config(format!(
                    "android {:?} needs the webhook signing key: set {} or signing_key.secret_env / secret_file",
                    a.name,
                    a.env("SIGNING_KEY")
                ))
            })?;
            let passphrase = a
                .passphrase
                .resolve(&a.env("PASSPHRASE"))?
                .map(|p| text_secret(p, "the Android passphrase"))
                .transpose()?;
            let side = Arc::new(AndroidSide {
                config: a.clone(),
                signing_key,
                passphrase,
                password: text_secret(password, "the Android password")?,
            });
            routes.add(
                &a.route_name(),
                Arc::new(crate::routes::android::AndroidRoute::new(
                    http.clone(),
                    side.clone(),
                    config.sms.clone(),
                )),
            );
            out.android.insert(a.name.clone(), side);
        }
        Ok(out)
    }
}

/// Reads a response's status and (capped) body.
pub async fn read_answer(resp: reqwest::Response) -> (u16, Vec<u8>) {
    const MAX: usize = 64 * 1024;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    (status, if body.len() > MAX { Vec::new() } else { body })
}

/// Registers the gateway's webhooks with every phone that has a
/// `webhook_url`, listing first so restarts add nothing twice; retries with
/// backoff while a phone is offline, until `shutdown`.
pub async fn register_webhooks(state: AppState, shutdown: CancellationToken) {
    let mut tasks = tokio::task::JoinSet::new();
    for side in state.carriers.android.values() {
        let Some(url) = side.config.webhook_url.clone() else {
            continue;
        };
        let (side, http, shutdown) = (side.clone(), state.http.clone(), shutdown.clone());
        tasks.spawn(async move {
            let mut wait = Duration::from_millis(500);
            loop {
                match crate::routes::android::register(&http, &side, &url).await {
                    Ok(added) => {
                        tracing::info!(phone = %side.config.name, added, "relay webhooks registered");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(phone = %side.config.name, error = %e, "registering relay webhooks failed; will retry");
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = shutdown.cancelled() => return,
                }
                wait = (wait * 2).min(Duration::from_secs(60));
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}
