//! `GET /v1/messages` on PostgreSQL: the same filter and key paging as the
//! SQLite store's `listing.rs` (newest first by `(created_at, id)`), one
//! statement whose absent conditions are NULL parameters.

use super::{PgStore, pg_error};
use crate::core::clock::rfc3339_ms;
use crate::core::error::Result;
use crate::store::listing::{MessageFilter, MessageSummary, Page, PageEnd};
use crate::store::messages::parse_status;

impl PgStore {
    /// A page of messages matching `f`, newest first.
    pub async fn list_messages(&self, f: MessageFilter) -> Result<Page> {
        let status = f.status.map(|s| s.as_str());
        let (after_at, after_id) = match &f.after {
            Some(end) => (Some(end.created_at), Some(end.id.as_str())),
            None => (None, None),
        };
        let limit = i64::try_from(f.limit.saturating_add(1)).unwrap_or(i64::MAX);
        let rows = self
            .client()
            .await?
            .query(
                "SELECT id, direction, channel, adapter, sender, recipient, status, segments, encoding, \
                 created_at, updated_at, last_error FROM messages \
                 WHERE ($1::TEXT IS NULL OR status = $1) AND ($2::TEXT IS NULL OR direction = $2) \
                 AND ($3::TEXT IS NULL OR recipient = $3) AND ($4::TEXT IS NULL OR sender = $4) \
                 AND ($5::TEXT IS NULL OR tenant = $5) AND ($6::BIGINT IS NULL OR created_at >= $6) \
                 AND ($7::BIGINT IS NULL OR created_at < $7) \
                 AND ($8::BIGINT IS NULL OR created_at < $8 OR (created_at = $8 AND id < $9::TEXT)) \
                 ORDER BY created_at DESC, id DESC LIMIT $10",
                &[
                    &status,
                    &f.direction,
                    &f.to,
                    &f.from,
                    &f.tenant,
                    &f.since,
                    &f.until,
                    &after_at,
                    &after_id,
                    &limit,
                ],
            )
            .await
            .map_err(pg_error)?;
        let more = rows.len() > f.limit;
        let mut page = Vec::with_capacity(rows.len().min(f.limit));
        let mut end = None;
        for r in rows.into_iter().take(f.limit) {
            let created: i64 = r.get(9);
            let m = MessageSummary {
                id: r.get(0),
                direction: r.get(1),
                channel: r.get(2),
                adapter: r.get(3),
                from: r.get(4),
                to: r.get(5),
                status: parse_status(r.get(6))?,
                segments: u32::try_from(r.get::<_, i64>(7)).unwrap_or(u32::MAX),
                encoding: r.get(8),
                created_at: rfc3339_ms(created),
                updated_at: rfc3339_ms(r.get(10)),
                last_error: r.get(11),
            };
            end = Some(PageEnd {
                created_at: created,
                id: m.id.clone(),
            });
            page.push(m);
        }
        Ok((page, end.filter(|_| more)))
    }
}

impl PgStore {
    /// Messages accepted per bucket by where they stand now, and the live
    /// queue depth (the console's charts; as `store/activity.rs`).
    pub async fn activity(
        &self,
        start: i64,
        bucket_ms: i64,
        n: usize,
    ) -> Result<crate::store::activity::Activity> {
        let c = self.client().await?;
        let queued: i64 = c
            .query_one("SELECT COUNT(*) FROM queue WHERE NOT dead", &[])
            .await
            .map_err(pg_error)?
            .get(0);
        let mut a = crate::store::activity::Activity {
            start,
            bucket_ms,
            buckets: vec![[0; 4]; n],
            queued,
        };
        let rows = c
            .query(
                "SELECT (created_at - $1) / $2, status, COUNT(*) FROM messages \
                 WHERE created_at >= $1 GROUP BY 1, 2",
                &[&start, &bucket_ms],
            )
            .await
            .map_err(pg_error)?;
        for r in rows {
            let (i, status, count): (i64, String, i64) = (r.get(0), r.get(1), r.get(2));
            if let Some(b) = usize::try_from(i).ok().and_then(|i| a.buckets.get_mut(i)) {
                b[crate::store::activity::series(&status)] += count;
            }
        }
        Ok(a)
    }
}
