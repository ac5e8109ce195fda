//! A route for tests (lettre's stub transport): answers every send with the
//! outcome it was made with and records what it was asked to send
//! (metadata only).

use std::sync::Mutex;

use super::route::{OutboundSms, Route, SendFuture, SendOutcome};
use crate::store::MessageStatus;

/// One recorded send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Message id.
    pub id: String,
    /// The route name it was sent to.
    pub route: String,
    /// The text, when the content was opened.
    pub text: Option<String>,
}

/// A route that answers with a fixed outcome.
pub struct StubRoute {
    outcome: SendOutcome,
    opens: bool,
    sent: Mutex<Vec<Sent>>,
}

impl StubRoute {
    /// Accepts every send as `sent`.
    pub fn new_ok() -> Self {
        Self::new(SendOutcome::Accepted {
            status: MessageStatus::Sent,
            carrier_id: Some("stub-1".into()),
        })
    }

    /// Answers every send with `outcome`.
    pub fn new(outcome: SendOutcome) -> Self {
        Self {
            outcome,
            opens: true,
            sent: Mutex::default(),
        }
    }

    /// A stub that, like the private side, takes the sealed envelope.
    pub fn sealed(mut self) -> Self {
        self.opens = false;
        self
    }

    /// What was sent so far.
    pub fn sent(&self) -> Vec<Sent> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Route for StubRoute {
    fn opens(&self) -> bool {
        self.opens
    }

    fn send<'a>(&'a self, msg: OutboundSms<'a>) -> SendFuture<'a> {
        if let Ok(mut s) = self.sent.lock() {
            s.push(Sent {
                id: msg.id.to_string(),
                route: msg.route.to_string(),
                text: msg.content.map(|c| c.as_text().to_string()),
            });
        }
        let outcome = self.outcome.clone();
        Box::pin(async move { outcome })
    }
}
