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

use rusqlite::{OptionalExtension, Transaction, params};
use tokio_util::sync::CancellationToken;

use super::route::{Revoke, revoke};
use crate::core::error::Result;
use crate::state::AppState;

/// How often due timers are looked for.
const POLL: Duration = Duration::from_millis(200);
/// Revoke attempts before the fallback is given up.
const MAX_REVOKE_ATTEMPTS: u32 = 10;
/// Rows handled per poll.
const BATCH: i64 = 64;

/// Writes the timer of message `id`: the SMS route and when it is due.
pub fn schedule(tx: &Transaction<'_>, id: &str, sms_route: &str, due_at: i64) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO rcs_fallback (message_id, sms_route, due_at, state, attempts) \
         VALUES (?1, ?2, ?3, 'pending', 0)",
    )?
    .execute(params![id, sms_route, due_at])?;
    Ok(())
}

fn event(tx: &Transaction<'_>, id: &str, now: i64, status: &str, detail: &str) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO message_events (message_id, at, status, detail) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![id, now, status, detail])?;
    Ok(())
}

/// Records an RBM device event for message `id` (our id is RBM's
/// `messageId`): DELIVERED makes it delivered and cancels its fallback in
/// the same transaction; READ adds a `read` event (and delivered, which it
/// implies). Repeated events change nothing. Returns `None` for an unknown
/// id, else whether the message became delivered just now.
pub async fn record_event(
    state: &AppState,
    id: String,
    kind: adapters::rcs::rbm::EventKind,
) -> Result<Option<bool>> {
    use adapters::rcs::rbm::EventKind;
    let now = crate::core::clock::now_ms();
    let found = state
        .store
        .writer()
        .write(move |tx| {
            let status: Option<String> = tx
                .prepare_cached(
                    "SELECT status FROM messages WHERE id = ?1 AND direction = 'outbound'",
                )?
                .query_row(params![id], |r| r.get(0))
                .optional()?;
            let Some(status) = status else {
                return Ok(None);
            };
            let cancelled = tx
                .prepare_cached("DELETE FROM rcs_fallback WHERE message_id = ?1")?
                .execute(params![id])?;
            let newly = status != "delivered";
            if newly {
                tx.prepare_cached(
                    "UPDATE messages SET status = 'delivered', updated_at = ?2 WHERE id = ?1",
                )?
                .execute(params![id, now])?;
                let detail = if cancelled > 0 {
                    "RBM DELIVERED; SMS fallback cancelled"
                } else {
                    "RBM DELIVERED"
                };
                event(tx, &id, now, "delivered", detail)?;
            }
            if kind == EventKind::Read {
                let seen: i64 = tx
                    .prepare_cached(
                        "SELECT COUNT(*) FROM message_events WHERE message_id = ?1 AND status = 'read'",
                    )?
                    .query_row(params![id], |r| r.get(0))?;
                if seen == 0 {
                    event(tx, &id, now, "read", "RBM READ")?;
                }
            }
            Ok(Some(newly))
        })
        .await?;
    Ok(found)
}

struct Due {
    id: String,
    sms_route: String,
    revoking: bool,
    attempts: u32,
    status: String,
    accepted: bool,
    to: String,
    last_error: Option<String>,
}

async fn due(state: &AppState, now: i64) -> Result<Vec<Due>> {
    state
        .store
        .read(move |c| {
            let rows = c
                .prepare_cached(
                    "SELECT f.message_id, f.sms_route, f.state, f.attempts, m.status, m.carrier_id IS NOT NULL, \
                     m.recipient, m.last_error FROM rcs_fallback f JOIN messages m ON m.id = f.message_id \
                     WHERE f.due_at <= ?1 OR m.status = 'dead' ORDER BY f.due_at LIMIT ?2",
                )?
                .query_map(params![now, BATCH], |r| {
                    Ok(Due {
                        id: r.get(0)?,
                        sms_route: r.get(1)?,
                        revoking: r.get::<_, String>(2)? == "revoking",
                        attempts: r.get(3)?,
                        status: r.get(4)?,
                        accepted: r.get(5)?,
                        to: r.get(6)?,
                        last_error: r.get(7)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
        .await
}

async fn drop_row(
    state: &AppState,
    id: String,
    event_status: Option<(&'static str, String)>,
) -> Result<()> {
    let now = crate::core::clock::now_ms();
    state
        .store
        .writer()
        .write(move |tx| {
            let n = tx
                .prepare_cached("DELETE FROM rcs_fallback WHERE message_id = ?1")?
                .execute(params![id])?;
            if let (1.., Some((status, detail))) = (n, event_status) {
                event(tx, &id, now, status, &detail)?;
            }
            Ok(())
        })
        .await
}

/// Queues the SMS: deletes the timer and (re)places the queue entry in one
/// transaction; nothing happens if the timer is already gone.
async fn queue_sms(state: &AppState, d: &Due, why: String) -> Result<bool> {
    let now = crate::core::clock::now_ms();
    let (id, route) = (d.id.clone(), d.sms_route.clone());
    let done = state
        .store
        .writer()
        .write(move |tx| {
            let n = tx
                .prepare_cached("DELETE FROM rcs_fallback WHERE message_id = ?1")?
                .execute(params![id])?;
            if n == 0 {
                return Ok(false);
            }
            let target = crate::store::Target::Route(route.clone()).as_db();
            tx.prepare_cached(
                "INSERT OR REPLACE INTO queue (message_id, target, next_attempt_at, attempts, last_error, dead) \
                 VALUES (?1, ?2, ?3, 0, NULL, 0)",
            )?
            .execute(params![id, target, now])?;
            tx.prepare_cached(
                "UPDATE messages SET channel = 'sms', adapter = ?2, status = 'queued', last_error = NULL, \
                 updated_at = ?3 WHERE id = ?1",
            )?
            .execute(params![id, route, now])?;
            event(tx, &id, now, "fallback", &why)?;
            event(tx, &id, now, "queued", &format!("SMS fallback via route {route}"))?;
            Ok(true)
        })
        .await?;
    if done {
        state.queue_notify.notify_one();
    }
    Ok(done)
}

async fn handle(state: &AppState, rcs: &super::Rcs, d: Due) -> Result<()> {
    let secs = rcs.config.fallback_secs;
    match d.status.as_str() {
        "delivered" => return drop_row(state, d.id, None).await,
        "expired" | "refused" => return drop_row(state, d.id, None).await,
        _ => {}
    }
    if d.status == "dead" && !d.accepted {
        // RBM refused the message for good: nothing to revoke.
        let why = format!(
            "RCS send failed ({}); sending as SMS",
            d.last_error.as_deref().unwrap_or("dead-lettered")
        );
        queue_sms(state, &d, why).await?;
        return Ok(());
    }
    // Mark the revoke durably before making it, so a crash after RBM
    // revoked is recognised (see the module docs).
    if !d.revoking {
        let id = d.id.clone();
        state
            .store
            .writer()
            .write(move |tx| {
                tx.prepare_cached(
                    "UPDATE rcs_fallback SET state = 'revoking' WHERE message_id = ?1",
                )?
                .execute(params![id])?;
                Ok(())
            })
            .await?;
    }
    match revoke(rcs, &d.to, &d.id).await {
        Revoke::Revoked => {
            let why = format!("no RCS delivery within {secs} s; revoked at RBM");
            queue_sms(state, &d, why).await?;
        }
        Revoke::NotFound if !d.accepted || d.revoking => {
            let why = if d.accepted {
                format!("no RCS delivery within {secs} s; revoked at RBM (earlier try)")
            } else {
                format!("RCS not sent within {secs} s; sending as SMS")
            };
            queue_sms(state, &d, why).await?;
        }
        Revoke::NotFound => {
            drop_row(
                state,
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
                    state,
                    d.id,
                    Some((
                        "fallback_failed",
                        format!("revoke failed {attempts} times: {error}"),
                    )),
                )
                .await?;
            } else {
                let next = crate::core::clock::now_ms() + (500i64 << attempts.min(7));
                let id = d.id.clone();
                state
                    .store
                    .writer()
                    .write(move |tx| {
                        tx.prepare_cached(
                            "UPDATE rcs_fallback SET attempts = ?2, due_at = ?3 WHERE message_id = ?1",
                        )?
                        .execute(params![id, attempts, next])?;
                        event(tx, &id, crate::core::clock::now_ms(), "revoke_retrying", &format!("attempt {attempts}: {error}"))?;
                        Ok(())
                    })
                    .await?;
            }
        }
    }
    Ok(())
}

/// Runs until `shutdown`; does nothing without `[rbm]`.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let Some(rcs) = state.rcs.clone() else {
        return;
    };
    loop {
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = shutdown.cancelled() => return,
        }
        let rows = match due(&state, crate::core::clock::now_ms()).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "reading RCS fallback timers failed");
                continue;
            }
        };
        for d in rows {
            let id = d.id.clone();
            if let Err(e) = handle(&state, &rcs, d).await {
                tracing::error!(msg_id = %id, error = %e, "RCS fallback step failed; it will be tried again");
            }
            if shutdown.is_cancelled() {
                return;
            }
        }
    }
}
