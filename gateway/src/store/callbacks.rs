//! Status callbacks owed to API clients, and the URLs they go to.
//!
//! A message sent with a `status_callback` (its own, or its API key's
//! default) keeps the URL in `messages.status_callback`. Each status change
//! a client hears about (`sent`, `delivered`, `failed`, `expired`, `dead`,
//! and `dropped` by an operator)
//! adds a row to `status_callbacks` inside the transaction that records the
//! change ([`on_status`], called from the one status rule), so a committed
//! status always has its callback owed, across crashes. The worker
//! (`delivery::callbacks`) only ever sees the oldest row of each message, so
//! a later status is never POSTed before an earlier one succeeded or was
//! given up on.

use rusqlite::{Connection, OptionalExtension, params};

use super::Store;
use super::db::Db;
use super::status::MessageStatus;
use crate::core::error::Result;

/// Whether a client hears about a message reaching `status`: the statuses
/// after `queued` that mean something to a sender (`sending` is the
/// gateway's own business and would only double the traffic), and an
/// operator's drop of a held message, its end.
pub const fn notifies(status: MessageStatus) -> bool {
    matches!(
        status,
        MessageStatus::Sent
            | MessageStatus::Delivered
            | MessageStatus::Failed
            | MessageStatus::Expired
            | MessageStatus::Dead
            | MessageStatus::Dropped
    )
}

/// A callback owed: what to POST where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCallback {
    /// Row id: also the callback's idempotency key, so a receiver can drop
    /// the repeat of a POST whose answer was lost.
    pub id: i64,
    /// The message.
    pub message_id: String,
    /// Where to POST.
    pub url: String,
    /// The status reached.
    pub status: String,
    /// Why, for `failed` and `dead` (the far end's code, the last error).
    pub error: Option<String>,
    /// When the status changed (Unix ms).
    pub at: i64,
    /// POSTs made so far.
    pub attempts: u32,
}

/// Remembers the callback URL of a message being inserted.
pub(super) fn set_url(tx: &Connection, id: &str, url: &str) -> Result<()> {
    tx.prepare_cached("UPDATE messages SET status_callback = ?2 WHERE id = ?1")?
        .execute(params![id, url])?;
    Ok(())
}

/// Owes message `id`'s callback for `status`, if it has a callback URL and
/// the status is one clients hear about. Runs in the status change's
/// transaction.
pub(super) fn on_status(
    tx: &Connection,
    id: &str,
    status: MessageStatus,
    detail: Option<&str>,
    now: i64,
) -> Result<()> {
    if !notifies(status) {
        return Ok(());
    }
    let url: Option<String> = tx
        .prepare_cached("SELECT status_callback FROM messages WHERE id = ?1")?
        .query_row(params![id], |r| r.get(0))
        .optional()?
        .flatten();
    owe(tx, id, url.as_deref(), status, detail, now)
}

/// [`on_status`] for a caller that already read the message's callback
/// URL (`url`; `None`: it has none), as the status rule does.
pub(super) fn owe(
    tx: &Connection,
    id: &str,
    url: Option<&str>,
    status: MessageStatus,
    detail: Option<&str>,
    now: i64,
) -> Result<()> {
    if !notifies(status) {
        return Ok(());
    }
    let Some(url) = url else {
        return Ok(());
    };
    let error = callback_error(status, detail);
    tx.prepare_cached(
        "INSERT INTO status_callbacks (message_id, url, status, error, at, next_attempt_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute(params![id, url, status.as_str(), error, now])?;
    Ok(())
}

/// The error a callback for `status` carries: the failure's detail (at
/// most 128 characters) for `failed` and `dead`, nothing otherwise. Both
/// backends record it so.
pub(crate) fn callback_error(status: MessageStatus, detail: Option<&str>) -> Option<String> {
    matches!(status, MessageStatus::Failed | MessageStatus::Dead)
        .then(|| detail.map(|d| d.chars().take(128).collect::<String>()))
        .flatten()
}

/// The head of each message's callbacks: only the oldest row of a message
/// is ever due, which is what keeps them in order (both backends).
pub(crate) const HEAD: &str =
    "c.id = (SELECT MIN(d.id) FROM status_callbacks d WHERE d.message_id = c.message_id)";

impl Store {
    /// Due callbacks (at most one per message, its oldest), oldest first.
    pub async fn due_callbacks(&self, now: i64, limit: usize) -> Result<Vec<PendingCallback>> {
        if let Some(pg) = self.pg() {
            return pg.due_callbacks(now, limit).await;
        }
        self.read(move |c| {
            let sql = format!(
                "SELECT c.id, c.message_id, c.url, c.status, c.error, c.at, c.attempts \
                 FROM status_callbacks c WHERE c.next_attempt_at <= ?1 AND {HEAD} \
                 ORDER BY c.next_attempt_at, c.id LIMIT ?2"
            );
            let rows = c
                .prepare_cached(&sql)?
                .query_map(params![now, limit as i64], |r| {
                    Ok(PendingCallback {
                        id: r.get(0)?,
                        message_id: r.get(1)?,
                        url: r.get(2)?,
                        status: r.get(3)?,
                        error: r.get(4)?,
                        at: r.get(5)?,
                        attempts: r.get(6)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
        .await
    }

    /// When the next callback falls due after `now`, if any is owed.
    pub async fn next_callback_after(&self, now: i64) -> Result<Option<i64>> {
        if let Some(pg) = self.pg() {
            return pg.next_callback_after(now).await;
        }
        self.read(move |c| {
            let sql = format!(
                "SELECT MIN(c.next_attempt_at) FROM status_callbacks c \
                 WHERE c.next_attempt_at > ?1 AND {HEAD}"
            );
            Ok(c.prepare_cached(&sql)?.query_row([now], |r| r.get(0))?)
        })
        .await
    }

    /// A callback was answered 2xx, or given up on: the next one of its
    /// message may go.
    pub async fn callback_done(&self, id: i64) -> Result<()> {
        if let Some(pg) = self.pg() {
            return pg.callback_done(id).await;
        }
        self.write(move |tx| {
            tx.prepare_cached("DELETE FROM status_callbacks WHERE id = ?1")?
                .execute(params![id])?;
            Ok(())
        })
        .await
    }

    /// A callback failed and is due again at `next_at`.
    pub async fn callback_retry(&self, id: i64, attempts: u32, next_at: i64) -> Result<()> {
        if let Some(pg) = self.pg() {
            return pg.callback_retry(id, attempts, next_at).await;
        }
        self.write(move |tx| {
            tx.prepare_cached(
                "UPDATE status_callbacks SET attempts = ?2, next_attempt_at = ?3 WHERE id = ?1",
            )?
            .execute(params![id, attempts, next_at])?;
            Ok(())
        })
        .await
    }

    /// The default callback URL of the live API key `name`.
    pub async fn key_callback(&self, name: String) -> Result<Option<String>> {
        if let Some(pg) = self.pg() {
            return pg.key_callback(name).await;
        }
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT status_callback FROM api_keys WHERE name = ?1 AND revoked_at IS NULL",
            )?
            .query_row(params![name], |r| r.get(0))
            .optional()?
            .flatten())
        })
        .await
    }
}

impl Db {
    /// Sets (or with `None` clears) the default callback URL of the live
    /// API key `name`; false when there is no such key.
    pub fn set_key_callback(&self, name: &str, url: Option<&str>) -> Result<bool> {
        Ok(self.conn().execute(
            "UPDATE api_keys SET status_callback = ?2 WHERE name = ?1 AND revoked_at IS NULL",
            params![name, url],
        )? > 0)
    }
}
