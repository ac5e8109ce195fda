//! The durable SMS-fallback timers of `auto` RCS messages (`rcs_fallback`):
//! written with the message, in one transaction; taken by the fallback task
//! when due; deleted in the transaction that queues the SMS (or that
//! records the delivery, see `messages::apply_status`).

use rusqlite::{OptionalExtension, params};

use super::Store;
use super::messages::{InsertOutcome, NewMessage, Target, event, insert, parse_status};
use super::status::MessageStatus;
use crate::core::error::Result;

/// When and by which SMS route an RCS message falls back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackTimer {
    /// The SMS route of the fallback.
    pub sms_route: String,
    /// Unix ms.
    pub due_at: i64,
}

/// A timer that is due (or whose RCS send was dead-lettered).
#[derive(Debug, Clone)]
pub struct DueFallback {
    /// The message.
    pub id: String,
    /// The SMS route of the fallback.
    pub sms_route: String,
    /// True once a revoke was (durably) begun.
    pub revoking: bool,
    /// Revoke attempts so far.
    pub attempts: u32,
    /// The message's status.
    pub status: MessageStatus,
    /// Whether RBM accepted the message (it has a carrier id).
    pub accepted: bool,
    /// The recipient.
    pub to: String,
    /// The message's last delivery error.
    pub last_error: Option<String>,
}

impl Store {
    /// Inserts a message and, in the same transaction, its fallback timer
    /// (only when the message is queued: a held one has none).
    pub async fn insert_with_fallback(
        &self,
        row: NewMessage,
        timer: Option<FallbackTimer>,
    ) -> Result<InsertOutcome> {
        let Some(timer) = timer.filter(|_| row.queue.is_some()) else {
            return self.insert_message(row).await;
        };
        if let Some(pg) = self.pg() {
            return pg.insert_with_fallback(row, timer).await;
        }
        self.write(move |tx| {
            let out = insert(tx, &row)?;
            if out == InsertOutcome::Inserted {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO rcs_fallback (message_id, sms_route, due_at, state, attempts) \
                     VALUES (?1, ?2, ?3, 'pending', 0)",
                )?
                .execute(params![row.id, timer.sms_route, timer.due_at])?;
            }
            Ok(out)
        })
        .await
    }

    /// Timers due at `now`, and those of messages whose RCS send was
    /// dead-lettered, oldest first, at most `limit`.
    pub async fn due_fallbacks(&self, now: i64, limit: i64) -> Result<Vec<DueFallback>> {
        if let Some(pg) = self.pg() {
            return pg.due_fallbacks(now, limit).await;
        }
        self.read(move |c| {
            let rows: Vec<(DueFallback, String)> = c
                .prepare_cached(
                    "SELECT f.message_id, f.sms_route, f.state, f.attempts, m.status, m.carrier_id IS NOT NULL, \
                     m.recipient, m.last_error FROM rcs_fallback f JOIN messages m ON m.id = f.message_id \
                     WHERE f.due_at <= ?1 OR m.status = 'dead' ORDER BY f.due_at LIMIT ?2",
                )?
                .query_map(params![now, limit], |r| {
                    Ok((
                        DueFallback {
                            id: r.get(0)?,
                            sms_route: r.get(1)?,
                            revoking: r.get::<_, String>(2)? == "revoking",
                            attempts: r.get(3)?,
                            // Parsed below, outside rusqlite's error type.
                            status: MessageStatus::Queued,
                            accepted: r.get(5)?,
                            to: r.get(6)?,
                            last_error: r.get(7)?,
                        },
                        r.get::<_, String>(4)?,
                    ))
                })?
                .collect::<rusqlite::Result<_>>()?;
            rows.into_iter()
                .map(|(mut d, status)| {
                    d.status = parse_status(&status)?;
                    Ok(d)
                })
                .collect()
        })
        .await
    }

    /// Deletes a timer; when it existed and `note` is given, the note goes
    /// into the message's history.
    pub async fn drop_fallback(
        &self,
        id: String,
        note: Option<(&'static str, String)>,
    ) -> Result<()> {
        if let Some(pg) = self.pg() {
            let keep = self.privacy.keep_after_delivery_ms;
            if pg.drop_fallback(id, note, keep).await? {
                self.privacy
                    .erased
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            return Ok(());
        }
        let now = crate::core::clock::now_ms();
        let privacy = self.privacy.clone();
        self.write(move |tx| {
            let n = tx
                .prepare_cached("DELETE FROM rcs_fallback WHERE message_id = ?1")?
                .execute(params![id])?;
            if let (1.., Some((status, detail))) = (n, &note) {
                event(tx, &id, now, status, Some(detail))?;
            }
            // No fallback any more: an RCS send already accepted needs no body.
            if super::privacy::settle_body(tx, &id, now, privacy.keep_after_delivery_ms)? {
                privacy
                    .erased
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        })
        .await
    }

    /// Queues the SMS fallback: deletes the timer and (re)places the queue
    /// entry on the SMS route in one transaction, so the SMS is queued once
    /// however often this runs; false when the timer is already gone.
    pub async fn queue_fallback_sms(&self, id: String, route: String, why: String) -> Result<bool> {
        if let Some(pg) = self.pg() {
            return pg.queue_fallback_sms(id, route, why).await;
        }
        let now = crate::core::clock::now_ms();
        self.write(move |tx| {
            let n = tx
                .prepare_cached("DELETE FROM rcs_fallback WHERE message_id = ?1")?
                .execute(params![id])?;
            if n == 0 {
                return Ok(false);
            }
            let target = Target::Route(route.clone()).as_db();
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
            event(tx, &id, now, "fallback", Some(&why))?;
            event(tx, &id, now, "queued", Some(&format!("SMS fallback via route {route}")))?;
            Ok(true)
        })
        .await
    }

    /// Marks a timer's revoke as begun, before the revoke is made (so a
    /// crash after RBM revoked is recognised).
    pub async fn fallback_revoking(&self, id: String) -> Result<()> {
        if let Some(pg) = self.pg() {
            return pg.fallback_revoking(id).await;
        }
        self.write(move |tx| {
            tx.prepare_cached("UPDATE rcs_fallback SET state = 'revoking' WHERE message_id = ?1")?
                .execute(params![id])?;
            Ok(())
        })
        .await
    }

    /// A revoke failed: try again at `next_at`.
    pub async fn fallback_retry(
        &self,
        id: String,
        attempts: u32,
        next_at: i64,
        error: String,
    ) -> Result<()> {
        if let Some(pg) = self.pg() {
            return pg.fallback_retry(id, attempts, next_at, error).await;
        }
        let now = crate::core::clock::now_ms();
        self.write(move |tx| {
            tx.prepare_cached(
                "UPDATE rcs_fallback SET attempts = ?2, due_at = ?3 WHERE message_id = ?1",
            )?
            .execute(params![id, attempts, next_at])?;
            event(
                tx,
                &id,
                now,
                "revoke_retrying",
                Some(&format!("attempt {attempts}: {error}")),
            )
        })
        .await
    }

    /// Adds a `read` event to an outbound message's history once (an RBM
    /// READ); `None` for an unknown message, else whether it was new.
    pub async fn note_read(&self, id: String, detail: &'static str) -> Result<Option<bool>> {
        if let Some(pg) = self.pg() {
            return pg.note_read(id, detail).await;
        }
        let now = crate::core::clock::now_ms();
        self.write(move |tx| {
            let known: Option<i64> = tx
                .prepare_cached("SELECT 1 FROM messages WHERE id = ?1 AND direction = 'outbound'")?
                .query_row(params![id], |r| r.get(0))
                .optional()?;
            if known.is_none() {
                return Ok(None);
            }
            let seen: i64 = tx
                .prepare_cached(
                    "SELECT COUNT(*) FROM message_events WHERE message_id = ?1 AND status = 'read'",
                )?
                .query_row(params![id], |r| r.get(0))?;
            if seen == 0 {
                event(tx, &id, now, "read", Some(detail))?;
            }
            Ok(Some(seen == 0))
        })
        .await
    }
}
