//! Messages, their status history, carrier-id de-duplication and the
//! delivery queue.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::Store;
use super::status::{MessageStatus, Tally, Transition, Verdict};
use crate::core::error::{Error, Result};

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
    /// To the webhook of the tenant (by name) that owns the inbound
    /// message's recipient.
    Tenant(String),
}

impl Target {
    /// Stored form: `route:<name>`, `private` or `smpp:<system_id>`.
    pub fn as_db(&self) -> String {
        match self {
            Self::Route(r) => format!("route:{r}"),
            Self::Private => "private".into(),
            Self::Smpp(c) => format!("smpp:{c}"),
            Self::Tenant(t) => format!("tenant:{t}"),
        }
    }

    /// Parses the stored form.
    pub fn from_db(s: &str) -> Self {
        if let Some(r) = s.strip_prefix("route:") {
            return Self::Route(r.to_string());
        }
        if let Some(t) = s.strip_prefix("tenant:") {
            return Self::Tenant(t.to_string());
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
    pub status: MessageStatus,
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
    /// Classifier verdict and score.
    pub verdict: Option<(Verdict, f32)>,
    /// Reasons (JSON) when the message was held or blocked: the sender goes
    /// to the review queue.
    pub flag_reasons: Option<String>,
    /// The API request's idempotency key, if it sent one.
    pub idempotency: Option<Idempotency>,
    /// No content at rest (`[privacy]`): the row is written without the
    /// sealed body, which travels in memory only.
    pub transit: bool,
    /// Where the message's status changes are POSTed (an API client's
    /// `status_callback`, or its key's default).
    pub status_callback: Option<String>,
    /// The tenant that owns it (`None`: the implicit tenant, or an inbound
    /// message to an address no tenant owns).
    pub tenant: Option<String>,
}

/// Result of an insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertOutcome {
    /// A new row was written.
    Inserted,
    /// The carrier id (or the API idempotency key with the same body) was
    /// seen before; nothing was written.
    Duplicate {
        /// The message stored the first time.
        id: String,
    },
    /// The API idempotency key was used within its window for a different
    /// request body; nothing was written.
    IdempotencyConflict,
}

/// How long an API `Idempotency-Key` answers with its first message (24 h).
pub const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 3_600_000;

/// An API request's `Idempotency-Key`, stored with its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// Whose key space: the API key that sent it.
    pub scope: String,
    /// The client's key.
    pub key: String,
    /// A hash of the request body (SHA-256, hex): same key, other body is a conflict.
    pub body_hash: String,
}

/// One entry of a message's history.
#[derive(Debug, Clone, Serialize)]
pub struct MessageEvent {
    /// RFC 3339.
    pub at: String,
    /// Status reached (or event: `retrying`, `opt_out`, `read`, …).
    pub status: String,
    /// Why (error class, attempt number); never content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// True for a reported status that arrived after the message had moved
    /// past it: kept for the record, it changed nothing.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
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
    pub status: MessageStatus,
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
    /// The tenant that owns it (absent: the implicit tenant).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

impl MessageView {
    /// The message's metadata as (label, value) rows in the order an
    /// operator reads them, optional ones only when present: one list for
    /// `gateway messages show` and the console's message page.
    pub fn detail_rows(&self) -> Vec<(&'static str, String)> {
        let mut rows = vec![
            ("id", self.id.clone()),
            ("direction", self.direction.clone()),
            ("channel", self.channel.clone()),
            ("route", self.adapter.clone().unwrap_or_else(|| "-".into())),
            ("from", self.from.clone()),
            ("to", self.to.clone()),
            ("status", self.status.to_string()),
            ("segments", format!("{} ({})", self.segments, self.encoding)),
            ("created", self.created_at.clone()),
            ("updated", self.updated_at.clone()),
            (
                "body",
                if self.body_stored {
                    "stored (sealed, never shown)".into()
                } else {
                    "erased".into()
                },
            ),
        ];
        let optional = [
            ("expires", self.expires_at.clone()),
            ("carrier id", self.carrier_id.clone()),
            ("attempts", self.attempts.map(|a| a.to_string())),
            ("last error", self.last_error.clone()),
            ("tenant", self.tenant.clone()),
        ];
        rows.extend(optional.into_iter().filter_map(|(k, v)| Some((k, v?))));
        rows
    }
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

/// A delivery status reported for a message: by a carrier's callback, a
/// status report or receipt, or the delivery worker's own outcome.
#[derive(Debug, Clone)]
pub struct StatusReport {
    /// The status reported. For a part report, the status the part has
    /// (its message's status follows from all its parts).
    pub status: MessageStatus,
    /// Why, in a few words (an error code, `attempt 2`); never content.
    pub detail: Option<String>,
    /// The far end's id of the message, when this report tells it.
    pub carrier_id: Option<String>,
    /// Set when the report is about one part of a multipart message.
    pub part: Option<PartReport>,
    /// The delivery worker's success: the queue entry goes.
    pub finish_queue: bool,
}

impl StatusReport {
    /// A plain report of `status`.
    pub fn new(status: MessageStatus, detail: Option<String>) -> Self {
        Self {
            status,
            detail,
            carrier_id: None,
            part: None,
            finish_queue: false,
        }
    }
}

/// A report about the parts of a multipart message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartReport {
    /// The far end sent the message in this many parts (an Android
    /// phone's `sms:sent` with `partsCount`); `status` is then `sent`.
    Count(u32),
    /// One part was delivered (an Android phone's `sms:delivered`); `key`
    /// tells a retried webhook from the next part.
    Delivered {
        /// The webhook's delivery id.
        key: String,
    },
    /// An SMPP delivery receipt for the part the SMSC knows as `smsc_id`
    /// on `route`; `status` is `delivered` or `failed`.
    Smpp {
        /// The client route (`smpp:<name>`).
        route: String,
        /// The SMSC's message id of the part.
        smsc_id: String,
    },
}

/// What a status report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// `inbound` or `outbound`.
    pub direction: String,
    /// The status before.
    pub before: MessageStatus,
    /// The status after (the same when nothing moved).
    pub after: MessageStatus,
    /// True when the report was a repeat (a retried webhook, a receipt
    /// seen before): nothing was recorded.
    pub repeated: bool,
}

impl Applied {
    /// The status the message moved to, if it moved.
    pub fn moved(&self) -> Option<MessageStatus> {
        (self.after != self.before).then_some(self.after)
    }
}

/// Adds one entry to a message's history.
pub(super) fn event(
    tx: &Connection,
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

fn late_event(tx: &Connection, id: &str, at: i64, status: &str, detail: &str) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO message_events (message_id, at, status, detail, late) VALUES (?1, ?2, ?3, ?4, 1)",
    )?
    .execute(params![id, at, status, detail])?;
    Ok(())
}

impl Store {
    /// What an idempotency key already stands for at `now`: the first
    /// message's id (same body), a conflict (another body), or nothing. The
    /// insert checks again inside its transaction; this early look answers
    /// a client's retry before the spam gate and rate limits see it again.
    pub async fn idempotent(&self, i: Idempotency, now: i64) -> Result<Option<InsertOutcome>> {
        if let Some(pg) = self.pg() {
            return pg.idempotent(i, now).await;
        }
        self.read(move |c| {
            let existing: Option<(String, String, i64)> = c
                .prepare_cached(
                    "SELECT body_hash, message_id, created_at FROM idempotency WHERE scope = ?1 AND key = ?2",
                )?
                .query_row(params![i.scope, i.key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            Ok(existing.and_then(|(hash, id, at)| {
                (now - at < IDEMPOTENCY_WINDOW_MS).then(|| {
                    if hash == i.body_hash {
                        InsertOutcome::Duplicate { id }
                    } else {
                        InsertOutcome::IdempotencyConflict
                    }
                })
            }))
        })
        .await
    }
}

/// Records an API idempotency key with message `m`, or says what the key
/// already stands for within its window.
fn claim_idempotency(tx: &Connection, m: &NewMessage) -> Result<Option<InsertOutcome>> {
    let Some(i) = &m.idempotency else {
        return Ok(None);
    };
    let existing: Option<(String, String, i64)> = tx
        .prepare_cached(
            "SELECT body_hash, message_id, created_at FROM idempotency WHERE scope = ?1 AND key = ?2",
        )?
        .query_row(params![i.scope, i.key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    if let Some((hash, id, at)) = existing {
        if m.created_at - at < IDEMPOTENCY_WINDOW_MS {
            return Ok(Some(if hash == i.body_hash {
                InsertOutcome::Duplicate { id }
            } else {
                InsertOutcome::IdempotencyConflict
            }));
        }
    }
    tx.prepare_cached(
        "INSERT OR REPLACE INTO idempotency (scope, key, body_hash, message_id, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![i.scope, i.key, i.body_hash, m.id, m.created_at])?;
    Ok(None)
}

/// Inserts a message (and its queue entry and carrier id) inside `tx`.
pub(super) fn insert(tx: &Connection, m: &NewMessage) -> Result<InsertOutcome> {
    if let Some(answered) = claim_idempotency(tx, m)? {
        return Ok(answered);
    }
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
         size_class, status, created_at, updated_at, expires_at, kid, header, sealed, carrier_id, verdict, score, deliver_to, transit, tenant) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
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
        m.status.as_str(),
        m.created_at,
        m.expires_at,
        m.kid,
        m.header,
        (!m.transit).then_some(&m.sealed),
        m.carrier_id.as_ref().map(|(_, c)| c.as_str()),
        m.verdict.map(|v| v.0.as_str()),
        m.verdict.map(|v| f64::from(v.1)),
        m.deliver_to.as_ref().map(Target::as_db),
        m.transit,
        m.tenant,
    ])?;
    if let (Some(reasons), Some((verdict, score))) = (&m.flag_reasons, m.verdict) {
        tx.prepare_cached(concat!(
            "INSERT INTO flagged_senders (sender, verdict, score, reasons, adapter, first_flagged_at, last_seen) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT(sender) DO UPDATE SET ",
            super::review::flag_upsert_set!()
        ))?
        .execute(params![m.sender, verdict.as_str(), f64::from(score), reasons, m.adapter, m.created_at])?;
    }
    event(tx, &m.id, m.created_at, m.status.as_str(), None)?;
    if let Some(url) = &m.status_callback {
        super::callbacks::set_url(tx, &m.id, url)?;
    }
    if let Some(target) = &m.queue {
        tx.prepare_cached(
            "INSERT INTO queue (message_id, target, next_attempt_at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![m.id, target.as_db(), m.created_at])?;
    }
    Ok(InsertOutcome::Inserted)
}

/// Sets a message's status outright (an operator's decision, the
/// gateway's own bookkeeping), with a history entry.
pub(super) fn force_status(
    tx: &Connection,
    id: &str,
    status: MessageStatus,
    detail: Option<&str>,
    now: i64,
) -> Result<bool> {
    let n = tx
        .prepare_cached("UPDATE messages SET status = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, status.as_str(), now])?;
    if n > 0 {
        event(tx, id, now, status.as_str(), detail)?;
        // An operator's drop ends the message: its client hears of it.
        super::callbacks::on_status(tx, id, status, detail, now)?;
    }
    Ok(n > 0)
}

/// What the status rule reads of a message, in one lookup: its status,
/// direction and callback URL (read here rather than again by
/// `callbacks::on_status`: one row lookup less per recorded outcome).
struct Current {
    status: MessageStatus,
    direction: String,
    callback: Option<String>,
}

fn current(tx: &Connection, id: &str) -> Result<Option<Current>> {
    let row: Option<(String, String, Option<String>)> = tx
        .prepare_cached("SELECT status, direction, status_callback FROM messages WHERE id = ?1")?
        .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    row.map(|(s, direction, callback)| {
        Ok(Current {
            status: parse_status(&s)?,
            direction,
            callback,
        })
    })
    .transpose()
}

pub(super) fn parse_status(s: &str) -> Result<MessageStatus> {
    MessageStatus::parse(s).ok_or_else(|| Error::Store(format!("unknown message status {s:?}")))
}

/// The parts of an Android message: the count its latest `sent` event
/// announced, and its delivered parts.
fn android_tally(tx: &Connection, id: &str) -> Result<Tally> {
    let delivered: i64 = tx
        .prepare_cached(
            "SELECT COUNT(*) FROM message_events WHERE message_id = ?1 AND status = 'part_delivered'",
        )?
        .query_row(params![id], |r| r.get(0))?;
    let total: Option<u32> = tx
        .prepare_cached(
            "SELECT detail FROM message_events WHERE message_id = ?1 AND status = 'sent' \
             AND detail LIKE 'parts=%' ORDER BY rowid DESC LIMIT 1",
        )?
        .query_row(params![id], |r| r.get::<_, String>(0))
        .optional()?
        .and_then(|d| d.strip_prefix("parts=").and_then(|n| n.parse().ok()));
    Ok(Tally {
        total,
        delivered: u32::try_from(delivered).unwrap_or(u32::MAX),
        failed: 0,
    })
}

fn parts_detail(t: &Tally) -> String {
    format!("{} of {} parts", t.delivered, t.total.unwrap_or(1))
}

/// The parts of a message sent through an SMPP client bind, from their
/// receipts.
fn smpp_tally(tx: &Connection, id: &str) -> Result<Tally> {
    let (total, delivered, failed): (i64, i64, i64) = tx
        .prepare_cached(
            "SELECT MAX(total), SUM(state = 'delivered'), SUM(state = 'failed') FROM smpp_parts WHERE message_id = ?1",
        )?
        .query_row(params![id], |r| {
            Ok((
                r.get::<_, Option<i64>>(0)?.unwrap_or(0),
                r.get::<_, Option<i64>>(1)?.unwrap_or(0),
                r.get::<_, Option<i64>>(2)?.unwrap_or(0),
            ))
        })?;
    let n = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
    Ok(Tally {
        total: Some(n(total)),
        delivered: n(delivered),
        failed: n(failed),
    })
}

/// Records a part report. `None` when the part was reported before;
/// else the message status its parts now add up to (if they do) and the
/// history's words for it.
type PartOutcome = Option<(Option<MessageStatus>, Option<String>)>;

fn record_part(
    tx: &Connection,
    id: &str,
    report: &StatusReport,
    part: &PartReport,
    now: i64,
) -> Result<PartOutcome> {
    match part {
        PartReport::Count(n) => {
            event(
                tx,
                id,
                now,
                report.status.as_str(),
                Some(&format!("parts={n}")),
            )?;
            let t = android_tally(tx, id)?;
            Ok(Some((t.status(), Some(parts_detail(&t)))))
        }
        PartReport::Delivered { key } => {
            let detail = format!("delivery {}", &key[..key.len().min(64)]);
            let seen: i64 = tx
                .prepare_cached(
                    "SELECT COUNT(*) FROM message_events WHERE message_id = ?1 AND status = 'part_delivered' AND detail = ?2",
                )?
                .query_row(params![id, detail], |r| r.get(0))?;
            if seen > 0 {
                return Ok(None);
            }
            event(tx, id, now, "part_delivered", Some(&detail))?;
            let t = android_tally(tx, id)?;
            Ok(Some((t.status(), Some(parts_detail(&t)))))
        }
        PartReport::Smpp { route, smsc_id } => {
            let before: Option<Option<String>> = tx
                .prepare_cached("SELECT state FROM smpp_parts WHERE route = ?1 AND smsc_id = ?2")?
                .query_row(params![route, smsc_id], |r| r.get(0))
                .optional()?;
            if !matches!(before, Some(None)) {
                return Ok(None); // A repeated receipt, or a part we do not know.
            }
            tx.prepare_cached(
                "UPDATE smpp_parts SET state = ?3 WHERE route = ?1 AND smsc_id = ?2",
            )?
            .execute(params![route, smsc_id, report.status.as_str()])?;
            Ok(Some((smpp_tally(tx, id)?.status(), report.detail.clone())))
        }
    }
}

/// Applies a reported status to message `id` by the one rule of
/// [`MessageStatus::advance`]: forward only, first final status wins, a
/// late report kept in the history (marked late), a repeat ignored. The
/// carrier id and the queue entry (the worker's success) are taken care of
/// whatever the status does. A message that becomes delivered loses its
/// RCS fallback timer in the same transaction. `None` for an unknown id.
pub(super) fn apply_status(
    tx: &Connection,
    id: &str,
    report: &StatusReport,
    now: i64,
) -> Result<Option<Applied>> {
    let Some(Current {
        status: before,
        direction,
        callback,
    }) = current(tx, id)?
    else {
        return Ok(None);
    };
    // The carrier id goes with the status's UPDATE when the status moves
    // (one row write instead of two); otherwise on its own.
    let keep_carrier_id = || -> Result<()> {
        if let Some(cid) = &report.carrier_id {
            tx.prepare_cached("UPDATE messages SET carrier_id = ?2 WHERE id = ?1")?
                .execute(params![id, cid])?;
        }
        Ok(())
    };
    if report.finish_queue {
        tx.prepare_cached("DELETE FROM queue WHERE message_id = ?1")?
            .execute(params![id])?;
    }
    let unchanged = |repeated| Applied {
        direction: direction.clone(),
        before,
        after: before,
        repeated,
    };
    // What the message as a whole is reported to be, and in which words.
    let (wanted, detail) = match &report.part {
        None => (Some(report.status), report.detail.clone()),
        Some(part) => match record_part(tx, id, report, part, now)? {
            None => {
                keep_carrier_id()?;
                return Ok(Some(unchanged(true)));
            }
            // A count comes with `sent`; the parts may add up to more.
            Some((None, _)) if matches!(part, PartReport::Count(_)) => {
                (Some(report.status), report.detail.clone())
            }
            Some((by_parts, words)) => (by_parts, words),
        },
    };
    let Some(wanted) = wanted else {
        keep_carrier_id()?;
        return Ok(Some(unchanged(false)));
    };
    let detail = detail.as_deref();
    match before.advance(wanted) {
        Transition::Repeated => {
            keep_carrier_id()?;
            Ok(Some(unchanged(report.part.is_none())))
        }
        Transition::Late => {
            keep_carrier_id()?;
            if report.part.is_none() {
                let why = match detail {
                    Some(d) => format!("already {before}; {d}"),
                    None => format!("already {before}"),
                };
                late_event(tx, id, now, wanted.as_str(), &why)?;
            }
            Ok(Some(unchanged(false)))
        }
        Transition::Moved(after) => {
            match &report.carrier_id {
                Some(cid) => tx
                    .prepare_cached(
                        "UPDATE messages SET status = ?2, updated_at = ?3, carrier_id = ?4 WHERE id = ?1",
                    )?
                    .execute(params![id, after.as_str(), now, cid])?,
                None => tx
                    .prepare_cached("UPDATE messages SET status = ?2, updated_at = ?3 WHERE id = ?1")?
                    .execute(params![id, after.as_str(), now])?,
            };
            let mut detail = detail.map(str::to_string);
            if after == MessageStatus::Delivered {
                let cancelled = tx
                    .prepare_cached("DELETE FROM rcs_fallback WHERE message_id = ?1")?
                    .execute(params![id])?;
                if cancelled > 0 {
                    detail = Some(match detail {
                        Some(d) => format!("{d}; SMS fallback cancelled"),
                        None => "SMS fallback cancelled".into(),
                    });
                }
            }
            // A count event already holds the `sent`; record only a move past it.
            if !(matches!(report.part, Some(PartReport::Count(_))) && after == report.status) {
                event(tx, id, now, after.as_str(), detail.as_deref())?;
            }
            super::callbacks::owe(tx, id, callback.as_deref(), after, detail.as_deref(), now)?;
            Ok(Some(Applied {
                direction: direction.clone(),
                before,
                after,
                repeated: false,
            }))
        }
    }
}

/// Applies a reported status (see [`apply_status`]); when the next hop
/// has the message, its body goes in this same commit.
pub(super) fn report_and_settle(
    tx: &Connection,
    id: &str,
    report: &StatusReport,
    now: i64,
    privacy: &super::Privacy,
) -> Result<Option<Applied>> {
    let applied = apply_status(tx, id, report, now)?;
    if applied.is_some()
        && (report.finish_queue || report.status == MessageStatus::Delivered)
        && super::privacy::settle_body(tx, id, now, privacy.keep_after_delivery_ms)?
    {
        privacy
            .erased
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(applied)
}

/// A send failed and will be tried again at `next_at`.
pub(super) fn reschedule(
    tx: &Connection,
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
/// marked dead, so an operator can see it and retry it. Its status becomes
/// `dead` by the rule of [`apply_status`] (a message a receipt already
/// made final keeps that status).
pub(super) fn dead_letter(
    tx: &Connection,
    id: &str,
    attempts: u32,
    error: &str,
    now: i64,
) -> Result<Option<Applied>> {
    tx.prepare_cached(
        "UPDATE queue SET dead = 1, attempts = ?2, last_error = ?3 WHERE message_id = ?1",
    )?
    .execute(params![id, attempts, error])?;
    tx.prepare_cached("UPDATE messages SET last_error = ?2 WHERE id = ?1")?
        .execute(params![id, error])?;
    apply_status(
        tx,
        id,
        &StatusReport::new(MessageStatus::Dead, Some(error.to_string())),
        now,
    )
}

/// Puts a dead-lettered message back in the queue, due now.
pub(super) fn retry_dead(tx: &Connection, id: &str, now: i64) -> Result<bool> {
    let n = tx
        .prepare_cached("UPDATE queue SET dead = 0, attempts = 0, next_attempt_at = ?2 WHERE message_id = ?1 AND dead = 1")?
        .execute(params![id, now])?;
    if n > 0 {
        force_status(
            tx,
            id,
            MessageStatus::Queued,
            Some("retried by operator"),
            now,
        )?;
    }
    Ok(n > 0)
}

/// Erases the sealed bodies of messages whose expiry passed, or that were
/// accepted before `retain_after` (the retention policy); returns how many,
/// and the ones that were still queued and are `expired` now.
fn erase_expired(
    tx: &Connection,
    now: i64,
    retain_after: i64,
) -> Result<(usize, Vec<(String, Applied)>)> {
    let mut expired = Vec::new();
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
            let applied = apply_status(
                tx,
                id,
                &StatusReport::new(
                    MessageStatus::Expired,
                    Some("expired before delivery; body erased".into()),
                ),
                now,
            )?;
            expired.extend(applied.map(|a| (id.clone(), a)));
        } else {
            event(tx, id, now, "erased", Some("body erased at expiry"))?;
        }
    }
    Ok((ids.len(), expired))
}

/// What a retention sweep did.
#[derive(Debug, Default)]
pub struct Swept {
    /// Messages whose body was erased or whose metadata was deleted.
    pub touched: usize,
    /// Messages that expired while queued, with what that did to their status.
    pub expired: Vec<(String, Applied)>,
}

/// Deletes every trace of messages accepted before `cutoff` (metadata
/// retention); returns how many messages were deleted.
fn delete_old_metadata(tx: &Connection, cutoff: i64) -> Result<usize> {
    let ids: Vec<String> = tx
        .prepare_cached("SELECT id FROM messages WHERE created_at < ?1 LIMIT 10000")?
        .query_map(params![cutoff], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in &ids {
        for sql in [
            "DELETE FROM message_events WHERE message_id = ?1",
            "DELETE FROM queue WHERE message_id = ?1",
            "DELETE FROM carrier_ids WHERE message_id = ?1",
            "DELETE FROM idempotency WHERE message_id = ?1",
            "DELETE FROM status_callbacks WHERE message_id = ?1",
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
        if let Some(pg) = self.pg() {
            return pg.insert_message(m).await;
        }
        self.write(move |tx| insert(tx, &m)).await
    }

    /// Applies a reported status (see [`apply_status`]) in the next group
    /// commit; `None` for an unknown message.
    pub async fn report_status(&self, id: String, report: StatusReport) -> Result<Option<Applied>> {
        if let Some(pg) = self.pg() {
            let keep = self.privacy.keep_after_delivery_ms;
            let (applied, erased) = pg.report_status(id, report, keep).await?;
            if erased {
                self.privacy
                    .erased
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            return Ok(applied);
        }
        let now = crate::core::clock::now_ms();
        let privacy = self.privacy.clone();
        self.write(move |tx| report_and_settle(tx, &id, &report, now, &privacy))
            .await
    }

    /// A failed attempt: due again at `next_at`, with the error in the history.
    pub async fn reschedule(
        &self,
        id: String,
        attempts: u32,
        next_at: i64,
        error: String,
    ) -> Result<()> {
        if let Some(pg) = self.pg() {
            return pg.reschedule(id, attempts, next_at, error).await;
        }
        let now = crate::core::clock::now_ms();
        self.write(move |tx| reschedule(tx, &id, attempts, next_at, &error, now))
            .await
    }

    /// Dead-letters a message (see [`dead_letter`]).
    pub async fn dead_letter(
        &self,
        id: String,
        attempts: u32,
        error: String,
    ) -> Result<Option<Applied>> {
        if let Some(pg) = self.pg() {
            return pg.dead_letter(id, attempts, error).await;
        }
        let now = crate::core::clock::now_ms();
        self.write(move |tx| dead_letter(tx, &id, attempts, &error, now))
            .await
    }

    /// Puts a dead-lettered message back in the queue; false when there is
    /// no dead letter with this id.
    pub async fn retry_dead(&self, id: String) -> Result<bool> {
        if let Some(pg) = self.pg() {
            return pg.retry_dead(id).await;
        }
        let now = crate::core::clock::now_ms();
        self.write(move |tx| retry_dead(tx, &id, now)).await
    }

    /// The retention sweep: erases expired bodies and bodies older than
    /// `retain_after`, deletes metadata older than `delete_before`.
    pub async fn sweep(&self, now: i64, retain_after: i64, delete_before: i64) -> Result<Swept> {
        if let Some(pg) = self.pg() {
            return pg.sweep(now, retain_after, delete_before).await;
        }
        self.write(move |tx| {
            let (erased, expired) = erase_expired(tx, now, retain_after)?;
            let deleted = delete_old_metadata(tx, delete_before)?;
            Ok(Swept {
                touched: erased + deleted,
                expired,
            })
        })
        .await
    }

    /// Makes the live queue entries for `target` due now (their receiver
    /// is back, or gone for good); returns how many.
    pub async fn make_due(&self, target: Target) -> Result<usize> {
        if let Some(pg) = self.pg() {
            return pg.make_due(target).await;
        }
        let now = crate::core::clock::now_ms();
        self.write(move |tx| {
            Ok(tx
                .prepare_cached(
                    "UPDATE queue SET next_attempt_at = ?2 WHERE target = ?1 AND dead = 0 AND next_attempt_at > ?2",
                )?
                .execute(params![target.as_db(), now])?)
        })
        .await
    }

    /// Whether the database answers (health).
    pub async fn ping(&self) -> Result<()> {
        if let Some(pg) = self.pg() {
            return pg.ping().await;
        }
        self.read(|c| {
            c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?;
            Ok(())
        })
        .await
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
        if let Some(pg) = self.pg() {
            return pg.due(now, limit, exclude).await;
        }
        self.read(move |c| {
            // One snapshot for the ids and their rows: read separately, a
            // row could change in between (an attempt's outcome committed)
            // and be returned as due with its old attempt number.
            let snapshot = c.unchecked_transaction()?;
            let c = &*snapshot;
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
        if let Some(pg) = self.pg() {
            return pg.next_due_after(now).await;
        }
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
        if let Some(pg) = self.pg() {
            return pg.queue_depth().await;
        }
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
        if let Some(pg) = self.pg() {
            return pg.message(id).await;
        }
        self.read(move |c| message_view(c, &id)).await
    }

    /// Dead-lettered messages, newest first: every one (`tenant` `None`)
    /// or one tenant's (the rule of [`crate::core::tenants::may_see`]).
    pub async fn dead_letters(
        &self,
        limit: usize,
        tenant: Option<String>,
    ) -> Result<Vec<MessageView>> {
        if let Some(pg) = self.pg() {
            return pg.dead_letters(limit, tenant).await;
        }
        self.read(move |c| {
            let ids: Vec<String> = c
                .prepare_cached(
                    "SELECT q.message_id FROM queue q JOIN messages m ON m.id = q.message_id \
                     WHERE q.dead = 1 AND (?2 IS NULL OR m.tenant = ?2) \
                     ORDER BY m.updated_at DESC LIMIT ?1",
                )?
                .query_map(params![limit as i64, tenant], |r| r.get(0))?
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
        if let Some(pg) = self.pg() {
            return pg.id_by_carrier_id(carrier_id).await;
        }
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
pub(super) fn message_view(c: &Connection, id: &str) -> Result<Option<MessageView>> {
    use crate::core::clock::rfc3339_ms;
    let row = c
        .prepare_cached(
            "SELECT m.id, m.direction, m.channel, m.adapter, m.sender, m.recipient, m.status, m.segments, \
             m.encoding, m.created_at, m.updated_at, m.expires_at, m.sealed IS NOT NULL, m.carrier_id, \
             m.last_error, q.attempts, m.tenant \
             FROM messages m LEFT JOIN queue q ON q.message_id = m.id WHERE m.id = ?1",
        )?
        .query_row(params![id], |r| {
            let status: String = r.get(6)?;
            let view = MessageView {
                id: r.get(0)?,
                direction: r.get(1)?,
                channel: r.get(2)?,
                adapter: r.get(3)?,
                from: r.get(4)?,
                to: r.get(5)?,
                // Parsed below, outside rusqlite's error type.
                status: MessageStatus::Queued,
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
                tenant: r.get(16)?,
            };
            Ok((status, view))
        })
        .optional()?;
    let Some((status, mut view)) = row else {
        return Ok(None);
    };
    view.status = parse_status(&status)?;
    view.history = c
        .prepare_cached(
            "SELECT at, status, detail, late FROM message_events WHERE message_id = ?1 ORDER BY rowid",
        )?
        .query_map(params![id], |r| {
            Ok(MessageEvent {
                at: rfc3339_ms(r.get(0)?),
                status: r.get(1)?,
                detail: r.get(2)?,
                late: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(view))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn retention_deletes_smpp_rows_with_the_message_and_targets_round_trip() {
        let db = crate::store::Db::open_in_memory().unwrap();
        for (id, at) in [("old", 1_000), ("new", 9_000)] {
            db.conn().execute(
                "INSERT INTO messages (id, direction, channel, sender, recipient, segments, encoding, size_class, status, \
                 created_at, updated_at, kid, header, deliver_to) \
                 VALUES (?1, 'outbound', 'sms', '+1', '+2', 1, 'gsm7', 0, 'sent', ?2, ?2, 'k', x'00', 'smpp:app')",
                rusqlite::params![id, at],
            )
            .unwrap();
            db.conn().execute(
                "INSERT INTO smpp_parts (route, smsc_id, message_id, part, total) VALUES ('smpp:a', ?1, ?1, 1, 1)",
                [id],
            )
            .unwrap();
            db.conn().execute(
                "INSERT INTO smpp_receipts (message_id, system_id, parts, failures_only, created_at) VALUES (?1, 'app', 1, 0, 1)",
                [id],
            )
            .unwrap();
        }
        assert_eq!(delete_old_metadata(db.conn(), 5_000).unwrap(), 1);
        for (table, col) in [
            ("messages", "id"),
            ("smpp_parts", "message_id"),
            ("smpp_receipts", "message_id"),
        ] {
            let left: Vec<String> = db
                .conn()
                .prepare(&format!("SELECT {col} FROM {table}"))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(left, vec!["new".to_string()], "{table}");
        }
        for t in [
            Target::Smpp("app-1".into()),
            Target::Route("smpp:acme".into()),
            Target::Private,
        ] {
            assert_eq!(Target::from_db(&t.as_db()), t);
        }
    }
}
