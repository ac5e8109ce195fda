//! [`Db`]: the store for one-shot commands (the CLI), on the calling thread.
//!
//! The running service uses [`super::Store`] (group commit, a reader pool,
//! async); a command such as `gateway review mark` or `gateway keys api
//! create` opens one connection, does its few operations and exits. Both
//! call the same named operations; neither hands out a connection, so no
//! SQL lives outside `store/`.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::messages::{MessageView, message_view, retry_dead};
use crate::core::error::Result;

/// How long a review drop can be undone unless configured (`[review]
/// undo_window_secs`).
pub const DEFAULT_UNDO_WINDOW_SECS: u64 = 30;

/// The database, opened by [`super::open_for_cli`].
pub struct Db {
    conn: Connection,
    /// How long a review drop can be undone (`[review] undo_window_secs`).
    pub(super) undo_window_ms: i64,
}

/// One line of a metadata trace (`gateway model export`), oldest first.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceRow {
    /// A message was accepted.
    Message {
        /// Unix ms.
        at: i64,
        /// Message id.
        id: String,
        /// Sender.
        from: String,
        /// Recipient.
        to: String,
        /// `sms` or `rcs`.
        channel: String,
        /// Segments.
        segments: u32,
        /// Encoding name.
        encoding: String,
        /// Padded size class (a size, never content).
        size_class: u32,
        /// From the phone network (the counterparty is `from`), else to it
        /// (the counterparty is `to`).
        inbound: bool,
    },
    /// A message reached `delivered` or `failed`.
    Status {
        /// Unix ms.
        at: i64,
        /// Message id.
        id: String,
        /// True for delivered, false for failed.
        delivered: bool,
    },
}

/// What the store knows of one sender, for `gateway review show`.
#[derive(Debug, Clone, Default)]
pub struct SenderActivity {
    /// The sender (the one asked for, or the sender of the message asked for).
    pub sender: String,
    /// Messages stored from it.
    pub messages: i64,
    /// Of those, held or blocked now.
    pub held: i64,
    /// Distinct recipients.
    pub distinct_recipients: i64,
    /// Delivered.
    pub delivered: i64,
    /// Failed or dead-lettered.
    pub failed: i64,
    /// Messages per day (RFC 3339 date, count).
    pub per_day: Vec<(String, i64)>,
    /// Its messages' metadata, oldest first (at most 100 000).
    pub rows: Vec<SenderMessage>,
}

/// One message of a sender, metadata only.
#[derive(Debug, Clone)]
pub struct SenderMessage {
    /// Message id.
    pub id: String,
    /// Recipient.
    pub to: String,
    /// Segments.
    pub segments: u32,
    /// Encoding name.
    pub encoding: String,
    /// Padded size class.
    pub size_class: u32,
    /// Unix ms.
    pub created_at: i64,
}

impl Db {
    pub(super) fn new(conn: Connection) -> Self {
        Self {
            conn,
            undo_window_ms: DEFAULT_UNDO_WINDOW_SECS as i64 * 1000,
        }
    }

    /// An empty, migrated database in memory (tests).
    pub fn open_in_memory() -> Result<Self> {
        let mut conn = Connection::open_in_memory()?;
        super::schema::migrate(&mut conn)?;
        Ok(Self::new(conn))
    }

    /// Sets the undo window of review drops (0: drops are final at once).
    pub fn set_undo_window(&mut self, secs: u64) {
        self.undo_window_ms = i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    }

    /// The undo window of review drops, in seconds.
    pub fn undo_window_secs(&self) -> i64 {
        self.undo_window_ms / 1000
    }

    pub(super) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Runs `f` in an IMMEDIATE transaction: it reads, then writes, while
    /// the running service writes too, and a deferred transaction that read
    /// first cannot take the write lock once another commit landed (SQLite
    /// answers "database is locked" at once instead of waiting).
    pub(super) fn immediate<R>(&mut self, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// The metadata view of one message, with its history.
    pub fn message(&self, id: &str) -> Result<Option<MessageView>> {
        message_view(&self.conn, id)
    }

    /// Dead-lettered messages, the most recently changed first.
    pub fn dead_letters(&self, limit: usize) -> Result<Vec<MessageView>> {
        let ids: Vec<String> = self
            .conn
            .prepare(
                "SELECT q.message_id FROM queue q JOIN messages m ON m.id = q.message_id \
                 WHERE q.dead = 1 ORDER BY m.updated_at DESC LIMIT ?1",
            )?
            .query_map([limit as i64], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut views = Vec::new();
        for id in ids {
            if let Some(v) = message_view(&self.conn, &id)? {
                views.push(v);
            }
        }
        Ok(views)
    }

    /// Puts a dead-lettered message back in the queue; false when there is
    /// no dead letter with this id.
    pub fn retry_dead(&mut self, id: &str) -> Result<bool> {
        let now = crate::core::clock::now_ms();
        self.immediate(|tx| retry_dead(tx, id, now))
    }

    /// Every message accepted at or after `since` and every `delivered` /
    /// `failed` status reached since then (late reports left out), in time
    /// order, to `each`.
    pub fn trace(&self, since: i64, mut each: impl FnMut(TraceRow) -> Result<()>) -> Result<()> {
        let mut stmt = self.conn.prepare(
            "SELECT at, kind, id, sender, recipient, channel, segments, encoding, size_class, status, direction FROM ( \
               SELECT created_at AS at, 0 AS kind, id, sender, recipient, channel, segments, encoding, size_class, NULL AS status, \
               direction FROM messages WHERE created_at >= ?1 \
               UNION ALL \
               SELECT e.at, 1, e.message_id, NULL, NULL, NULL, NULL, NULL, NULL, e.status, NULL FROM message_events e \
               WHERE e.at >= ?1 AND e.status IN ('delivered', 'failed') AND e.late = 0) ORDER BY at, kind",
        )?;
        let mut rows = stmt.query([since])?;
        while let Some(r) = rows.next()? {
            let at: i64 = r.get(0)?;
            let kind: i64 = r.get(1)?;
            let id: String = r.get(2)?;
            let row = if kind == 0 {
                TraceRow::Message {
                    at,
                    id,
                    from: r.get(3)?,
                    to: r.get(4)?,
                    channel: r.get(5)?,
                    segments: r.get(6)?,
                    encoding: r.get(7)?,
                    size_class: r.get(8)?,
                    inbound: r.get::<_, String>(10)? == "inbound",
                }
            } else {
                TraceRow::Status {
                    at,
                    id,
                    delivered: r.get::<_, String>(9)? == "delivered",
                }
            };
            each(row)?;
        }
        Ok(())
    }

    /// What is stored about `target` (a sender, or a message id standing for
    /// its sender); `messages` is 0 when nothing is.
    pub fn sender_activity(&self, target: &str) -> Result<SenderActivity> {
        let c = &self.conn;
        let sender: String = c
            .query_row("SELECT sender FROM messages WHERE id = ?1", [target], |r| {
                r.get(0)
            })
            .optional()?
            .unwrap_or_else(|| target.to_string());
        let q = |sql: &str| -> Result<i64> { Ok(c.query_row(sql, [&sender], |r| r.get(0))?) };
        let mut a = SenderActivity {
            messages: q("SELECT COUNT(*) FROM messages WHERE sender = ?1")?,
            ..SenderActivity::default()
        };
        if a.messages == 0 {
            a.sender = sender;
            return Ok(a);
        }
        a.held =
            q("SELECT COUNT(*) FROM messages WHERE sender = ?1 AND status IN ('held', 'blocked')")?;
        a.distinct_recipients =
            q("SELECT COUNT(DISTINCT recipient) FROM messages WHERE sender = ?1")?;
        a.delivered =
            q("SELECT COUNT(*) FROM messages WHERE sender = ?1 AND status = 'delivered'")?;
        a.failed =
            q("SELECT COUNT(*) FROM messages WHERE sender = ?1 AND status IN ('failed', 'dead')")?;
        let mut stmt = c.prepare(
            "SELECT created_at / 86400000, COUNT(*) FROM messages WHERE sender = ?1 GROUP BY 1 ORDER BY 1",
        )?;
        for row in stmt.query_map([&sender], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })? {
            let (day, n) = row?;
            a.per_day.push((
                crate::core::clock::rfc3339_ms(day * 86_400_000)
                    .chars()
                    .take(10)
                    .collect(),
                n,
            ));
        }
        let mut stmt = c.prepare(
            "SELECT id, recipient, segments, encoding, size_class, created_at FROM messages \
             WHERE sender = ?1 ORDER BY created_at LIMIT 100000",
        )?;
        a.rows = stmt
            .query_map(params![sender], |r| {
                Ok(SenderMessage {
                    id: r.get(0)?,
                    to: r.get(1)?,
                    segments: r.get(2)?,
                    encoding: r.get(3)?,
                    size_class: r.get(4)?,
                    created_at: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        a.sender = sender;
        Ok(a)
    }
}
