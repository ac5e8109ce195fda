//! The undo window of the review queue's drops: an operator's drop (drop,
//! mark spam, block) first only takes the messages out of the queue; the
//! drop becomes final, and the body is erased, when the window has passed.
//! Until then `gateway review undo SENDER` or the console's Undo puts them
//! back, held as before. A misclick in a queue of hundreds should cost a
//! click, not a customer's message.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Deserialize;

use super::Db;
use super::review::{audit, drop_held};
use crate::core::error::Result;

/// `[review]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewConfig {
    /// Seconds a drop can be undone; its body is erased only after them.
    /// 0 makes drops final at once.
    pub undo_window_secs: u64,
    /// The operator's hold webhook (see `pipeline::hold_notify`): every
    /// new hold and block is POSTed there, signed. Unset: none.
    pub notify_url: Option<String>,
    /// Environment variable holding the hold webhook's signing secret
    /// (default `GATEWAY_REVIEW_NOTIFY_SECRET`).
    pub notify_secret_env: Option<String>,
    /// File holding the hold webhook's signing secret.
    pub notify_secret_file: Option<std::path::PathBuf>,
}

/// The longest undo window: a drop is a decision, and the held body and
/// the sender's number (in clear in `pending_drops`) should not outlive it
/// by days.
pub const MAX_UNDO_WINDOW_SECS: u64 = 86_400;

impl ReviewConfig {
    /// Semantic checks, appended to `problems`.
    pub fn validate(&self, problems: &mut Vec<String>) {
        if self.undo_window_secs > MAX_UNDO_WINDOW_SECS {
            problems.push(format!(
                "review.undo_window_secs must be at most {MAX_UNDO_WINDOW_SECS} (a day)"
            ));
        }
    }
}

impl Default for ReviewConfig {
    fn default() -> Self {
        Self {
            undo_window_secs: super::db::DEFAULT_UNDO_WINDOW_SECS,
            notify_url: None,
            notify_secret_env: None,
            notify_secret_file: None,
        }
    }
}

/// Makes the drops whose window has passed final: status `dropped`, body
/// erased, out of the delivery queue. Returns how many.
pub(super) fn finalize_due(tx: &Connection, now: i64) -> Result<usize> {
    let due: Vec<(String, String)> = tx
        .prepare_cached(
            "SELECT message_id, detail FROM pending_drops WHERE final_at <= ?1 ORDER BY final_at LIMIT 1000",
        )?
        .query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut n = 0;
    for (id, detail) in &due {
        n += usize::from(drop_held(tx, id, detail, now)?);
        tx.prepare_cached("DELETE FROM pending_drops WHERE message_id = ?1")?
            .execute([id])?;
    }
    Ok(n)
}

/// A drop still in its window.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PendingDrop {
    /// The message.
    pub id: String,
    /// Its sender.
    pub sender: String,
    /// Who dropped it.
    pub actor: String,
    /// When the drop becomes final (Unix ms).
    pub final_at: i64,
}

/// The drops still undoable, of `sender` (or all with `None`), soonest
/// final first.
pub fn pending(db: &Db, sender: Option<&str>) -> Result<Vec<PendingDrop>> {
    let now = crate::core::clock::now_ms();
    let mut stmt = db.conn().prepare_cached(
        "SELECT message_id, sender, actor, final_at FROM pending_drops \
         WHERE final_at > ?1 AND (?2 IS NULL OR sender = ?2) ORDER BY final_at, message_id LIMIT 1000",
    )?;
    let rows = stmt.query_map(params![now, sender], |r| {
        Ok(PendingDrop {
            id: r.get(0)?,
            sender: r.get(1)?,
            actor: r.get(2)?,
            final_at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Undoes `sender`'s drops still in their window: the messages are held
/// again and the sender is back in the review queue (a mark spam or block
/// had closed it; the list entry those added stays, see `review unlist`).
/// Drops whose window has passed are made final first, so an undo never
/// brings back a message whose window is over. Returns the messages back.
pub fn undo(db: &mut Db, actor: &str, sender: &str) -> Result<usize> {
    let now = crate::core::clock::now_ms();
    db.immediate(|tx| {
        finalize_due(tx, now)?;
        let n = tx
            .prepare_cached("DELETE FROM pending_drops WHERE sender = ?1 AND final_at > ?2")?
            .execute(params![sender, now])?;
        if n > 0 {
            // An undone `mark spam` is no label for training any more.
            let was_spam = tx
                .prepare_cached("SELECT 1 FROM flagged_senders WHERE sender = ?1 AND decided = 'spam'")?
                .query_row([sender], |_| Ok(()))
                .optional()?
                .is_some();
            tx.prepare_cached(
                "UPDATE flagged_senders SET decided = NULL WHERE sender = ?1 AND decided IN ('spam', 'blocked')",
            )?
            .execute([sender])?;
            let action = if was_spam { "undo_mark_spam" } else { "undo_drop" };
            audit(tx, actor, action, sender, None, now)?;
        }
        Ok(n)
    })
}

/// [`finalize_due`] on a connection of the caller's (the CLI's commands
/// run it first, so a gateway that is not running still erases on time).
pub fn finalize(db: &mut Db) -> Result<usize> {
    let now = crate::core::clock::now_ms();
    db.immediate(|tx| finalize_due(tx, now))
}

impl super::Store {
    /// Makes due review drops final (the service's sweep, every second).
    pub async fn finalize_drops(&self, now: i64) -> Result<usize> {
        if let Some(pg) = self.pg() {
            return pg.finalize_drops(now).await;
        }
        self.write(move |tx| finalize_due(tx, now)).await
    }
}

/// Whether message `id` has a drop pending (tests, the timeline).
pub fn is_pending(db: &Db, id: &str) -> Result<bool> {
    Ok(db
        .conn()
        .prepare_cached("SELECT 1 FROM pending_drops WHERE message_id = ?1")?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A database with held messages `m1`, `m2` from `+12125550177`, a
    /// flagged, undecided sender.
    fn seeded() -> Db {
        let db = Db::open_in_memory().unwrap();
        for id in ["m1", "m2"] {
            db.conn()
                .execute(
                    "INSERT INTO messages (id, direction, channel, adapter, sender, recipient, segments, encoding, \
                     size_class, status, created_at, updated_at, kid, header, sealed) VALUES (?1, 'inbound', 'sms', \
                     'generic', '+12125550177', '+14155550101', 1, 'gsm7', 256, 'held', 1, 1, 'k', x'00', x'01')",
                    [id],
                )
                .unwrap();
        }
        db.conn()
            .execute(
                "INSERT INTO flagged_senders (sender, verdict, score, reasons, first_flagged_at, last_seen) \
                 VALUES ('+12125550177', 'suspect', 0.6, '[]', 1, 1)",
                [],
            )
            .unwrap();
        db
    }

    fn status(db: &Db, id: &str) -> (String, bool) {
        db.conn()
            .query_row(
                "SELECT status, sealed IS NOT NULL FROM messages WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    }

    fn held_in_queue(db: &Db) -> i64 {
        let q = super::super::review::queue(db, &Default::default()).unwrap();
        q.iter().map(|r| r.held).sum()
    }

    #[test]
    fn a_drop_waits_out_its_window_and_can_be_undone_until_then() {
        let mut db = seeded();
        db.set_undo_window(30);
        assert_eq!(held_in_queue(&db), 2);
        let n = super::super::review::mark(&mut db, "op", "+12125550177", true, None).unwrap();
        assert_eq!(n, 2);
        // In the window: still held with its body, out of the queue's views.
        assert_eq!(status(&db, "m1"), ("held".into(), true));
        assert!(is_pending(&db, "m1").unwrap());
        assert_eq!(pending(&db, Some("+12125550177")).unwrap().len(), 2);
        assert!(
            super::super::review::held_of(&db, "+12125550177")
                .unwrap()
                .is_empty()
        );
        assert_eq!(finalize(&mut db).unwrap(), 0, "not due yet");

        // Undo: held again, the sender back in the queue.
        assert_eq!(undo(&mut db, "op", "+12125550177").unwrap(), 2);
        assert_eq!(held_in_queue(&db), 2);
        let last = super::super::review::log(&db, 1).unwrap();
        assert_eq!(
            last[0].action, "undo_mark_spam",
            "no training label any more"
        );
        assert!(!is_pending(&db, "m1").unwrap());
        assert_eq!(undo(&mut db, "op", "+12125550177").unwrap(), 0);

        // Dropped again and the window over: final, body erased; no undo.
        assert!(super::super::review::decide_message(&mut db, "op", "m2", false, None).unwrap());
        db.conn()
            .execute("UPDATE pending_drops SET final_at = 0", [])
            .unwrap();
        assert_eq!(undo(&mut db, "op", "+12125550177").unwrap(), 0, "too late");
        assert_eq!(status(&db, "m2"), ("dropped".into(), false));
        assert_eq!(status(&db, "m1"), ("held".into(), true), "m1 untouched");
        assert_eq!(held_in_queue(&db), 1);
    }

    #[test]
    fn a_zero_window_drops_at_once() {
        let mut db = seeded();
        db.set_undo_window(0);
        assert!(super::super::review::decide_message(&mut db, "op", "m1", false, None).unwrap());
        assert_eq!(status(&db, "m1"), ("dropped".into(), false));
        assert!(!is_pending(&db, "m1").unwrap());
    }
}
