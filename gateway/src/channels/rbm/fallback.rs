//! The durable SMS fallback of `auto` RCS messages.
//!
//! A row of `rcs_fallback` is written with the message, in the same
//! transaction, due `fallback_secs` later. This task takes due rows (and
//! rows whose RCS send was dead-lettered, at once) and:
//! 1. drops the row when the message was DELIVERED (the webhook also drops
//!    it, in the transaction that records the delivery) or expired;
//! 2. otherwise marks it `revoking` (durably) and revokes the agent message
//!    at RBM (`DELETE`), so the user cannot get both;
//! 3. if RBM revoked it, or it never took it, queues the message on the SMS
//!    route in one transaction that also deletes the row: the SMS is queued
//!    exactly once however often this runs, and a crash anywhere leaves
//!    either the row (done again after the restart) or the queue entry.
//!
//! RBM answers 404 to a revoke both when the message was delivered and when
//! it was revoked already. A 404 on the first try of a message RBM accepted
//! means delivered (the DELIVERED event is on its way): no SMS. A 404 after
//! an earlier try that may have gone through (the row says `revoking`, the
//! process died before the commit) is taken as our own revoke: SMS.
//!
//! Every step is an event in the message's history.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use std::sync::Arc;

use super::Rcs;
use super::route::{Revoke, revoke};
use crate::core::error::Result;
use crate::pipeline::Pipeline;
use crate::store::MessageStatus;
use crate::store::fallback::DueFallback as Due;

/// How often due timers are looked for.
const POLL: Duration = Duration::from_millis(200);
/// Revoke attempts before the fallback is given up.
const MAX_REVOKE_ATTEMPTS: u32 = 10;
/// Rows handled per poll.
const BATCH: i64 = 64;

async fn drop_row(
    p: &Pipeline,
    id: String,
    event_status: Option<(&'static str, String)>,
) -> Result<()> {
    p.store.drop_fallback(id, event_status).await
}

/// Queues the SMS: deletes the timer and (re)places the queue entry in one
/// transaction; nothing happens if the timer is already gone.
async fn queue_sms(p: &Pipeline, d: &Due, why: String) -> Result<bool> {
    let done = p
        .store
        .queue_fallback_sms(d.id.clone(), d.sms_route.clone(), why)
        .await?;
    if done {
        p.handoff.wake();
    }
    Ok(done)
}

async fn handle(p: &Pipeline, rcs: &Rcs, d: Due) -> Result<()> {
    let secs = rcs.config.fallback_secs;
    match d.status {
        MessageStatus::Delivered | MessageStatus::Expired | MessageStatus::Refused => {
            return drop_row(p, d.id, None).await;
        }
        _ => {}
    }
    if d.status == MessageStatus::Dead && !d.accepted {
        // RBM refused the message for good: nothing to revoke.
        let why = format!(
            "RCS send failed ({}); sending as SMS",
            d.last_error.as_deref().unwrap_or("dead-lettered")
        );
        queue_sms(p, &d, why).await?;
        return Ok(());
    }
    // Mark the revoke durably before making it, so a crash after RBM
    // revoked is recognised (see the module docs).
    if !d.revoking {
        p.store.fallback_revoking(d.id.clone()).await?;
    }
    match revoke(rcs, &d.to, &d.id).await {
        Revoke::Revoked => {
            let why = format!("no RCS delivery within {secs} s; revoked at RBM");
            queue_sms(p, &d, why).await?;
        }
        Revoke::NotFound if !d.accepted || d.revoking => {
            let why = if d.accepted {
                format!("no RCS delivery within {secs} s; revoked at RBM (earlier try)")
            } else {
                format!("RCS not sent within {secs} s; sending as SMS")
            };
            queue_sms(p, &d, why).await?;
        }
        Revoke::NotFound => {
            drop_row(
                p,
                d.id,
                Some((
                    "fallback_cancelled",
                    "RBM could not revoke: the message was already delivered".into(),
                )),
            )
            .await?;
        }
        Revoke::Retry(error) => {
            let attempts = d.attempts + 1;
            if attempts >= MAX_REVOKE_ATTEMPTS {
                tracing::warn!(msg_id = %d.id, attempts, error = %error, "RBM revoke kept failing; SMS fallback given up");
                drop_row(
                    p,
                    d.id,
                    Some((
                        "fallback_failed",
                        format!("revoke failed {attempts} times: {error}"),
                    )),
                )
                .await?;
            } else {
                let next = crate::core::clock::now_ms() + (500i64 << attempts.min(7));
                p.store
                    .fallback_retry(d.id.clone(), attempts, next, error)
                    .await?;
            }
        }
    }
    Ok(())
}

/// Runs until `shutdown`.
pub async fn run(p: Arc<Pipeline>, rcs: Arc<Rcs>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = shutdown.cancelled() => return,
        }
        let rows = match p
            .store
            .due_fallbacks(crate::core::clock::now_ms(), BATCH)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "reading RCS fallback timers failed");
                continue;
            }
        };
        for d in rows {
            let id = d.id.clone();
            if let Err(e) = handle(&p, &rcs, d).await {
                tracing::error!(msg_id = %id, error = %e, "RCS fallback step failed; it will be tried again");
            }
            if shutdown.is_cancelled() {
                return;
            }
        }
    }
}
