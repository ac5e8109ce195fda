//! Google RCS Business Messaging (`[rbm]`): the `rbm` route (agent
//! messages, [`route`]), the OAuth2 token ([`token`]), the per-recipient
//! capability check the pipeline chooses channels with (this module, as
//! the pipeline's [`RcsAgent`]), the durable SMS fallback ([`fallback`]),
//! and the webhook ([`webhook`]).
//!
//! Wire formats are in `adapters::rcs` (sans-IO). Kept in memory only: the
//! capability cache (a restart re-asks RBM).

pub mod config;
pub mod fallback;
pub mod route;
pub mod token;
pub mod webhook;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{BuildContext, Built, ChannelConfig};
use crate::core::BoxFuture;
use crate::core::error::{Error, Result};
use crate::pipeline::channel::{Capable, RcsAgent};
use config::{CLIENT_TOKEN_ENV, ROUTE, RbmConfig, SERVICE_ACCOUNT_ENV};

/// Capability answers kept at most (then the cache starts afresh).
const CAPABILITY_CACHE_MAX: usize = 100_000;

/// Recipient → (its RBM features, or `None` for "not an RCS user"; when asked).
type CapabilityCache = HashMap<String, (Option<Vec<String>>, Instant)>;

/// Resolved `[rbm]` state shared by the route, the webhook and the fallback task.
pub struct Rcs {
    /// The configuration.
    pub config: RbmConfig,
    /// Base URL without a trailing slash.
    pub api_base: String,
    /// Bearer tokens.
    pub tokens: token::TokenSource,
    /// Webhook client token.
    pub client_token: Vec<u8>,
    http: reqwest::Client,
    capabilities: Mutex<CapabilityCache>,
}

impl std::fmt::Debug for Rcs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rcs { <redacted> }")
    }
}

/// The webhook path, answered 404 when `[rbm]` is absent.
pub const PATHS: &[&str] = &["/webhooks/rbm"];

impl ChannelConfig for RbmConfig {
    /// The `rbm` route is never a routing default: RCS is chosen per
    /// recipient by the message's channel, not by rules.
    fn build(&self, ctx: &BuildContext<'_>) -> Result<Built> {
        let key = self.service_account.resolve(SERVICE_ACCOUNT_ENV)?.ok_or_else(|| {
            Error::Config(format!(
                "[rbm] needs the service-account key: set {SERVICE_ACCOUNT_ENV} or rbm.service_account.secret_env / secret_file"
            ))
        })?;
        let account = adapters::rcs::rbm::ServiceAccount::parse(&key)
            .map_err(|e| Error::Config(format!("rbm service account: {e}")))?;
        let client_token = self.client_token.resolve(CLIENT_TOKEN_ENV)?.ok_or_else(|| {
            Error::Config(format!(
                "[rbm] needs the webhook client token: set {CLIENT_TOKEN_ENV} or rbm.client_token.secret_env / secret_file"
            ))
        })?;
        let token_uri = self
            .token_uri
            .clone()
            .or_else(|| account.token_uri.clone())
            .unwrap_or_else(|| adapters::rcs::rbm::DEFAULT_TOKEN_URI.to_string());
        let rcs = Arc::new(Rcs {
            api_base: self.api_base.trim_end_matches('/').to_string(),
            tokens: token::TokenSource::new(ctx.http.clone(), account, token_uri),
            client_token,
            http: ctx.http.clone(),
            capabilities: Mutex::new(HashMap::new()),
            config: self.clone(),
        });
        let mut built = Built::default();
        built.unrouted.push((
            ROUTE.to_string(),
            Arc::new(route::RbmRoute::new(rcs.clone())),
        ));
        built.rcs = Some(rcs.clone());
        let hook = rcs.clone();
        built.router(move |pipeline| {
            webhook::router(Arc::new(webhook::Hook {
                pipeline,
                rcs: hook,
            }))
        });
        built.task(move |pipeline, shutdown| fallback::run(pipeline, rcs, shutdown));
        Ok(built)
    }
}

impl RcsAgent for Rcs {
    fn capable<'a>(&'a self, to: &'a str, required: &'a [&'a str]) -> BoxFuture<'a, Capable> {
        Box::pin(self.capable(to, required))
    }

    fn sms_route(&self) -> Option<&str> {
        self.config.sms_route.as_deref()
    }

    fn fallback_secs(&self) -> u64 {
        self.config.fallback_secs
    }
}

impl Rcs {
    /// Whether `to` can receive a message needing `required` RCS features,
    /// from the cache or by asking RBM (`GET .../capabilities`).
    pub async fn capable(&self, to: &str, required: &[&str]) -> Capable {
        let ttl = Duration::from_secs(self.config.capability_ttl_secs);
        let cached = self.capabilities.lock().ok().and_then(|c| {
            c.get(to)
                .filter(|(_, at)| at.elapsed() < ttl)
                .map(|(f, _)| f.clone())
        });
        let features = match cached {
            Some(f) => f,
            None => match self.ask_capabilities(to).await {
                Ok(f) => {
                    if let Ok(mut c) = self.capabilities.lock() {
                        if c.len() >= CAPABILITY_CACHE_MAX {
                            c.clear();
                        }
                        c.insert(to.to_string(), (f.clone(), Instant::now()));
                    }
                    f
                }
                Err(e) => {
                    tracing::warn!(error = %e, "RBM capability check failed; treating the recipient as unknown");
                    return Capable::Unknown;
                }
            },
        };
        match features {
            None => Capable::No,
            Some(f) => {
                let caps = adapters::rcs::rbm::Capabilities { features: f };
                if caps.supports(required) {
                    Capable::Yes
                } else {
                    Capable::No
                }
            }
        }
    }

    async fn ask_capabilities(&self, to: &str) -> Result<Option<Vec<String>>> {
        let path = adapters::rcs::rbm::capabilities_path(
            to,
            &self.config.agent_id,
            &uuid::Uuid::now_v7().to_string(),
        )
        .map_err(|e| Error::invalid("to", e.to_string()))?;
        let token = self.tokens.token().await?;
        let resp = self
            .http
            .get(format!("{}{path}", self.api_base))
            .bearer_auth(&token)
            .timeout(Duration::from_millis(self.config.capability_timeout_ms))
            .send()
            .await
            .map_err(|e| Error::Transient(crate::delivery::http::describe(&e)))?;
        let (status, body) = crate::delivery::http::read_answer(resp).await;
        match status {
            200 => adapters::rcs::rbm::Capabilities::parse(&body)
                .map(|c| Some(c.features))
                .map_err(|e| Error::Transient(e.to_string())),
            404 => Ok(None),
            401 => {
                self.tokens.invalidate().await;
                Err(Error::Transient("RBM capability check: HTTP 401".into()))
            }
            s => Err(Error::Transient(format!("RBM capability check: HTTP {s}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::app::config::Config;

    #[test]
    fn rbm_config_defaults_and_checks() {
        let c =
            Config::from_toml("[rbm]\nagent_id = \"a@rbm.goog\"\nfrom = \"+14155550199\"").unwrap();
        c.validate().unwrap();
        let r = c.rbm.as_ref().unwrap();
        assert_eq!(
            (r.fallback_secs, r.sms_segment_budget, r.capability_ttl_secs),
            (60, 4, 3600)
        );
        assert_eq!(r.api_base, adapters::rcs::rbm::DEFAULT_API_BASE);
        let bad = Config::from_toml(
            "[rbm]\nagent_id = \"\"\nfrom = \"not a sender!\"\napi_base = \"ftp://x\"\nfallback_secs = 0\n\
             sms_segment_budget = 11\n[routing]\ndefault = \"rbm\"",
        )
        .unwrap();
        let e = bad.validate().unwrap_err().to_string();
        for want in [
            "rbm.agent_id",
            "rbm.from",
            "rbm.api_base",
            "rbm.fallback_secs",
            "rbm.sms_segment_budget",
            "must not name the rbm route",
        ] {
            assert!(e.contains(want), "{want}: {e}");
        }
        let e = Config::from_toml("[rbm]\nagent_id = \"a\"\nfrom = \"+1\"\nfalback_secs = 1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("falback_secs"), "{e}");
    }
}
