//! The Android relay route: `POST <phone>/message` (HTTP Basic) on the phone
//! running SMS Gateway for Android, paced to what one SIM and Android allow,
//! with the app's field encryption when a passphrase is configured.
//!
//! A phone that is off, asleep or unreachable answers nothing: that is a
//! `Retry`, so messages wait in the queue and go out when it is back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use adapters::android_relay::{Pacer, SendAnswer, SendRequest, TextMessage, Webhook};
use rand::RngCore;

use super::AndroidSide;
use crate::delivery::http::describe;
use crate::delivery::http::read_answer;
use crate::delivery::route::{OutboundSms, Route, SendFuture, SendOutcome};

/// Sends through one phone.
pub struct AndroidRoute {
    http: reqwest::Client,
    side: Arc<AndroidSide>,
    url: String,
    pacer: Mutex<Pacer>,
    sms: adapters::sms::SmsOptions,
}

impl AndroidRoute {
    /// A route for the phone in `side`.
    pub fn new(
        http: reqwest::Client,
        side: Arc<AndroidSide>,
        sms: adapters::sms::SmsOptions,
    ) -> Self {
        let c = &side.config;
        Self {
            http,
            url: format!("{}/message", c.url.trim_end_matches('/')),
            pacer: Mutex::new(Pacer::new(c.segments_per_minute, c.burst, c.per_hour)),
            side,
            sms,
        }
    }

    /// Waits for a pacing slot for `segments`; `Err` when the wait would be
    /// longer than the configured maximum (the message is rescheduled).
    async fn pace(&self, segments: u32) -> Result<(), String> {
        let max = self.side.config.max_pacing_wait_ms as i64;
        let mut waited = 0i64;
        loop {
            let wait = match self.pacer.lock() {
                Ok(mut p) => p.take(segments, crate::core::clock::now_ms()),
                Err(_) => 0,
            };
            if wait == 0 {
                return Ok(());
            }
            if waited + wait > max {
                return Err(format!(
                    "paced: the phone's sending budget is used up; next slot in {}s",
                    (wait + 999) / 1000
                ));
            }
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
            waited += wait;
        }
    }
}

fn random_salt() -> [u8; 16] {
    let mut s = [0u8; 16];
    rand::rng().fill_bytes(&mut s);
    s
}

impl Route for AndroidRoute {
    fn default_from(&self) -> Option<&str> {
        self.side.config.from.as_deref()
    }

    fn send<'a>(&'a self, msg: OutboundSms<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            if let Err(reason) = self.pace(msg.header.segments.max(1)).await {
                return SendOutcome::Retry(reason);
            }
            let c = &self.side.config;
            let mut req = SendRequest {
                id: msg.id.to_string(),
                text_message: TextMessage {
                    text: crate::pipeline::plan::render(msg.text(), &self.sms).into_owned(),
                },
                phone_numbers: vec![msg.header.to.clone()],
                sim_number: c.sim_number,
                ttl: c.ttl_secs,
                with_delivery_report: c.with_delivery_report,
                is_encrypted: false,
            };
            if let Some(p) = &self.side.passphrase {
                req.encrypt(p, &mut random_salt, c.kdf_iterations);
            }
            let body = match serde_json::to_vec(&req) {
                Ok(b) => b,
                Err(e) => return SendOutcome::Permanent(format!("encoding the request: {e}")),
            };
            drop(req);
            let resp = self
                .http
                .post(&self.url)
                .basic_auth(&c.username, Some(&self.side.password))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            let resp = match resp {
                Ok(r) => r,
                Err(e) => {
                    return SendOutcome::Retry(format!("phone unreachable: {}", describe(&e)));
                }
            };
            let (status, bytes) = read_answer(resp).await;
            match status {
                200..=299 => SendOutcome::Accepted {
                    status: crate::store::MessageStatus::Sent,
                    carrier_id: Some(
                        serde_json::from_slice::<SendAnswer>(&bytes)
                            .map(|a| a.id)
                            .unwrap_or_else(|_| msg.id.to_string()),
                    ),
                },
                // The phone already has a message with this id: an earlier
                // attempt got through but its answer was lost.
                409 => SendOutcome::Accepted {
                    status: crate::store::MessageStatus::Sent,
                    carrier_id: Some(msg.id.to_string()),
                },
                401 | 403 | 408 | 429 | 500..=599 => {
                    SendOutcome::Retry(format!("phone answered HTTP {status}"))
                }
                _ => SendOutcome::Permanent(format!("phone answered HTTP {status}")),
            }
        })
    }
}

/// Lists the phone's webhooks and adds the missing ones; returns how many
/// were added.
pub async fn register(
    http: &reqwest::Client,
    side: &AndroidSide,
    webhook_url: &str,
) -> Result<usize, String> {
    let c = &side.config;
    let base = format!("{}/webhooks", c.url.trim_end_matches('/'));
    let resp = http
        .get(&base)
        .basic_auth(&c.username, Some(&side.password))
        .send()
        .await
        .map_err(|e| describe(&e))?;
    let (status, bytes) = read_answer(resp).await;
    if !(200..300).contains(&status) {
        return Err(format!("listing webhooks: HTTP {status}"));
    }
    let existing: Vec<Webhook> = serde_json::from_slice(&bytes)
        .map_err(|_| "listing webhooks: unexpected answer".to_string())?;
    let missing = adapters::android_relay::missing_webhooks(
        &existing,
        webhook_url,
        &format!("gw-{}", c.name),
    );
    let n = missing.len();
    for w in missing {
        let resp = http
            .post(&base)
            .basic_auth(&c.username, Some(&side.password))
            .json(&w)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(format!("registering {}: HTTP {status}", w.event));
        }
    }
    Ok(n)
}
