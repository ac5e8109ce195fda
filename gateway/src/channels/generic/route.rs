//! The generic HTTP SMSC route: one signed JSON POST per message, or with
//! `batch_max` above 1 many per POST (shapes in `adapters::generic`).

use adapters::generic::{OutboundSms as Wire, SubmitAnswer, SubmitBatch};

use crate::delivery::batch::{self, Batching};
use crate::delivery::http::{Endpoint, accepted_body};
use crate::delivery::lean::LeanOptions;
use crate::delivery::route::{BatchFuture, OutboundSms, Route, SendFuture, SendOutcome};
use crate::store::MessageStatus;

/// Name of this route in the config and the store.
pub const NAME: &str = "generic";

/// Sends to a generic HTTP SMSC.
pub struct GenericRoute {
    url: Endpoint,
    secret: Vec<u8>,
    sms: adapters::sms::SmsOptions,
    batching: Batching,
}

impl GenericRoute {
    /// A route POSTing to `url`, signing with `secret` (a plain `http://`
    /// URL through the lean client, see [`crate::delivery::lean`]).
    pub fn new(
        http: reqwest::Client,
        lean: LeanOptions,
        url: String,
        secret: Vec<u8>,
        sms: adapters::sms::SmsOptions,
    ) -> Self {
        Self {
            url: Endpoint::new(http, &url, lean),
            secret,
            sms,
            batching: Batching::SINGLE,
        }
    }

    /// Sends up to `batching.max` messages per request (the batch form).
    pub fn batching(mut self, batching: Batching) -> Self {
        self.batching = batching;
        self
    }

    /// The wire form of one message.
    fn wire(&self, msg: &OutboundSms<'_>) -> Wire {
        Wire {
            id: msg.id.to_string(),
            attempt_id: msg.attempt_id.to_string(),
            from: (!msg.header.from.is_empty()).then(|| msg.header.from.clone()),
            to: msg.header.to.clone(),
            text: crate::pipeline::plan::render(msg.text(), &self.sms).into_owned(),
            segments: msg.header.segments,
            encoding: msg.header.encoding.clone(),
        }
    }
}

/// The outcome of an accepted submit, from the SMSC's words.
fn accepted(status: Option<&str>, carrier_id: Option<String>) -> SendOutcome {
    SendOutcome::Accepted {
        status: if status == Some("delivered") {
            MessageStatus::Delivered
        } else {
            MessageStatus::Sent
        },
        carrier_id,
    }
}

impl Route for GenericRoute {
    fn send<'a>(&'a self, msg: OutboundSms<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let wire = self.wire(&msg);
            let body = match serde_json::to_vec(&wire) {
                Ok(b) => b,
                Err(e) => return SendOutcome::Permanent(format!("encoding the request: {e}")),
            };
            drop(wire);
            let answer = self
                .url
                .post_signed(&self.secret, body, Some(msg.attempt_id))
                .await;
            let bytes = match accepted_body(answer) {
                Ok(bytes) => bytes,
                Err(outcome) => return outcome,
            };
            let answer: SubmitAnswer = serde_json::from_slice(&bytes).unwrap_or_default();
            accepted(answer.status.as_deref(), answer.carrier_id)
        })
    }

    fn batching(&self) -> Batching {
        self.batching
    }

    fn send_batch<'a>(&'a self, msgs: Vec<OutboundSms<'a>>) -> BatchFuture<'a> {
        Box::pin(async move {
            let ids: Vec<&str> = msgs.iter().map(|m| m.id).collect();
            let wire = SubmitBatch {
                messages: msgs.iter().map(|m| self.wire(m)).collect(),
            };
            let body = match serde_json::to_vec(&wire) {
                Ok(b) => b,
                Err(e) => {
                    let why = SendOutcome::Permanent(format!("encoding the request: {e}"));
                    return ids.iter().map(|_| why.clone()).collect();
                }
            };
            // The text leaves memory before the request waits on the far end.
            drop(wire);
            let answer = self.url.post_signed(&self.secret, body, None).await;
            batch::results(&ids, answer)
                .into_iter()
                .map(|r| match r {
                    Ok(r) => accepted(r.status.as_deref(), r.carrier_id),
                    Err(outcome) => outcome,
                })
                .collect()
        })
    }
}
