//! Outbound routes: the adapters that turn an opened outbound message into a
//! send to the phone network (a generic HTTP SMSC, a carrier REST API, a
//! modem, an Android relay).
//!
//! Each route implements the one-method [`Route`] trait (lettre's `Transport`
//! shape); the delivery worker owns retries, backoff and dead-lettering, so a
//! route only says what one attempt came to. Which route a message takes is
//! decided once, when it is accepted, by [`Routes::choose`].

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::config::{RouteRule, RoutingConfig};
use crate::envelope::{Content, Envelope, Header};

/// ISO region of an E.164 number, via `phonenumber`'s metadata.
fn country_of(e164: &str) -> Option<String> {
    crate::core::numbers::region_of(e164).map(|id| id.as_ref().to_string())
}

/// What a route gets for one attempt: the clear header, the envelope, and
/// (for routes that [open](Route::opens) it) the opened content.
pub struct OutboundSms<'a> {
    /// Message id.
    pub id: &'a str,
    /// `"<id>#<attempt>"`, stable across a crash before the attempt was recorded.
    pub attempt_id: &'a str,
    /// The route name it was sent to (a family's member: `smpp-client:<id>`).
    pub route: &'a str,
    /// The envelope header (from, to, segments, encoding), as rendered for
    /// this route.
    pub header: &'a Header,
    /// The plaintext, alive only for this attempt; `None` for routes that
    /// send the sealed envelope as it is.
    pub content: Option<&'a Content>,
    /// The sealed envelope.
    pub envelope: &'a Envelope,
}

impl OutboundSms<'_> {
    /// The opened content's text (empty when it was not opened).
    pub fn text(&self) -> &str {
        self.content.map(Content::as_text).unwrap_or_default()
    }

    /// The opened content's media references.
    pub fn media(&self) -> &[crate::envelope::MediaRef] {
        self.content.map(Content::media).unwrap_or_default()
    }

    /// The media references' URLs, as carrier send APIs take them.
    pub fn media_urls(&self) -> Vec<String> {
        self.media().iter().map(|m| m.url.clone()).collect()
    }

    /// The sender: the message's own `from`, else the route's default.
    pub fn from_or<'s>(&'s self, default: Option<&'s str>) -> Option<&'s str> {
        Some(self.header.from.as_str())
            .filter(|f| !f.is_empty())
            .or(default)
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Accepted by the far end.
    Accepted {
        /// `sent`, or `delivered` when the far end already knows.
        status: crate::store::MessageStatus,
        /// The far end's id, for status callbacks.
        carrier_id: Option<String>,
    },
    /// Failed in a way worth retrying (network, 5xx, throttling).
    Retry(String),
    /// Failed in a way that retrying cannot fix (invalid number, refused).
    Permanent(String),
}

/// Boxed future returned by [`Route::send`] (object-safe async).
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = SendOutcome> + Send + 'a>>;

/// Boxed future returned by [`Route::send_batch`]: one outcome per message,
/// in the order given.
pub type BatchFuture<'a> = Pin<Box<dyn Future<Output = Vec<SendOutcome>> + Send + 'a>>;

/// One outbound route.
pub trait Route: Send + Sync + 'static {
    /// Makes one send attempt. Must not log or return message text.
    fn send<'a>(&'a self, msg: OutboundSms<'a>) -> SendFuture<'a>;

    /// The sender this route uses when a message names none (for opt-out
    /// checks); `None` when the far end picks it.
    fn default_from(&self) -> Option<&str> {
        None
    }

    /// Whether the route needs the opened content (the worker opens the
    /// envelope with the edge key); the private side's route sends the
    /// sealed envelope as it is.
    fn opens(&self) -> bool {
        true
    }

    /// How many messages one request may carry, and how long the worker
    /// may wait to fill it (see [`super::batch`]); one message, no wait,
    /// unless the route's far end speaks a batch form.
    fn batching(&self) -> super::batch::Batching {
        super::batch::Batching::SINGLE
    }

    /// Sends several messages for the same route in one request, when
    /// [`Route::batching`] allows more than one. Answers one outcome per
    /// message, in order. The default sends them one after the other.
    fn send_batch<'a>(&'a self, msgs: Vec<OutboundSms<'a>>) -> BatchFuture<'a> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(msgs.len());
            for m in msgs {
                out.push(self.send(m).await);
            }
            out
        })
    }
}

/// The configured routes and the rules that pick one.
#[derive(Clone, Default)]
pub struct Routes {
    by_name: BTreeMap<String, Arc<dyn Route>>,
    /// Routes that serve every name with a prefix (`smpp-client:`).
    families: Vec<(String, Arc<dyn Route>)>,
    default: Option<String>,
    rules: Vec<RouteRule>,
}

impl Routes {
    /// Adds a route; the first one added is the default.
    pub fn add(&mut self, name: &str, route: Arc<dyn Route>) {
        if self.default.is_none() {
            self.default = Some(name.to_string());
        }
        self.by_name.insert(name.to_string(), route);
    }

    /// Adds a route that routing rules and the default never pick (RBM:
    /// RCS is chosen per recipient by the message's channel, not by rules).
    pub fn add_unrouted(&mut self, name: &str, route: Arc<dyn Route>) {
        self.by_name.insert(name.to_string(), route);
    }

    /// Adds a route for every name that starts with `prefix`; like
    /// [`Routes::add_unrouted`], rules and the default never pick it.
    pub fn add_family(&mut self, prefix: &str, route: Arc<dyn Route>) {
        self.families.push((prefix.to_string(), route));
    }

    /// Installs the routing rules; every route they name must exist.
    pub fn set_rules(&mut self, cfg: &RoutingConfig) -> crate::Result<()> {
        let mut missing: Vec<String> = cfg
            .rules
            .iter()
            .map(|r| r.route.clone())
            .chain(cfg.default.clone())
            .filter(|name| !self.by_name.contains_key(name))
            .collect();
        missing.dedup();
        if !missing.is_empty() {
            return Err(crate::Error::Config(format!(
                "routing names routes that are not configured: {}",
                missing.join(", ")
            )));
        }
        if cfg.default.is_some() {
            self.default = cfg.default.clone();
        }
        self.rules = cfg.rules.clone();
        Ok(())
    }

    /// The route for a message from `from` to `to` (E.164): the first rule
    /// that matches, else the default. `None` when no route is configured.
    pub fn choose(&self, from: &str, to: &str) -> Option<&str> {
        let matched = self.rules.iter().find(|r| {
            r.to_prefix.as_deref().is_none_or(|p| to.starts_with(p))
                && r.from.as_deref().is_none_or(|f| f == from)
                && r.to_country
                    .as_deref()
                    .is_none_or(|c| country_of(to).as_deref() == Some(c))
        });
        matched
            .map(|r| r.route.as_str())
            .or(self.default.as_deref())
    }

    /// The route called `name` (or the family it belongs to).
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Route>> {
        self.by_name.get(name).or_else(|| {
            self.families
                .iter()
                .find(|(prefix, _)| name.starts_with(prefix.as_str()))
                .map(|(_, r)| r)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    struct Nop;
    impl Route for Nop {
        fn send<'a>(&'a self, _msg: OutboundSms<'a>) -> SendFuture<'a> {
            Box::pin(async { SendOutcome::Retry("nop".into()) })
        }
    }

    #[test]
    fn rules_pick_in_order_with_a_default() {
        let mut r = Routes::default();
        assert_eq!(r.choose("", "+14155550101"), None);
        for name in ["generic", "uk", "alerts", "de"] {
            r.add(name, Arc::new(Nop));
        }
        let cfg: crate::app::config::Config = toml::from_str(
            r#"
            [routing]
            default = "generic"
            [[routing.rules]]
            from = "ALERTS"
            route = "alerts"
            [[routing.rules]]
            to_prefix = "+44"
            route = "uk"
            [[routing.rules]]
            to_country = "DE"
            route = "de"
            "#,
        )
        .unwrap();
        cfg.validate().unwrap();
        r.set_rules(&cfg.routing).unwrap();
        assert_eq!(r.choose("+14155550100", "+447911123456"), Some("uk"));
        assert_eq!(r.choose("ALERTS", "+447911123456"), Some("alerts"));
        assert_eq!(r.choose("+14155550100", "+4915112345678"), Some("de"));
        assert_eq!(r.choose("+14155550100", "+14155550101"), Some("generic"));
        let bad: crate::app::config::Config =
            toml::from_str("[[routing.rules]]\nto_prefix = \"+1\"\nroute = \"nowhere\"").unwrap();
        assert!(
            r.set_rules(&bad.routing)
                .unwrap_err()
                .to_string()
                .contains("nowhere")
        );
    }
}
