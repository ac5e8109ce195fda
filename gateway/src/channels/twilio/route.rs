//! The Twilio route: one `POST /2010-04-01/Accounts/{sid}/Messages.json`
//! (form fields, HTTP Basic with the account SID and auth token) per message.

use adapters::twilio::{ErrorBody, Failure, MessageResource, SendRequest};

use crate::channels::twilio::config::TwilioConfig;
use crate::delivery::http::describe;
use crate::delivery::http::read_answer;
use crate::delivery::route::{OutboundSms, Route, SendFuture, SendOutcome};

/// Name of this route in the config and the store.
pub const NAME: &str = "twilio";

/// Sends through Twilio's Messages API.
pub struct TwilioRoute {
    http: reqwest::Client,
    url: String,
    account_sid: String,
    auth_token: String,
    from: Option<String>,
    messaging_service_sid: Option<String>,
    status_callback: Option<String>,
    sms: adapters::sms::SmsOptions,
}

impl TwilioRoute {
    /// A route for `cfg`, authenticating with `auth_token`.
    pub fn new(
        http: reqwest::Client,
        cfg: &TwilioConfig,
        auth_token: Vec<u8>,
        public_url: &str,
        sms: adapters::sms::SmsOptions,
    ) -> Self {
        Self {
            http,
            url: format!(
                "{}{}",
                cfg.api_base.trim_end_matches('/'),
                SendRequest::path(&cfg.account_sid)
            ),
            account_sid: cfg.account_sid.clone(),
            auth_token: String::from_utf8_lossy(&auth_token).into_owned(),
            from: cfg.from.clone(),
            messaging_service_sid: cfg.messaging_service_sid.clone(),
            status_callback: cfg
                .status_callback
                .then(|| format!("{public_url}/webhooks/twilio/status")),
            sms,
        }
    }
}

impl Route for TwilioRoute {
    fn default_from(&self) -> Option<&str> {
        self.from.as_deref()
    }

    fn send<'a>(&'a self, msg: OutboundSms<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let from = msg.from_or(self.from.as_deref());
            let media = msg.media_urls();
            let text = crate::pipeline::plan::render(msg.text(), &self.sms);
            let body = SendRequest {
                to: &msg.header.to,
                from,
                messaging_service_sid: if from.is_none() {
                    self.messaging_service_sid.as_deref()
                } else {
                    None
                },
                body: &text,
                media_urls: &media,
                status_callback: self.status_callback.as_deref(),
                validity_period: None,
            }
            .encode();
            let resp = self
                .http
                .post(&self.url)
                .basic_auth(&self.account_sid, Some(&self.auth_token))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("i-twilio-idempotency-token", msg.attempt_id)
                .body(body)
                .send()
                .await;
            let resp = match resp {
                Ok(r) => r,
                Err(e) => return SendOutcome::Retry(describe(&e)),
            };
            let (status, bytes) = read_answer(resp).await;
            if (200..300).contains(&status) {
                return match serde_json::from_slice::<MessageResource>(&bytes) {
                    Ok(m) => SendOutcome::Accepted {
                        status: crate::store::MessageStatus::Sent,
                        carrier_id: Some(m.sid),
                    },
                    // Accepted, but without a sid status callbacks cannot be matched.
                    Err(_) => SendOutcome::Accepted {
                        status: crate::store::MessageStatus::Sent,
                        carrier_id: None,
                    },
                };
            }
            let code = serde_json::from_slice::<ErrorBody>(&bytes)
                .ok()
                .and_then(|e| e.code);
            let reason = match code {
                Some(c) => format!("Twilio HTTP {status} error {c}"),
                None => format!("Twilio HTTP {status}"),
            };
            match adapters::twilio::classify(status, code) {
                Failure::Transient => SendOutcome::Retry(reason),
                Failure::Permanent => SendOutcome::Permanent(reason),
            }
        })
    }
}
