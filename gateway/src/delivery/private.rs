//! The private side as a route: each inbound envelope is POSTed, sealed as
//! it was stored (to the recipient's key; the gateway cannot open it), to
//! the private side's webhook, signed with its secret, with the attempt id
//! as idempotency key. A 2xx means delivered.

use adapters::generic::SubmitBatch;

use super::batch::{self, Batching};
use super::http::{Endpoint, accepted_body};
use super::lean::LeanOptions;
use super::route::{BatchFuture, OutboundSms, Route, SendFuture, SendOutcome};
use crate::store::MessageStatus;

/// Name of the private side's route.
pub const ROUTE: &str = "private";

/// Name of a tenant's private-side route (its own webhook and secret).
pub fn tenant_route(tenant: &str) -> String {
    format!("{ROUTE}:{tenant}")
}

/// Delivers inbound envelopes to the private side's webhook.
pub struct PrivateRoute {
    url: Endpoint,
    secret: Vec<u8>,
    batching: Batching,
}

/// One envelope as the webhook receives it, alone or in a batch.
#[derive(serde::Serialize)]
struct Wire<'a> {
    id: &'a str,
    attempt_id: &'a str,
    envelope: String,
}

impl<'a> Wire<'a> {
    fn of(msg: &OutboundSms<'a>) -> Self {
        Self {
            id: msg.id,
            attempt_id: msg.attempt_id,
            envelope: msg.envelope.to_base64(),
        }
    }
}

const DELIVERED: SendOutcome = SendOutcome::Accepted {
    status: MessageStatus::Delivered,
    carrier_id: None,
};

impl PrivateRoute {
    /// POSTs to `url`, signed with `secret` (a plain `http://` URL through
    /// the lean client, see [`super::lean`]).
    pub fn new(http: reqwest::Client, lean: LeanOptions, url: String, secret: Vec<u8>) -> Self {
        Self {
            url: Endpoint::new(http, &url, lean),
            secret,
            batching: Batching::SINGLE,
        }
    }

    /// Sends up to `batching.max` envelopes per request (the batch form).
    pub fn batching(mut self, batching: Batching) -> Self {
        self.batching = batching;
        self
    }
}

impl Route for PrivateRoute {
    fn opens(&self) -> bool {
        false
    }

    fn send<'a>(&'a self, msg: OutboundSms<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let body = match serde_json::to_vec(&Wire::of(&msg)) {
                Ok(b) => b,
                Err(e) => return SendOutcome::Permanent(e.to_string()),
            };
            let answer = self
                .url
                .post_signed(&self.secret, body, Some(msg.attempt_id))
                .await;
            match accepted_body(answer) {
                Ok(_) => DELIVERED,
                Err(outcome) => outcome,
            }
        })
    }

    fn batching(&self) -> Batching {
        self.batching
    }

    fn send_batch<'a>(&'a self, msgs: Vec<OutboundSms<'a>>) -> BatchFuture<'a> {
        Box::pin(async move {
            let ids: Vec<&str> = msgs.iter().map(|m| m.id).collect();
            let wire = SubmitBatch {
                messages: msgs.iter().map(Wire::of).collect(),
            };
            let body = match serde_json::to_vec(&wire) {
                Ok(b) => b,
                Err(e) => {
                    let why = SendOutcome::Permanent(e.to_string());
                    return ids.iter().map(|_| why.clone()).collect();
                }
            };
            drop(wire);
            let answer = self.url.post_signed(&self.secret, body, None).await;
            batch::results(&ids, answer)
                .into_iter()
                .map(|r| r.map_or_else(|outcome| outcome, |_| DELIVERED))
                .collect()
        })
    }
}
