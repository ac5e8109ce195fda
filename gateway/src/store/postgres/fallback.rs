//! RCS-to-SMS fallback timers on PostgreSQL (as `store/fallback.rs`):
//! written with the message; claimed when due with `FOR UPDATE SKIP
//! LOCKED` and a lease, so one node across the cluster handles a timer
//! (a dead node's claims are taken over after the lease); deleted in the
//! transaction that queues the SMS or records the delivery.

use super::messages::{event, insert, settle_body};
use super::{PgStore, pg_error};
use crate::core::error::Result;
use crate::store::fallback::{DueFallback, FallbackTimer};
use crate::store::messages::{InsertOutcome, NewMessage, Target, parse_status};

impl PgStore {
    /// Inserts a message and, in the same transaction, its fallback timer.
    pub async fn insert_with_fallback(
        &self,
        row: NewMessage,
        timer: FallbackTimer,
    ) -> Result<InsertOutcome> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        let out = insert(self, &tx, &row).await?;
        if out != InsertOutcome::Inserted {
            return Ok(out);
        }
        tx.execute(
            "INSERT INTO rcs_fallback (message_id, sms_route, due_at, state, attempts) \
             VALUES ($1, $2, $3, 'pending', 0) ON CONFLICT (message_id) DO UPDATE SET \
             sms_route = EXCLUDED.sms_route, due_at = EXCLUDED.due_at, state = 'pending', attempts = 0",
            &[&row.id, &timer.sms_route, &timer.due_at],
        )
        .await
        .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)?;
        Ok(out)
    }

    /// Claims timers due at `now` (and those of dead-lettered RCS sends)
    /// for this node, oldest first, at most `limit`.
    pub async fn due_fallbacks(&self, now: i64, limit: i64) -> Result<Vec<DueFallback>> {
        let until = now.saturating_add(self.lease_ms);
        let rows = self
            .client()
            .await?
            .query(
                "WITH picked AS (SELECT f.message_id FROM rcs_fallback f JOIN messages m ON m.id = f.message_id \
                   WHERE (f.due_at <= $1 OR m.status = 'dead') \
                   AND (f.lease_until IS NULL OR f.lease_until <= $1 OR f.lease_owner = $2) \
                   ORDER BY f.due_at LIMIT $3 FOR UPDATE OF f SKIP LOCKED) \
                 UPDATE rcs_fallback f SET lease_owner = $2, lease_until = $4 FROM picked, messages m \
                 WHERE f.message_id = picked.message_id AND m.id = f.message_id \
                 RETURNING f.message_id, f.sms_route, f.state, f.attempts, m.status, m.carrier_id IS NOT NULL, \
                 m.recipient, m.last_error, f.due_at",
                &[&now, &self.node, &limit, &until],
            )
            .await
            .map_err(pg_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let due_at: i64 = r.get(8);
            out.push((
                due_at,
                DueFallback {
                    id: r.get(0),
                    sms_route: r.get(1),
                    revoking: r.get::<_, String>(2) == "revoking",
                    attempts: u32::try_from(r.get::<_, i64>(3)).unwrap_or(u32::MAX),
                    status: parse_status(r.get(4))?,
                    accepted: r.get(5),
                    to: r.get(6),
                    last_error: r.get(7),
                },
            ));
        }
        out.sort_by_key(|(at, _)| *at);
        Ok(out.into_iter().map(|(_, d)| d).collect())
    }

    /// Deletes a timer (with `note` in the history when it existed); an
    /// RCS send already accepted needs no body any more. True when a body
    /// was erased.
    pub async fn drop_fallback(
        &self,
        id: String,
        note: Option<(&'static str, String)>,
        keep_ms: i64,
    ) -> Result<bool> {
        let now = crate::core::clock::now_ms();
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        let n = tx
            .execute("DELETE FROM rcs_fallback WHERE message_id = $1", &[&id])
            .await
            .map_err(pg_error)?;
        if let (1.., Some((status, detail))) = (n, note) {
            event(&tx, &id, now, status, Some(&detail), false).await?;
        }
        let erased = settle_body(&tx, &id, now, keep_ms).await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(erased)
    }

    /// Queues the SMS fallback: deletes the timer and (re)places the queue
    /// entry on the SMS route, once; false when the timer is already gone.
    pub async fn queue_fallback_sms(&self, id: String, route: String, why: String) -> Result<bool> {
        let now = crate::core::clock::now_ms();
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        let n = tx
            .execute("DELETE FROM rcs_fallback WHERE message_id = $1", &[&id])
            .await
            .map_err(pg_error)?;
        if n == 0 {
            return Ok(false);
        }
        let target = Target::Route(route.clone()).as_db();
        tx.execute(
            "INSERT INTO queue (message_id, target, next_attempt_at, attempts, last_error, dead) \
             VALUES ($1, $2, $3, 0, NULL, FALSE) ON CONFLICT (message_id) DO UPDATE SET \
             target = EXCLUDED.target, next_attempt_at = EXCLUDED.next_attempt_at, attempts = 0, \
             last_error = NULL, dead = FALSE, lease_owner = NULL, lease_until = NULL",
            &[&id, &target, &now],
        )
        .await
        .map_err(pg_error)?;
        tx.execute(
            "UPDATE messages SET channel = 'sms', adapter = $2, status = 'queued', last_error = NULL, \
             updated_at = $3 WHERE id = $1",
            &[&id, &route, &now],
        )
        .await
        .map_err(pg_error)?;
        event(&tx, &id, now, "fallback", Some(&why), false).await?;
        let queued = format!("SMS fallback via route {route}");
        event(&tx, &id, now, "queued", Some(&queued), false).await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(true)
    }

    /// Marks a timer's revoke as begun, before the revoke is made.
    pub async fn fallback_revoking(&self, id: String) -> Result<()> {
        self.client()
            .await?
            .execute(
                "UPDATE rcs_fallback SET state = 'revoking' WHERE message_id = $1",
                &[&id],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    /// A revoke failed: try again at `next_at`; the claim ends.
    pub async fn fallback_retry(
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
            "UPDATE rcs_fallback SET attempts = $2, due_at = $3, lease_owner = NULL, lease_until = NULL \
             WHERE message_id = $1",
            &[&id, &i64::from(attempts), &next_at],
        )
        .await
        .map_err(pg_error)?;
        let detail = format!("attempt {attempts}: {error}");
        event(&tx, &id, now, "revoke_retrying", Some(&detail), false).await?;
        tx.commit().await.map_err(pg_error)
    }

    /// Adds a `read` event to an outbound message's history once; `None`
    /// for an unknown message, else whether it was new.
    pub async fn note_read(&self, id: String, detail: &'static str) -> Result<Option<bool>> {
        let now = crate::core::clock::now_ms();
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        let known = tx
            .query_opt(
                "SELECT 1 FROM messages WHERE id = $1 AND direction = 'outbound' FOR UPDATE",
                &[&id],
            )
            .await
            .map_err(pg_error)?;
        if known.is_none() {
            return Ok(None);
        }
        let seen: i64 = tx
            .query_one(
                "SELECT COUNT(*) FROM message_events WHERE message_id = $1 AND status = 'read'",
                &[&id],
            )
            .await
            .map_err(pg_error)?
            .get(0);
        if seen == 0 {
            event(&tx, &id, now, "read", Some(detail), false).await?;
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(Some(seen == 0))
    }
}
