//! Status callbacks on PostgreSQL (as `store/callbacks.rs`): owed in the
//! status change's transaction, POSTed oldest first per message. Across
//! nodes, a due callback is claimed with `FOR UPDATE SKIP LOCKED` and a
//! lease, like a queue entry, so two nodes do not POST the same one; a
//! dead node's claims are taken over after the lease (the row id, the
//! callback's idempotency key, stays the same).

use super::cached::{Cached, Tx};

use super::{PgStore, pg_error};
use crate::core::error::Result;
use crate::store::callbacks::{HEAD, PendingCallback, callback_error, notifies};
use crate::store::status::MessageStatus;

/// Owes message `id`'s callback for `status`, if it has a callback URL
/// and clients hear about the status. Runs in the status change's
/// transaction.
pub(super) async fn on_status(
    tx: &Tx<'_>,
    id: &str,
    status: MessageStatus,
    detail: Option<&str>,
    now: i64,
) -> Result<()> {
    if !notifies(status) {
        return Ok(());
    }
    let url: Option<String> = tx
        .row_opt("SELECT status_callback FROM messages WHERE id = $1", &[&id])
        .await?
        .and_then(|r| r.get(0));
    owe(tx, id, url.as_deref(), status, detail, now).await
}

/// [`on_status`] with the callback URL already read (under the message
/// row's lock, by the status change).
pub(super) async fn owe(
    tx: &Tx<'_>,
    id: &str,
    url: Option<&str>,
    status: MessageStatus,
    detail: Option<&str>,
    now: i64,
) -> Result<()> {
    let Some(url) = url.filter(|_| notifies(status)) else {
        return Ok(());
    };
    let error = callback_error(status, detail);
    tx.run(
        "INSERT INTO status_callbacks (message_id, url, status, error, at, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $5)",
        &[&id, &url, &status.as_str(), &error, &now],
    )
    .await?;
    Ok(())
}

impl PgStore {
    /// Claims due callbacks (at most one per message, its oldest) for this
    /// node, oldest first: unleased ones, ones whose lease ran out, and
    /// this node's own (the worker skips those it has in flight).
    pub async fn due_callbacks(&self, now: i64, limit: usize) -> Result<Vec<PendingCallback>> {
        let sql = format!(
            "WITH picked AS (SELECT c.id FROM status_callbacks c \
               WHERE c.next_attempt_at <= $1 AND {HEAD} \
               AND (c.lease_until IS NULL OR c.lease_until <= $1 OR c.lease_owner = $2) \
               ORDER BY c.next_attempt_at, c.id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             UPDATE status_callbacks c SET lease_owner = $2, lease_until = $4 FROM picked \
             WHERE c.id = picked.id \
             RETURNING c.id, c.message_id, c.url, c.status, c.error, c.at, c.attempts, c.next_attempt_at"
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let until = now.saturating_add(self.lease_ms);
        let mut rows: Vec<(i64, PendingCallback)> = self
            .client()
            .await?
            .query(&sql, &[&now, &self.node, &limit, &until])
            .await
            .map_err(pg_error)?
            .iter()
            .map(|r| {
                (
                    r.get(7),
                    PendingCallback {
                        id: r.get(0),
                        message_id: r.get(1),
                        url: r.get(2),
                        status: r.get(3),
                        error: r.get(4),
                        at: r.get(5),
                        attempts: u32::try_from(r.get::<_, i64>(6)).unwrap_or(u32::MAX),
                    },
                )
            })
            .collect();
        rows.sort_by_key(|(at, cb)| (*at, cb.id));
        Ok(rows.into_iter().map(|(_, cb)| cb).collect())
    }

    /// When the next callback becomes claimable by this node after `now`.
    pub async fn next_callback_after(&self, now: i64) -> Result<Option<i64>> {
        let sql = format!(
            "SELECT MIN(t) FROM (SELECT GREATEST(c.next_attempt_at, \
               CASE WHEN c.lease_owner = $2 THEN 0 ELSE COALESCE(c.lease_until, 0) END) AS t \
               FROM status_callbacks c WHERE {HEAD}) x WHERE t > $1"
        );
        Ok(self
            .client()
            .await?
            .query_one(&sql, &[&now, &self.node])
            .await
            .map_err(pg_error)?
            .get(0))
    }

    /// A callback was answered 2xx, or given up on.
    pub async fn callback_done(&self, id: i64) -> Result<()> {
        self.client()
            .await?
            .execute("DELETE FROM status_callbacks WHERE id = $1", &[&id])
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    /// A callback failed and is due again at `next_at`; its lease ends.
    pub async fn callback_retry(&self, id: i64, attempts: u32, next_at: i64) -> Result<()> {
        self.client()
            .await?
            .execute(
                "UPDATE status_callbacks SET attempts = $2, next_attempt_at = $3, \
                 lease_owner = NULL, lease_until = NULL WHERE id = $1",
                &[&id, &i64::from(attempts), &next_at],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    /// The default callback URL of the live API key `name`.
    pub async fn key_callback(&self, name: String) -> Result<Option<String>> {
        Ok(self
            .client()
            .await?
            .query_opt(
                "SELECT status_callback FROM api_keys WHERE name = $1 AND revoked_at IS NULL",
                &[&name],
            )
            .await
            .map_err(pg_error)?
            .and_then(|r| r.get(0)))
    }
}
