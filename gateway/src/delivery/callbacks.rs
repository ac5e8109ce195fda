//! Status callbacks: an API client that gave a `status_callback` URL (or
//! whose API key has a default one) is told of every status change after
//! `queued` by a POST of `{"id","status","error"?,"at"}`, signed like the
//! generic adapter (`X-Gateway-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>">`) with the `[callbacks]` secret, and an
//! `Idempotency-Key` that is the same for every retry of one callback.
//!
//! The callbacks owed are rows in the store, written in the status change's
//! own transaction, so they survive restarts. This worker POSTs the oldest
//! owed callback of each message (never two of one message at once, never
//! a later one first), retries failures with the delivery queue's backoff
//! (`[delivery] initial_backoff_ms`, `max_backoff_secs`) and gives up after
//! `[callbacks] max_attempts` or at a refusal that will not pass (a 4xx
//! other than 408, 425 and 429): the next status of the message goes then.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::config::DeliveryConfig;
use super::http::{Answer, post_signed};
use crate::core::clock;
use crate::core::error::{Error, Result};
use crate::core::secrets::SecretRef;
use crate::store::Store;
use crate::store::callbacks::PendingCallback;

/// Default environment variable of the callback signing secret.
pub const CALLBACK_SECRET_ENV: &str = "GATEWAY_CALLBACK_SECRET";
/// Most callbacks POSTed at once (one per message).
const IN_FLIGHT: usize = 64;
/// Longest sleep between looks at the store when nothing wakes the worker.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Longest callback URL accepted.
const MAX_URL: usize = 2048;

/// `[callbacks]`: signing and giving up. Callbacks are on when the secret
/// resolves (`GATEWAY_CALLBACK_SECRET`, or `secret_env` / `secret_file`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallbacksConfig {
    /// Environment variable holding the signing secret (default `GATEWAY_CALLBACK_SECRET`).
    pub secret_env: Option<String>,
    /// File holding the signing secret.
    pub secret_file: Option<std::path::PathBuf>,
    /// POSTs of one callback before it is given up on.
    pub max_attempts: u32,
}

impl Default for CallbacksConfig {
    fn default() -> Self {
        Self {
            secret_env: None,
            secret_file: None,
            max_attempts: 10,
        }
    }
}

impl CallbacksConfig {
    /// Semantic checks, appended to `problems`.
    pub fn validate(&self, problems: &mut Vec<String>) {
        if self.max_attempts == 0 {
            problems.push("callbacks.max_attempts must be at least 1".to_string());
        }
    }

    /// The signing secret; `None` means callbacks are off.
    pub fn secret(&self) -> Result<Option<Vec<u8>>> {
        SecretRef {
            secret_env: self.secret_env.clone(),
            secret_file: self.secret_file.clone(),
        }
        .resolve(CALLBACK_SECRET_ENV)
    }
}

/// Checks a callback URL: absolute `http` or `https` with a host, at most
/// 2048 characters. Loopback and private addresses are allowed: the URL
/// comes from an authenticated API client, who may run its receiver beside
/// the gateway.
pub fn check_url(url: &str) -> Result<()> {
    let bad = |why: &str| Error::invalid("status_callback", why.to_string());
    if url.len() > MAX_URL {
        return Err(bad("longer than 2048 characters"));
    }
    let parsed = reqwest::Url::parse(url).map_err(|_| bad("must be an absolute http(s) URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(bad("must be an absolute http(s) URL"));
    }
    Ok(())
}

/// Wakes the worker when a status moved (its callback may be owed now).
#[derive(Default)]
pub struct Wake(pub Notify);

/// What the callback worker needs.
pub struct CallbackWorker {
    /// The store (the callbacks owed).
    pub store: Store,
    /// The HTTP client of deliveries (its timeouts).
    pub http: reqwest::Client,
    /// The signing secret.
    pub secret: Vec<u8>,
    /// POSTs of one callback before it is given up on.
    pub max_attempts: u32,
    /// The delivery queue's backoff.
    pub backoff: DeliveryConfig,
    /// Rung by the status path.
    pub wake: Arc<Wake>,
    /// Counts the outcomes.
    pub metrics: Arc<crate::core::metrics::Metrics>,
}

/// The JSON a callback POSTs.
fn payload(cb: &PendingCallback) -> Vec<u8> {
    let mut v = serde_json::json!({
        "id": cb.message_id,
        "status": cb.status,
        "at": clock::rfc3339_ms(cb.at),
    });
    if let Some(e) = &cb.error {
        v["error"] = serde_json::Value::String(e.clone());
    }
    serde_json::to_vec(&v).unwrap_or_default()
}

/// POSTs one callback and records what came of it.
async fn deliver(w: &CallbackWorker, cb: PendingCallback) {
    let key = format!("cb-{}", cb.id);
    let answer = post_signed(&w.http, &cb.url, &w.secret, payload(&cb), &key).await;
    let attempts = cb.attempts.saturating_add(1);
    let (done, why) = match answer {
        Ok(Answer::Ok(_)) => (true, None),
        Ok(Answer::Failed {
            transient: false,
            reason,
        }) => (true, Some(reason)),
        Ok(Answer::Failed { reason, .. }) | Err(reason) => {
            (attempts >= w.max_attempts, Some(reason))
        }
    };
    let outcome = match (done, &why) {
        (true, None) => "ok",
        (true, Some(_)) => "given_up",
        (false, _) => "retry",
    };
    w.metrics
        .status_callbacks
        .get_or_create(&crate::core::metrics::OutcomeLabels { outcome })
        .inc();
    let recorded = if done {
        if let Some(why) = &why {
            tracing::warn!(msg_id = %cb.message_id, status = %cb.status, attempts, error = %why, "status callback given up");
        }
        w.store.callback_done(cb.id).await
    } else {
        let next = clock::now_ms() + super::backoff_ms(&w.backoff, attempts);
        tracing::debug!(msg_id = %cb.message_id, attempts, error = ?why, "status callback failed; retrying");
        w.store.callback_retry(cb.id, attempts, next).await
    };
    if let Err(e) = recorded {
        tracing::error!(error = %e, msg_id = %cb.message_id, "recording a status callback failed; it will be sent again");
    }
}

/// How long to sleep before looking again, when the last look found less
/// than a full batch.
async fn idle_wait(w: &CallbackWorker, now: i64) -> Duration {
    match w.store.next_callback_after(now).await {
        Ok(Some(at)) => Duration::from_millis(
            (at - clock::now_ms()).clamp(5, IDLE_POLL.as_millis() as i64) as u64,
        ),
        _ => IDLE_POLL,
    }
}

/// Runs until `shutdown`, then lets the POSTs in flight finish (each is
/// bounded by the client's timeout). Up to [`IN_FLIGHT`] callbacks go at
/// once, each of a different message; a slow receiver holds only its own
/// slots, not a batch of everyone's.
pub async fn run(w: Arc<CallbackWorker>, shutdown: CancellationToken) {
    let mut in_flight: HashSet<String> = HashSet::new();
    let mut tasks: JoinSet<String> = JoinSet::new();
    loop {
        while let Some(done) = tasks.try_join_next() {
            if let Ok(id) = done {
                in_flight.remove(&id);
            }
        }
        let now = clock::now_ms();
        let room = IN_FLIGHT.saturating_sub(tasks.len());
        let mut full = false;
        if room > 0 {
            match w.store.due_callbacks(now, room + in_flight.len()).await {
                Ok(due) => {
                    let fresh: Vec<PendingCallback> = due
                        .into_iter()
                        .filter(|cb| !in_flight.contains(&cb.message_id))
                        .take(room)
                        .collect();
                    full = fresh.len() >= room;
                    for cb in fresh {
                        in_flight.insert(cb.message_id.clone());
                        let w = w.clone();
                        tasks.spawn(async move {
                            let id = cb.message_id.clone();
                            deliver(&w, cb).await;
                            id
                        });
                    }
                }
                Err(e) => tracing::error!(error = %e, "reading the status callbacks failed"),
            }
        }
        let wait = if full && tasks.len() < IN_FLIGHT {
            Duration::ZERO
        } else {
            idle_wait(&w, now).await
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = w.wake.0.notified() => {}
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok(id) = done {
                    in_flight.remove(&id);
                }
            }
            () = shutdown.cancelled() => break,
        }
    }
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls() {
        check_url("http://127.0.0.1:9/cb").unwrap();
        check_url("https://example.com/x?y=1").unwrap();
        for bad in [
            "ftp://x/",
            "/relative",
            "http://",
            "javascript:alert(1)",
            "",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert!(check_url(&format!("http://x/{}", "a".repeat(3000))).is_err());
    }

    #[test]
    fn payload_has_error_only_when_given() {
        let mut cb = PendingCallback {
            id: 1,
            message_id: "m".into(),
            url: "http://x/".into(),
            status: "sent".into(),
            error: None,
            at: 0,
            attempts: 0,
        };
        let v: serde_json::Value = serde_json::from_slice(&payload(&cb)).unwrap();
        assert_eq!(v["status"], "sent");
        assert!(v.get("error").is_none());
        cb.error = Some("E42".into());
        let v: serde_json::Value = serde_json::from_slice(&payload(&cb)).unwrap();
        assert_eq!(v["error"], "E42");
    }
}
