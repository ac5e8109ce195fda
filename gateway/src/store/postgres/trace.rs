//! What `gateway export-trace` and `gateway model … --from-store` read on
//! PostgreSQL: the metadata trace of the cluster's traffic and the
//! operators' decisions as labels, the same rows as SQLite's `Db::trace`
//! and `review::decisions_as_labels` (every node's traffic, since all of
//! it is in the one database).

use futures_util::TryStreamExt;

use super::{PgStore, pg_error};
use crate::core::error::Result;
use crate::store::TraceRow;

impl PgStore {
    /// Every message accepted at or after `since` and every `delivered` /
    /// `failed` status reached since then (late reports left out), in time
    /// order, to `each`. Streamed row by row: a large store is never held
    /// in memory.
    pub async fn trace(
        &self,
        since: i64,
        mut each: impl FnMut(TraceRow) -> Result<()>,
    ) -> Result<()> {
        let c = self.client().await?;
        let rows = c
            .query_raw(
                "SELECT at, kind, id, sender, recipient, channel, segments, encoding, size_class, status, direction FROM ( \
                   SELECT created_at AS at, 0 AS kind, id, sender, recipient, channel, segments, encoding, size_class, \
                   NULL::TEXT AS status, direction FROM messages WHERE created_at >= $1 \
                   UNION ALL \
                   SELECT e.at, 1, e.message_id, NULL, NULL, NULL, NULL, NULL, NULL, e.status, NULL FROM message_events e \
                   WHERE e.at >= $1 AND e.status IN ('delivered', 'failed') AND NOT e.late) t ORDER BY at, kind",
                [&since],
            )
            .await
            .map_err(pg_error)?;
        let mut rows = std::pin::pin!(rows);
        while let Some(r) = rows.try_next().await.map_err(pg_error)? {
            let at: i64 = r.get(0);
            let kind: i32 = r.get(1);
            let id: String = r.get(2);
            let row = if kind == 0 {
                TraceRow::Message {
                    at,
                    id,
                    from: r.get(3),
                    to: r.get(4),
                    channel: r.get(5),
                    segments: u32::try_from(r.get::<_, i64>(6)).unwrap_or(u32::MAX),
                    encoding: r.get(7),
                    size_class: u32::try_from(r.get::<_, i64>(8)).unwrap_or(u32::MAX),
                    inbound: r.get::<_, String>(10) == "inbound",
                }
            } else {
                TraceRow::Status {
                    at,
                    id,
                    delivered: r.get::<_, String>(9) == "delivered",
                }
            };
            each(row)?;
        }
        Ok(())
    }

    /// Operators' spam/ham decisions, the last one per sender, as training
    /// labels (as SQLite's `review::decisions_as_labels`: a `mark spam`
    /// undone in its window leaves the sender without a label).
    pub async fn decisions_as_labels(&self) -> Result<Vec<(String, classifier::Label)>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT target, action FROM audit_log WHERE action IN ('mark_spam', 'mark_ham') \
                 AND id IN (SELECT MAX(id) FROM audit_log \
                 WHERE action IN ('mark_spam', 'mark_ham', 'undo_mark_spam') GROUP BY target) \
                 ORDER BY id",
                &[],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows
            .iter()
            .map(|r| {
                let label = crate::store::review::label_of(r.get::<_, &str>(1));
                (r.get(0), label)
            })
            .collect())
    }
}
