//! The outcomes of a batch of delivery attempts, recorded together.
//!
//! A batched send (many messages in one request to a far end) ends with as
//! many outcomes as it carried messages. Recorded one by one, each would be
//! its own writer job (a closure, a reply channel, a wake-up of its caller);
//! here they are one job, applied in order inside the group commit by the
//! same functions a single outcome uses, so the status rule, the history and
//! the body's erasure are exactly those of single sends.

use super::Store;
use super::messages::{Applied, StatusReport, dead_letter, report_and_settle, reschedule};
use crate::core::error::Result;

/// What one delivery attempt came to, as the store records it.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A status through the one status rule (the queue entry goes with it
    /// when `finish_queue`).
    Report(StatusReport),
    /// A failed attempt, due again at `next_at`.
    Reschedule {
        /// Attempts made so far.
        attempts: u32,
        /// When it is due again (ms since the epoch).
        next_at: i64,
        /// Why the attempt failed (no message text).
        error: String,
    },
    /// Given up: dead-lettered.
    DeadLetter {
        /// Attempts made.
        attempts: u32,
        /// Why the last attempt failed.
        error: String,
    },
}

/// Applies one outcome to message `id` inside `tx`; what it did to the
/// message's status, if it went through the status rule.
fn apply(
    tx: &rusqlite::Connection,
    id: &str,
    outcome: &Outcome,
    now: i64,
    privacy: &super::Privacy,
) -> Result<Option<Applied>> {
    match outcome {
        Outcome::Report(report) => report_and_settle(tx, id, report, now, privacy),
        Outcome::Reschedule {
            attempts,
            next_at,
            error,
        } => reschedule(tx, id, *attempts, *next_at, error, now).map(|()| None),
        Outcome::DeadLetter { attempts, error } => dead_letter(tx, id, *attempts, error, now),
    }
}

impl Store {
    /// Records the outcomes of one batch in one writer job (one commit);
    /// answers, per message in order, what its status did. On PostgreSQL
    /// each outcome is its own operation, as for single sends.
    pub async fn record_outcomes(
        &self,
        outcomes: Vec<(String, Outcome)>,
    ) -> Result<Vec<Option<Applied>>> {
        if self.pg().is_some() {
            let mut applied = Vec::with_capacity(outcomes.len());
            for (id, outcome) in outcomes {
                applied.push(match outcome {
                    Outcome::Report(r) => self.report_status(id, r).await?,
                    Outcome::Reschedule {
                        attempts,
                        next_at,
                        error,
                    } => {
                        self.reschedule(id, attempts, next_at, error).await?;
                        None
                    }
                    Outcome::DeadLetter { attempts, error } => {
                        self.dead_letter(id, attempts, error).await?
                    }
                });
            }
            return Ok(applied);
        }
        let now = crate::core::clock::now_ms();
        let privacy = self.privacy.clone();
        self.write(move |tx| {
            outcomes
                .iter()
                .map(|(id, outcome)| apply(tx, id, outcome, now, &privacy))
                .collect()
        })
        .await
    }
}
