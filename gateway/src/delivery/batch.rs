//! Batched delivery: many messages for one route in one signed request,
//! for far ends that speak a batch form (`[generic] batch_max`,
//! `[private_side] batch_max`; wire shapes in `adapters::generic`).
//!
//! Why: one POST per message made the delivery client about a fifth of the
//! gateway's CPU per message (a request's headers, signature, connection
//! bookkeeping and a task each), and as much again at the far end. A batch
//! pays those once.
//!
//! How a batch forms: the worker takes the first waiting entry and the
//! waiting entries for the same route behind it, up to `batch_max`. While
//! every send permit is out, entries pile up, so batches fill by
//! themselves under load and stay small (down to one) when traffic is
//! light; `batch_linger_ms` (default 0) lets a batch that is not full wait
//! that long for more, trading latency for fuller batches.
//!
//! What does not change: each message keeps its own attempt id
//! (`<id>#<attempt>`), its own outcome and its own retry schedule. A
//! message the far end refuses in its result is retried or given up alone,
//! by the same rule as a single send's HTTP status; a batch that fails as a
//! whole (timeout, refused connection, a non-2xx answer) fails every
//! message in it as that single send would have. The outcomes of one batch
//! are recorded in one store job (one commit).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use adapters::generic::{BatchAnswer, BatchResult};
use tokio::sync::mpsc::Receiver;
use tokio_util::sync::CancellationToken;

use super::http::{Answer, accepted_body, is_transient};
use super::route::SendOutcome;
use super::{Prepared, Worker, decide, failed, prepare, record, route_of};
use crate::store::QueueItem;

/// Largest `batch_max` a configuration may ask for.
pub const MAX_BATCH: usize = 1000;
/// Longest `batch_linger_ms` a configuration may ask for.
pub const MAX_LINGER_MS: u64 = 1000;

/// How a route takes batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// Messages per request at most (1: no batches).
    pub max: usize,
    /// How long a batch that is not full may wait for more.
    pub linger: Duration,
}

impl Batching {
    /// One message per request.
    pub const SINGLE: Self = Self {
        max: 1,
        linger: Duration::ZERO,
    };

    /// From a configuration's `batch_max` and `batch_linger_ms`.
    pub fn new(max: usize, linger_ms: u64) -> Self {
        Self {
            max: max.max(1),
            linger: Duration::from_millis(linger_ms),
        }
    }
}

/// Checks a section's `batch_max` and `batch_linger_ms`, appending to
/// `problems`.
pub fn validate(section: &str, max: usize, linger_ms: u64, problems: &mut Vec<String>) {
    if max == 0 || max > MAX_BATCH {
        problems.push(format!("{section}.batch_max must be 1..={MAX_BATCH}"));
    }
    if linger_ms > MAX_LINGER_MS {
        problems.push(format!(
            "{section}.batch_linger_ms must be at most {MAX_LINGER_MS}"
        ));
    }
}

/// Moves what the fast path holds right now into `pending` (bounded, so
/// the poller still gets its turn).
pub(super) fn take_ready(rx: &mut Receiver<QueueItem>, pending: &mut VecDeque<QueueItem>) {
    while pending.len() < super::FETCH {
        match rx.try_recv() {
            Ok(item) => pending.push_back(item),
            Err(_) => break,
        }
    }
}

/// A batch for `target` starting with `first`: the waiting entries for the
/// same route (others keep their place), then, while it is not full, what
/// arrives within the linger time.
pub(super) async fn gather(
    first: QueueItem,
    target: &str,
    batching: Batching,
    rx: &mut Receiver<QueueItem>,
    pending: &mut VecDeque<QueueItem>,
    shutdown: &CancellationToken,
) -> Vec<QueueItem> {
    let mut items = vec![first];
    take_ready(rx, pending);
    take_same_route(target, batching.max, &mut items, pending);
    if items.len() >= batching.max || batching.linger.is_zero() {
        return items;
    }
    let deadline = tokio::time::Instant::now() + batching.linger;
    while items.len() < batching.max {
        tokio::select! {
            item = rx.recv() => match item {
                Some(item) if route_of(&item.target) == target => items.push(item),
                Some(item) => pending.push_back(item),
                None => break,
            },
            () = tokio::time::sleep_until(deadline) => break,
            () = shutdown.cancelled() => break,
        }
    }
    items
}

/// Moves entries for `target` from `pending` into `items`, up to `max`.
fn take_same_route(
    target: &str,
    max: usize,
    items: &mut Vec<QueueItem>,
    pending: &mut VecDeque<QueueItem>,
) {
    if items.len() >= max || pending.is_empty() {
        return;
    }
    let mut rest = VecDeque::with_capacity(pending.len());
    for item in pending.drain(..) {
        if items.len() < max && route_of(&item.target) == target {
            items.push(item);
        } else {
            rest.push_back(item);
        }
    }
    *pending = rest;
}

/// One attempt of each of `items` through the route `target` in one
/// request, and their outcomes recorded in one store job.
pub(super) async fn deliver_batch(w: &Worker, target: &str, items: Vec<QueueItem>) {
    let mut sent: Vec<Option<SendOutcome>> = vec![None; items.len()];
    if let Some(route) = w.routes.get(target) {
        let mut prepared: Vec<(usize, Prepared)> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match prepare(w, target, route.as_ref(), item) {
                Ok(Ok(p)) => prepared.push((i, p)),
                Ok(Err(outcome)) => sent[i] = Some(outcome),
                Err(e) => sent[i] = Some(failed(e)),
            }
        }
        if !prepared.is_empty() {
            let msgs = prepared
                .iter()
                .map(|(i, p)| p.message(&items[*i], target))
                .collect();
            let mut outcomes = route.send_batch(msgs).await.into_iter();
            for (i, _) in &prepared {
                sent[*i] = outcomes.next();
            }
        }
        // The plaintext (for routes that open) goes here.
        drop(prepared);
    }
    let mut reschedules = false;
    let decided: Vec<_> = items
        .iter()
        .zip(sent)
        .map(|(item, outcome)| {
            let outcome = outcome
                .unwrap_or_else(|| SendOutcome::Retry(format!("route {target} is not configured")));
            let d = decide(w, target, item, outcome);
            reschedules |= matches!(d, crate::store::outcomes::Outcome::Reschedule { .. });
            (item.message_id.clone(), d)
        })
        .collect();
    if let Err(e) = w.outcomes.record_all(decided.clone()).await {
        // One outcome that cannot be written fails the batch's job as a
        // whole: record them one by one, so the others still go through.
        tracing::warn!(error = %e, n = decided.len(), "recording a batch's outcomes together failed; recording them one by one");
        for (id, outcome) in decided {
            if let Err(e) = record(w, id.clone(), outcome).await {
                tracing::error!(error = %e, msg_id = %id, "recording a delivery outcome failed; it will be retried");
            }
        }
    }
    if reschedules {
        // The poller may be sleeping past the retries: let it recompute its wait.
        w.notify.notify_one();
    }
}

/// What a batch's answer says of each message, in the order of `ids`: its
/// result when the far end accepted it, else the outcome of its attempt.
/// A failed answer as a whole fails every message as it would fail a
/// single send; a message the answer does not mention is retried.
pub fn results(
    ids: &[&str],
    answer: Result<Answer, String>,
) -> Vec<Result<BatchResult, SendOutcome>> {
    let all = |o: SendOutcome| ids.iter().map(|_| Err(o.clone())).collect();
    let body = match accepted_body(answer) {
        Ok(body) => body,
        Err(outcome) => return all(outcome),
    };
    let Ok(answer) = serde_json::from_slice::<BatchAnswer>(&body) else {
        return all(SendOutcome::Retry("unreadable batch answer".into()));
    };
    let mut by_id: HashMap<String, BatchResult> = answer
        .results
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    ids.iter()
        .map(|id| {
            let Some(r) = by_id.remove(*id) else {
                return Err(SendOutcome::Retry("no result in the batch answer".into()));
            };
            match r.code.unwrap_or(200) {
                200..=299 => Ok(r),
                code if is_transient(code) => Err(SendOutcome::Retry(format!("HTTP {code}"))),
                code => Err(SendOutcome::Permanent(format!("HTTP {code}"))),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_batch_answer_is_read_per_message_like_single_sends() {
        let body = br#"{"results":[{"id":"a","carrier_id":"c1"},{"id":"b","code":400},
                       {"id":"c","code":503},{"id":"d","code":202,"status":"delivered"}]}"#;
        let r = results(&["a", "b", "c", "d", "e"], Ok(Answer::Ok(body.to_vec())));
        assert_eq!(r[0].as_ref().unwrap().carrier_id.as_deref(), Some("c1"));
        assert_eq!(r[1], Err(SendOutcome::Permanent("HTTP 400".into())));
        assert_eq!(r[2], Err(SendOutcome::Retry("HTTP 503".into())));
        assert_eq!(r[3].as_ref().unwrap().status.as_deref(), Some("delivered"));
        assert!(
            matches!(r[4], Err(SendOutcome::Retry(_))),
            "not mentioned: retried"
        );
        // A failed answer fails each message as a single send.
        let down = Answer::Failed {
            transient: true,
            reason: "HTTP 502".into(),
        };
        assert!(
            results(&["a", "b"], Ok(down))
                .iter()
                .all(|r| *r == Err(SendOutcome::Retry("HTTP 502".into())))
        );
        assert!(
            results(&["a"], Err("timeout".into()))
                .iter()
                .all(|r| *r == Err(SendOutcome::Retry("timeout".into())))
        );
        assert!(matches!(
            results(&["a"], Ok(Answer::Ok(b"not json".to_vec())))[0],
            Err(SendOutcome::Retry(_))
        ));
    }
}
