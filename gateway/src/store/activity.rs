//! Recent traffic for the web console's small charts: messages accepted
//! per time bucket by where they stand now, and the live queue depth.
//! Counts only, from the `messages_created` index.

use rusqlite::params;

use super::Store;
use crate::core::error::Result;

/// Messages accepted per bucket, oldest bucket first, split by their
/// current status.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Activity {
    /// Unix ms where the first bucket starts.
    pub start: i64,
    /// Bucket width (ms).
    pub bucket_ms: i64,
    /// Per bucket: [delivered or sent, held or blocked, failed (also dead,
    /// expired, dropped), on the way (anything else)].
    pub buckets: Vec<[i64; 4]>,
    /// Live (not dead) entries in the delivery queue now.
    pub queued: i64,
}

/// Which of the four series a status counts in.
pub(super) fn series(status: &str) -> usize {
    match status {
        "delivered" | "sent" | "read" | "stored" => 0,
        "held" | "blocked" => 1,
        "failed" | "dead" | "expired" | "dropped" => 2,
        _ => 3,
    }
}

impl Store {
    /// The last `n` buckets of `bucket_ms` before `now`.
    pub async fn activity(&self, now: i64, bucket_ms: i64, n: usize) -> Result<Activity> {
        let bucket_ms = bucket_ms.max(1);
        let start = now - now.rem_euclid(bucket_ms) - bucket_ms * (n as i64 - 1);
        if let Some(pg) = self.pg() {
            return pg.activity(start, bucket_ms, n).await;
        }
        self.read(move |c| {
            let mut a = Activity {
                start,
                bucket_ms,
                buckets: vec![[0; 4]; n],
                queued: c.query_row("SELECT COUNT(*) FROM queue WHERE dead = 0", [], |r| {
                    r.get(0)
                })?,
            };
            let mut st = c.prepare_cached(
                "SELECT (created_at - ?1) / ?2, status, COUNT(*) FROM messages \
                 WHERE created_at >= ?1 GROUP BY 1, 2",
            )?;
            let rows = st.query_map(params![start, bucket_ms], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            for row in rows {
                let (i, status, count) = row?;
                if let Some(b) = usize::try_from(i).ok().and_then(|i| a.buckets.get_mut(i)) {
                    b[series(&status)] += count;
                }
            }
            Ok(a)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::series;

    #[test]
    fn statuses_fall_in_four_series() {
        assert_eq!(series("delivered"), 0);
        assert_eq!(series("held"), 1);
        assert_eq!(series("dead"), 2);
        assert_eq!(series("queued"), 3);
    }
}
