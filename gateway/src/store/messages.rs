//! Messages, their status history, carrier-id de-duplication and the
//! delivery queue.

use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;

use super::Store;
use crate::core::error::Result;

/// Where a queued message goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Out to the phone network through the named route (adapter).
    Route(String),
    /// To the private side's webhook.
    Private,
    /// To an SMPP server client (by `system_id`) that owns the inbound
    /// message's recipient, as `deliver_sm` over its bind.
    Smpp(String),
}

impl Target {
    /// Stored form: `route:<name>`, `private` or `smpp:<system_id>`.
    pub fn as_db(&self) -> String {
        match self {
            Self::Route(r) => format!("route:{r}"),
            Self::Private => "private".into(),
            Self::Smpp(c) => format!("smpp:{c}"),
        }
    }

    /// Parses the stored form.
    pub fn from_db(s: &str) -> Self {
        if let Some(r) = s.strip_prefix("route:") {
            return Self::Route(r.to_string());
        }
        match s.strip_prefix("smpp:") {
            Some(c) => Self::Smpp(c.to_string()),
            None => Self::Private,
        }
    }
}

/// A message to insert, with its envelope already sealed.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Message id.
    pub id: String,
    /// `inbound` / `outbound`.
    pub direction: &'static str,
    /// `sms` / `rcs`.
    pub channel: &'static str,
    /// Adapter it came from (inbound) or route it leaves by (outbound).
    pub adapter: Option<String>,
    /// Sender address.
    pub sender: String,
    /// Recipient address.
    pub recipient: String,
    /// Segments.
    pub segments: u32,
    /// Encoding name.
    pub encoding: String,
    /// Padded size class.
    pub size_class: u32,
    /// Initial status.
    pub status: &'static str,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms after which the sealed body is erased.
    pub expires_at: Option<i64>,
    /// Key id the body is sealed to.
    pub kid: String,
    /// Exact envelope header bytes.
    pub header: Vec<u8>,
    /// Encapsulated key + ciphertext.
    pub sealed: Vec<u8>,
    /// `(adapter, carrier message id)` for de-duplication of carrier retries.
    pub carrier_id: Option<(String, String)>,
    /// Queue entry to create, due now.
    pub queue: Option<Target>,
    /// Where the message is delivered when that is not its direction's
    /// default (an inbound message to an SMPP server client's number);
    /// stored so that a held message, released later, goes there too.
    pub deliver_to: Option<Target>,
    /// Classifier verdict (`ok`, `suspect`, `spam`) and score.
    pub verdict: Option<(&'static str, f32)>,
    /// Reasons (JSON) when the message was held or blocked: the sender goes
    /// to the review queue.
    pub flag_reasons: Option<String>,
}

/// Result of an insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertOutcome {
    /// A new row was written.
    Inserted,
    /// The carrier id was seen before; nothing was written.
    Duplicate {
        /// The message stored the first time.
        id: String,
    },
}

/// One entry of a message's history.
#[derive(Debug, Clone, Serialize)]
pub struct MessageEvent {
    /// RFC 3339.
    pub at: String,
    /// Status reached.
    pub status: String,
    /// Why (error class, attempt number); never content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Metadata view of a message, as `GET /v1/messages/{id}` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    /// Id.
    pub id: String,
    /// Direction.
    pub direction: String,
    /// Channel.
    pub channel: String,
    /// Adapter or route.
    pub adapter: Option<String>,
    /// Sender.
    pub from: String,
    /// Recipient.
    pub to: String,
    /// Current status.
    pub status: String,
    /// Segments.
    pub segments: u32,
    /// Encoding.
    pub encoding: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339 of the last change.
    pub updated_at: String,
    /// RFC 3339 expiry of the sealed body.
    pub expires_at: Option<String>,
    /// Whether the sealed body is still stored.
    pub body_stored: bool,
    /// Carrier correlation id.
    pub carrier_id: Option<String>,
    /// Last delivery error.
    pub last_error: Option<String>,
    /// Delivery attempts so far (while queued).
    pub attempts: Option<u32>,
    /// History, oldest first.
    pub history: Vec<MessageEvent>,
}

/// A due queue entry with what a sender needs.
#[derive(Debug, Clone)]
pub struct QueueItem {
    /// Message id.
    pub message_id: String,
    /// Destination.
    pub target: Target,
    /// Attempts made before this one.
    pub attempts: u32,
    /// When the message was accepted (Unix ms).
    pub created_at: i64,
    /// Envelope header bytes.
    pub header: Vec<u8>,
    /// Sealed body; `None` when it was erased (expired before delivery).
    pub sealed: Option<Vec<u8>>,
}

fn event(
    tx: &Transaction<'_>,
    id: &str,
    at: i64,
    status: &str,
    detail: Option<&str>,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO message_events (message_id, at, status, detail) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![id, at, status, detail])?;
    Ok(())
}

/// Inserts a message (and its queue entry and carrier id) inside `tx`.
pub fn insert(tx: &Transaction<'_>, m: &NewMessage) -> Result<InsertOutcome> {
    if let Some((adapter, cid)) = &m.carrier_id {
        let existing: Option<String> = tx
            .prepare_cached(
                "SELECT message_id FROM carrier_ids WHERE adapter = ?1 AND carrier_id = ?2",
            )?
            .query_row(params![adapter, cid], |r| r.get(0))
            .optional()?;
        if let Some(id) = existing {
            return Ok(InsertOutcome::Duplicate { id });
        }
        tx.prepare_cached(
            "INSERT INTO carrier_ids (adapter, carrier_id, message_id) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![adapter, cid, m.id])?;
    }
    tx.prepare_cached(
        "INSERT INTO messages (id, direction, channel, adapter, sender, recipient, segments, encoding, \
         size_class, status, created_at, updated_at, expires_at, kid, header, sealed, carrier_id, verdict, score, deliver_to) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
    )?
    .execute(params![
        m.id,
        m.direction,
        m.channel,
        m.adapter,
        m.sender,
        m.recipient,
        m.segments,
        m.encoding,
        m.size_class,
        m.status,
        m.created_at,
        m.expires_at,
        m.kid,
        m.header,
        m.sealed,
        m.carrier_id.as_ref().map(|(_, c)| c.as_str()),
        m.verdict.map(|v| v.0),
        m.verdict.map(|v| f64::from(v.1)),
        m.deliver_to.as_ref().map(Target::as_db),
    ])?;
    if let (Some(reasons), Some((verdict, score))) = (&m.flag_reasons, m.verdict) {
        tx.prepare_cached(
            "INSERT INTO flagged_senders (sender, verdict, score, reasons, adapter, first_flagged_at, last_seen) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT(sender) DO UPDATE SET verdict = excluded.verdict, \
             score = excluded.score, reasons = excluded.reasons, last_seen = excluded.last_seen, decided = NULL",
        )?
        .execute(params![m.sender, verdict, f64::from(score), reasons, m.adapter, m.created_at])?;
    }
    event(tx, &m.id, m.created_at, m.status, None)?;
    if let Some(target) = &m.queue {
        tx.prepare_cached(
            "INSERT INTO queue (message_id, target, next_attempt_at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![m.id, target.as_db(), m.created_at])?;
    }
    Ok(InsertOutcome::Inserted)
}

/// Records a status change (and the carrier id, when one was learned).
pub fn set_status(
    tx: &Transaction<'_>,
    id: &str,
    status: &str,
    detail: Option<&str>,
    carrier_id: Option<&str>,
    now: i64,
) -> Result<bool> {
    let n = tx
        .prepare_cached(
            "UPDATE messages SET status = ?2, updated_at = ?3, carrier_id = COALESCE(?4, carrier_id) WHERE id = ?1",
        )?
        .execute(params![id, status, now, carrier_id])?;
    if n > 0 {
        event(tx, id, now, status, detail)?;
    }
    Ok(n > 0)
}

/// A send succeeded: the queue entry goes, the status moves on.
pub fn complete(
    tx: &Transaction<'_>,
    id: &str,
    status: &str,
    carrier_id: Option<&str>,
    detail: Option<&str>,
    now: i64,
) -> Result<()> {
    tx.prepare_cached("DELETE FROM queue WHERE message_id = ?1")?
        .execute(params![id])?;
    set_status(tx, id, status, detail, carrier_id, now)?;
    Ok(())
}

/// A send failed and will be tried again at `next_at`.
pub fn reschedule(
    tx: &Transaction<'_>,
    id: &str,
    attempts: u32,
    next_at: i64,
    error: &str,
    now: i64,
) -> Result<()> {
    tx.prepare_cached("UPDATE queue SET attempts = ?2, next_attempt_at = ?3, last_error = ?4 WHERE message_id = ?1")?
        .execute(params![id, attempts, next_at, error])?;
    tx.prepare_cached("UPDATE messages SET last_error = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, error, now])?;
    event(
        tx,
        id,
        now,
        "retrying",
        Some(&format!("attempt {attempts}: {error}")),
    )?;
    Ok(())
}

/// A message exhausted its attempts or its age: it stays in the queue table,
/// marked dead, so an operator can see it and retry it.
pub fn dead_letter(
    tx: &Transaction<'_>,
    id: &str,
    attempts: u32,
    error: &str,
    now: i64,
) -> Result<()> {
    tx.prepare_cached(
        "UPDATE queue SET dead = 1, attempts = ?2, last_error = ?3 WHERE message_id = ?1",
    )?
    .execute(params![id, attempts, error])?;
    tx.prepare_cached(
        "UPDATE messages SET status = 'dead', last_error = ?2, updated_at = ?3 WHERE id = ?1",
    )?
    .execute(params![id, error, now])?;
    event(tx, id, now, "dead", Some(error))?;
    Ok(())
}

/// Puts a dead-lettered message back in the queue, due now.
pub fn retry_dead(tx: &Transaction<'_>, id: &str, now: i64) -> Result<bool> {
    let n = tx
        .prepare_cached("UPDATE queue SET dead = 0, attempts = 0, next_attempt_at = ?2 WHERE message_id = ?1 AND dead = 1")?
        .execute(params![id, now])?;
    if n > 0 {
        set_status(tx, id, "queued", Some("retried by operator"), None, now)?;
    }
    Ok(n > 0)
}

/// Erases the sealed bodies of messages whose expiry passed, or that were
/// accepted before `retain_after` (the retention policy); returns how many.
pub fn erase_expired(tx: &Transaction<'_>, now: i64, retain_after: i64) -> Result<usize> {
    let ids: Vec<String> = tx
        .prepare_cached(
            "SELECT id FROM messages WHERE expires_at IS NOT NULL AND expires_at <= ?1 AND sealed IS NOT NULL \
             UNION SELECT id FROM messages WHERE created_at < ?2 AND sealed IS NOT NULL LIMIT 10000",
        )?
        .query_map(params![now, retain_after], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in &ids {
        tx.prepare_cached("UPDATE messages SET sealed = NULL, updated_at = ?2 WHERE id = ?1")?
            .execute(params![id, now])?;
        // A message still waiting to go out cannot go any more.
        let queued = tx
            .prepare_cached("DELETE FROM queue WHERE message_id = ?1")?
            .execute(params![id])?;
        if queued > 0 {
            set_status(
                tx,
                id,
                "expired",
                Some("expired before delivery; body erased"),
                None,
                now,
            )?;
        } else {
            event(tx, id, now, "erased", Some("body erased at expiry"))?;
        }
    }
    Ok(ids.len())
}

/// Deletes every trace of messages accepted before `cutoff` (metadata
/// retention); returns how many messages were deleted.
pub fn delete_old_metadata(tx: &Transaction<'_>, cutoff: i64) -> Result<usize> {
    let ids: Vec<String> = tx
        .prepare_cached("SELECT id FROM messages WHERE created_at < ?1 LIMIT 10000")?
        .query_map(params![cutoff], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in &ids {
        for sql in [
            "DELETE FROM message_events WHERE message_id = ?1",
            "DELETE FROM queue WHERE message_id = ?1",
            "DELETE FROM carrier_ids WHERE message_id = ?1",
            // SMPP: SMSC ids of its parts, and a receipt still owed for it.
            "DELETE FROM smpp_parts WHERE message_id = ?1",
            "DELETE FROM smpp_receipts WHERE message_id = ?1",
            "DELETE FROM messages WHERE id = ?1",
        ] {
            tx.prepare_cached(sql)?.execute(params![id])?;
        }
    }
    Ok(ids.len())
}

impl Store {
    /// Inserts one message in the next group commit.
    pub async fn insert_message(&self, m: NewMessage) -> Result<InsertOutcome> {
        self.writer().write(move |tx| insert(tx, &m)).await
    }

    /// Due, live queue entries, oldest first, skipping `exclude` (in flight).
    /// Ids are filtered before any body is read, so a large in-flight set
    /// costs index reads, not blob reads.
    pub async fn due(
        &self,
        now: i64,
        limit: usize,
        exclude: std::collections::HashSet<String>,
    ) -> Result<Vec<QueueItem>> {
        self.read(move |c| {
            let ids: Vec<String> = c
                .prepare_cached(
                    "SELECT message_id FROM queue WHERE dead = 0 AND next_attempt_at <= ?1 \
                     ORDER BY next_attempt_at LIMIT ?2",
                )?
                .query_map(params![now, (limit + exclude.len()) as i64], |r| {
                    r.get::<_, String>(0)
                })?
                .filter(|id| id.as_ref().map(|i| !exclude.contains(i)).unwrap_or(true))
                .take(limit)
                .collect::<rusqlite::Result<_>>()?;
            let mut stmt = c.prepare_cached(
                "SELECT q.message_id, q.target, q.attempts, m.created_at, m.header, m.sealed \
                 FROM queue q JOIN messages m ON m.id = q.message_id WHERE q.message_id = ?1",
            )?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let item = stmt
                    .query_row(params![id], |r| {
                        Ok(QueueItem {
                            message_id: r.get(0)?,
                            target: Target::from_db(&r.get::<_, String>(1)?),
                            attempts: r.get(2)?,
                            created_at: r.get(3)?,
                            header: r.get(4)?,
                            sealed: r.get(5)?,
                        })
                    })
                    .optional()?;
                out.extend(item);
            }
            Ok(out)
        })
        .await
    }

    /// When the next live entry falls due after `now`, if any. Entries due
    /// by `now` are not asked about: the poll that just ran took every one
    /// of them that was not already in flight, and in-flight entries must
    /// not make the poller spin while their sends run.
    pub async fn next_due_after(&self, now: i64) -> Result<Option<i64>> {
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT MIN(next_attempt_at) FROM queue WHERE dead = 0 AND next_attempt_at > ?1",
            )?
            .query_row([now], |r| r.get(0))?)
        })
        .await
    }

    /// Live and dead queue depths.
    pub async fn queue_depth(&self) -> Result<(i64, i64)> {
        self.read(|c| {
            let live: i64 = c
                .prepare_cached("SELECT COUNT(*) FROM queue WHERE dead = 0")?
                .query_row([], |r| r.get(0))?;
            let dead: i64 = c
                .prepare_cached("SELECT COUNT(*) FROM queue WHERE dead = 1")?
                .query_row([], |r| r.get(0))?;
            Ok((live, dead))
        })
        .await
    }

    /// The metadata view of one message, with its history.
    pub async fn message(&self, id: String) -> Result<Option<MessageView>> {
        self.read(move |c| message_view(c, &id)).await
    }

    /// Ids of dead-lettered messages, newest first.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<MessageView>> {
        self.read(move |c| {
            let ids: Vec<String> = c
                .prepare_cached(
                    "SELECT q.message_id FROM queue q JOIN messages m ON m.id = q.message_id \
                     WHERE q.dead = 1 ORDER BY m.updated_at DESC LIMIT ?1",
                )?
                .query_map(params![limit as i64], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut out = Vec::new();
            for id in ids {
                if let Some(v) = message_view(c, &id)? {
                    out.push(v);
                }
            }
            Ok(out)
        })
        .await
    }

    /// The message id stored for an outbound carrier correlation id.
    pub async fn id_by_carrier_id(&self, carrier_id: String) -> Result<Option<String>> {
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT id FROM messages WHERE carrier_id = ?1 AND direction = 'outbound'",
            )?
            .query_row(params![carrier_id], |r| r.get(0))
            .optional()?)
        })
        .await
    }
}

/// Reads one message's metadata and history.
pub fn message_view(c: &rusqlite::Connection, id: &str) -> Result<Option<MessageView>> {
    use crate::core::clock::rfc3339_ms;
    let row = c
        .prepare_cached(
            "SELECT m.id, m.direction, m.channel, m.adapter, m.sender, m.recipient, m.status, m.segments, \
             m.encoding, m.created_at, m.updated_at, m.expires_at, m.sealed IS NOT NULL, m.carrier_id, \
             m.last_error, q.attempts \
             FROM messages m LEFT JOIN queue q ON q.message_id = m.id WHERE m.id = ?1",
        )?
        .query_row(params![id], |r| {
            Ok(MessageView {
                id: r.get(0)?,
                direction: r.get(1)?,
                channel: r.get(2)?,
                adapter: r.get(3)?,
                from: r.get(4)?,
                to: r.get(5)?,
                status: r.get(6)?,
                segments: r.get(7)?,
                encoding: r.get(8)?,
                created_at: rfc3339_ms(r.get(9)?),
                updated_at: rfc3339_ms(r.get(10)?),
                expires_at: r.get::<_, Option<i64>>(11)?.map(rfc3339_ms),
                body_stored: r.get(12)?,
                carrier_id: r.get(13)?,
                last_error: r.get(14)?,
                attempts: r.get(15)?,
                history: Vec::new(),
            })
        })
        .optional()?;
    let Some(mut view) = row else {
        return Ok(None);
    };
    view.history = c
        .prepare_cached(
            "SELECT at, status, detail FROM message_events WHERE message_id = ?1 ORDER BY rowid",
        )?
        .query_map(params![id], |r| {
            Ok(MessageEvent {
                at: rfc3339_ms(r.get(0)?),
                status: r.get(1)?,
                detail: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(view))
}
