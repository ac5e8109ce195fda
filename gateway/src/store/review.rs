//! The spam-review store: flagged senders (the review queue), allow/block
//! lists with expiry, and the audit log of operators' decisions, which double
//! as training labels for `gateway model train`.
//!
//! Everything here is metadata; there is no text to show, by design.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::status::MessageStatus;
use super::{Db, Store, Target};
use crate::core::error::Result;

/// Operators' spam/ham decisions, last one per sender, as training labels.
pub fn decisions_as_labels(data_dir: &Path) -> Result<Vec<(String, classifier::Label)>> {
    if !data_dir.join(super::DB_FILE).exists() {
        return Ok(Vec::new());
    }
    let db = super::open_for_cli(data_dir)?;
    labels(db.conn())
}

/// See [`decisions_as_labels`]. A `mark spam` undone in its window
/// (`undo_mark_spam`, store/undo.rs) leaves the sender without a label.
fn labels(conn: &Connection) -> Result<Vec<(String, classifier::Label)>> {
    let mut stmt = conn.prepare(
        "SELECT target, action FROM audit_log WHERE action IN ('mark_spam', 'mark_ham') \
         AND id IN (SELECT MAX(id) FROM audit_log WHERE action IN ('mark_spam', 'mark_ham', 'undo_mark_spam') \
         GROUP BY target)",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (sender, action) = row?;
        out.push((sender, label_of(&action)));
    }
    Ok(out)
}

/// The training label of a decision (`mark_spam` or `mark_ham`), on either
/// backend.
pub(crate) fn label_of(action: &str) -> classifier::Label {
    if action == "mark_spam" {
        classifier::Label::Spam
    } else {
        classifier::Label::Ham
    }
}

/// Which list an entry is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// Never flagged.
    Allow,
    /// Always refused.
    Block,
}

impl ListKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Block => "block",
        }
    }
}

/// Whether `sender` is on `kind` now: an exact entry or a prefix entry
/// (`+1900*`) that has not expired.
#[cfg(test)]
fn listed(conn: &Connection, kind: ListKind, sender: &str, now: i64) -> Result<bool> {
    let found: Option<i64> = conn
        .prepare_cached(
            "SELECT 1 FROM lists WHERE kind = ?1 AND (expires_at IS NULL OR expires_at > ?3) AND \
             (pattern = ?2 OR (substr(pattern, -1) = '*' AND substr(?2, 1, length(pattern) - 1) = substr(pattern, 1, length(pattern) - 1))) LIMIT 1",
        )?
        .query_row(params![kind.as_str(), sender, now], |r| r.get(0))
        .optional()?;
    Ok(found.is_some())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_first_rule_is_the_first_reason_without_a_value() {
        let stored = r#"[{"tag":"CAMPAIGN_NEIGHBOUR","words":"w"},{"tag":"FAN_OUT","words":"f","value":1.0}]"#;
        assert_eq!(first_rule(stored).as_deref(), Some("CAMPAIGN_NEIGHBOUR"));
        // flags stored before rules were recorded: the model's features only
        assert_eq!(
            first_rule(r#"[{"tag":"FAN_OUT","words":"f","value":1.0}]"#),
            None
        );
        assert_eq!(first_rule("not json"), None);
    }

    #[test]
    fn block_patterns_cover_the_number_or_the_prefix() {
        let (lo, hi) = pattern_range("+1900*");
        assert!(lo.as_str() <= "+19005551234" && "+19005551234" <= hi.as_str());
        assert!("+1800" < lo.as_str());
        let (lo, hi) = pattern_range("+14155550100");
        assert_eq!((lo.as_str(), hi.as_str()), ("+14155550100", "+14155550100"));
    }

    #[test]
    fn lists_match_exact_and_prefix_until_expiry() {
        let db = Db::open_in_memory().unwrap();
        let c = db.conn();
        c.execute(
            "INSERT INTO lists (kind, pattern, expires_at, created_at) VALUES ('block', '+1900*', NULL, 0), \
             ('block', '+14155550100', 1000, 0), ('allow', 'ACME', NULL, 0)",
            [],
        )
        .unwrap();
        assert!(listed(c, ListKind::Block, "+19005551234", 0).unwrap());
        assert!(!listed(c, ListKind::Block, "+1800", 0).unwrap());
        assert!(listed(c, ListKind::Block, "+14155550100", 999).unwrap());
        assert!(
            !listed(c, ListKind::Block, "+14155550100", 1000).unwrap(),
            "expired"
        );
        assert!(listed(c, ListKind::Allow, "ACME", 0).unwrap());
        assert!(!listed(c, ListKind::Allow, "ACM", 0).unwrap());
        c.execute(
            "INSERT INTO audit_log (at, actor, action, target) VALUES (1, 'op', 'mark_spam', 'A'), (2, 'op', 'mark_ham', 'A'), (3, 'op', 'mark_spam', 'B'), \
             (4, 'op', 'mark_spam', 'C'), (5, 'op', 'undo_mark_spam', 'C')",
            [],
        )
        .unwrap();
        let mut l = labels(c).unwrap();
        l.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            l,
            vec![
                ("A".to_string(), classifier::Label::Ham),
                ("B".to_string(), classifier::Label::Spam)
            ]
        );
    }
}

/// One row of the review queue.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueueRow {
    /// The flagged sender.
    pub sender: String,
    /// `suspect` or `spam`.
    pub verdict: String,
    /// Model score.
    pub score: f64,
    /// Top reasons, in words.
    pub reasons: Vec<String>,
    /// Messages held or blocked now.
    pub held: i64,
    /// Adapter it came through.
    pub adapter: Option<String>,
    /// RFC 3339.
    pub first_seen: String,
    /// RFC 3339.
    pub last_seen: String,
    /// Destination countries of its held messages.
    pub countries: Vec<String>,
}

/// Filters of `review list`.
#[derive(Debug, Clone, Default)]
pub struct QueueFilter {
    /// Only this verdict.
    pub verdict: Option<String>,
    /// Score at least.
    pub min_score: Option<f64>,
    /// Score at most.
    pub max_score: Option<f64>,
    /// Last seen at or after (Unix ms).
    pub since: Option<i64>,
    /// Only this adapter.
    pub adapter: Option<String>,
}

/// One undecided flagged sender as either backend reads it, before the
/// filter and the countries of its held messages.
pub(crate) struct FlaggedRow {
    pub sender: String,
    pub verdict: String,
    pub score: f64,
    /// The reasons as stored (JSON).
    pub reasons: String,
    pub adapter: Option<String>,
    /// First flagged and last seen (Unix ms).
    pub first: i64,
    pub last: i64,
    /// Its messages held now.
    pub held: i64,
}

impl QueueFilter {
    /// Whether `r` passes the filters.
    pub(crate) fn admits(&self, r: &FlaggedRow) -> bool {
        !(self.verdict.as_deref().is_some_and(|v| v != r.verdict)
            || self.min_score.is_some_and(|m| r.score < m)
            || self.max_score.is_some_and(|m| r.score > m)
            || self.since.is_some_and(|s| r.last < s)
            || (self.adapter.is_some() && self.adapter != r.adapter))
    }
}

impl FlaggedRow {
    /// The queue's row, with the countries of the held messages'
    /// `recipients` (each once, sorted).
    pub(crate) fn into_queue_row(self, recipients: impl IntoIterator<Item = String>) -> QueueRow {
        let mut countries: Vec<String> = recipients.into_iter().map(|n| country(&n)).collect();
        countries.sort();
        countries.dedup();
        QueueRow {
            reasons: reason_words(&self.reasons),
            sender: self.sender,
            verdict: self.verdict,
            score: self.score,
            held: self.held,
            adapter: self.adapter,
            first_seen: crate::core::clock::rfc3339_ms(self.first),
            last_seen: crate::core::clock::rfc3339_ms(self.last),
            countries,
        }
    }
}

/// How a new flag updates a sender's review entry, on either backend (the
/// `SET` of an upsert; `excluded` is the new flag): the entry opens again,
/// and keeps the strongest judgement since it was last decided. A sender
/// the model blocked at 0.93 whose next message only hit a rate limit (a
/// hold at score 0 with the words "over a rate limit") stays `spam` at 0.93
/// with the model's reasons: shown as a suspect at 0 it would fall out of
/// `review list --verdict spam` and `--min-score`. A macro, so that each
/// backend's statement is one literal (no formatting per flagged message).
macro_rules! flag_upsert_set {
    () => {
        "verdict = CASE WHEN flagged_senders.decided IS NOT NULL OR excluded.score >= flagged_senders.score \
                   THEN excluded.verdict ELSE flagged_senders.verdict END, \
         reasons = CASE WHEN flagged_senders.decided IS NOT NULL OR excluded.score >= flagged_senders.score \
                   THEN excluded.reasons ELSE flagged_senders.reasons END, \
         score = CASE WHEN flagged_senders.decided IS NOT NULL OR excluded.score >= flagged_senders.score \
                 THEN excluded.score ELSE flagged_senders.score END, \
         last_seen = excluded.last_seen, decided = NULL"
    };
}
pub(crate) use flag_upsert_set;

/// The recipients of a sender's held messages (for their countries), on
/// either backend (SQLite binds `$1` as its first parameter too).
pub(crate) const HELD_RECIPIENTS: &str = "SELECT DISTINCT recipient FROM messages WHERE sender = $1 \
     AND status IN ('held', 'blocked') AND id NOT IN (SELECT message_id FROM pending_drops) LIMIT 200";

pub(crate) fn reason_words(json: &str) -> Vec<String> {
    let v: Vec<serde_json::Value> = serde_json::from_str(json).unwrap_or_default();
    v.iter()
        .filter_map(|r| {
            let words = r.get("words")?.as_str()?;
            Some(match r.get("value").and_then(|x| x.as_f64()) {
                Some(val) => format!("{words} ({val:.2})"),
                None => words.to_string(),
            })
        })
        .collect()
}

/// ISO region of an E.164 number, or `??`.
pub fn country(number: &str) -> String {
    crate::core::numbers::region_of(number)
        .map(|id| id.as_ref().to_string())
        .unwrap_or_else(|| "??".into())
}

/// The undecided flagged senders, filtered.
pub fn queue(db: &Db, f: &QueueFilter) -> Result<Vec<QueueRow>> {
    let conn = db.conn();
    let mut stmt = conn.prepare(
        "SELECT s.sender, s.verdict, s.score, s.reasons, s.adapter, s.first_flagged_at, s.last_seen, \
         (SELECT COUNT(*) FROM messages m WHERE m.sender = s.sender AND m.status IN ('held', 'blocked') \
         AND m.id NOT IN (SELECT message_id FROM pending_drops)) \
         FROM flagged_senders s WHERE s.decided IS NULL",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(FlaggedRow {
            sender: r.get(0)?,
            verdict: r.get(1)?,
            score: r.get(2)?,
            reasons: r.get(3)?,
            adapter: r.get(4)?,
            first: r.get(5)?,
            last: r.get(6)?,
            held: r.get(7)?,
        })
    })?;
    let mut out = Vec::new();
    for row in rows {
        let row = row?;
        if !f.admits(&row) {
            continue;
        }
        let recipients: Vec<String> = conn
            .prepare_cached(HELD_RECIPIENTS)?
            .query_map([&row.sender], |r| r.get::<_, String>(0))?
            .filter_map(|r| r.ok())
            .collect();
        out.push(row.into_queue_row(recipients));
    }
    Ok(out)
}

/// A sender's held (or spam-blocked) messages, oldest first, at most
/// 1000: id, recipient, status, RFC 3339 acceptance time (the console's
/// review page, which releases or drops them one by one).
pub fn held_of(db: &Db, sender: &str) -> Result<Vec<(String, String, String, String)>> {
    let mut stmt = db.conn().prepare_cached(
        "SELECT id, recipient, status, created_at FROM messages WHERE sender = ?1 \
         AND status IN ('held', 'blocked') AND id NOT IN (SELECT message_id FROM pending_drops) \
         ORDER BY created_at LIMIT 1000",
    )?;
    let rows = stmt.query_map([sender], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            crate::core::clock::rfc3339_ms(r.get(3)?),
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Appends to the audit log.
pub(super) fn audit(
    conn: &Connection,
    actor: &str,
    action: &str,
    target: &str,
    note: Option<&str>,
    now: i64,
) -> Result<()> {
    let model: Option<(String, f64)> = conn
        .prepare_cached("SELECT verdict, score FROM flagged_senders WHERE sender = ?1")?
        .query_row([target], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (model_verdict, model_score) = model.unzip();
    conn.prepare_cached(
        "INSERT INTO audit_log (at, actor, action, target, note, model_verdict, model_score) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![now, actor, action, target, note, model_verdict, model_score])?;
    Ok(())
}

/// Where a released message goes: outbound ones back to their route,
/// inbound ones to the private side, or to the SMPP server client that
/// owned their recipient when they arrived.
fn release_one(tx: &Connection, id: &str, now: i64) -> Result<bool> {
    let row: Option<(String, Option<String>, Option<String>)> = tx
        .prepare_cached("SELECT direction, adapter, deliver_to FROM messages WHERE id = ?1 AND status IN ('held', 'blocked') AND sealed IS NOT NULL \
          AND id NOT IN (SELECT message_id FROM pending_drops)")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((direction, adapter, deliver_to)) = row else {
        return Ok(false);
    };
    let target = if let Some(t) = deliver_to {
        Target::from_db(&t)
    } else if direction == "outbound" {
        Target::Route(adapter.unwrap_or_else(|| "generic".into()))
    } else {
        Target::Private
    };
    tx.prepare_cached(
        "INSERT OR REPLACE INTO queue (message_id, target, next_attempt_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![id, target.as_db(), now])?;
    super::messages::force_status(
        tx,
        id,
        MessageStatus::Queued,
        Some("released by operator"),
        now,
    )?;
    Ok(true)
}

/// Drops a held message: its sealed body is erased when the undo window
/// (`window` ms) has passed.
fn drop_one(tx: &Connection, actor: &str, id: &str, now: i64, window: i64) -> Result<bool> {
    drop_after(
        tx,
        actor,
        id,
        "dropped by operator; body erased",
        now,
        window,
    )
}

/// Drops a message if it is still held or blocked: erases its sealed body,
/// takes it out of the queue and records `detail`. False if it was not held.
pub(super) fn drop_held(tx: &Connection, id: &str, detail: &str, now: i64) -> Result<bool> {
    let n = tx
        .prepare_cached(
            "UPDATE messages SET sealed = NULL WHERE id = ?1 AND status IN ('held', 'blocked')",
        )?
        .execute([id])?;
    if n > 0 {
        tx.prepare_cached("DELETE FROM queue WHERE message_id = ?1")?
            .execute([id])?;
        super::messages::force_status(tx, id, MessageStatus::Dropped, Some(detail), now)?;
    }
    Ok(n > 0)
}

/// Drops held message `id` after `window` ms (at once when 0): until then
/// it stays held but out of the queue (a `pending_drops` row). False if it
/// is not held, or its drop is already pending.
fn drop_after(
    tx: &Connection,
    actor: &str,
    id: &str,
    detail: &str,
    now: i64,
    window: i64,
) -> Result<bool> {
    if window <= 0 {
        return drop_held(tx, id, detail, now);
    }
    // The row `super::undo` finalizes or undoes.
    let n = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO pending_drops (message_id, sender, detail, actor, final_at) \
             SELECT id, sender, ?2, ?3, ?4 FROM messages \
             WHERE id = ?1 AND status IN ('held', 'blocked')",
        )?
        .execute(params![id, detail, actor, now.saturating_add(window)])?;
    Ok(n > 0)
}

// Every decision runs in an IMMEDIATE transaction ([`Db::immediate`]).

/// Releases or drops one message; records the decision.
pub fn decide_message(
    db: &mut Db,
    actor: &str,
    id: &str,
    release: bool,
    note: Option<&str>,
) -> Result<bool> {
    let now = crate::core::clock::now_ms();
    let window = db.undo_window_ms;
    db.immediate(|tx| {
        let done = if release {
            release_one(tx, id, now)?
        } else {
            drop_one(tx, actor, id, now, window)?
        };
        if done {
            audit(
                tx,
                actor,
                if release { "release" } else { "drop" },
                id,
                note,
                now,
            )?;
        }
        Ok(done)
    })
}

/// `mark SENDER spam|ham`: spam blocks the sender and drops its held
/// messages; ham releases them and allow-lists it. Returns the messages affected.
pub fn mark(
    db: &mut Db,
    actor: &str,
    sender: &str,
    spam: bool,
    note: Option<&str>,
) -> Result<usize> {
    let now = crate::core::clock::now_ms();
    let window = db.undo_window_ms;
    db.immediate(|tx| {
        let ids: Vec<String> = tx
            .prepare("SELECT id FROM messages WHERE sender = ?1 AND status IN ('held', 'blocked') \
                      AND id NOT IN (SELECT message_id FROM pending_drops) ORDER BY created_at")?
            .query_map([sender], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut n = 0;
        for id in &ids {
            let done = if spam {
                drop_one(tx, actor, id, now, window)?
            } else {
                release_one(tx, id, now)?
            };
            n += usize::from(done);
        }
        let (kind, other) = if spam {
            ("block", "allow")
        } else {
            ("allow", "block")
        };
        tx.execute(
            "DELETE FROM lists WHERE kind = ?1 AND pattern = ?2",
            params![other, sender],
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO lists (kind, pattern, expires_at, note, created_at) VALUES (?1, ?2, NULL, ?3, ?4)",
            params![kind, sender, note, now],
        )?;
        tx.execute(
            "UPDATE flagged_senders SET decided = ?2 WHERE sender = ?1",
            params![sender, if spam { "spam" } else { "ham" }],
        )?;
        audit(
            tx,
            actor,
            if spam { "mark_spam" } else { "mark_ham" },
            sender,
            note,
            now,
        )?;
        Ok(n)
    })
}

/// Adds a list entry (number or `prefix*`), optionally expiring. A list
/// entry is also the decision about what the matching senders already sent:
/// a block entry takes their held messages out of the review queue
/// (dropped, bodies erased, detail `sender_blocked`; leaving them waiting
/// would invite a later release), an allow entry releases them (an
/// operator who allow-lists a pool of passcode numbers that the campaign
/// rule blocked should not have to `mark ham` each of them). Either closes
/// the matching senders' review entries. Returns the messages dropped or
/// released.
pub fn list_add(
    db: &mut Db,
    actor: &str,
    kind: ListKind,
    pattern: &str,
    expires_at: Option<i64>,
    note: Option<&str>,
) -> Result<usize> {
    let now = crate::core::clock::now_ms();
    let window = db.undo_window_ms;
    db.immediate(|tx| {
        tx.execute(
            "INSERT OR REPLACE INTO lists (kind, pattern, expires_at, note, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![kind.as_str(), pattern, expires_at, note, now],
        )?;
        audit(tx, actor, kind.as_str(), pattern, note, now)?;
        match kind {
            ListKind::Block => drop_held_of_blocked(tx, actor, pattern, now, window),
            ListKind::Allow => release_held_of_allowed(tx, pattern, now),
        }
    })
}

/// The `BETWEEN` bounds of the senders a list pattern covers: the number
/// itself, or every string starting with the prefix before `*`.
fn pattern_range(pattern: &str) -> (String, String) {
    match pattern.strip_suffix('*') {
        Some(prefix) => (prefix.to_string(), format!("{prefix}\u{10FFFF}")),
        None => (pattern.to_string(), pattern.to_string()),
    }
}

/// Drops the held (and spam-blocked) messages of the senders `pattern`
/// covers and closes those senders' review entries (`decided = 'blocked'`,
/// not a spam label: the model does not learn from a block list entry).
fn drop_held_of_blocked(
    tx: &Connection,
    actor: &str,
    pattern: &str,
    now: i64,
    window: i64,
) -> Result<usize> {
    let (lo, hi) = pattern_range(pattern);
    let ids = held_between(tx, &lo, &hi)?;
    let mut n = 0;
    for id in &ids {
        let detail = "sender_blocked: the sender was put on the block list; body erased";
        if drop_after(tx, actor, id, detail, now, window)? {
            n += 1;
        }
    }
    tx.execute(
        "UPDATE flagged_senders SET decided = 'blocked' WHERE decided IS NULL AND sender BETWEEN ?1 AND ?2",
        params![lo, hi],
    )?;
    Ok(n)
}

/// Releases the held (and spam-blocked) messages of the senders `pattern`
/// covers and closes those senders' review entries (`decided = 'allowed'`,
/// not a ham label: the model learns from `mark` decisions, one sender
/// each, not from list entries).
fn release_held_of_allowed(tx: &Connection, pattern: &str, now: i64) -> Result<usize> {
    let (lo, hi) = pattern_range(pattern);
    let mut n = 0;
    for id in &held_between(tx, &lo, &hi)? {
        n += usize::from(release_one(tx, id, now)?);
    }
    tx.execute(
        "UPDATE flagged_senders SET decided = 'allowed' WHERE decided IS NULL AND sender BETWEEN ?1 AND ?2",
        params![lo, hi],
    )?;
    Ok(n)
}

/// The held (not pending-drop) messages of senders in `[lo, hi]`, oldest
/// first.
fn held_between(tx: &Connection, lo: &str, hi: &str) -> Result<Vec<String>> {
    Ok(tx
        .prepare_cached(
            "SELECT id FROM messages WHERE sender BETWEEN ?1 AND ?2 \
             AND status IN ('held', 'blocked') \
             AND id NOT IN (SELECT message_id FROM pending_drops) ORDER BY created_at, id",
        )?
        .query_map(params![lo, hi], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

/// Removes a list entry.
pub fn list_remove(db: &mut Db, actor: &str, kind: ListKind, pattern: &str) -> Result<bool> {
    let now = crate::core::clock::now_ms();
    db.immediate(|tx| {
        let n = tx.execute(
            "DELETE FROM lists WHERE kind = ?1 AND pattern = ?2",
            params![kind.as_str(), pattern],
        )?;
        if n > 0 {
            audit(
                tx,
                actor,
                &format!("un{}", kind.as_str()),
                pattern,
                None,
                now,
            )?;
        }
        Ok(n > 0)
    })
}

/// One audit-log entry.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEntry {
    /// RFC 3339.
    pub at: String,
    /// Who.
    pub actor: String,
    /// What (`mark_spam`, `mark_ham`, `release`, `drop`, `allow`, `block`, …).
    pub action: String,
    /// Sender, message id or list pattern.
    pub target: String,
    /// Why, in the operator's words.
    pub note: Option<String>,
    /// The model's verdict at the time.
    pub model_verdict: Option<String>,
    /// The model's score at the time.
    pub model_score: Option<f64>,
}

/// The audit log, oldest first.
pub fn log(db: &Db, limit: usize) -> Result<Vec<AuditEntry>> {
    let conn = db.conn();
    let mut stmt = conn.prepare(
        "SELECT at, actor, action, target, note, model_verdict, model_score FROM \
         (SELECT * FROM audit_log ORDER BY id DESC LIMIT ?1) ORDER BY id",
    )?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok(AuditEntry {
            at: crate::core::clock::rfc3339_ms(r.get(0)?),
            actor: r.get(1)?,
            action: r.get(2)?,
            target: r.get(3)?,
            note: r.get(4)?,
            model_verdict: r.get(5)?,
            model_score: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How the model's verdicts compared with the operators' decisions.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    /// Sender decisions made.
    pub decisions: usize,
    /// Model said spam, operator said spam.
    pub spam_confirmed: usize,
    /// Model said spam, operator said ham (false positives).
    pub spam_overturned: usize,
    /// Model held (suspect), operator said spam.
    pub holds_confirmed_spam: usize,
    /// Model held (suspect), operator said ham: overturned holds.
    pub holds_overturned: usize,
    /// Share of decisions where the operator agreed the sender was spam-like
    /// (spam confirmed / all spam verdicts), if any.
    pub spam_precision: Option<f64>,
    /// Held or blocked senders still waiting for a decision.
    pub pending: usize,
    /// Decisions per day (RFC 3339 date, count, overturned).
    pub by_day: Vec<(String, usize, usize)>,
    /// Shadow mode: messages delivered that enforce mode would have held
    /// (`suspect`) and from how many senders.
    pub shadow_would_hold: (usize, usize),
    /// Shadow mode: messages delivered that enforce mode would have
    /// blocked (`spam`) and from how many senders.
    pub shadow_would_block: (usize, usize),
    /// Decisions by the first rule the sender's flag named (`-` for flags
    /// stored before rules were recorded): which rule the operators keep
    /// overturning on this deployment's traffic (a pool of passcode
    /// numbers shows as `CAMPAIGN_NEIGHBOUR` marked ham again and again).
    pub by_rule: Vec<RuleDecisions>,
}

/// The operators' decisions on the senders one rule flagged.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RuleDecisions {
    /// Rule tag (`ONE_WAY_BROADCAST`, `RATE_LIMITED`, ...).
    pub rule: String,
    /// Marked spam.
    pub spam: usize,
    /// Marked ham.
    pub ham: usize,
}

/// The first rule named in a flag's stored reasons (rules are stored before
/// the model's features, as `{"tag", "words"}` without a value).
fn first_rule(reasons: &str) -> Option<String> {
    let v: Vec<serde_json::Value> = serde_json::from_str(reasons).ok()?;
    v.iter()
        .find(|r| r.get("value").is_none())
        .and_then(|r| r.get("tag")?.as_str().map(str::to_string))
}

impl Stats {
    /// Counts the operators' decisions, oldest first, as (time, action,
    /// the model's verdict then, the sender's flag reasons): how often they
    /// confirmed or overturned the model, per day and per rule, and the
    /// precision of its `spam` verdicts. The same on both backends; only the
    /// reading differs.
    pub(crate) fn count_decisions(
        &mut self,
        rows: impl IntoIterator<Item = (i64, String, Option<String>, Option<String>)>,
    ) {
        let mut days: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
        let mut rules: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
        for (at, action, model, reasons) in rows {
            self.decisions += 1;
            let spam = action == "mark_spam";
            let rule = reasons
                .as_deref()
                .and_then(first_rule)
                .unwrap_or_else(|| "-".into());
            let r = rules.entry(rule).or_default();
            if spam {
                r.0 += 1;
            } else {
                r.1 += 1;
            }
            let overturned = match model.as_deref() {
                Some("spam") if spam => {
                    self.spam_confirmed += 1;
                    false
                }
                Some("spam") => {
                    self.spam_overturned += 1;
                    true
                }
                Some("suspect") if spam => {
                    self.holds_confirmed_spam += 1;
                    false
                }
                Some("suspect") => {
                    self.holds_overturned += 1;
                    true
                }
                _ => false,
            };
            let day: String = crate::core::clock::rfc3339_ms(at)
                .chars()
                .take(10)
                .collect();
            let e = days.entry(day).or_default();
            e.0 += 1;
            e.1 += usize::from(overturned);
        }
        let flagged_spam = self.spam_confirmed + self.spam_overturned;
        self.spam_precision =
            (flagged_spam > 0).then(|| self.spam_confirmed as f64 / flagged_spam as f64);
        self.by_day = days.into_iter().map(|(d, (n, o))| (d, n, o)).collect();
        self.by_rule = rules
            .into_iter()
            .map(|(rule, (spam, ham))| RuleDecisions { rule, spam, ham })
            .collect();
    }
}

/// The operators' sender decisions, oldest first, with the model's verdict
/// then and the sender's flag reasons (either backend).
pub(crate) const DECISIONS: &str = "SELECT a.at, a.action, a.model_verdict, f.reasons FROM audit_log a \
     LEFT JOIN flagged_senders f ON f.sender = a.target \
     WHERE a.action IN ('mark_spam', 'mark_ham') ORDER BY a.id";

/// Compares the model with the operators over the audit log.
pub fn stats(db: &Db) -> Result<Stats> {
    let conn = db.conn();
    let mut s = Stats::default();
    let mut stmt = conn.prepare(DECISIONS)?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, Option<String>>(3)?,
        ))
    })?;
    s.count_decisions(rows.collect::<rusqlite::Result<Vec<_>>>()?);
    s.pending = conn.query_row(
        "SELECT COUNT(*) FROM flagged_senders WHERE decided IS NULL",
        [],
        |r| r.get::<_, i64>(0),
    )? as usize;
    let shadow = |verdict: &str| -> Result<(usize, usize)> {
        Ok(conn.query_row(
            "SELECT COUNT(*), COUNT(DISTINCT sender) FROM messages WHERE verdict = ?1",
            [verdict],
            |r| Ok((r.get::<_, i64>(0)? as usize, r.get::<_, i64>(1)? as usize)),
        )?)
    };
    s.shadow_would_hold = shadow("would_hold")?;
    s.shadow_would_block = shadow("would_block")?;
    Ok(s)
}

impl Store {
    /// The operators' allow and block patterns in force at `now`.
    pub async fn active_lists(&self, now: i64) -> Result<(Vec<String>, Vec<String>)> {
        if let Some(pg) = self.pg() {
            return pg.active_lists(now).await;
        }
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT kind, pattern FROM lists WHERE expires_at IS NULL OR expires_at > ?1",
            )?;
            let mut allow = Vec::new();
            let mut block = Vec::new();
            for row in stmt.query_map([now], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })? {
                let (kind, pattern) = row?;
                if kind == "allow" {
                    allow.push(pattern)
                } else {
                    block.push(pattern)
                }
            }
            Ok((allow, block))
        })
        .await
    }
}

impl Store {
    /// Undecided flagged senders and their held messages (`held` and
    /// spam-`blocked`, as `review list` counts them): the review queue's
    /// depth for `/metrics`. Walks the flagged senders (a small
    /// table) and the `(sender, status)` index, never the whole message table.
    pub async fn review_depth(&self) -> Result<(i64, i64)> {
        if let Some(pg) = self.pg() {
            return pg.review_depth().await;
        }
        self.read(|c| {
            let senders: i64 = c
                .prepare_cached("SELECT COUNT(*) FROM flagged_senders WHERE decided IS NULL")?
                .query_row([], |r| r.get(0))?;
            let held: i64 = c
                .prepare_cached(
                    "SELECT COUNT(*) FROM flagged_senders s JOIN messages m \
                     ON m.sender = s.sender AND m.status IN ('held', 'blocked') WHERE s.decided IS NULL \
                     AND m.id NOT IN (SELECT message_id FROM pending_drops)",
                )?
                .query_row([], |r| r.get(0))?;
            Ok((senders, held))
        })
        .await
    }
}
