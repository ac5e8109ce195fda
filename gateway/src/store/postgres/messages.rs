//! Messages on PostgreSQL: the idempotent insert, the one status rule
//! applied under the message row's lock, and the metadata view.

use super::cached::{Cached, Tx};

use super::{PgStore, pg_error};
use crate::core::error::Result;
use crate::store::messages::{
    Applied, IDEMPOTENCY_WINDOW_MS, Idempotency, InsertOutcome, MessageEvent, MessageView,
    NewMessage, PartReport, StatusReport, Target, parse_status,
};
use crate::store::status::{MessageStatus, Tally, Transition};

/// Adds one entry to a message's history.
pub(super) async fn event(
    tx: &Tx<'_>,
    id: &str,
    at: i64,
    status: &str,
    detail: Option<&str>,
    late: bool,
) -> Result<()> {
    tx.run(
        "INSERT INTO message_events (message_id, at, status, detail, late) VALUES ($1, $2, $3, $4, $5)",
        &[&id, &at, &status, &detail, &late],
    )
    .await?;
    Ok(())
}

/// What an idempotency key already stands for within its window.
fn answer(hash: &str, id: String, i: &Idempotency) -> InsertOutcome {
    if hash == i.body_hash {
        InsertOutcome::Duplicate { id }
    } else {
        InsertOutcome::IdempotencyConflict
    }
}

/// Records the idempotency key of `m`, or says what it already stands for.
/// `ON CONFLICT` waits for a concurrent insert of the same key on another
/// node, so exactly one of two racing requests wins it.
async fn claim_idempotency(tx: &Tx<'_>, m: &NewMessage) -> Result<Option<InsertOutcome>> {
    let Some(i) = &m.idempotency else {
        return Ok(None);
    };
    let claimed = tx
        .row_opt(
            "INSERT INTO idempotency (scope, key, body_hash, message_id, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope, key) DO UPDATE SET \
             body_hash = EXCLUDED.body_hash, message_id = EXCLUDED.message_id, created_at = EXCLUDED.created_at \
             WHERE idempotency.created_at <= EXCLUDED.created_at - $6 RETURNING message_id",
            &[&i.scope, &i.key, &i.body_hash, &m.id, &m.created_at, &IDEMPOTENCY_WINDOW_MS],
        )
        .await?;
    if claimed.is_some() {
        return Ok(None);
    }
    let row = tx
        .row(
            "SELECT body_hash, message_id FROM idempotency WHERE scope = $1 AND key = $2",
            &[&i.scope, &i.key],
        )
        .await?;
    Ok(Some(answer(row.get(0), row.get(1), i)))
}

/// Inserts a message, its history's first entry and its queue entry. The
/// queue entry is leased to this node from the start: the accepting node
/// sends it on its fast path, and no other node claims it meanwhile.
pub(super) async fn insert(pg: &PgStore, tx: &Tx<'_>, m: &NewMessage) -> Result<InsertOutcome> {
    insert_leased(tx, m, pg.queue_lease(m).as_ref()).await
}

/// Who holds a new message's queue entry from the start, and until when.
pub(super) type Lease = (String, i64);

impl PgStore {
    /// The lease a new message's queue entry starts with: this node's, for
    /// its fast path, unless the target is a physical channel another node
    /// holds (then it waits, unleased, for the owner).
    pub(super) fn queue_lease(&self, m: &NewMessage) -> Option<Lease> {
        let mine = match m.queue.as_ref()? {
            crate::store::Target::Route(r) => self.owns_route(r),
            crate::store::Target::Smpp(c) => self.owns_smpp(c),
            _ => true,
        };
        mine.then(|| {
            (
                self.node.clone(),
                m.created_at.saturating_add(self.lease_ms),
            )
        })
    }
}

/// [`insert`] with the queue entry's lease decided by the caller (the
/// batcher runs it without the `PgStore`).
pub(super) async fn insert_leased(
    tx: &Tx<'_>,
    m: &NewMessage,
    lease: Option<&Lease>,
) -> Result<InsertOutcome> {
    if let Some(answered) = claim_idempotency(tx, m).await? {
        return Ok(answered);
    }
    if let Some((adapter, cid)) = &m.carrier_id {
        let fresh = tx
            .run(
                "INSERT INTO carrier_ids (adapter, carrier_id, message_id) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
                &[adapter, cid, &m.id],
            )
            .await?;
        if fresh == 0 {
            let row = tx
                .row(
                    "SELECT message_id FROM carrier_ids WHERE adapter = $1 AND carrier_id = $2",
                    &[adapter, cid],
                )
                .await?;
            return Ok(InsertOutcome::Duplicate { id: row.get(0) });
        }
    }
    let sealed = (!m.transit).then_some(&m.sealed);
    tx.run(
        "INSERT INTO messages (id, direction, channel, adapter, sender, recipient, segments, encoding, \
         size_class, status, created_at, updated_at, expires_at, kid, header, sealed, carrier_id, verdict, \
         score, deliver_to, transit, tenant, status_callback) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)",
        &[
            &m.id,
            &m.direction,
            &m.channel,
            &m.adapter,
            &m.sender,
            &m.recipient,
            &i64::from(m.segments),
            &m.encoding,
            &i64::from(m.size_class),
            &m.status.as_str(),
            &m.created_at,
            &m.expires_at,
            &m.kid,
            &m.header,
            &sealed,
            &m.carrier_id.as_ref().map(|(_, c)| c.as_str()),
            &m.verdict.map(|v| v.0.as_str()),
            &m.verdict.map(|v| f64::from(v.1)),
            &m.deliver_to.as_ref().map(Target::as_db),
            &m.transit,
            &m.tenant,
            &m.status_callback,
        ],
    )
    .await?;
    if let (Some(reasons), Some((verdict, score))) = (&m.flag_reasons, m.verdict) {
        tx.run(
            concat!(
                "INSERT INTO flagged_senders (sender, verdict, score, reasons, adapter, first_flagged_at, last_seen) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (sender) DO UPDATE SET ",
                crate::store::review::flag_upsert_set!()
            ),
            &[&m.sender, &verdict.as_str(), &f64::from(score), reasons, &m.adapter, &m.created_at],
        )
        .await?;
    }
    event(tx, &m.id, m.created_at, m.status.as_str(), None, false).await?;
    if let Some(target) = &m.queue {
        tx.run(
            "INSERT INTO queue (message_id, target, next_attempt_at, lease_owner, lease_until) \
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &m.id,
                &target.as_db(),
                &m.created_at,
                &lease.map(|(node, _)| node.as_str()),
                &lease.map(|(_, until)| *until),
            ],
        )
        .await?;
    }
    Ok(InsertOutcome::Inserted)
}

/// What a status change reads of its message, under the row's lock.
struct Locked {
    before: MessageStatus,
    direction: String,
    /// The client's status callback URL (read here, not again by
    /// `on_status`: one statement fewer per status change).
    callback: Option<String>,
    /// Whether the body is still stored.
    has_body: bool,
}

/// The status, direction and callback URL of message `id`, its row locked
/// until the transaction ends: two nodes applying reports to one message
/// take turns.
async fn current_locked(tx: &Tx<'_>, id: &str) -> Result<Option<Locked>> {
    let row = tx
        .row_opt(
            "SELECT status, direction, status_callback, sealed IS NOT NULL FROM messages \
             WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?;
    row.map(|r| {
        Ok(Locked {
            before: parse_status(r.get(0))?,
            direction: r.get(1),
            callback: r.get(2),
            has_body: r.get(3),
        })
    })
    .transpose()
}

/// The parts of an Android message (see the SQLite store's `android_tally`).
async fn android_tally(tx: &Tx<'_>, id: &str) -> Result<Tally> {
    let delivered: i64 = tx
        .row(
            "SELECT COUNT(*) FROM message_events WHERE message_id = $1 AND status = 'part_delivered'",
            &[&id],
        )
        .await?
        .get(0);
    let total = tx
        .row_opt(
            "SELECT detail FROM message_events WHERE message_id = $1 AND status = 'sent' \
             AND detail LIKE 'parts=%' ORDER BY seq DESC LIMIT 1",
            &[&id],
        )
        .await?
        .and_then(|r| r.get::<_, Option<String>>(0))
        .and_then(|d| d.strip_prefix("parts=").and_then(|n| n.parse().ok()));
    Ok(Tally {
        total,
        delivered: u32::try_from(delivered).unwrap_or(u32::MAX),
        failed: 0,
    })
}

/// The parts of a message sent through an SMPP client bind, from their
/// receipts (see the SQLite store's `smpp_tally`).
async fn smpp_tally(tx: &Tx<'_>, id: &str) -> Result<Tally> {
    let r = tx
        .row(
            "SELECT COALESCE(MAX(total), 0), COUNT(*) FILTER (WHERE state = 'delivered'), \
             COUNT(*) FILTER (WHERE state = 'failed') FROM smpp_parts WHERE message_id = $1",
            &[&id],
        )
        .await?;
    let n = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
    Ok(Tally {
        total: Some(n(r.get(0))),
        delivered: n(r.get(1)),
        failed: n(r.get(2)),
    })
}

type PartOutcome = Option<(Option<MessageStatus>, Option<String>)>;

async fn record_part(
    tx: &Tx<'_>,
    id: &str,
    report: &StatusReport,
    part: &PartReport,
    now: i64,
) -> Result<PartOutcome> {
    let words = |t: &Tally| format!("{} of {} parts", t.delivered, t.total.unwrap_or(1));
    match part {
        PartReport::Count(n) => {
            let detail = format!("parts={n}");
            event(tx, id, now, report.status.as_str(), Some(&detail), false).await?;
            let t = android_tally(tx, id).await?;
            Ok(Some((t.status(), Some(words(&t)))))
        }
        PartReport::Delivered { key } => {
            let detail = format!("delivery {}", key.chars().take(64).collect::<String>());
            let seen: i64 = tx
                .row(
                    "SELECT COUNT(*) FROM message_events WHERE message_id = $1 \
                     AND status = 'part_delivered' AND detail = $2",
                    &[&id, &detail],
                )
                .await?
                .get(0);
            if seen > 0 {
                return Ok(None);
            }
            event(tx, id, now, "part_delivered", Some(&detail), false).await?;
            let t = android_tally(tx, id).await?;
            Ok(Some((t.status(), Some(words(&t)))))
        }
        PartReport::Smpp { route, smsc_id } => {
            let before = tx
                .row_opt(
                    "SELECT state FROM smpp_parts WHERE route = $1 AND smsc_id = $2 FOR UPDATE",
                    &[route, smsc_id],
                )
                .await?
                .map(|r| r.get::<_, Option<String>>(0));
            if !matches!(before, Some(None)) {
                return Ok(None); // A repeated receipt, or a part we do not know.
            }
            tx.run(
                "UPDATE smpp_parts SET state = $3 WHERE route = $1 AND smsc_id = $2",
                &[route, smsc_id, &report.status.as_str()],
            )
            .await?;
            Ok(Some((
                smpp_tally(tx, id).await?.status(),
                report.detail.clone(),
            )))
        }
    }
}

/// The one status rule (`MessageStatus::advance`), as the SQLite store's
/// `apply_status` applies it, under the message row's lock.
pub(super) async fn apply_status(
    tx: &Tx<'_>,
    id: &str,
    report: &StatusReport,
    now: i64,
) -> Result<Option<Applied>> {
    Ok(apply_status_settling(tx, id, report, now, None)
        .await?
        .map(|(applied, _)| applied))
}

/// [`apply_status`]; with `settle` (the body's keep time), a status that
/// moves also settles the body in the same UPDATE (one row version instead
/// of two), and the second value says whether it did and erased it
/// (`None`: not settled here, see [`settle_body`]).
async fn apply_status_settling(
    tx: &Tx<'_>,
    id: &str,
    report: &StatusReport,
    now: i64,
    settle: Option<i64>,
) -> Result<Option<(Applied, Option<bool>)>> {
    let Some(locked) = current_locked(tx, id).await? else {
        return Ok(None);
    };
    if report.finish_queue {
        tx.run("DELETE FROM queue WHERE message_id = $1", &[&id])
            .await?;
    }
    let (applied, settled) = advance(tx, id, report, locked, now, settle).await?;
    // A status that moved wrote the carrier id with it.
    if let (Some(cid), None) = (&report.carrier_id, settled) {
        tx.run(
            "UPDATE messages SET carrier_id = $2 WHERE id = $1",
            &[&id, cid],
        )
        .await?;
    }
    Ok(Some((applied, settled.flatten())))
}

/// The status rule's step for a locked message. The second value is
/// `Some` when the status moved: its UPDATE also wrote the report's carrier
/// id and, with `settle`, settled the body (`Some(Some(erased))`).
async fn advance(
    tx: &Tx<'_>,
    id: &str,
    report: &StatusReport,
    locked: Locked,
    now: i64,
    settle: Option<i64>,
) -> Result<(Applied, Option<Option<bool>>)> {
    let Locked {
        before,
        direction,
        callback,
        has_body,
    } = locked;
    let unchanged = |repeated| {
        let applied = Applied {
            direction: direction.clone(),
            before,
            after: before,
            repeated,
        };
        (applied, None)
    };
    let (wanted, detail) = match &report.part {
        None => (Some(report.status), report.detail.clone()),
        Some(part) => match record_part(tx, id, report, part, now).await? {
            None => return Ok(unchanged(true)),
            Some((None, _)) if matches!(part, PartReport::Count(_)) => {
                (Some(report.status), report.detail.clone())
            }
            Some((by_parts, words)) => (by_parts, words),
        },
    };
    let Some(wanted) = wanted else {
        return Ok(unchanged(false));
    };
    match before.advance(wanted) {
        Transition::Repeated => Ok(unchanged(report.part.is_none())),
        Transition::Late => {
            if report.part.is_none() {
                let why = match detail.as_deref() {
                    Some(d) => format!("already {before}; {d}"),
                    None => format!("already {before}"),
                };
                event(tx, id, now, wanted.as_str(), Some(&why), true).await?;
            }
            Ok(unchanged(false))
        }
        Transition::Moved(after) => {
            let mut detail = detail;
            // Before the UPDATE, whose settling must see it gone.
            if after == MessageStatus::Delivered {
                let cancelled = tx
                    .run("DELETE FROM rcs_fallback WHERE message_id = $1", &[&id])
                    .await?;
                if cancelled > 0 {
                    detail = Some(match detail {
                        Some(d) => format!("{d}; SMS fallback cancelled"),
                        None => "SMS fallback cancelled".into(),
                    });
                }
            }
            let erase_at = settle.map(|keep| now.saturating_add(keep));
            let body_after: bool = tx
                .row(
                    concat!(
                        "UPDATE messages m SET status = $2, updated_at = $3, \
                         carrier_id = COALESCE($4, m.carrier_id), \
                         sealed = CASE WHEN $5::BIGINT = 0 AND ",
                        settled!("$2"),
                        " THEN NULL ELSE m.sealed END, \
                         erase_at = CASE WHEN $5::BIGINT = 0 AND ",
                        settled!("$2"),
                        " THEN NULL WHEN $5::BIGINT > 0 AND ",
                        settled!("$2"),
                        " THEN COALESCE(m.erase_at, $6) ELSE m.erase_at END \
                         WHERE m.id = $1 RETURNING m.sealed IS NOT NULL"
                    ),
                    &[
                        &id,
                        &after.as_str(),
                        &now,
                        &report.carrier_id,
                        &settle,
                        &erase_at,
                    ],
                )
                .await?
                .get(0);
            let settled = settle.map(|_| has_body && !body_after);
            if !(matches!(report.part, Some(PartReport::Count(_))) && after == report.status) {
                event(tx, id, now, after.as_str(), detail.as_deref(), false).await?;
            }
            super::callbacks::owe(tx, id, callback.as_deref(), after, detail.as_deref(), now)
                .await?;
            let applied = Applied {
                direction,
                before,
                after,
                repeated: false,
            };
            Ok((applied, Some(settled)))
        }
    }
}

/// Applies a reported status and settles the acknowledged body in the
/// same transaction; returns the outcome and whether a body was erased.
pub(super) async fn report_and_settle(
    tx: &Tx<'_>,
    id: &str,
    report: &StatusReport,
    now: i64,
    keep_ms: i64,
) -> Result<(Option<Applied>, bool)> {
    let acknowledged = report.finish_queue || report.status == MessageStatus::Delivered;
    let settle = acknowledged.then_some(keep_ms);
    let Some((applied, settled)) = apply_status_settling(tx, id, report, now, settle).await? else {
        return Ok((None, false));
    };
    let erased = match settled {
        Some(erased) => erased,
        None => acknowledged && settle_body(tx, id, now, keep_ms).await?,
    };
    Ok((Some(applied), erased))
}

/// The condition under which an acknowledged message's body is settled,
/// on row `m` with status `$status` (the one it has, or is being given
/// in the same UPDATE); it sees this transaction's own queue and fallback
/// deletions.
macro_rules! settled {
    ($status:literal) => {
        concat!(
            "(m.sealed IS NOT NULL AND ",
            $status,
            " IN ('sent', 'delivered', 'failed') \
             AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.message_id = m.id) \
             AND NOT EXISTS (SELECT 1 FROM rcs_fallback f WHERE f.message_id = m.id))"
        )
    };
}
use settled;

/// Erases (or schedules the erasure of) an acknowledged message's body,
/// as the SQLite store's `privacy::settle_body`; true when erased now.
pub(super) async fn settle_body(tx: &Tx<'_>, id: &str, now: i64, keep_ms: i64) -> Result<bool> {
    // One statement: the condition in the UPDATE's WHERE.
    if keep_ms > 0 {
        tx.run(
            concat!(
                "UPDATE messages m SET erase_at = $2 WHERE m.id = $1 AND ",
                settled!("m.status"),
                " AND m.erase_at IS NULL"
            ),
            &[&id, &now.saturating_add(keep_ms)],
        )
        .await?;
        return Ok(false);
    }
    let erased = tx
        .run(
            concat!(
                "UPDATE messages m SET sealed = NULL, erase_at = NULL WHERE m.id = $1 AND ",
                settled!("m.status")
            ),
            &[&id],
        )
        .await?;
    Ok(erased > 0)
}

/// Sets a message's status outright, with a history entry.
pub(super) async fn force_status(
    tx: &Tx<'_>,
    id: &str,
    status: MessageStatus,
    detail: Option<&str>,
    now: i64,
) -> Result<bool> {
    let n = tx
        .run(
            "UPDATE messages SET status = $2, updated_at = $3 WHERE id = $1",
            &[&id, &status.as_str(), &now],
        )
        .await?;
    if n > 0 {
        event(tx, id, now, status.as_str(), detail, false).await?;
        // An operator's drop ends the message: its client hears of it.
        super::callbacks::on_status(tx, id, status, detail, now).await?;
    }
    Ok(n > 0)
}

/// One message's metadata and history.
pub(super) async fn message_view(
    c: &impl tokio_postgres::GenericClient,
    id: &str,
) -> Result<Option<MessageView>> {
    use crate::core::clock::rfc3339_ms;
    let Some(r) = c
        .query_opt(
            "SELECT m.id, m.direction, m.channel, m.adapter, m.sender, m.recipient, m.status, m.segments, \
             m.encoding, m.created_at, m.updated_at, m.expires_at, m.sealed IS NOT NULL, m.carrier_id, \
             m.last_error, q.attempts, m.tenant \
             FROM messages m LEFT JOIN queue q ON q.message_id = m.id WHERE m.id = $1",
            &[&id],
        )
        .await
        .map_err(pg_error)?
    else {
        return Ok(None);
    };
    let history = c
        .query(
            "SELECT at, status, detail, late FROM message_events WHERE message_id = $1 ORDER BY seq",
            &[&id],
        )
        .await
        .map_err(pg_error)?
        .into_iter()
        .map(|e| MessageEvent {
            at: rfc3339_ms(e.get(0)),
            status: e.get(1),
            detail: e.get(2),
            late: e.get(3),
        })
        .collect();
    Ok(Some(MessageView {
        id: r.get(0),
        direction: r.get(1),
        channel: r.get(2),
        adapter: r.get(3),
        from: r.get(4),
        to: r.get(5),
        status: parse_status(r.get(6))?,
        segments: u32::try_from(r.get::<_, i64>(7)).unwrap_or(u32::MAX),
        encoding: r.get(8),
        created_at: rfc3339_ms(r.get(9)),
        updated_at: rfc3339_ms(r.get(10)),
        expires_at: r.get::<_, Option<i64>>(11).map(rfc3339_ms),
        body_stored: r.get(12),
        carrier_id: r.get(13),
        last_error: r.get(14),
        attempts: r
            .get::<_, Option<i64>>(15)
            .map(|a| u32::try_from(a).unwrap_or(u32::MAX)),
        history,
        tenant: r.get(16),
    }))
}

impl PgStore {
    /// Inserts one message (see [`insert`]).
    pub async fn insert_message(&self, m: NewMessage) -> Result<InsertOutcome> {
        if let Some(b) = self.batcher() {
            let lease = self.queue_lease(&m);
            return b.insert(m, lease).await;
        }
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        let out = insert(self, &tx, &m).await?;
        if out == InsertOutcome::Inserted {
            tx.commit().await.map_err(pg_error)?;
        }
        Ok(out)
    }

    /// What an idempotency key already stands for at `now`.
    pub async fn idempotent(&self, i: Idempotency, now: i64) -> Result<Option<InsertOutcome>> {
        let row = self
            .client()
            .await?
            .row_opt(
                "SELECT body_hash, message_id, created_at FROM idempotency WHERE scope = $1 AND key = $2",
                &[&i.scope, &i.key],
            )
            .await?;
        Ok(row.and_then(|r| {
            let at: i64 = r.get(2);
            (now - at < IDEMPOTENCY_WINDOW_MS).then(|| answer(r.get(0), r.get(1), &i))
        }))
    }

    /// Applies a reported status; the acknowledged body goes in the same
    /// commit. Returns the outcome and whether a body was erased.
    pub async fn report_status(
        &self,
        id: String,
        report: StatusReport,
        keep_ms: i64,
    ) -> Result<(Option<Applied>, bool)> {
        let now = crate::core::clock::now_ms();
        if let Some(b) = self.batcher() {
            return b.report_status(id, report, keep_ms, now).await;
        }
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        let out = report_and_settle(&tx, &id, &report, now, keep_ms).await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(out)
    }

    /// The metadata view of one message.
    pub async fn message(&self, id: String) -> Result<Option<MessageView>> {
        let c = self.client().await?;
        message_view(&**c, &id).await
    }

    /// The message id stored for an outbound carrier correlation id.
    pub async fn id_by_carrier_id(&self, carrier_id: String) -> Result<Option<String>> {
        Ok(self
            .client()
            .await?
            .row_opt(
                "SELECT id FROM messages WHERE carrier_id = $1 AND direction = 'outbound' LIMIT 1",
                &[&carrier_id],
            )
            .await?
            .map(|r| r.get(0)))
    }
}

impl PgStore {
    /// Inserts an inbound message and, when it is a compliance keyword,
    /// records the opt-out (or opt-in) in the same transaction.
    pub async fn insert_inbound(
        &self,
        m: NewMessage,
        kw: Option<crate::store::optout::Keyword>,
    ) -> Result<InsertOutcome> {
        use crate::store::optout::Keyword;
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        let out = insert(self, &tx, &m).await?;
        if out != InsertOutcome::Inserted {
            return Ok(out);
        }
        let now = m.created_at;
        // Inbound: the recipient is ours, the sender is the remote party.
        let (local, remote) = (&m.recipient, &m.sender);
        let changes_opt_outs = matches!(kw, Some(Keyword::Stop(_) | Keyword::Start(_)));
        match kw {
            Some(Keyword::Stop(k)) => {
                tx.run(
                    "INSERT INTO opt_outs (local_address, remote_address, keyword, at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (local_address, remote_address) DO UPDATE SET keyword = $3, at = $4",
                    &[local, remote, &k, &now],
                )
                .await?;
                event(
                    &tx,
                    &m.id,
                    now,
                    "opt_out",
                    Some(&format!("keyword {k}")),
                    false,
                )
                .await?;
            }
            Some(Keyword::Start(k)) => {
                tx.run(
                    "DELETE FROM opt_outs WHERE local_address = $1 AND remote_address = $2",
                    &[local, remote],
                )
                .await?;
                event(
                    &tx,
                    &m.id,
                    now,
                    "opt_in",
                    Some(&format!("keyword {k}")),
                    false,
                )
                .await?;
            }
            Some(Keyword::Help(k)) => {
                event(
                    &tx,
                    &m.id,
                    now,
                    "help",
                    Some(&format!("keyword {k}")),
                    false,
                )
                .await?;
            }
            None => {}
        }
        if changes_opt_outs {
            super::notify::notify(&tx, super::notify::CacheKind::OptOuts).await?;
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(out)
    }
}

impl PgStore {
    /// A message without content at rest could not be handed over in time
    /// (as the SQLite store's `not_retained`).
    pub async fn not_retained(&self, id: String) -> Result<()> {
        use crate::store::privacy::NOT_RETAINED;
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        tx.run(
            "UPDATE messages SET last_error = $2 WHERE id = $1",
            &[&id, &NOT_RETAINED],
        )
        .await?;
        tx.run("DELETE FROM carrier_ids WHERE message_id = $1", &[&id])
            .await?;
        tx.commit().await.map_err(pg_error)
    }

    /// Transit messages accepted before `before` that never reached a
    /// final status fail `content_not_retained`. Safe from any node: by
    /// `before`, whichever node carried one has given up on it.
    pub async fn fail_stale_transit(
        &self,
        before: i64,
        now: i64,
    ) -> Result<Vec<(String, Applied)>> {
        use crate::store::privacy::NOT_RETAINED;
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        let ids: Vec<String> = tx
            .rows(
                "SELECT id FROM messages WHERE transit AND created_at < $1 \
                 AND status IN ('queued', 'sending') LIMIT 10000",
                &[&before],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut out = Vec::new();
        for id in ids {
            let report = StatusReport::new(
                MessageStatus::Failed,
                Some(format!("{NOT_RETAINED}: not handed over in time")),
            );
            let applied = apply_status(&tx, &id, &report, now).await?;
            tx.run(
                "UPDATE messages SET last_error = $2 WHERE id = $1",
                &[&id, &NOT_RETAINED],
            )
            .await?;
            out.extend(applied.map(|a| (id, a)));
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(out)
    }
}
