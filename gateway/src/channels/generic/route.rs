//! The generic HTTP SMSC route: one signed JSON POST per message
//! (shapes in `adapters::generic`).

use adapters::generic::{OutboundSms as Wire, SubmitAnswer};

use crate::delivery::http::{Endpoint, accepted_body, post_signed};
use crate::delivery::route::{OutboundSms, Route, SendFuture, SendOutcome};
use crate::store::MessageStatus;

/// Name of this route in the config and the store.
pub const NAME: &str = "generic";

/// Sends to a generic HTTP SMSC.
pub struct GenericRoute {
    http: reqwest::Client,
    url: Endpoint,
    secret: Vec<u8>,
    sms: adapters::sms::SmsOptions,
}

impl GenericRoute {
    /// A route POSTing to `url`, signing with `secret`.
    pub fn new(
        http: reqwest::Client,
        url: String,
        secret: Vec<u8>,
        sms: adapters::sms::SmsOptions,
    ) -> Self {
        Self {
            http,
            url: Endpoint::new(&url),
            secret,
            sms,
        }
    }
}

impl Route for GenericRoute {
    fn send<'a>(&'a self, msg: OutboundSms<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let wire = Wire {
                id: msg.id.to_string(),
                attempt_id: msg.attempt_id.to_string(),
                from: (!msg.header.from.is_empty()).then(|| msg.header.from.clone()),
                to: msg.header.to.clone(),
                text: crate::pipeline::plan::render(msg.text(), &self.sms).into_owned(),
                segments: msg.header.segments,
                encoding: msg.header.encoding.clone(),
            };
            let body = match serde_json::to_vec(&wire) {
                Ok(b) => b,
                Err(e) => return SendOutcome::Permanent(format!("encoding the request: {e}")),
            };
            drop(wire);
            let answer = match self.url.url() {
                Ok(url) => post_signed(&self.http, url, &self.secret, body, msg.attempt_id).await,
                Err(e) => Err(e),
            };
            let bytes = match accepted_body(answer) {
                Ok(bytes) => bytes,
                Err(outcome) => return outcome,
            };
            let answer: SubmitAnswer = serde_json::from_slice(&bytes).unwrap_or_default();
            SendOutcome::Accepted {
                status: if answer.status.as_deref() == Some("delivered") {
                    MessageStatus::Delivered
                } else {
                    MessageStatus::Sent
                },
                carrier_id: answer.carrier_id,
            }
        })
    }
}
