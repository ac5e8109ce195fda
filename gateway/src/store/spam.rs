//! What the spam gate reads from the store: how much the deployment has
//! scored (shadow mode's clock), operators' decisions since a point (live
//! calibration), and the review queue's depth (a metric).

use rusqlite::params;

use super::Store;
use crate::core::error::Result;

/// One operator decision on a sender, as the audit log recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Audit log row id (decisions are read in this order).
    pub id: i64,
    /// Whether the operator said spam.
    pub spam: bool,
    /// Whether this undoes an earlier decision (`review undo` of a
    /// `mark spam`) rather than making one.
    pub undone: bool,
    /// The model's score for the sender when it was decided, if it had one.
    pub model_score: Option<f32>,
}

impl Decision {
    /// A decision from its audit row (`mark_spam`, `mark_ham` or
    /// `undo_mark_spam`).
    pub(crate) fn of(id: i64, action: &str, model_score: Option<f64>) -> Decision {
        Decision {
            id,
            spam: matches!(action, "mark_spam" | "undo_mark_spam"),
            undone: action == "undo_mark_spam",
            model_score: model_score.map(|s| s as f32),
        }
    }
}

impl Store {
    /// Messages the classifier has scored in this data directory
    /// (blocking; read once at start).
    pub fn scored_messages(&self) -> Result<u64> {
        if let Some(pg) = self.pg() {
            return pg.block_on(pg.scored_messages());
        }
        self.read_blocking(|c| {
            let n: i64 = c.query_row(
                "SELECT COUNT(*) FROM messages WHERE verdict IS NOT NULL",
                [],
                |r| r.get(0),
            )?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    /// `mark spam|ham` decisions (and undone `mark spam`s) recorded after
    /// audit row `after`, oldest first.
    pub async fn decisions_after(&self, after: i64) -> Result<Vec<Decision>> {
        if let Some(pg) = self.pg() {
            return pg.decisions_after(after).await;
        }
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT id, action, model_score FROM audit_log \
                 WHERE id > ?1 AND action IN ('mark_spam', 'mark_ham', 'undo_mark_spam') ORDER BY id LIMIT 1000",
            )?;
            let rows = st.query_map(params![after], |r| {
                Ok(Decision::of(
                    r.get(0)?,
                    &r.get::<_, String>(1)?,
                    r.get::<_, Option<f64>>(2)?,
                ))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// The newest audit row id (decisions before it are history at start).
    pub async fn last_audit_id(&self) -> Result<i64> {
        if let Some(pg) = self.pg() {
            return pg.last_audit_id().await;
        }
        self.read(|c| {
            Ok(
                c.query_row("SELECT COALESCE(MAX(id), 0) FROM audit_log", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
    }

    /// Senders waiting for a decision in the review queue.
    pub async fn review_queue_depth(&self) -> Result<i64> {
        if let Some(pg) = self.pg() {
            return Ok(pg.review_depth().await?.0);
        }
        self.read(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM flagged_senders WHERE decided IS NULL",
                [],
                |r| r.get(0),
            )?)
        })
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::core::metrics::Metrics;
    use crate::store::config::Synchronous;

    #[tokio::test]
    async fn an_undone_mark_spam_comes_back_as_undone_with_its_score() {
        let dir = crate::core::fs::test_dir("store-decisions");
        let (store, _writer) =
            Store::open(&dir, Synchronous::Normal, 64, 2, Arc::new(Metrics::new())).unwrap();
        store
            .write(|tx| {
                tx.execute(
                    "INSERT INTO audit_log (at, actor, action, target, model_score) VALUES \
                     (1, 'op', 'mark_spam', 'A', 0.75), (2, 'op', 'release', 'B', 0.5), \
                     (3, 'op', 'mark_ham', 'B', 0.5), (4, 'op', 'undo_mark_spam', 'A', 0.75)",
                    [],
                )?;
                Ok(())
            })
            .await
            .unwrap();
        let d = store.decisions_after(0).await.unwrap();
        let seen: Vec<(bool, bool, Option<f32>)> = d
            .iter()
            .map(|d| (d.spam, d.undone, d.model_score))
            .collect();
        assert_eq!(
            seen,
            [
                (true, false, Some(0.75)),
                (false, false, Some(0.5)),
                (true, true, Some(0.75))
            ]
        );
        assert_eq!(store.decisions_after(3).await.unwrap().len(), 1);
    }
}
