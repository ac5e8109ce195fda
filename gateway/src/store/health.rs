//! What `/healthz` asks the store: how old the oldest waiting delivery is,
//! and which targets are failing now.

use rusqlite::params;

use super::Store;
use crate::core::error::Result;

/// One delivery target's recent trouble.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TargetTrouble {
    /// `private`, a route name, `smpp:<client>`.
    pub target: String,
    /// Live entries that failed at least once and wait for a retry.
    pub retrying: i64,
    /// Entries dead-lettered within the window.
    pub dead_recently: i64,
}

/// The queue as health sees it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct QueueHealth {
    /// Age in seconds of the oldest live entry's message (0 when empty).
    pub oldest_age_secs: i64,
    /// Targets with retrying or recently dead entries.
    pub troubled: Vec<TargetTrouble>,
}

impl Store {
    /// The queue's health as of `now`; "recently" is the last `window_ms`.
    pub async fn queue_health(&self, now: i64, window_ms: i64) -> Result<QueueHealth> {
        if let Some(pg) = self.pg() {
            return pg.queue_health(now, window_ms).await;
        }
        self.read(move |c| {
            let oldest: Option<i64> = c
                .prepare_cached(
                    "SELECT MIN(m.created_at) FROM queue q JOIN messages m ON m.id = q.message_id \
                     WHERE q.dead = 0",
                )?
                .query_row([], |r| r.get(0))?;
            let mut st = c.prepare_cached(
                "SELECT q.target, \
                    SUM(CASE WHEN q.dead = 0 AND q.attempts > 0 THEN 1 ELSE 0 END), \
                    SUM(CASE WHEN q.dead = 1 AND m.updated_at >= ?1 THEN 1 ELSE 0 END) \
                 FROM queue q JOIN messages m ON m.id = q.message_id \
                 WHERE (q.dead = 0 AND q.attempts > 0) OR (q.dead = 1 AND m.updated_at >= ?1) \
                 GROUP BY q.target ORDER BY q.target",
            )?;
            let troubled = st
                .query_map(params![now - window_ms], |r| {
                    Ok(TargetTrouble {
                        target: r.get(0)?,
                        retrying: r.get(1)?,
                        dead_recently: r.get(2)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(QueueHealth {
                oldest_age_secs: oldest.map_or(0, |t| ((now - t) / 1000).max(0)),
                troubled,
            })
        })
        .await
    }
}
