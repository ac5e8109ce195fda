//! The `rbm` route: one `POST /v1/phones/{to}/agentMessages` per attempt,
//! with the gateway's message id as RBM's `messageId` (so a retry after a
//! crash is recognised: RBM answers 409 and the attempt counts as sent, and
//! DELIVERED events name our id). Also the revoke call of the fallback.

use std::sync::Arc;

use adapters::rcs::rbm;

use super::Rcs;
use crate::delivery::http::describe;
use crate::delivery::interwork::as_rcs;
use crate::delivery::route::{OutboundSms, Route, SendFuture, SendOutcome};

/// Sends agent messages through RBM.
pub struct RbmRoute {
    rcs: Arc<Rcs>,
}

impl RbmRoute {
    /// A route using the shared RBM state.
    pub fn new(rcs: Arc<Rcs>) -> Self {
        Self { rcs }
    }
}

/// Seconds until an RFC 3339 expiry, at least 1.
fn secs_until(expires_at: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(expires_at, &time::format_description::well_known::Rfc3339)
        .ok()?;
    let left = (t.unix_timestamp_nanos() / 1_000_000) as i64 - crate::core::clock::now_ms();
    Some(((left / 1000).max(1)) as u64)
}

fn failure(what: &str, status: u16, body: &[u8]) -> String {
    let answer = rbm::ErrorAnswer::parse(body);
    match answer.status() {
        Some(s) => format!("RBM {what}: HTTP {status} {s}"),
        None => format!("RBM {what}: HTTP {status}"),
    }
}

impl Route for RbmRoute {
    fn default_from(&self) -> Option<&str> {
        Some(&self.rcs.config.from)
    }

    fn send<'a>(&'a self, msg: OutboundSms<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let rcs = &self.rcs;
            let Some(content) = msg.content else {
                return SendOutcome::Permanent("the message was not opened".into());
            };
            let message = match as_rcs(content) {
                Ok(m) => m,
                Err(why) => return SendOutcome::Permanent(why),
            };
            let ttl = match (
                msg.header.expires_at.as_deref().and_then(secs_until),
                rcs.config.ttl_secs,
            ) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let body = match serde_json::to_vec(&rbm::agent_message(&message, ttl)) {
                Ok(b) => b,
                Err(e) => return SendOutcome::Permanent(format!("encoding the request: {e}")),
            };
            drop(message);
            let path = match rbm::send_path(&msg.header.to, &rcs.config.agent_id, msg.id) {
                Ok(p) => p,
                Err(e) => return SendOutcome::Permanent(e.to_string()),
            };
            let token = match rcs.tokens.token().await {
                Ok(t) => t,
                Err(e) => return SendOutcome::Retry(e.to_string()),
            };
            let resp = rcs
                .http
                .post(format!("{}{path}", rcs.api_base))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            let resp = match resp {
                Ok(r) => r,
                Err(e) => return SendOutcome::Retry(describe(&e)),
            };
            let (status, bytes) = crate::delivery::http::read_answer(resp).await;
            match status {
                200..=299 | 409 => SendOutcome::Accepted {
                    status: crate::store::MessageStatus::Sent,
                    carrier_id: Some(msg.id.to_string()),
                },
                401 => {
                    rcs.tokens.invalidate().await;
                    SendOutcome::Retry(failure("send", status, &bytes))
                }
                s if rbm::is_transient(s) => SendOutcome::Retry(failure("send", status, &bytes)),
                _ => SendOutcome::Permanent(failure("send", status, &bytes)),
            }
        })
    }
}

/// What a revoke came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoke {
    /// RBM removed the undelivered message.
    Revoked,
    /// RBM has no such undelivered message (delivered already, never
    /// accepted, or revoked before).
    NotFound,
    /// Could not tell; try again later.
    Retry(String),
}

/// `DELETE /v1/phones/{to}/agentMessages/{id}`.
pub async fn revoke(rcs: &Rcs, to: &str, message_id: &str) -> Revoke {
    let path = match rbm::revoke_path(to, &rcs.config.agent_id, message_id) {
        Ok(p) => p,
        Err(_) => return Revoke::NotFound,
    };
    let token = match rcs.tokens.token().await {
        Ok(t) => t,
        Err(e) => return Revoke::Retry(e.to_string()),
    };
    let resp = match rcs
        .http
        .delete(format!("{}{path}", rcs.api_base))
        .bearer_auth(&token)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return Revoke::Retry(describe(&e)),
    };
    let (status, bytes) = crate::delivery::http::read_answer(resp).await;
    match status {
        200..=299 => Revoke::Revoked,
        404 => Revoke::NotFound,
        401 => {
            rcs.tokens.invalidate().await;
            Revoke::Retry(failure("revoke", status, &bytes))
        }
        _ => Revoke::Retry(failure("revoke", status, &bytes)),
    }
}
