//! The private side as a route: each inbound envelope is POSTed, sealed as
//! it was stored (to the recipient's key; the gateway cannot open it), to
//! the private side's webhook, signed with its secret, with the attempt id
//! as idempotency key. A 2xx means delivered.

use super::http::{Endpoint, accepted_body, post_signed};
use super::route::{OutboundSms, Route, SendFuture, SendOutcome};
use crate::store::MessageStatus;

/// Name of the private side's route.
pub const ROUTE: &str = "private";

/// Name of a tenant's private-side route (its own webhook and secret).
pub fn tenant_route(tenant: &str) -> String {
    format!("{ROUTE}:{tenant}")
}

/// Delivers inbound envelopes to the private side's webhook.
pub struct PrivateRoute {
    http: reqwest::Client,
    url: Endpoint,
    secret: Vec<u8>,
}

impl PrivateRoute {
    /// POSTs to `url`, signed with `secret`.
    pub fn new(http: reqwest::Client, url: String, secret: Vec<u8>) -> Self {
        Self {
            http,
            url: Endpoint::new(&url),
            secret,
        }
    }
}

impl Route for PrivateRoute {
    fn opens(&self) -> bool {
        false
    }

    fn send<'a>(&'a self, msg: OutboundSms<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let body = match serde_json::to_vec(&serde_json::json!({
                "id": msg.id,
                "attempt_id": msg.attempt_id,
                "envelope": msg.envelope.to_base64(),
            })) {
                Ok(b) => b,
                Err(e) => return SendOutcome::Permanent(e.to_string()),
            };
            let answer = match self.url.url() {
                Ok(url) => post_signed(&self.http, url, &self.secret, body, msg.attempt_id).await,
                Err(e) => Err(e),
            };
            match accepted_body(answer) {
                Ok(_) => SendOutcome::Accepted {
                    status: MessageStatus::Delivered,
                    carrier_id: None,
                },
                Err(outcome) => outcome,
            }
        })
    }
}
