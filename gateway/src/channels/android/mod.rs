//! Android phones running SMS Gateway for Android (`[[android]]`): one
//! route `android:<name>` per phone (its local API, paced), one webhook
//! path per phone, and a task that registers the gateway's webhooks with
//! every phone that has a `webhook_url`. Wire formats are in
//! `adapters::android_relay`.

pub mod config;
pub mod route;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{BuildContext, Built, ChannelConfig};
use crate::core::error::{Error, Result};
use crate::core::secrets::text_secret;
use config::AndroidRelayConfig;

/// One phone's resolved settings, shared by its route and its webhook.
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

impl std::fmt::Debug for AndroidSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AndroidSide { <redacted> }")
    }
}

impl AndroidRelayConfig {
    /// Resolves this phone's secrets.
    fn side(&self) -> Result<AndroidSide> {
        let password = self
            .password
            .resolve(&self.env("PASSWORD"))?
            .ok_or_else(|| {
                Error::Config(format!(
                    "android {:?} needs a password: set {} or password.secret_env / secret_file",
                    self.name,
                    self.env("PASSWORD")
                ))
            })?;
        let signing_key = self
            .signing_key
            .resolve(&self.env("SIGNING_KEY"))?
            .ok_or_else(|| {
                Error::Config(format!(
                    "android {:?} needs the webhook signing key: set {} or signing_key.secret_env / secret_file",
                    self.name,
                    self.env("SIGNING_KEY")
                ))
            })?;
        let passphrase = self
            .passphrase
            .resolve(&self.env("PASSPHRASE"))?
            .map(|p| text_secret(p, "the Android passphrase"))
            .transpose()?;
        Ok(AndroidSide {
            config: self.clone(),
            signing_key,
            passphrase,
            password: text_secret(password, "the Android password")?,
        })
    }
}

/// Every configured phone (none is fine: the webhook path then answers
/// "no such relay").
impl ChannelConfig for [AndroidRelayConfig] {
    fn build(&self, ctx: &BuildContext<'_>) -> Result<Built> {
        let mut built = Built::default();
        let mut sides = BTreeMap::new();
        for a in self {
            let side = Arc::new(a.side()?);
            built.routes.push((
                a.route_name(),
                Arc::new(route::AndroidRoute::new(
                    ctx.http.clone(),
                    side.clone(),
                    ctx.sms.clone(),
                )),
            ));
            sides.insert(a.name.clone(), side);
        }
        let sides = Arc::new(sides);
        let window = ctx.signature_window_secs;
        let hook_sides = sides.clone();
        built.router(move |pipeline| {
            webhook::router(Arc::new(webhook::Hook {
                pipeline,
                phones: hook_sides,
                window,
            }))
        });
        // One task per phone, on the node holding the phone's lease.
        for side in sides.values() {
            built.physical.push(side.config.route_name());
            if side.config.webhook_url.is_none() {
                continue;
            }
            let (http, side) = (ctx.http.clone(), side.clone());
            built.task(move |pipeline, shutdown| async move {
                let route = side.config.route_name();
                crate::pipeline::lease::while_held(&pipeline, &route, &shutdown, |token| {
                    register_webhooks(http.clone(), side.clone(), token)
                })
                .await;
            });
        }
        Ok(built)
    }
}

/// Registers the gateway's webhooks with the phone (it has a
/// `webhook_url`), listing first so restarts add nothing twice; retries
/// with backoff while the phone is offline, until `shutdown`.
async fn register_webhooks(
    http: reqwest::Client,
    side: Arc<AndroidSide>,
    shutdown: CancellationToken,
) {
    let Some(url) = side.config.webhook_url.clone() else {
        return;
    };
    let mut wait = Duration::from_millis(500);
    loop {
        match route::register(&http, &side, &url).await {
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
}
