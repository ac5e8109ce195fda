//! The operator's hold webhook (`[review] notify_url`): every sender newly
//! held or blocked by the spam gate (by the model in enforce mode, or by a
//! rate limit on inbound traffic) is POSTed as
//! `{"event":"hold","verdict","message_id","sender","direction","score","reasons","at"}`,
//! signed like every webhook the gateway sends (`X-Gateway-Signature:
//! t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`) with its own secret, and
//! with `Idempotency-Key: hold-<message id>` so a retry is recognisable.
//!
//! Metadata only, like the review queue it points to: the sender, reason
//! codes and a score, never the text (the gate never sees it).
//!
//! One notice per sender per [`REPEAT_WINDOW_MS`]: the review queue is per
//! sender, and a flood held message by message must not become a flood of
//! notices; the repeats are counted (`outcome="repeat"`), not sent.
//!
//! Best effort on purpose: the hold itself is durable in the store and in
//! `gateway review`; this is a nudge to look. Notices wait in a bounded
//! queue ([`QUEUE`]); when the operator's endpoint is down long enough for
//! it to fill, further notices are dropped, logged and counted in
//! `gateway_review_notify_total{outcome="dropped"}` rather than holding
//! memory or slowing the message path. Each notice is tried up to
//! [`ATTEMPTS`] times with a doubling pause.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::core::error::Result;
use crate::core::metrics::Metrics;
use crate::core::secrets::SecretRef;
use crate::delivery::http::{Answer, post_signed};
use crate::store::undo::ReviewConfig;

/// Default environment variable of the hold webhook's signing secret.
pub const NOTIFY_SECRET_ENV: &str = "GATEWAY_REVIEW_NOTIFY_SECRET";
/// Notices waiting to be sent; beyond this they are dropped and counted.
pub const QUEUE: usize = 1024;
/// POSTs of one notice before it is given up.
pub const ATTEMPTS: u32 = 5;
/// A sender already notified is not notified again within this window.
pub const REPEAT_WINDOW_MS: i64 = 3_600_000;
/// Senders remembered for the repeat window; beyond this the oldest half
/// is forgotten (they may be notified once more).
const REMEMBERED: usize = 10_000;
/// First pause between attempts (doubling).
const FIRST_PAUSE: Duration = Duration::from_millis(500);

/// Semantic checks of the webhook keys of `[review]`, appended to
/// `problems`.
pub fn validate(review: &ReviewConfig, problems: &mut Vec<String>) {
    let Some(url) = &review.notify_url else {
        return;
    };
    if crate::delivery::callbacks::check_url(url).is_err() {
        problems.push("review.notify_url must be an absolute http(s) URL".into());
    }
}

/// The webhook target and secret, `None` when no URL is set. A URL
/// without a secret is a configuration error: an unsigned notice could be
/// forged by anyone who can reach the operator's endpoint.
pub fn target(review: &ReviewConfig) -> Result<Option<(String, Vec<u8>)>> {
    let Some(url) = &review.notify_url else {
        return Ok(None);
    };
    let secret = SecretRef {
        secret_env: review.notify_secret_env.clone(),
        secret_file: review.notify_secret_file.clone(),
    }
    .resolve(NOTIFY_SECRET_ENV)?
    .ok_or_else(|| {
        crate::core::error::Error::Config(format!(
            "review.notify_url is set but its secret is not: set {} (or review.notify_secret_env / notify_secret_file)",
            review.notify_secret_env.as_deref().unwrap_or(NOTIFY_SECRET_ENV)
        ))
    })?;
    Ok(Some((url.clone(), secret)))
}

/// One notice: what an operator needs to find the hold, nothing more.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HoldNotice {
    /// Always `hold`.
    pub event: &'static str,
    /// `suspect` (held) or `spam` (blocked).
    pub verdict: &'static str,
    /// The held message.
    pub message_id: String,
    /// Its sender.
    pub sender: String,
    /// `inbound` or `outbound`.
    pub direction: &'static str,
    /// The classifier's score.
    pub score: f32,
    /// Reason codes (evidence tags), never content.
    pub reasons: Vec<String>,
    /// When the gate decided (RFC 3339).
    pub at: String,
}

/// The sending side the spam gate holds: cheap to call on the message
/// path (a non-blocking queue push).
pub struct HoldNotifier {
    tx: mpsc::Sender<HoldNotice>,
    metrics: Arc<Metrics>,
    /// Senders notified, with when (Unix ms).
    notified: Mutex<HashMap<String, i64>>,
}

impl HoldNotifier {
    /// Queues a notice unless its sender had one within the repeat
    /// window; drops (logged, counted) when the queue is full.
    pub fn notify(&self, notice: HoldNotice, now_ms: i64) {
        if !self.first_in_window(&notice.sender, now_ms) {
            self.metrics.review_notify("repeat");
            return;
        }
        if self.tx.try_send(notice).is_err() {
            self.metrics.review_notify("dropped");
            tracing::warn!(
                queue = QUEUE,
                "hold webhook queue full: notice dropped (the hold itself is in the review queue)"
            );
        }
    }
}

impl HoldNotifier {
    /// Records the sender; false when it was notified within the window.
    fn first_in_window(&self, sender: &str, now_ms: i64) -> bool {
        let mut seen = self
            .notified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen
            .get(sender)
            .is_some_and(|&at| now_ms - at < REPEAT_WINDOW_MS)
        {
            return false;
        }
        if seen.len() >= REMEMBERED {
            let mut times: Vec<i64> = seen.values().copied().collect();
            times.sort_unstable();
            let cut = times[times.len() / 2];
            seen.retain(|_, at| *at > cut);
        }
        seen.insert(sender.to_string(), now_ms);
        true
    }
}

/// The notifier the spam gate holds and the queue [`run`] drains.
pub fn channel(metrics: Arc<Metrics>) -> (HoldNotifier, mpsc::Receiver<HoldNotice>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let notifier = HoldNotifier {
        tx,
        metrics,
        notified: Mutex::default(),
    };
    (notifier, rx)
}

/// Sends the queued notices one at a time until `shutdown` or until every
/// notifier handle is gone.
pub async fn run(
    url: String,
    secret: Vec<u8>,
    http: reqwest::Client,
    metrics: Arc<Metrics>,
    mut rx: mpsc::Receiver<HoldNotice>,
    shutdown: CancellationToken,
) {
    loop {
        let notice = tokio::select! {
            () = shutdown.cancelled() => return,
            n = rx.recv() => match n {
                Some(n) => n,
                None => return,
            },
        };
        let outcome = tokio::select! {
            () = shutdown.cancelled() => return,
            o = send(&http, &url, &secret, &notice) => o,
        };
        metrics.review_notify(outcome);
    }
}

/// POSTs one notice with retries; returns the outcome label.
async fn send(
    http: &reqwest::Client,
    url: &str,
    secret: &[u8],
    notice: &HoldNotice,
) -> &'static str {
    let Ok(body) = serde_json::to_vec(notice) else {
        return "failed";
    };
    let key = format!("hold-{}", notice.message_id);
    let mut pause = FIRST_PAUSE;
    for attempt in 1..=ATTEMPTS {
        let reason = match post_signed(http, url, secret, body.clone(), &key).await {
            Ok(Answer::Ok(_)) => return "sent",
            Ok(Answer::Failed {
                transient: false,
                reason,
            }) => {
                tracing::warn!(msg_id = %notice.message_id, reason, "hold webhook refused the notice");
                return "failed";
            }
            Ok(Answer::Failed { reason, .. }) | Err(reason) => reason,
        };
        tracing::info!(msg_id = %notice.message_id, attempt, reason, "hold webhook attempt failed");
        if attempt < ATTEMPTS {
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    }
    "failed"
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_url_without_a_secret_is_refused() {
        let cfg = ReviewConfig {
            notify_url: Some("http://127.0.0.1:9/holds".into()),
            notify_secret_env: Some("GATEWAY_TEST_HOLD_SECRET_THAT_IS_NOT_SET".into()),
            ..ReviewConfig::default()
        };
        let err = target(&cfg).unwrap_err().to_string();
        assert!(
            err.contains("GATEWAY_TEST_HOLD_SECRET_THAT_IS_NOT_SET"),
            "{err}"
        );
        assert!(target(&ReviewConfig::default()).unwrap().is_none());
    }

    #[test]
    fn one_notice_per_sender_per_window() {
        let (n, mut rx) = channel(Arc::new(Metrics::default()));
        let notice = |sender: &str| HoldNotice {
            event: "hold",
            verdict: "suspect",
            message_id: "m".into(),
            sender: sender.into(),
            direction: "inbound",
            score: 0.9,
            reasons: Vec::new(),
            at: String::new(),
        };
        n.notify(notice("+1"), 0);
        n.notify(notice("+1"), 1_000);
        n.notify(notice("+2"), 1_000);
        n.notify(notice("+1"), REPEAT_WINDOW_MS + 1);
        let mut got = Vec::new();
        while let Ok(x) = rx.try_recv() {
            got.push(x.sender);
        }
        assert_eq!(got, ["+1", "+2", "+1"]);
    }

    #[test]
    fn a_relative_url_is_a_config_problem() {
        let mut problems = Vec::new();
        validate(
            &ReviewConfig {
                notify_url: Some("/holds".into()),
                ..ReviewConfig::default()
            },
            &mut problems,
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
    }
}
