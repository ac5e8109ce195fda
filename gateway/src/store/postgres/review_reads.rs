//! What an operator reads when reviewing held traffic, on PostgreSQL (the
//! queue, a sender's held messages and activity, the stats), and
//! [`PgReview`]: the review operations as the CLI and the console call them
//! (`store::review_ops::ReviewOps`), run to completion on a runtime.

use std::sync::Arc;

use super::{PgStore, pg_error};
use crate::core::error::Result;
use crate::store::db::{SenderActivity, SenderMessage};
use crate::store::review::{
    AuditEntry, FlaggedRow, HELD_RECIPIENTS, ListKind, QueueFilter, QueueRow, Stats,
};
use crate::store::review_ops::{HeldRow, ReviewOps};
use crate::store::undo::PendingDrop;

impl PgStore {
    /// The undecided flagged senders, filtered (as `review::queue`).
    pub async fn review_queue(&self, f: &QueueFilter) -> Result<Vec<QueueRow>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT s.sender, s.verdict, s.score, s.reasons, s.adapter, s.first_flagged_at, s.last_seen, \
                 (SELECT COUNT(*) FROM messages m WHERE m.sender = s.sender AND m.status IN ('held', 'blocked') \
                 AND m.id NOT IN (SELECT message_id FROM pending_drops)) \
                 FROM flagged_senders s WHERE s.decided IS NULL",
                &[],
            )
            .await
            .map_err(pg_error)?;
        let mut out = Vec::new();
        for r in rows {
            let row = FlaggedRow {
                sender: r.get(0),
                verdict: r.get(1),
                score: r.get(2),
                reasons: r.get(3),
                adapter: r.get(4),
                first: r.get(5),
                last: r.get(6),
                held: r.get(7),
            };
            if !f.admits(&row) {
                continue;
            }
            let recipients = c
                .query(HELD_RECIPIENTS, &[&row.sender])
                .await
                .map_err(pg_error)?;
            out.push(row.into_queue_row(recipients.into_iter().map(|r| r.get(0))));
        }
        Ok(out)
    }

    /// A sender's held messages, oldest first, at most 1000.
    pub async fn held_of(&self, sender: &str) -> Result<Vec<HeldRow>> {
        Ok(self
            .client()
            .await?
            .query(
                "SELECT id, recipient, status, created_at FROM messages WHERE sender = $1 \
                 AND status IN ('held', 'blocked') AND id NOT IN (SELECT message_id FROM pending_drops) \
                 ORDER BY created_at, id LIMIT 1000",
                &[&sender],
            )
            .await
            .map_err(pg_error)?
            .into_iter()
            .map(|r| {
                (
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    crate::core::clock::rfc3339_ms(r.get(3)),
                )
            })
            .collect())
    }

    /// How the model compared with the operators (as `review::stats`).
    pub async fn review_stats(&self) -> Result<Stats> {
        let c = self.client().await?;
        let mut s = Stats::default();
        let rows = c
            .query(crate::store::review::DECISIONS, &[])
            .await
            .map_err(pg_error)?;
        s.count_decisions(
            rows.iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))),
        );
        let pending: i64 = c
            .query_one(
                "SELECT COUNT(*) FROM flagged_senders WHERE decided IS NULL",
                &[],
            )
            .await
            .map_err(pg_error)?
            .get(0);
        s.pending = usize::try_from(pending).unwrap_or(0);
        for (verdict, slot) in [
            ("would_hold", &mut s.shadow_would_hold),
            ("would_block", &mut s.shadow_would_block),
        ] {
            let r = c
                .query_one(
                    "SELECT COUNT(*), COUNT(DISTINCT sender) FROM messages WHERE verdict = $1",
                    &[&verdict],
                )
                .await
                .map_err(pg_error)?;
            let (n, senders): (i64, i64) = (r.get(0), r.get(1));
            *slot = (
                usize::try_from(n).unwrap_or(0),
                usize::try_from(senders).unwrap_or(0),
            );
        }
        Ok(s)
    }

    /// What is stored about `target` (as `Db::sender_activity`).
    pub async fn sender_activity(&self, target: &str) -> Result<SenderActivity> {
        let c = self.client().await?;
        let sender: String = c
            .query_opt("SELECT sender FROM messages WHERE id = $1", &[&target])
            .await
            .map_err(pg_error)?
            .map(|r| r.get(0))
            .unwrap_or_else(|| target.to_string());
        let r = c
            .query_one(
                "SELECT COUNT(*), \
                 COUNT(*) FILTER (WHERE status IN ('held', 'blocked')), \
                 COUNT(DISTINCT recipient), \
                 COUNT(*) FILTER (WHERE status = 'delivered'), \
                 COUNT(*) FILTER (WHERE status IN ('failed', 'dead')) \
                 FROM messages WHERE sender = $1",
                &[&sender],
            )
            .await
            .map_err(pg_error)?;
        let mut a = SenderActivity {
            messages: r.get(0),
            held: r.get(1),
            distinct_recipients: r.get(2),
            delivered: r.get(3),
            failed: r.get(4),
            ..SenderActivity::default()
        };
        if a.messages > 0 {
            for r in c
                .query(
                    "SELECT created_at / 86400000, COUNT(*) FROM messages WHERE sender = $1 \
                     GROUP BY 1 ORDER BY 1",
                    &[&sender],
                )
                .await
                .map_err(pg_error)?
            {
                let (day, n): (i64, i64) = (r.get(0), r.get(1));
                let date = crate::core::clock::rfc3339_ms(day * 86_400_000);
                a.per_day.push((date.chars().take(10).collect(), n));
            }
            a.rows = c
                .query(
                    "SELECT id, recipient, segments, encoding, size_class, created_at FROM messages \
                     WHERE sender = $1 ORDER BY created_at, id LIMIT 100000",
                    &[&sender],
                )
                .await
                .map_err(pg_error)?
                .into_iter()
                .map(|r| SenderMessage {
                    id: r.get(0),
                    to: r.get(1),
                    segments: u32::try_from(r.get::<_, i64>(2)).unwrap_or(0),
                    encoding: r.get(3),
                    size_class: u32::try_from(r.get::<_, i64>(4)).unwrap_or(0),
                    created_at: r.get(5),
                })
                .collect();
        }
        a.sender = sender;
        Ok(a)
    }
}

/// The review operations on PostgreSQL for synchronous callers (the CLI,
/// the console's blocking task): each runs to completion on `runtime`.
/// Never call it from a runtime's worker thread.
pub struct PgReview {
    pg: Arc<PgStore>,
    runtime: tokio::runtime::Handle,
    /// `[review] undo_window_secs`, in ms.
    window_ms: i64,
}

impl PgReview {
    /// The operations on `pg`, run on `runtime`, drops undoable for
    /// `undo_window_secs`.
    pub fn new(pg: Arc<PgStore>, runtime: tokio::runtime::Handle, undo_window_secs: u64) -> Self {
        Self {
            pg,
            runtime,
            window_ms: i64::try_from(undo_window_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
        }
    }

    fn run<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }
}

impl ReviewOps for PgReview {
    fn queue(&mut self, f: &QueueFilter) -> Result<Vec<QueueRow>> {
        self.run(self.pg.review_queue(f))
    }
    fn held_of(&mut self, sender: &str) -> Result<Vec<HeldRow>> {
        self.run(self.pg.held_of(sender))
    }
    fn pending(&mut self, sender: Option<&str>) -> Result<Vec<PendingDrop>> {
        self.run(self.pg.pending_drops(sender))
    }
    fn log(&mut self, limit: usize) -> Result<Vec<AuditEntry>> {
        self.run(self.pg.audit_log(limit))
    }
    fn stats(&mut self) -> Result<Stats> {
        self.run(self.pg.review_stats())
    }
    fn sender_activity(&mut self, target: &str) -> Result<SenderActivity> {
        self.run(self.pg.sender_activity(target))
    }
    fn sender_of(&mut self, id: &str) -> Result<Option<String>> {
        Ok(self.run(self.pg.message(id.to_string()))?.map(|m| m.from))
    }
    fn decide(&mut self, actor: &str, id: &str, release: bool, note: Option<&str>) -> Result<bool> {
        self.run(
            self.pg
                .decide_message(actor, id, release, note, self.window_ms),
        )
    }
    fn mark(&mut self, actor: &str, sender: &str, spam: bool, note: Option<&str>) -> Result<usize> {
        self.run(self.pg.mark(actor, sender, spam, note, self.window_ms))
    }
    fn list_add(
        &mut self,
        actor: &str,
        kind: ListKind,
        pattern: &str,
        expires_at: Option<i64>,
        note: Option<&str>,
    ) -> Result<usize> {
        self.run(
            self.pg
                .list_add(actor, kind, pattern, expires_at, note, self.window_ms),
        )
    }
    fn list_remove(&mut self, actor: &str, kind: ListKind, pattern: &str) -> Result<bool> {
        self.run(self.pg.list_remove(actor, kind, pattern))
    }
    fn undo(&mut self, actor: &str, sender: &str) -> Result<usize> {
        self.run(self.pg.undo(actor, sender))
    }
}
