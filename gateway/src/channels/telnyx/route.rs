//! The Telnyx route: one `POST /v2/messages` (JSON, Bearer API key) per message.

use adapters::telnyx::{ErrorAnswer, SEND_PATH, SendAnswer, SendRequest};

use crate::channels::telnyx::config::TelnyxConfig;
use crate::delivery::http::describe;
use crate::delivery::http::read_answer;
use crate::delivery::route::{OutboundSms, Route, SendFuture, SendOutcome};

/// Name of this route in the config and the store.
pub const NAME: &str = "telnyx";

/// Sends through Telnyx's messaging API.
pub struct TelnyxRoute {
    http: reqwest::Client,
    url: String,
    api_key: String,
    from: Option<String>,
    messaging_profile_id: Option<String>,
    webhook_url: Option<String>,
    sms: adapters::sms::SmsOptions,
}

impl TelnyxRoute {
    /// A route for `cfg`, authenticating with `api_key`.
    pub fn new(
        http: reqwest::Client,
        cfg: &TelnyxConfig,
        api_key: String,
        sms: adapters::sms::SmsOptions,
    ) -> Self {
        Self {
            http,
            url: format!("{}{SEND_PATH}", cfg.api_base.trim_end_matches('/')),
            api_key,
            from: cfg.from.clone(),
            messaging_profile_id: cfg.messaging_profile_id.clone(),
            webhook_url: cfg.webhook_url.clone(),
            sms,
        }
    }
}

impl Route for TelnyxRoute {
    fn default_from(&self) -> Option<&str> {
        self.from.as_deref()
    }

    fn send<'a>(&'a self, msg: OutboundSms<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let from = msg.from_or(self.from.as_deref());
            let media = msg.media_urls();
            let text = crate::pipeline::plan::render(msg.text(), &self.sms);
            let body = match serde_json::to_vec(&SendRequest {
                from,
                messaging_profile_id: self.messaging_profile_id.as_deref(),
                to: &msg.header.to,
                text: &text,
                media_urls: &media,
                webhook_url: self.webhook_url.as_deref(),
            }) {
                Ok(b) => b,
                Err(e) => return SendOutcome::Permanent(format!("encoding the request: {e}")),
            };
            let resp = self
                .http
                .post(&self.url)
                .bearer_auth(&self.api_key)
                .header("content-type", "application/json")
                .header("idempotency-key", msg.attempt_id)
                .body(body)
                .send()
                .await;
            let resp = match resp {
                Ok(r) => r,
                Err(e) => return SendOutcome::Retry(describe(&e)),
            };
            let (status, bytes) = read_answer(resp).await;
            if (200..300).contains(&status) {
                return SendOutcome::Accepted {
                    status: crate::store::MessageStatus::Sent,
                    carrier_id: serde_json::from_slice::<SendAnswer>(&bytes)
                        .ok()
                        .map(|a| a.data.id),
                };
            }
            let answer: ErrorAnswer = serde_json::from_slice(&bytes).unwrap_or_default();
            let codes: Vec<&str> = answer
                .errors
                .iter()
                .filter_map(|e| e.code.as_deref())
                .filter(|c| c.len() <= 8 && c.bytes().all(|b| b.is_ascii_digit()))
                .collect();
            let reason = if codes.is_empty() {
                format!("Telnyx HTTP {status}")
            } else {
                format!("Telnyx HTTP {status} error {}", codes.join(","))
            };
            if adapters::telnyx::is_transient(status, &answer) {
                SendOutcome::Retry(reason)
            } else {
                SendOutcome::Permanent(reason)
            }
        })
    }
}
