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

use tokio_util::sync::CancellationToken;

use crate::channels::android::config::AndroidRelayConfig;
use crate::channels::telnyx::config::TELNYX_KEY_ENV;
use crate::channels::twilio::config::TWILIO_TOKEN_ENV;
use crate::config::Config;
use crate::core::error::{Error, Result};
use crate::core::secrets::text_secret;
use crate::delivery::route::Routes;
use crate::state::AppState;

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
                crate::channels::twilio::route::NAME,
                Arc::new(crate::channels::twilio::route::TwilioRoute::new(
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
                crate::channels::telnyx::route::NAME,
                Arc::new(crate::channels::telnyx::route::TelnyxRoute::new(
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
                Arc::new(crate::channels::android::route::AndroidRoute::new(
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
                match crate::channels::android::route::register(&http, &side, &url).await {
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
