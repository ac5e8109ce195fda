//! The delivery queue worker: takes due entries from the store's queue table,
//! sends them (out through a route, or to the private side), and records the
//! outcome. Failures are retried with exponential backoff and jitter until an
//! attempt or age limit dead-letters them.
//!
//! The queue lives in SQLite, not in memory: only the entries in flight are
//! held here, so a long outage grows the database, not the process. A crash
//! between a send and its commit re-sends with the same attempt id, which the
//! receiver can use to drop the duplicate.

pub mod config;
pub mod http;
pub mod route;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::core::clock;
use crate::core::error::{Error, Result};
use crate::delivery::http::{Answer, post_signed};
use crate::delivery::route::{OutboundSms, SendOutcome};
use crate::envelope::{Content, Envelope};
use crate::state::AppState;
use crate::store::{QueueItem, StatusReport, Target};

/// Most due entries fetched per poll.
const FETCH: usize = 512;
/// Longest sleep between polls when nothing wakes the worker.
const IDLE_POLL: Duration = Duration::from_millis(500);

/// Hands freshly committed queue entries straight to the worker, so the
/// common case (deliver now) needs no database poll. The database stays the
/// source of truth: an entry that does not fit in the channel, or that was in
/// it when the process died, is found by the poller.
#[derive(Clone)]
pub struct Dispatch {
    tx: tokio::sync::mpsc::Sender<QueueItem>,
    in_flight: Arc<Mutex<HashSet<String>>>,
}

/// The worker's end of [`Dispatch`].
pub struct DispatchRx {
    rx: tokio::sync::mpsc::Receiver<QueueItem>,
    in_flight: Arc<Mutex<HashSet<String>>>,
}

/// Entries waiting in the fast-path channel at most.
const FAST_PATH_CAPACITY: usize = 8192;

impl Dispatch {
    /// A connected pair.
    pub fn new() -> (Self, DispatchRx) {
        let (tx, rx) = tokio::sync::mpsc::channel(FAST_PATH_CAPACITY);
        let in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
        (
            Self {
                tx,
                in_flight: in_flight.clone(),
            },
            DispatchRx { rx, in_flight },
        )
    }

    /// Offers a just-committed entry; returns false when the poller must pick it up.
    pub fn offer(&self, item: QueueItem) -> bool {
        let id = item.message_id.clone();
        // Mark it in flight before it is visible to the poller's filter.
        match self.in_flight.lock() {
            Ok(mut s) => {
                s.insert(id.clone());
            }
            Err(_) => return false,
        }
        if self.tx.try_send(item).is_ok() {
            return true;
        }
        if let Ok(mut s) = self.in_flight.lock() {
            s.remove(&id);
        }
        false
    }
}

/// Runs until `shutdown` fires, then waits for in-flight sends to finish.
pub async fn run(state: AppState, mut fast: DispatchRx, shutdown: CancellationToken) {
    let http = state.http.clone();
    let limit = Arc::new(Semaphore::new(state.config.delivery.concurrency));
    let in_flight = fast.in_flight.clone();
    let mut tasks = JoinSet::new();
    let mut next_poll = tokio::time::Instant::now();
    'outer: loop {
        while tasks.try_join_next().is_some() {}
        let mut batch = Vec::new();
        if tokio::time::Instant::now() >= next_poll {
            let exclude: HashSet<String> = in_flight.lock().map(|s| s.clone()).unwrap_or_default();
            let polled_at = clock::now_ms();
            match state.store.due(polled_at, FETCH, exclude).await {
                Ok(mut due) => {
                    let full = due.len() >= FETCH;
                    if let Ok(mut s) = in_flight.lock() {
                        // The query ran after the snapshot it excluded: an
                        // entry committed and offered to the fast path in
                        // between is in flight now, and is sent from there.
                        due.retain(|item| s.insert(item.message_id.clone()));
                    }
                    batch = due;
                    next_poll = if full {
                        tokio::time::Instant::now()
                    } else {
                        let wait = match state.store.next_due_after(polled_at).await {
                            Ok(Some(at)) => {
                                (at - clock::now_ms()).clamp(5, IDLE_POLL.as_millis() as i64) as u64
                            }
                            _ => IDLE_POLL.as_millis() as u64,
                        };
                        tokio::time::Instant::now() + Duration::from_millis(wait)
                    };
                }
                Err(e) => {
                    tracing::error!(error = %e, "reading the delivery queue failed");
                    next_poll = tokio::time::Instant::now() + IDLE_POLL;
                }
            }
        }
        if batch.is_empty() {
            tokio::select! {
                item = fast.rx.recv() => match item {
                    Some(item) => batch.push(item),
                    None => break 'outer,
                },
                () = state.queue_notify.notified() => { next_poll = tokio::time::Instant::now(); }
                () = tokio::time::sleep_until(next_poll) => {}
                () = shutdown.cancelled() => break 'outer,
            }
            while batch.len() < FETCH {
                match fast.rx.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(_) => break,
                }
            }
        }
        for item in batch {
            let permit = tokio::select! {
                p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break 'outer },
                () = shutdown.cancelled() => {
                    // Not started: it stays queued in the database.
                    if let Ok(mut s) = in_flight.lock() { s.remove(&item.message_id); }
                    continue;
                }
            };
            let (state, http, in_flight) = (state.clone(), http.clone(), in_flight.clone());
            tasks.spawn(async move {
                let id = item.message_id.clone();
                let span =
                    tracing::debug_span!("deliver", msg_id = %id, attempt = item.attempts + 1);
                deliver(&state, &http, item).instrument(span).await;
                if let Ok(mut s) = in_flight.lock() {
                    s.remove(&id);
                }
                drop(permit);
            });
        }
        if shutdown.is_cancelled() {
            break;
        }
    }
    // Graceful shutdown: in-flight sends finish and record their outcome;
    // anything not started stays queued in the database for the next start.
    let pending = tasks.len();
    if pending > 0 {
        tracing::info!(pending, "waiting for in-flight deliveries");
    }
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(
        Duration::from_secs(state.config.delivery.request_timeout_secs + 2),
        drain,
    )
    .await
    .is_err()
    {
        tracing::warn!(
            "in-flight deliveries did not finish in time; they stay queued and will be retried"
        );
    }
}

/// One attempt of `item` and what it came to: a status through the status
/// path (the queue entry goes with it), a retry later, or a dead letter.
async fn deliver(state: &AppState, http: &reqwest::Client, item: QueueItem) {
    let target_name = match &item.target {
        Target::Route(r) => r.clone(),
        Target::Private => "private".to_string(),
        Target::Smpp(c) => format!("smpp-client:{c}"),
    };
    let outcome = match attempt(state, http, &item).await {
        Ok(o) => o,
        Err(e) if e.is_transient() => SendOutcome::Retry(e.to_string()),
        Err(e) => SendOutcome::Permanent(e.to_string()),
    };
    let now = clock::now_ms();
    let id = item.message_id.clone();
    let attempts = item.attempts + 1;
    let cfg = &state.config.delivery;
    let too_old = now - item.created_at > (cfg.max_age_secs as i64) * 1000;
    let count = |outcome: &'static str| {
        state
            .metrics
            .attempts
            .get_or_create(&crate::core::metrics::AttemptLabels {
                target: target_name.clone(),
                outcome,
            })
            .inc();
    };
    let record = match outcome {
        SendOutcome::Accepted { status, carrier_id } => {
            count("ok");
            let report = StatusReport {
                status,
                detail: Some(format!("attempt {attempts}")),
                carrier_id,
                part: None,
                finish_queue: true,
            };
            state.status.report(id, report).await.map(|_| ())
        }
        SendOutcome::Retry(error) | SendOutcome::Permanent(error)
            if attempts >= cfg.max_attempts || too_old =>
        {
            dead(state, &target_name, id, attempts, error).await
        }
        SendOutcome::Permanent(error) => dead(state, &target_name, id, attempts, error).await,
        SendOutcome::Retry(error) => {
            count("retry");
            let next = now + backoff_ms(cfg, attempts);
            tracing::debug!(error = %error, "delivery failed; will retry");
            let written = state.store.reschedule(id, attempts, next, error).await;
            // The poller may be sleeping past `next`: let it recompute its wait.
            state.queue_notify.notify_one();
            written
        }
    };
    if let Err(e) = record {
        tracing::error!(error = %e, msg_id = %item.message_id, "recording a delivery outcome failed; it will be retried");
    }
}

async fn dead(
    state: &AppState,
    target: &str,
    id: String,
    attempts: u32,
    error: String,
) -> Result<()> {
    state
        .metrics
        .attempts
        .get_or_create(&crate::core::metrics::AttemptLabels {
            target: target.to_string(),
            outcome: "dead",
        })
        .inc();
    tracing::warn!(msg_id = %id, target, attempts, error = %error, "message dead-lettered");
    state.status.dead_letter(id, attempts, error).await
}

/// Exponential backoff with "equal jitter": half fixed, half random, so
/// retries from an outage spread out instead of arriving together.
pub fn backoff_ms(cfg: &config::DeliveryConfig, attempts: u32) -> i64 {
    let base =
        cfg.initial_backoff_ms.max(1) as f64 * 2f64.powi(attempts.saturating_sub(1).min(30) as i32);
    let capped = base.min(cfg.max_backoff_secs as f64 * 1000.0);
    let jitter = rand::rng().random_range(0.0..=0.5);
    (capped * (0.5 + jitter)) as i64
}

async fn attempt(
    state: &AppState,
    http: &reqwest::Client,
    item: &QueueItem,
) -> Result<SendOutcome> {
    let Some(sealed) = &item.sealed else {
        return Ok(SendOutcome::Permanent("body erased at expiry".into()));
    };
    let env = Envelope::from_parts(&item.header, sealed)?;
    let attempt_id = format!("{}#{}", item.message_id, item.attempts + 1);
    match &item.target {
        Target::Private => {
            let Some(url) = state.config.private_side.webhook_url.as_deref() else {
                return Ok(SendOutcome::Retry(
                    "no private-side webhook configured".into(),
                ));
            };
            let body = serde_json::to_vec(&serde_json::json!({
                "id": item.message_id,
                "attempt_id": attempt_id,
                "envelope": env.to_base64(),
            }))
            .map_err(|e| Error::Permanent(e.to_string()))?;
            let secret = state.secrets.private.as_deref().unwrap_or_default();
            Ok(
                match post_signed(http, url, secret, body, &attempt_id).await {
                    Ok(Answer::Ok(_)) => SendOutcome::Accepted {
                        status: crate::store::MessageStatus::Delivered,
                        carrier_id: None,
                    },
                    Ok(Answer::Failed {
                        transient: true,
                        reason,
                    })
                    | Err(reason) => SendOutcome::Retry(reason),
                    Ok(Answer::Failed {
                        transient: false,
                        reason,
                    }) => SendOutcome::Permanent(reason),
                },
            )
        }
        Target::Smpp(system_id) => {
            let key = state.edge_key(&env.header.kid)?;
            let content = state.opener.open(&env, &key.private)?;
            if let Content::Data { .. } = content {
                // deliver_sm towards server clients carries text only.
                return Ok(SendOutcome::Permanent(
                    "8-bit data is not delivered to SMPP server clients".into(),
                ));
            }
            let text = crate::rcs::sms_text(state, &content);
            Ok(state
                .smpp
                .deliver_to_client(state, system_id, &item.message_id, &env.header, &text)
                .await)
        }
        Target::Route(name) => {
            let Some(route) = state.routes.get(name) else {
                return Ok(SendOutcome::Retry(format!(
                    "route {name} is not configured"
                )));
            };
            let key = state.edge_key(&env.header.kid)?;
            let content = state.opener.open(&env, &key.private)?;
            // RCS content on an SMS route goes as its SMS rendering.
            let (header, content) = crate::rcs::for_route(state, name, &env.header, content);
            Ok(route
                .send(OutboundSms {
                    id: &item.message_id,
                    attempt_id: &attempt_id,
                    header: &header,
                    content: &content,
                })
                .await)
        }
    }
}
