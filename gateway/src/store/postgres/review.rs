//! The operators' review decisions on PostgreSQL: the same operations and
//! rules as the SQLite store's `review.rs` / `undo.rs` (release, drop with
//! an undo window, mark spam/ham, allow/block lists, undo, the audit log),
//! each in one transaction that also sends its cache notice, so every
//! node's spam gate re-reads lists and decisions at once.

use deadpool_postgres::Transaction;

use super::messages::force_status;
use super::notify::{CacheKind, notify};
use super::{PgStore, pg_error};
use crate::core::error::Result;
use crate::store::messages::Target;
use crate::store::review::{AuditEntry, ListKind};
use crate::store::status::MessageStatus;
use crate::store::undo::PendingDrop;

/// Appends to the audit log (with the model's view of the target, if any).
async fn audit(
    tx: &Transaction<'_>,
    actor: &str,
    action: &str,
    target: &str,
    note: Option<&str>,
    now: i64,
) -> Result<()> {
    tx.execute(
        "INSERT INTO audit_log (at, actor, action, target, note, model_verdict, model_score) \
         SELECT $1, $2, $3, $4, $5, f.verdict, f.score \
         FROM (SELECT 1) one LEFT JOIN flagged_senders f ON f.sender = $4",
        &[&now, &actor, &action, &target, &note],
    )
    .await
    .map_err(pg_error)?;
    Ok(())
}

/// Queues a held message again: outbound to its route, inbound to the
/// private side or the SMPP client it was meant for.
async fn release_one(tx: &Transaction<'_>, id: &str, now: i64) -> Result<bool> {
    let row = tx
        .query_opt(
            "SELECT direction, adapter, deliver_to FROM messages WHERE id = $1 \
             AND status IN ('held', 'blocked') AND sealed IS NOT NULL \
             AND id NOT IN (SELECT message_id FROM pending_drops) FOR UPDATE",
            &[&id],
        )
        .await
        .map_err(pg_error)?;
    let Some(row) = row else {
        return Ok(false);
    };
    let (direction, adapter, deliver_to): (String, Option<String>, Option<String>) =
        (row.get(0), row.get(1), row.get(2));
    let target = if let Some(t) = deliver_to {
        Target::from_db(&t)
    } else if direction == "outbound" {
        Target::Route(adapter.unwrap_or_else(|| "generic".into()))
    } else {
        Target::Private
    };
    tx.execute(
        "INSERT INTO queue (message_id, target, next_attempt_at) VALUES ($1, $2, $3) \
         ON CONFLICT (message_id) DO UPDATE SET target = $2, next_attempt_at = $3, attempts = 0, \
         last_error = NULL, dead = FALSE, lease_owner = NULL, lease_until = NULL",
        &[&id, &target.as_db(), &now],
    )
    .await
    .map_err(pg_error)?;
    force_status(
        tx,
        id,
        MessageStatus::Queued,
        Some("released by operator"),
        now,
    )
    .await?;
    Ok(true)
}

/// Drops a message still held or blocked: body erased, out of the queue.
async fn drop_held(tx: &Transaction<'_>, id: &str, detail: &str, now: i64) -> Result<bool> {
    let n = tx
        .execute(
            "UPDATE messages SET sealed = NULL WHERE id = $1 AND status IN ('held', 'blocked')",
            &[&id],
        )
        .await
        .map_err(pg_error)?;
    if n > 0 {
        tx.execute("DELETE FROM queue WHERE message_id = $1", &[&id])
            .await
            .map_err(pg_error)?;
        force_status(tx, id, MessageStatus::Dropped, Some(detail), now).await?;
    }
    Ok(n > 0)
}

/// Drops `id` after `window` ms (at once when 0) through a pending row.
async fn drop_after(
    tx: &Transaction<'_>,
    actor: &str,
    id: &str,
    detail: &str,
    now: i64,
    window: i64,
) -> Result<bool> {
    if window <= 0 {
        return drop_held(tx, id, detail, now).await;
    }
    let n = tx
        .execute(
            "INSERT INTO pending_drops (message_id, sender, detail, actor, final_at) \
             SELECT id, sender, $2, $3, $4 FROM messages \
             WHERE id = $1 AND status IN ('held', 'blocked') ON CONFLICT DO NOTHING",
            &[&id, &detail, &actor, &now.saturating_add(window)],
        )
        .await
        .map_err(pg_error)?;
    Ok(n > 0)
}

/// The held (not pending-drop) messages of senders in `[lo, hi]`.
async fn held_between(tx: &Transaction<'_>, lo: &str, hi: &str) -> Result<Vec<String>> {
    Ok(tx
        .query(
            "SELECT id FROM messages WHERE sender BETWEEN $1 AND $2 \
             AND status IN ('held', 'blocked') \
             AND id NOT IN (SELECT message_id FROM pending_drops) ORDER BY created_at, id \
             FOR UPDATE",
            &[&lo, &hi],
        )
        .await
        .map_err(pg_error)?
        .into_iter()
        .map(|r| r.get(0))
        .collect())
}

/// The `BETWEEN` bounds of a list pattern (as the SQLite store's).
fn pattern_range(pattern: &str) -> (String, String) {
    match pattern.strip_suffix('*') {
        Some(prefix) => (prefix.to_string(), format!("{prefix}\u{10FFFF}")),
        None => (pattern.to_string(), pattern.to_string()),
    }
}

/// Makes the drops whose window passed final. Returns how many.
async fn finalize_due(tx: &Transaction<'_>, now: i64) -> Result<usize> {
    let due = tx
        .query(
            "DELETE FROM pending_drops WHERE message_id IN (SELECT message_id FROM pending_drops \
             WHERE final_at <= $1 ORDER BY final_at LIMIT 1000 FOR UPDATE SKIP LOCKED) \
             RETURNING message_id, detail",
            &[&now],
        )
        .await
        .map_err(pg_error)?;
    let mut n = 0;
    for r in &due {
        let (id, detail): (String, String) = (r.get(0), r.get(1));
        n += usize::from(drop_held(tx, &id, &detail, now).await?);
    }
    Ok(n)
}

impl PgStore {
    /// Runs one operator decision in its own transaction at the current
    /// time, committed when `f` succeeds (with its audit entry and cache
    /// notice, which `f` writes), rolled back otherwise.
    async fn decision<R>(
        &self,
        f: impl AsyncFnOnce(&Transaction<'_>, i64) -> Result<R>,
    ) -> Result<R> {
        let now = crate::core::clock::now_ms();
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        let out = f(&tx, now).await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(out)
    }

    /// Releases or drops one held message and records the decision.
    pub async fn decide_message(
        &self,
        actor: &str,
        id: &str,
        release: bool,
        note: Option<&str>,
        window: i64,
    ) -> Result<bool> {
        self.decision(async |tx, now| {
            let done = if release {
                release_one(tx, id, now).await?
            } else {
                drop_after(
                    tx,
                    actor,
                    id,
                    "dropped by operator; body erased",
                    now,
                    window,
                )
                .await?
            };
            if done {
                let action = if release { "release" } else { "drop" };
                audit(tx, actor, action, id, note, now).await?;
                notify(tx, CacheKind::Reviews).await?;
            }
            Ok(done)
        })
        .await
    }

    /// `mark SENDER spam|ham` (as the SQLite store's `review::mark`).
    pub async fn mark(
        &self,
        actor: &str,
        sender: &str,
        spam: bool,
        note: Option<&str>,
        window: i64,
    ) -> Result<usize> {
        self.decision(async |tx, now| {
            let mut n = 0;
            for id in held_between(tx, sender, sender).await? {
                let done = if spam {
                    let detail = "dropped by operator; body erased";
                    drop_after(tx, actor, &id, detail, now, window).await?
                } else {
                    release_one(tx, &id, now).await?
                };
                n += usize::from(done);
            }
            let (kind, other) = if spam {
                ("block", "allow")
            } else {
                ("allow", "block")
            };
            tx.execute(
                "DELETE FROM lists WHERE kind = $1 AND pattern = $2",
                &[&other, &sender],
            )
            .await
            .map_err(pg_error)?;
            tx.execute(
                "INSERT INTO lists (kind, pattern, expires_at, note, created_at) VALUES ($1, $2, NULL, $3, $4) \
                 ON CONFLICT (kind, pattern) DO UPDATE SET expires_at = NULL, note = $3, created_at = $4",
                &[&kind, &sender, &note, &now],
            )
            .await
            .map_err(pg_error)?;
            tx.execute(
                "UPDATE flagged_senders SET decided = $2 WHERE sender = $1",
                &[&sender, &if spam { "spam" } else { "ham" }],
            )
            .await
            .map_err(pg_error)?;
            let action = if spam { "mark_spam" } else { "mark_ham" };
            audit(tx, actor, action, sender, note, now).await?;
            notify(tx, CacheKind::Lists).await?;
            notify(tx, CacheKind::Reviews).await?;
            Ok(n)
        })
        .await
    }

    /// Adds a list entry; a block entry drops the covered senders' held
    /// messages, an allow entry releases them (as the SQLite store's
    /// `review::list_add`). Returns the messages dropped or released.
    pub async fn list_add(
        &self,
        actor: &str,
        kind: ListKind,
        pattern: &str,
        expires_at: Option<i64>,
        note: Option<&str>,
        window: i64,
    ) -> Result<usize> {
        self.decision(async |tx, now| {
            tx.execute(
                "INSERT INTO lists (kind, pattern, expires_at, note, created_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (kind, pattern) DO UPDATE SET expires_at = $3, note = $4, created_at = $5",
                &[&kind.as_str(), &pattern, &expires_at, &note, &now],
            )
            .await
            .map_err(pg_error)?;
            audit(tx, actor, kind.as_str(), pattern, note, now).await?;
            let (lo, hi) = pattern_range(pattern);
            let mut n = 0;
            let decided = match kind {
                ListKind::Block => {
                    let detail =
                        "sender_blocked: the sender was put on the block list; body erased";
                    for id in held_between(tx, &lo, &hi).await? {
                        n += usize::from(drop_after(tx, actor, &id, detail, now, window).await?);
                    }
                    "blocked"
                }
                ListKind::Allow => {
                    for id in held_between(tx, &lo, &hi).await? {
                        n += usize::from(release_one(tx, &id, now).await?);
                    }
                    "allowed"
                }
            };
            tx.execute(
                "UPDATE flagged_senders SET decided = $3 \
                 WHERE decided IS NULL AND sender BETWEEN $1 AND $2",
                &[&lo, &hi, &decided],
            )
            .await
            .map_err(pg_error)?;
            notify(tx, CacheKind::Lists).await?;
            Ok(n)
        })
        .await
    }

    /// Removes a list entry; false when there was none.
    pub async fn list_remove(&self, actor: &str, kind: ListKind, pattern: &str) -> Result<bool> {
        self.decision(async |tx, now| {
            let n = tx
                .execute(
                    "DELETE FROM lists WHERE kind = $1 AND pattern = $2",
                    &[&kind.as_str(), &pattern],
                )
                .await
                .map_err(pg_error)?;
            if n > 0 {
                let action = format!("un{}", kind.as_str());
                audit(tx, actor, &action, pattern, None, now).await?;
                notify(tx, CacheKind::Lists).await?;
            }
            Ok(n > 0)
        })
        .await
    }

    /// Makes due review drops final (any node; rows are claimed with SKIP
    /// LOCKED, so two nodes never finalize one drop twice).
    pub async fn finalize_drops(&self, now: i64) -> Result<usize> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        let n = finalize_due(&tx, now).await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(n)
    }

    /// Undoes `sender`'s drops still in their window (as the SQLite
    /// store's `undo::undo`). Returns the messages held again.
    pub async fn undo(&self, actor: &str, sender: &str) -> Result<usize> {
        self.decision(async |tx, now| {
            finalize_due(tx, now).await?;
            let n = tx
                .execute(
                    "DELETE FROM pending_drops WHERE sender = $1 AND final_at > $2",
                    &[&sender, &now],
                )
                .await
                .map_err(pg_error)?;
            if n > 0 {
                let was_spam = tx
                    .query_opt(
                        "SELECT 1 FROM flagged_senders WHERE sender = $1 AND decided = 'spam'",
                        &[&sender],
                    )
                    .await
                    .map_err(pg_error)?
                    .is_some();
                tx.execute(
                    "UPDATE flagged_senders SET decided = NULL WHERE sender = $1 AND decided IN ('spam', 'blocked')",
                    &[&sender],
                )
                .await
                .map_err(pg_error)?;
                let action = if was_spam {
                    "undo_mark_spam"
                } else {
                    "undo_drop"
                };
                audit(tx, actor, action, sender, None, now).await?;
                notify(tx, CacheKind::Reviews).await?;
            }
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
        .await
    }

    /// The drops still undoable, of `sender` (or all), soonest final first.
    pub async fn pending_drops(&self, sender: Option<&str>) -> Result<Vec<PendingDrop>> {
        let now = crate::core::clock::now_ms();
        Ok(self
            .client()
            .await?
            .query(
                "SELECT message_id, sender, actor, final_at FROM pending_drops \
                 WHERE final_at > $1 AND ($2::TEXT IS NULL OR sender = $2) \
                 ORDER BY final_at, message_id LIMIT 1000",
                &[&now, &sender],
            )
            .await
            .map_err(pg_error)?
            .into_iter()
            .map(|r| PendingDrop {
                id: r.get(0),
                sender: r.get(1),
                actor: r.get(2),
                final_at: r.get(3),
            })
            .collect())
    }

    /// The newest `limit` audit entries, oldest first.
    pub async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .client()
            .await?
            .query(
                "SELECT at, actor, action, target, note, model_verdict, model_score FROM \
                 (SELECT * FROM audit_log ORDER BY id DESC LIMIT $1) newest ORDER BY id",
                &[&limit],
            )
            .await
            .map_err(pg_error)?
            .into_iter()
            .map(|r| AuditEntry {
                at: crate::core::clock::rfc3339_ms(r.get(0)),
                actor: r.get(1),
                action: r.get(2),
                target: r.get(3),
                note: r.get(4),
                model_verdict: r.get(5),
                model_score: r.get(6),
            })
            .collect())
    }
}
