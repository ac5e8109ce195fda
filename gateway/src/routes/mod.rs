//! Outbound routes: the adapters that turn an opened outbound message into a
//! send to the phone network (a generic HTTP SMSC, a carrier REST API, a
//! modem, an Android relay).
//!
//! Each route implements the one-method [`Route`] trait (lettre's `Transport`
//! shape); the delivery worker owns retries, backoff and dead-lettering, so a
//! route only says what one attempt came to. Which route a message takes is
//! decided once, when it is accepted, by [`Routes::choose`].

pub mod generic;
pub mod http;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::envelope::{Content, Header};

/// What a route gets for one attempt: the clear header and the opened content.
pub struct OutboundSms<'a> {
    /// Message id.
    pub id: &'a str,
    /// `"<id>#<attempt>"`, stable across a crash before the attempt was recorded.
    pub attempt_id: &'a str,
    /// The envelope header (from, to, segments, encoding).
    pub header: &'a Header,
    /// The plaintext, alive only for this attempt.
    pub content: &'a Content,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Accepted by the far end.
    Accepted {
        /// `sent`, or `delivered` when the far end already knows.
        status: &'static str,
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

/// One outbound route.
pub trait Route: Send + Sync + 'static {
    /// Makes one send attempt. Must not log or return message text.
    fn send<'a>(&'a self, msg: OutboundSms<'a>) -> SendFuture<'a>;
}

/// The configured routes and the rule that picks one.
#[derive(Clone, Default)]
pub struct Routes {
    by_name: BTreeMap<String, Arc<dyn Route>>,
    default: Option<String>,
}

impl Routes {
    /// Adds a route; the first one added is the default.
    pub fn add(&mut self, name: &str, route: Arc<dyn Route>) {
        if self.default.is_none() {
            self.default = Some(name.to_string());
        }
        self.by_name.insert(name.to_string(), route);
    }

    /// The route for a message to `to` (E.164), if any route exists.
    pub fn choose(&self, _to: &str) -> Option<&str> {
        self.default.as_deref()
    }

    /// The route called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Route>> {
        self.by_name.get(name)
    }
}
