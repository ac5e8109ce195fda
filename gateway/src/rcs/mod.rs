//! RCS in the gateway: Google RCS Business Messaging (RBM) as a route, the
//! per-recipient choice between RCS and SMS, the durable SMS fallback, and
//! the interworking of RCS content with SMS routes.
//!
//! Wire formats are in `adapters::rcs` (sans-IO); this module does the I/O
//! around them: the OAuth2 token ([`token`]), the RBM REST calls
//! ([`route`]), the fallback timer ([`fallback`]), and the webhook
//! (`http::webhooks::rbm`).
//!
//! Channel choice, per message, when it is accepted:
//! * `sms`: never RCS; RCS content goes out as its SMS rendering;
//! * `rcs`: RBM only, never SMS; refused at once (400) when the capability
//!   check says the recipient cannot receive it;
//! * `auto` (the default): RBM when the recipient is capable of what the
//!   message needs (cached capability check), else SMS. An RCS message that
//!   is not DELIVERED within `fallback_secs` is revoked and its SMS
//!   rendering queued on the SMS route, exactly once; the timer is a row in
//!   `rcs_fallback`, written in the same transaction as the message, so it
//!   survives a restart.
//!
//! What is kept in memory only: the capability cache (a restart re-asks
//! RBM) and the numbered suggestions of SMS renderings still open for a
//! "reply 2" (postback data is content, and must not sit in a clear
//! column; a restart forgets them, and a later "2" goes through as text).

pub mod fallback;
pub mod route;
pub mod token;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adapters::rcs::RcsMessage;
use adapters::rcs::render::{Numbered, RenderOptions};

use crate::channels::rbm::config::default_sms_segment_budget;
pub use crate::channels::rbm::config::{CLIENT_TOKEN_ENV, ROUTE, RbmConfig, SERVICE_ACCOUNT_ENV};
use crate::config::Config;
use crate::core::error::{Error, Result};
use crate::delivery::route::Routes;
use crate::envelope::{Channel, Content, Header};
use crate::state::AppState;

/// Capability answers kept at most (then the cache starts afresh).
const CAPABILITY_CACHE_MAX: usize = 100_000;
/// Conversations with open suggestions kept at most.
const OPEN_SUGGESTIONS_MAX: usize = 100_000;

/// A capability answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capable {
    /// RCS with every feature the message needs.
    Yes,
    /// Not an RCS user, or lacking a feature.
    No,
    /// The check failed (RBM down, timeout): nothing is known.
    Unknown,
}

/// Recipient → (its RBM features, or `None` for "not an RCS user"; when asked).
type CapabilityCache = HashMap<String, (Option<Vec<String>>, Instant)>;
/// (local, remote) → the open numbered suggestions and when they expire.
type OpenSuggestions = HashMap<(String, String), (Vec<Numbered>, Instant)>;

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
    open: Mutex<OpenSuggestions>,
}

impl std::fmt::Debug for Rcs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rcs { <redacted> }")
    }
}

impl Rcs {
    /// Resolves secrets and adds the `rbm` route to `routes` (never as a
    /// default: SMS routing never picks it).
    pub fn build(
        config: &Config,
        http: &reqwest::Client,
        routes: &mut Routes,
    ) -> Result<Option<Arc<Self>>> {
        let Some(cfg) = &config.rbm else {
            return Ok(None);
        };
        let key = cfg.service_account.resolve(SERVICE_ACCOUNT_ENV)?.ok_or_else(|| {
            Error::Config(format!(
                "[rbm] needs the service-account key: set {SERVICE_ACCOUNT_ENV} or rbm.service_account.secret_env / secret_file"
            ))
        })?;
        let account = adapters::rcs::rbm::ServiceAccount::parse(&key)
            .map_err(|e| Error::Config(format!("rbm service account: {e}")))?;
        let client_token = cfg.client_token.resolve(CLIENT_TOKEN_ENV)?.ok_or_else(|| {
            Error::Config(format!(
                "[rbm] needs the webhook client token: set {CLIENT_TOKEN_ENV} or rbm.client_token.secret_env / secret_file"
            ))
        })?;
        if let Some(r) = &cfg.sms_route {
            if routes.get(r).is_none() {
                return Err(Error::Config(format!(
                    "rbm.sms_route names {r}, which is not configured"
                )));
            }
        }
        let token_uri = cfg
            .token_uri
            .clone()
            .or_else(|| account.token_uri.clone())
            .unwrap_or_else(|| adapters::rcs::rbm::DEFAULT_TOKEN_URI.to_string());
        let rcs = Arc::new(Self {
            api_base: cfg.api_base.trim_end_matches('/').to_string(),
            tokens: token::TokenSource::new(http.clone(), account, token_uri),
            client_token,
            http: http.clone(),
            capabilities: Mutex::new(HashMap::new()),
            open: Mutex::new(HashMap::new()),
            config: cfg.clone(),
        });
        routes.add_unrouted(ROUTE, Arc::new(route::RbmRoute::new(rcs.clone())));
        Ok(Some(rcs))
    }

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

    /// The rendering options of RCS content sent as SMS.
    pub fn render_options(&self, sms: &adapters::sms::SmsOptions) -> RenderOptions {
        RenderOptions {
            sms: sms.clone(),
            max_segments: self.config.sms_segment_budget,
        }
    }

    fn remember(&self, local: &str, remote: &str, open: Vec<Numbered>) {
        let Ok(mut m) = self.open.lock() else {
            return;
        };
        let key = (local.to_string(), remote.to_string());
        if open.is_empty() {
            m.remove(&key);
            return;
        }
        if m.len() >= OPEN_SUGGESTIONS_MAX {
            let now = Instant::now();
            m.retain(|_, (_, until)| *until > now);
            if m.len() >= OPEN_SUGGESTIONS_MAX {
                m.clear();
            }
        }
        let until = Instant::now() + Duration::from_secs(self.config.suggestion_ttl_secs);
        m.insert(key, (open, until));
    }

    /// Takes the open suggestion a reply names, closing the conversation's
    /// suggestions (RCS chips disappear once one is used, too).
    fn take_reply(&self, local: &str, remote: &str, reply: &str) -> Option<Numbered> {
        let mut m = self.open.lock().ok()?;
        let key = (local.to_string(), remote.to_string());
        let (list, until) = m.get(&key)?;
        if *until <= Instant::now() {
            m.remove(&key);
            return None;
        }
        let hit = adapters::rcs::render::reply_to_suggestion(reply, list)?.clone();
        m.remove(&key);
        Some(hit)
    }
}

/// The rendering options for RCS content sent as SMS when `[rbm]` is absent.
fn render_options(state: &AppState) -> RenderOptions {
    match &state.rcs {
        Some(r) => r.render_options(&state.config.sms),
        None => RenderOptions {
            sms: state.config.sms.clone(),
            max_segments: default_sms_segment_budget(),
        },
    }
}

/// The text `content` goes out as over SMS: RCS content's rendering, or the text.
pub fn sms_text<'a>(state: &AppState, content: &'a Content) -> Cow<'a, str> {
    match content {
        Content::Rcs { message } => {
            Cow::Owned(adapters::rcs::render::to_sms(message, &render_options(state)).text)
        }
        other => Cow::Borrowed(other.as_text()),
    }
}

/// What a message looks like to the route `route`: unchanged for RBM; for
/// an SMS route, RCS content becomes its SMS rendering (computed now from
/// the opened content, never stored) and a header sealed for RCS gets the
/// SMS segment count. The rendering's numbered suggestions are remembered
/// for the conversation so that a reply "2" maps back to a postback.
pub fn for_route<'a>(
    state: &AppState,
    route: &str,
    header: &'a Header,
    content: Content,
) -> (Cow<'a, Header>, Content) {
    if route == ROUTE {
        return (Cow::Borrowed(header), content);
    }
    let (content, text_changed) = match content {
        Content::Rcs { message } => {
            let r = adapters::rcs::render::to_sms(&message, &render_options(state));
            if let Some(rcs) = &state.rcs {
                let local = if header.from.is_empty() {
                    state
                        .routes
                        .get(route)
                        .and_then(|r| r.default_from())
                        .unwrap_or("")
                        .to_string()
                } else {
                    header.from.clone()
                };
                rcs.remember(&local, &header.to, r.suggestions);
            }
            (Content::text(r.text), true)
        }
        other => (other, false),
    };
    if header.channel == Channel::Sms && !text_changed {
        return (Cow::Borrowed(header), content);
    }
    let mut h = header.clone();
    let (segments, encoding) = crate::sms_plan::plan(content.as_text(), &state.config.sms);
    h.channel = Channel::Sms;
    h.segments = segments;
    h.encoding = encoding.to_string();
    (Cow::Owned(h), content)
}

/// An inbound SMS that is just the number of a suggestion still open in
/// this conversation becomes that suggestion's response (with its postback);
/// anything else is left alone.
pub fn map_sms_reply(
    state: &AppState,
    adapter: &str,
    from: &str,
    to: &str,
    content: Content,
) -> Content {
    let Some(rcs) = &state.rcs else {
        return content;
    };
    if adapter == ROUTE {
        return content;
    }
    let Content::Text { text, media } = content else {
        return content;
    };
    if !media.is_empty() || text.len() > 8 {
        return Content::Text { text, media };
    }
    match rcs.take_reply(to, from, &text) {
        Some(hit) => {
            tracing::debug!(
                adapter,
                number = hit.number,
                "SMS reply mapped to an open suggestion"
            );
            Content::RcsUser {
                message: adapters::rcs::UserMessage::SuggestionResponse {
                    text: hit.text,
                    postback: hit.postback,
                },
            }
        }
        None => Content::Text { text, media },
    }
}

/// The channel a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// RCS when capable, else SMS (with fallback).
    Auto,
    /// SMS only.
    Sms,
    /// RCS only.
    Rcs,
}

impl Requested {
    /// Parses the API's `channel`.
    pub fn parse(s: Option<&str>) -> Result<Self> {
        match s {
            None | Some("auto") => Ok(Self::Auto),
            Some("sms") => Ok(Self::Sms),
            Some("rcs") => Ok(Self::Rcs),
            Some(_) => Err(Error::invalid("channel", "must be auto, sms or rcs")),
        }
    }
}

/// The outcome of the channel choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The channel the message leaves on first.
    pub channel: Channel,
    /// For RCS under `auto`: the SMS route of the fallback and when it is
    /// due (Unix ms), if an SMS route exists.
    pub fallback: Option<(String, i64)>,
}

/// The RBM message a content is sent as, or why it cannot go over RCS.
pub fn as_rcs(content: &Content) -> std::result::Result<Cow<'_, RcsMessage>, String> {
    match content {
        Content::Rcs { message } => Ok(Cow::Borrowed(message)),
        Content::Text { text, media } if media.is_empty() => RcsMessage::text(text.clone())
            .map(Cow::Owned)
            .map_err(|e| e.to_string()),
        Content::Text { .. } => Err("media references cannot go over RBM".into()),
        Content::SmsPart { .. } | Content::Data { .. } | Content::RcsUser { .. } => {
            Err("this content cannot be sent by an agent".into())
        }
    }
}

/// Chooses the channel of an outbound message to `to` from `from`.
pub async fn decide(
    state: &AppState,
    requested: Requested,
    content: &Content,
    from: &str,
    to: &str,
    now: i64,
) -> Result<Decision> {
    let sms = Decision {
        channel: Channel::Sms,
        fallback: None,
    };
    let rcs = match (requested, &state.rcs) {
        (Requested::Sms, _) => return Ok(sms),
        (Requested::Auto, None) => return Ok(sms),
        (Requested::Rcs, None) => {
            return Err(Error::invalid(
                "channel",
                "RCS (RBM) is not configured on this gateway",
            ));
        }
        (_, Some(r)) => r,
    };
    let message = match as_rcs(content) {
        Ok(m) => m,
        Err(why) if requested == Requested::Rcs => {
            return Err(Error::invalid(
                "channel",
                format!("cannot send over RCS: {why}"),
            ));
        }
        Err(_) => return Ok(sms),
    };
    let capable = rcs.capable(to, &message.required_features()).await;
    match (requested, capable) {
        (Requested::Rcs, Capable::No) => Err(Error::invalid(
            "to",
            "the recipient cannot receive this over RCS (capability check); use channel auto or sms",
        )),
        // Unknown under `rcs`: try, delivery retries; nothing else was asked for.
        (Requested::Rcs, _) => Ok(Decision {
            channel: Channel::Rcs,
            fallback: None,
        }),
        (_, Capable::Yes) => {
            let route = rcs
                .config
                .sms_route
                .clone()
                .or_else(|| state.routes.choose(from, to).map(str::to_string));
            let due = now + (rcs.config.fallback_secs as i64) * 1000;
            Ok(Decision {
                channel: Channel::Rcs,
                fallback: route.map(|r| (r, due)),
            })
        }
        _ => Ok(sms),
    }
}

/// The channel column value.
pub fn channel_name(c: Channel) -> &'static str {
    match c {
        Channel::Sms => "sms",
        Channel::Rcs => "rcs",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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

    #[test]
    fn channels_parse() {
        assert_eq!(Requested::parse(None).unwrap(), Requested::Auto);
        assert_eq!(Requested::parse(Some("rcs")).unwrap(), Requested::Rcs);
        assert!(Requested::parse(Some("mms")).is_err());
        assert!(as_rcs(&Content::text("a".repeat(3073))).is_err());
        assert!(as_rcs(&Content::text("hi")).is_ok());
    }
}
