//! Messages without content at rest (`[privacy] no_content_at_rest`,
//! `transit_only`): their store row holds metadata only, and the sealed
//! envelope travels here, in memory, from acceptance to the next hop.
//!
//! Each job is carried by its own task: attempts through the same routes as
//! the queue worker, retried with backoff until the job's deadline; then the
//! message is `failed` with `content_not_retained` (nothing is left to try
//! with later). There is no queue row and no dead letter: both would need the
//! body on disk. A crash loses the jobs in flight; the retention sweep fails
//! their rows once the deadline has passed (`Store::fail_stale_transit`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::route::SendOutcome;
use super::{Worker, attempt, backoff_ms, route_of};
use crate::store::privacy::NOT_RETAINED;
use crate::store::{MessageStatus, QueueItem, StatusReport};

/// Jobs waiting for a carrier task at most; past it a message fails at once.
pub const CAPACITY: usize = 8192;

/// One message to carry, with its envelope.
pub struct TransitJob {
    /// The message and its sealed body (never written to disk).
    pub item: QueueItem,
    /// When it must have been handed over.
    pub deadline: Instant,
    /// Told whether the next hop took it, after its status is committed
    /// (an inbound webhook waits for this before answering the carrier).
    pub done: Option<oneshot::Sender<bool>>,
}

/// Runs until `shutdown`, carrying each job in its own task.
pub async fn run(w: Arc<Worker>, mut rx: mpsc::Receiver<TransitJob>, shutdown: CancellationToken) {
    let mut tasks = JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        let job = tokio::select! {
            j = rx.recv() => match j { Some(j) => j, None => break },
            () = shutdown.cancelled() => break,
        };
        let w = w.clone();
        let span = tracing::debug_span!("transit", msg_id = %job.item.message_id);
        tasks.spawn(async move { carry(&w, job).await }.instrument(span));
    }
    // Nothing new is taken: a hand-off now fails at once, and a job still
    // waiting in the channel is dropped (its waiter hears `false`; an
    // outbound row is failed by the sweep after the next start).
    rx.close();
    while rx.try_recv().is_ok() {}
    // In flight at shutdown: each ends by its deadline at the latest.
    let drain = async { while tasks.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(
        Duration::from_secs(w.config.request_timeout_secs + 2),
        drain,
    )
    .await;
}

/// Attempts `job` until the next hop takes it or its deadline passes, then
/// records the outcome and tells whoever waits.
async fn carry(w: &Worker, mut job: TransitJob) {
    let target = route_of(&job.item.target).into_owned();
    let id = job.item.message_id.clone();
    let outcome = loop {
        let left = job.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Err("not handed over within the transit deadline".to_string());
        }
        let error = match tokio::time::timeout(left, attempt(w, &target, &job.item)).await {
            Err(_) => break Err("not handed over within the transit deadline".into()),
            Ok(Ok(SendOutcome::Accepted { status, carrier_id })) => break Ok((status, carrier_id)),
            Ok(Ok(SendOutcome::Permanent(e))) => break Err(e),
            Ok(Err(e)) if !e.is_transient() => break Err(e.to_string()),
            Ok(Ok(SendOutcome::Retry(e))) => e,
            Ok(Err(e)) => e.to_string(),
        };
        job.item.attempts += 1;
        tracing::debug!(error = %error, attempts = job.item.attempts, "transit attempt failed; retrying");
        let pause = Duration::from_millis(backoff_ms(&w.config, job.item.attempts).max(1) as u64);
        tokio::time::sleep(pause.min(left)).await;
    };
    let attempts = job.item.attempts + 1;
    let took = match outcome {
        Ok((status, carrier_id)) => {
            let report = StatusReport {
                status,
                detail: Some(format!("attempt {attempts}")),
                carrier_id,
                part: None,
                finish_queue: true,
            };
            record(w.outcomes.report(id.clone(), report).await);
            true
        }
        Err(error) => {
            tracing::warn!(
                msg_id = %id,
                target,
                attempts,
                error = %error,
                code = NOT_RETAINED,
                "transit message not handed over before its deadline"
            );
            // The reason first: whoever sees `failed` sees why (in the
            // other order a status poll could find `failed` with no
            // `last_error` yet; CI did once).
            record(w.store.not_retained(id.clone()).await);
            let report = StatusReport::new(
                MessageStatus::Failed,
                Some(format!("{NOT_RETAINED}: {error}")),
            );
            record(w.outcomes.report(id, report).await);
            false
        }
    };
    if let Some(done) = job.done.take() {
        let _ = done.send(took);
    }
}

fn record(r: crate::core::error::Result<()>) {
    if let Err(e) = r {
        tracing::error!(error = %e, "recording a transit outcome failed");
    }
}
