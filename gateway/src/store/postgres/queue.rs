//! The delivery queue on PostgreSQL, shared by every node.
//!
//! A node claims due entries with `FOR UPDATE SKIP LOCKED` and writes a
//! lease on them (its name, until when). An entry whose lease ran out (its
//! node died mid-send) is claimable again by any node; its attempt count is
//! unchanged, so the retry carries the same attempt id (the far end's
//! idempotency key). A failed attempt, a dead letter or a delivery ends the
//! lease.

use std::collections::HashSet;

use super::messages::{apply_status, event, force_status, message_view};
use super::schema::SWEEP_LOCK;
use super::{PgStore, pg_error};
use crate::core::error::Result;
use crate::store::messages::{Applied, MessageView, QueueItem, StatusReport, Swept, Target};
use crate::store::status::MessageStatus;

impl PgStore {
    /// Claims up to `limit` due entries for this node: unleased ones, ones
    /// whose lease ran out, and this node's own not in `exclude` (in flight
    /// here); never one for a physical channel another node holds. Oldest
    /// first.
    pub async fn due(
        &self,
        now: i64,
        limit: usize,
        exclude: HashSet<String>,
    ) -> Result<Vec<QueueItem>> {
        let exclude: Vec<String> = exclude.into_iter().collect();
        let cap = self.claim_max.load(std::sync::atomic::Ordering::Relaxed);
        let limit = i64::try_from(limit.min(cap)).unwrap_or(i64::MAX);
        let rows = self
            .client()
            .await?
            .query(
                "WITH picked AS ( \
                   SELECT message_id FROM queue \
                   WHERE NOT dead AND next_attempt_at <= $1 \
                     AND (lease_until IS NULL OR lease_until <= $1 OR lease_owner = $2) \
                     AND NOT (message_id = ANY($3)) AND NOT (target = ANY($6)) \
                   ORDER BY next_attempt_at LIMIT $4 \
                   FOR UPDATE SKIP LOCKED) \
                 UPDATE queue q SET lease_owner = $2, lease_until = $5 \
                 FROM picked, messages m \
                 WHERE q.message_id = picked.message_id AND m.id = q.message_id \
                 RETURNING q.message_id, q.target, q.attempts, m.created_at, m.header, m.sealed, q.next_attempt_at",
                &[
                    &now,
                    &self.node,
                    &exclude,
                    &limit,
                    &now.saturating_add(self.lease_ms),
                    &self.foreign_targets(),
                ],
            )
            .await
            .map_err(pg_error)?;
        let mut items: Vec<(i64, QueueItem)> = rows
            .into_iter()
            .map(|r| {
                (
                    r.get(6),
                    QueueItem {
                        message_id: r.get(0),
                        target: Target::from_db(r.get(1)),
                        attempts: u32::try_from(r.get::<_, i64>(2)).unwrap_or(u32::MAX),
                        created_at: r.get(3),
                        header: r.get(4),
                        sealed: r.get(5),
                    },
                )
            })
            .collect();
        items.sort_by_key(|(at, _)| *at);
        Ok(items.into_iter().map(|(_, i)| i).collect())
    }

    /// When the next entry becomes claimable by this node after `now`: due
    /// later, or leased by another node until later.
    pub async fn next_due_after(&self, now: i64) -> Result<Option<i64>> {
        Ok(self
            .client()
            .await?
            .query_one(
                "SELECT MIN(t) FROM (SELECT GREATEST(next_attempt_at, \
                   CASE WHEN lease_owner = $2 THEN 0 ELSE COALESCE(lease_until, 0) END) AS t \
                   FROM queue WHERE NOT dead) x WHERE t > $1",
                &[&now, &self.node],
            )
            .await
            .map_err(pg_error)?
            .get(0))
    }

    /// A failed attempt: due again at `next_at`; the lease ends.
    pub async fn reschedule(
        &self,
        id: String,
        attempts: u32,
        next_at: i64,
        error: String,
    ) -> Result<()> {
        let now = crate::core::clock::now_ms();
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        tx.execute(
            "UPDATE queue SET attempts = $2, next_attempt_at = $3, last_error = $4, \
             lease_owner = NULL, lease_until = NULL WHERE message_id = $1",
            &[&id, &i64::from(attempts), &next_at, &error],
        )
        .await
        .map_err(pg_error)?;
        tx.execute(
            "UPDATE messages SET last_error = $2, updated_at = $3 WHERE id = $1",
            &[&id, &error, &now],
        )
        .await
        .map_err(pg_error)?;
        let detail = format!("attempt {attempts}: {error}");
        event(&tx, &id, now, "retrying", Some(&detail), false).await?;
        tx.commit().await.map_err(pg_error)
    }

    /// Dead-letters a message: it stays in the queue, marked dead.
    pub async fn dead_letter(
        &self,
        id: String,
        attempts: u32,
        error: String,
    ) -> Result<Option<Applied>> {
        let now = crate::core::clock::now_ms();
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        tx.execute(
            "UPDATE queue SET dead = TRUE, attempts = $2, last_error = $3, \
             lease_owner = NULL, lease_until = NULL WHERE message_id = $1",
            &[&id, &i64::from(attempts), &error],
        )
        .await
        .map_err(pg_error)?;
        tx.execute(
            "UPDATE messages SET last_error = $2 WHERE id = $1",
            &[&id, &error],
        )
        .await
        .map_err(pg_error)?;
        let applied = apply_status(
            &tx,
            &id,
            &StatusReport::new(MessageStatus::Dead, Some(error.clone())),
            now,
        )
        .await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(applied)
    }

    /// Puts a dead-lettered message back in the queue, due now.
    pub async fn retry_dead(&self, id: String) -> Result<bool> {
        let now = crate::core::clock::now_ms();
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        let n = tx
            .execute(
                "UPDATE queue SET dead = FALSE, attempts = 0, next_attempt_at = $2, \
                 lease_owner = NULL, lease_until = NULL WHERE message_id = $1 AND dead",
                &[&id, &now],
            )
            .await
            .map_err(pg_error)?;
        if n > 0 {
            force_status(
                &tx,
                &id,
                MessageStatus::Queued,
                Some("retried by operator"),
                now,
            )
            .await?;
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(n > 0)
    }

    /// Makes the live entries for `target` due now; returns how many.
    pub async fn make_due(&self, target: Target) -> Result<usize> {
        let now = crate::core::clock::now_ms();
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE queue SET next_attempt_at = $2 WHERE target = $1 AND NOT dead AND next_attempt_at > $2",
                &[&target.as_db(), &now],
            )
            .await
            .map_err(pg_error)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Live and dead queue depths.
    pub async fn queue_depth(&self) -> Result<(i64, i64)> {
        let r = self
            .client()
            .await?
            .query_one(
                "SELECT COUNT(*) FILTER (WHERE NOT dead), COUNT(*) FILTER (WHERE dead) FROM queue",
                &[],
            )
            .await
            .map_err(pg_error)?;
        Ok((r.get(0), r.get(1)))
    }

    /// Dead-lettered messages, newest first (every one, or one tenant's).
    pub async fn dead_letters(
        &self,
        limit: usize,
        tenant: Option<String>,
    ) -> Result<Vec<MessageView>> {
        let c = self.client().await?;
        let ids = c
            .query(
                "SELECT q.message_id FROM queue q JOIN messages m ON m.id = q.message_id \
                 WHERE q.dead AND ($2::TEXT IS NULL OR m.tenant = $2) \
                 ORDER BY m.updated_at DESC LIMIT $1",
                &[&i64::try_from(limit).unwrap_or(i64::MAX), &tenant],
            )
            .await
            .map_err(pg_error)?;
        let mut out = Vec::with_capacity(ids.len());
        for r in ids {
            let id: String = r.get(0);
            out.extend(message_view(&**c, &id).await?);
        }
        Ok(out)
    }

    /// The retention sweep (as the SQLite store's): erases expired bodies
    /// and bodies older than `retain_after`, deletes metadata older than
    /// `delete_before`. One node at a time across the cluster: a node that
    /// finds the sweep lock taken skips this round (the holder does it).
    pub async fn sweep(&self, now: i64, retain_after: i64, delete_before: i64) -> Result<Swept> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        let got: bool = tx
            .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&SWEEP_LOCK])
            .await
            .map_err(pg_error)?
            .get(0);
        if !got {
            return Ok(Swept::default());
        }
        let ids: Vec<String> = tx
            .query(
                "SELECT id FROM messages WHERE sealed IS NOT NULL \
                 AND ((expires_at IS NOT NULL AND expires_at <= $1) OR created_at < $2) LIMIT 10000",
                &[&now, &retain_after],
            )
            .await
            .map_err(pg_error)?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        let mut expired = Vec::new();
        for id in &ids {
            tx.execute(
                "UPDATE messages SET sealed = NULL, updated_at = $2 WHERE id = $1",
                &[id, &now],
            )
            .await
            .map_err(pg_error)?;
            let queued = tx
                .execute("DELETE FROM queue WHERE message_id = $1", &[id])
                .await
                .map_err(pg_error)?;
            if queued > 0 {
                let report = StatusReport::new(
                    MessageStatus::Expired,
                    Some("expired before delivery; body erased".into()),
                );
                let applied = apply_status(&tx, id, &report, now).await?;
                expired.extend(applied.map(|a| (id.clone(), a)));
            } else {
                event(&tx, id, now, "erased", Some("body erased at expiry"), false).await?;
            }
        }
        let old: Vec<String> = tx
            .query(
                "SELECT id FROM messages WHERE created_at < $1 LIMIT 10000",
                &[&delete_before],
            )
            .await
            .map_err(pg_error)?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        for sql in [
            "DELETE FROM message_events WHERE message_id = ANY($1)",
            "DELETE FROM queue WHERE message_id = ANY($1)",
            "DELETE FROM carrier_ids WHERE message_id = ANY($1)",
            "DELETE FROM idempotency WHERE message_id = ANY($1)",
            "DELETE FROM status_callbacks WHERE message_id = ANY($1)",
            "DELETE FROM smpp_parts WHERE message_id = ANY($1)",
            "DELETE FROM smpp_receipts WHERE message_id = ANY($1)",
            "DELETE FROM rcs_fallback WHERE message_id = ANY($1)",
            "DELETE FROM messages WHERE id = ANY($1)",
        ] {
            tx.execute(sql, &[&old]).await.map_err(pg_error)?;
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(Swept {
            touched: ids.len() + old.len(),
            expired,
        })
    }
}

impl PgStore {
    /// The queue's health as of `now` (as the SQLite store's `queue_health`).
    pub async fn queue_health(
        &self,
        now: i64,
        window_ms: i64,
    ) -> Result<crate::store::health::QueueHealth> {
        use crate::store::health::{QueueHealth, TargetTrouble};
        let c = self.client().await?;
        let oldest: Option<i64> = c
            .query_one(
                "SELECT MIN(m.created_at) FROM queue q JOIN messages m ON m.id = q.message_id WHERE NOT q.dead",
                &[],
            )
            .await
            .map_err(pg_error)?
            .get(0);
        let troubled = c
            .query(
                "SELECT q.target, \
                   COUNT(*) FILTER (WHERE NOT q.dead AND q.attempts > 0), \
                   COUNT(*) FILTER (WHERE q.dead AND m.updated_at >= $1) \
                 FROM queue q JOIN messages m ON m.id = q.message_id \
                 WHERE (NOT q.dead AND q.attempts > 0) OR (q.dead AND m.updated_at >= $1) \
                 GROUP BY q.target ORDER BY q.target",
                &[&(now - window_ms)],
            )
            .await
            .map_err(pg_error)?
            .iter()
            .map(|r| TargetTrouble {
                target: r.get(0),
                retrying: r.get(1),
                dead_recently: r.get(2),
            })
            .collect();
        Ok(QueueHealth {
            oldest_age_secs: oldest.map_or(0, |t| ((now - t) / 1000).max(0)),
            troubled,
        })
    }
}

impl PgStore {
    /// Ends this node's leases (at shutdown, once its sends have recorded
    /// their outcome): entries it claimed but never started are claimable
    /// by the other nodes at once, not after the lease. Returns how many.
    pub async fn release_leases(&self) -> Result<u64> {
        let c = self.client().await?;
        let mut n = 0;
        for sql in [
            "UPDATE queue SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1",
            "UPDATE status_callbacks SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1",
            "UPDATE rcs_fallback SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1",
            "UPDATE smpp_receipts SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1",
        ] {
            n += c.execute(sql, &[&self.node]).await.map_err(pg_error)?;
        }
        Ok(n)
    }
}
