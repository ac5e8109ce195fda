//! Content that does not stick around: a sealed body goes once the next hop
//! has the message, and the files are checked to no longer hold it.
//!
//! A body is "settled" when nothing in the gateway can need it again: no
//! queue entry (live or dead: a dead letter may be retried by an operator),
//! no RCS fallback timer (the SMS fallback is rendered from it), and a status
//! saying the far end took it. Then it is erased at once
//! (`keep_after_delivery_secs = 0`) or marked with the time it is to go,
//! which the sweep honours ([`Store::erase_acknowledged`]). SQLite's
//! `secure_delete` zeroes the freed bytes in the pages; the sweep's
//! checkpoint then truncates the WAL, the other place old page images live.

use std::sync::atomic::Ordering;

use rusqlite::{Connection, params};

use super::Store;
use crate::core::error::Result;

/// Erases message `id`'s body now (`keep_ms == 0`), or marks it to be
/// erased `keep_ms` from `now`, when nothing can need it any more. Returns
/// whether it erased.
pub(super) fn settle_body(tx: &Connection, id: &str, now: i64, keep_ms: i64) -> Result<bool> {
    // The test and the write in one statement: one row lookup instead of a
    // SELECT and then an UPDATE of the same row, per delivered message.
    if keep_ms > 0 {
        tx.prepare_cached(MARK_SETTLED)?
            .execute(params![id, now.saturating_add(keep_ms)])?;
        return Ok(false);
    }
    Ok(tx.prepare_cached(ERASE_SETTLED)?.execute(params![id])? > 0)
}

/// When nothing can need message `?1`'s body any more: it has one, its
/// status is final for its content, and no queue entry or RCS fallback
/// timer will send it again.
macro_rules! settled {
    () => {
        "id = ?1 AND sealed IS NOT NULL AND status IN ('sent', 'delivered', 'failed') \
         AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.message_id = ?1) \
         AND NOT EXISTS (SELECT 1 FROM rcs_fallback f WHERE f.message_id = ?1)"
    };
}

/// Erases a settled body (no history entry: every delivered message would
/// end with one, and `body_stored` in the message's view already says it).
const ERASE_SETTLED: &str = concat!(
    "UPDATE messages SET sealed = NULL, erase_at = NULL WHERE ",
    settled!()
);

/// Marks a settled body to be erased at `?2`.
const MARK_SETTLED: &str = concat!(
    "UPDATE messages SET erase_at = ?2 WHERE erase_at IS NULL AND ",
    settled!()
);

/// Nulls the body.
fn erase(tx: &Connection, id: &str) -> Result<()> {
    tx.prepare_cached("UPDATE messages SET sealed = NULL, erase_at = NULL WHERE id = ?1")?
        .execute(params![id])?;
    Ok(())
}

/// Why a transit message failed, as `last_error` and the API show it.
pub const NOT_RETAINED: &str = "content_not_retained";

impl Store {
    /// A message without content at rest could not be handed over in time:
    /// `last_error` says `content_not_retained`, and its carrier id (or
    /// the pre-sealed envelope's id) is forgotten, so the carrier's retry
    /// (it was answered 503) is a new message rather than a duplicate.
    pub async fn not_retained(&self, id: String) -> Result<()> {
        if let Some(pg) = self.pg() {
            return pg.not_retained(id).await;
        }
        self.write(move |tx| {
            tx.prepare_cached("UPDATE messages SET last_error = ?2 WHERE id = ?1")?
                .execute(params![id, NOT_RETAINED])?;
            tx.prepare_cached("DELETE FROM carrier_ids WHERE message_id = ?1")?
                .execute(params![id])?;
            Ok(())
        })
        .await
    }

    /// Transit messages accepted before `before` that never reached a final
    /// status (their process died, or shut down, while carrying them): they
    /// can never go now, and fail `content_not_retained`. Returns them with
    /// what that did to their status.
    pub async fn fail_stale_transit(
        &self,
        before: i64,
        now: i64,
    ) -> Result<Vec<(String, super::Applied)>> {
        if let Some(pg) = self.pg() {
            return pg.fail_stale_transit(before, now).await;
        }
        self.write(move |tx| {
            let ids: Vec<String> = tx
                .prepare_cached(
                    "SELECT id FROM messages WHERE transit = 1 AND created_at < ?1 \
                     AND status IN ('queued', 'sending') LIMIT 10000",
                )?
                .query_map(params![before], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut out = Vec::new();
            for id in ids {
                let report = super::StatusReport::new(
                    super::MessageStatus::Failed,
                    Some(format!("{NOT_RETAINED}: not handed over in time")),
                );
                let applied = super::messages::apply_status(tx, &id, &report, now)?;
                tx.prepare_cached("UPDATE messages SET last_error = ?2 WHERE id = ?1")?
                    .execute(params![id, NOT_RETAINED])?;
                out.extend(applied.map(|a| (id, a)));
            }
            Ok(out)
        })
        .await
    }

    /// Erases the bodies whose kept time after acknowledgement ran out;
    /// returns how many.
    pub async fn erase_acknowledged(&self, now: i64) -> Result<usize> {
        if let Some(pg) = self.pg() {
            return pg.erase_acknowledged(now).await;
        }
        let n = self
            .write(move |tx| {
                let ids: Vec<String> = tx
                    .prepare_cached(
                        "SELECT id FROM messages WHERE erase_at IS NOT NULL AND erase_at <= ?1 \
                         AND sealed IS NOT NULL LIMIT 10000",
                    )?
                    .query_map(params![now], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                for id in &ids {
                    erase(tx, id)?;
                }
                Ok(ids.len())
            })
            .await?;
        Ok(n)
    }

    /// Bodies erased on acknowledgement since the last call: their old page
    /// images may still be in the WAL until a checkpoint truncates it.
    pub fn take_erased(&self) -> usize {
        self.privacy.erased.swap(0, Ordering::Relaxed)
    }

    /// Whether the store's connections zero freed content
    /// (`PRAGMA secure_delete`); checked at start, so a SQLite built
    /// without it cannot silently leave erased bytes in free pages.
    pub async fn secure_delete_on(&self) -> Result<bool> {
        self.read(|c| {
            let v: i64 = c.query_row("PRAGMA secure_delete", [], |r| r.get(0))?;
            Ok(v == 1)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn row(c: &Connection, id: &str, status: &str) {
        c.execute(
            "INSERT INTO messages (id, direction, channel, sender, recipient, segments, encoding, size_class, status, \
             created_at, updated_at, kid, header, sealed) \
             VALUES (?1, 'outbound', 'sms', '+1', '+2', 1, 'gsm7', 0, ?2, 1, 1, 'k', x'00', x'0102')",
            params![id, status],
        )
        .unwrap();
    }

    fn sealed(c: &Connection, id: &str) -> bool {
        c.query_row(
            "SELECT sealed IS NOT NULL FROM messages WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap()
    }

    #[test]
    fn only_a_settled_body_goes() {
        let db = crate::store::Db::open_in_memory().unwrap();
        let c = db.conn();
        row(c, "sent", "sent");
        row(c, "queued", "queued");
        row(c, "retrying", "sent");
        c.execute(
            "INSERT INTO queue (message_id, target, next_attempt_at) VALUES ('retrying', 'private', 0)",
            [],
        )
        .unwrap();
        row(c, "rcs", "sent");
        c.execute(
            "INSERT INTO rcs_fallback (message_id, sms_route, due_at) VALUES ('rcs', 'sms', 0)",
            [],
        )
        .unwrap();
        row(c, "later", "delivered");
        for id in ["sent", "queued", "retrying", "rcs"] {
            settle_body(c, id, 10, 0).unwrap();
        }
        assert!(!sealed(c, "sent"));
        assert!(sealed(c, "queued") && sealed(c, "retrying") && sealed(c, "rcs"));
        assert!(!settle_body(c, "later", 10, 5_000).unwrap());
        assert!(sealed(c, "later"));
        let at: i64 = c
            .query_row(
                "SELECT erase_at FROM messages WHERE id = 'later'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(at, 5_010);
    }

    /// The worker's success (through the status rule) erases the body
    /// where nothing can need it: not while an RCS fallback timer may still
    /// need it, yes once `delivered` cancelled that timer, and also when
    /// the status did not move (already final); the erasures are counted.
    #[test]
    fn the_workers_success_erases_a_body_nothing_needs() {
        use crate::store::MessageStatus;
        use crate::store::messages::{StatusReport, report_and_settle};
        let db = crate::store::Db::open_in_memory().unwrap();
        let c = db.conn();
        for (id, status) in [
            ("plain", "queued"),
            ("rcs", "queued"),
            ("rcs-delivered", "queued"),
            ("already-final", "delivered"),
        ] {
            row(c, id, status);
            c.execute(
                "INSERT INTO queue (message_id, target, next_attempt_at) VALUES (?1, 'sms', 0)",
                [id],
            )
            .unwrap();
        }
        for id in ["rcs", "rcs-delivered"] {
            c.execute(
                "INSERT INTO rcs_fallback (message_id, sms_route, due_at) VALUES (?1, 'sms', 0)",
                [id],
            )
            .unwrap();
        }
        let privacy = crate::store::Privacy {
            keep_after_delivery_ms: 0,
            erased: Default::default(),
        };
        let success = |status, carrier: Option<&str>| StatusReport {
            status,
            detail: Some("attempt 1".into()),
            carrier_id: carrier.map(str::to_string),
            part: None,
            finish_queue: true,
        };
        for (id, status) in [
            ("plain", MessageStatus::Sent),
            ("rcs", MessageStatus::Sent),
            ("rcs-delivered", MessageStatus::Delivered),
            ("already-final", MessageStatus::Sent),
        ] {
            report_and_settle(c, id, &success(status, Some("c-1")), 10, &privacy)
                .unwrap()
                .unwrap();
        }
        assert!(!sealed(c, "plain"));
        assert!(sealed(c, "rcs"), "a fallback timer may still need it");
        assert!(!sealed(c, "rcs-delivered"));
        assert!(!sealed(c, "already-final"));
        assert_eq!(privacy.erased.load(Ordering::Relaxed), 3);
        let row_of = |id: &str| -> (String, Option<String>, i64) {
            c.query_row(
                "SELECT status, carrier_id, updated_at FROM messages WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
        };
        assert_eq!(row_of("plain"), ("sent".into(), Some("c-1".into()), 10));
        assert_eq!(row_of("rcs").0, "sent");
        assert_eq!(row_of("rcs-delivered").0, "delivered");
        let left: i64 = c
            .query_row("SELECT COUNT(*) FROM queue", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
        // A success without a carrier id keeps the one already known.
        row(c, "no-cid", "queued");
        c.execute(
            "UPDATE messages SET carrier_id = 'old' WHERE id = 'no-cid'",
            [],
        )
        .unwrap();
        report_and_settle(
            c,
            "no-cid",
            &success(MessageStatus::Sent, None),
            11,
            &privacy,
        )
        .unwrap()
        .unwrap();
        assert_eq!(row_of("no-cid"), ("sent".into(), Some("old".into()), 11));
        assert!(!sealed(c, "no-cid"));
    }

    #[test]
    fn every_connection_zeroes_freed_content() {
        let dir = crate::core::fs::test_dir("secure-delete");
        let c = crate::store::open_connection(
            &dir.join("t.db"),
            crate::store::config::Synchronous::Normal,
        )
        .unwrap();
        let secure: i64 = c
            .query_row("PRAGMA secure_delete", [], |r| r.get(0))
            .unwrap();
        assert_eq!(secure, 1);
    }
}
