//! A sender seen whole by every node of a cluster (PostgreSQL): each
//! node's spam gate shares what it observes, and feeds what the others
//! observed into its own engine.
//!
//! Every [`EXCHANGE`], a node appends the metadata events its gate
//! observed since the last round (messages and delivery statuses, as
//! `classifier::MetadataEvent` trace lines: addresses, times, segments,
//! sizes; never text; and when a carrier took an outbound message, which
//! times its failure) to the shared `spam_events` table, and reads the
//! other nodes' rows after the last id it saw. Those go through
//! `classifier::Engine::observe_remote`: features *and* rate limits are
//! charged as if the message had come to this node (a message the other
//! node let through is charged here even when the buckets here are empty:
//! it is owed, and paid before the sender's next message passes here), and
//! the verdict stays the receiving node's. A sender spread over N nodes thus meets one
//! budget and one feature history, late by about one exchange for the part
//! other nodes received (`classifier::cluster` measures what that costs:
//! nothing measurable at 200 ms or 1 s on the trafficgen worlds).
//!
//! A starting node reads from the newest row on: its engine starts empty,
//! as a single gateway's does after a restart. Rows older than
//! `SPAM_EVENTS_KEEP_MS` are pruned by one node at a time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use classifier::MetadataEvent;
use tokio_util::sync::CancellationToken;

use super::Pipeline;
use crate::store::cluster::SPAM_EVENTS_KEEP_MS;

/// How often a node exchanges observations with the others.
pub const EXCHANGE: Duration = Duration::from_millis(150);
/// Most observations one node buffers between exchanges; beyond that
/// (the database is away) the oldest are dropped, with a warning.
const MAX_BUFFERED: usize = 100_000;
/// Most rows read per round (a node catching up reads the rest next round).
const READ_LIMIT: i64 = 20_000;
/// How often old rows are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// A node's observations waiting for the next exchange.
#[derive(Debug, Default)]
pub struct Outbox {
    on: bool,
    events: Mutex<Vec<Shared>>,
}

/// What one node tells the others.
#[derive(Debug, Clone)]
pub enum Shared {
    /// One observation and this node's rate-limit decision on it (true
    /// for statuses): another node charges its limits only for what
    /// passed here.
    Observed(MetadataEvent, bool),
    /// A message of the gateway's own traffic this node let through on a
    /// route: only the route's ceiling is charged (own traffic is not
    /// judged), so a route's limit is one limit across the nodes.
    OwnRoute(OwnRouteCharge),
    /// A message this node observed left the gateway (a carrier took it):
    /// the other nodes time its failure from here too, so a dead number
    /// is one on every node (see `classifier::Engine::handed_over`).
    HandedOver(HandOver),
}

/// The line of a [`Shared::HandedOver`] in `spam_events`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HandOver {
    /// The message's id.
    pub handed_over: String,
    /// When (ms since the epoch).
    pub at_ms: i64,
}

/// The line of an [`Shared::OwnRoute`] in `spam_events` (its first field
/// tells it from a `MetadataEvent` line, which starts with `"event"`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct OwnRouteCharge {
    /// The route's name.
    pub own_route: String,
    /// Segments charged.
    pub segments: u32,
    /// When (ms since the epoch).
    pub at_ms: i64,
}

impl Shared {
    /// The row this becomes: (time in ms, passed, JSON line).
    fn row(&self) -> Option<(i64, bool, String)> {
        match self {
            Shared::Observed(e, ok) => {
                Some((e.at().unix_millis(), *ok, serde_json::to_string(e).ok()?))
            }
            Shared::OwnRoute(c) => Some((c.at_ms, true, serde_json::to_string(c).ok()?)),
            Shared::HandedOver(h) => Some((h.at_ms, true, serde_json::to_string(h).ok()?)),
        }
    }
}

impl Outbox {
    /// An outbox; `on` is false for a single gateway (SQLite): nothing is
    /// kept.
    pub fn new(on: bool) -> Self {
        Self {
            on,
            events: Mutex::default(),
        }
    }

    /// Keeps one observation for the next exchange.
    pub fn push(&self, event: Shared) {
        if !self.on {
            return;
        }
        if let Ok(mut e) = self.events.lock() {
            if e.len() >= MAX_BUFFERED {
                e.remove(0);
            }
            e.push(event);
        }
    }

    /// Everything kept since the last call.
    pub fn take(&self) -> Vec<Shared> {
        self.events
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default()
    }
}

/// Exchanges observations with the other nodes until `shutdown`; a last
/// append at shutdown so nothing observed here is lost to the others.
pub async fn run(p: Arc<Pipeline>, shutdown: CancellationToken) {
    let mut last = loop {
        match p.store.last_spam_event().await {
            Ok(id) => break id,
            Err(e) => {
                tracing::warn!(error = %e, "reading the shared spam observations failed; will retry");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = shutdown.cancelled() => return,
                }
            }
        }
    };
    let mut tick = tokio::time::interval(EXCHANGE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pruned = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => {
                publish(&p).await;
                return;
            }
        }
        publish(&p).await;
        last = receive(&p, last).await;
        if pruned.elapsed() >= PRUNE_EVERY {
            pruned = tokio::time::Instant::now();
            let before = crate::core::clock::now_ms().saturating_sub(SPAM_EVENTS_KEEP_MS);
            if let Err(e) = p.store.prune_spam_events(before).await {
                tracing::warn!(error = %e, "pruning shared spam observations failed");
            }
        }
    }
}

/// Appends this node's observations; on failure they are kept for the
/// next round (bounded by [`MAX_BUFFERED`]).
async fn publish(p: &Pipeline) {
    let events = p.spam.take_shared();
    if events.is_empty() {
        return;
    }
    let lines: Vec<(i64, bool, String)> = events.iter().filter_map(Shared::row).collect();
    if let Err(e) = p.store.append_spam_events(&lines).await {
        tracing::warn!(error = %e, kept = events.len(), "sharing spam observations failed; will retry");
        let mut events = events;
        events.extend(p.spam.take_shared());
        if events.len() > MAX_BUFFERED {
            tracing::warn!(
                dropped = events.len() - MAX_BUFFERED,
                "spam observations dropped: the database was away too long"
            );
        }
        for ev in events.into_iter().rev().take(MAX_BUFFERED).rev() {
            p.spam.share_again(ev);
        }
    }
}

/// Feeds the other nodes' observations after `last`; returns the last id
/// read.
async fn receive(p: &Pipeline, mut last: i64) -> i64 {
    match p.store.spam_events_after(last, READ_LIMIT).await {
        Ok(rows) => {
            for (id, allowed, line) in rows {
                last = id;
                if let Err(e) = feed(p, allowed, &line) {
                    tracing::warn!(id, error = %e, "unreadable shared spam observation skipped");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "reading shared spam observations failed"),
    }
    last
}

/// Feeds one row another node appended.
fn feed(p: &Pipeline, allowed: bool, line: &str) -> Result<(), serde_json::Error> {
    if line.starts_with("{\"own_route\"") {
        let c: OwnRouteCharge = serde_json::from_str(line)?;
        p.spam.charge_own_remote(&c);
    } else if line.starts_with("{\"handed_over\"") {
        let h: HandOver = serde_json::from_str(line)?;
        p.spam.handed_over_remote(&h.handed_over);
    } else {
        let ev: MetadataEvent = serde_json::from_str(line)?;
        p.spam.observe_remote(&ev, allowed);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_row_is_told_apart_by_its_first_field() {
        // `feed` dispatches on how the line starts: a hand-over must not
        // be read as an observation, nor an observation as a hand-over
        let h = Shared::HandedOver(HandOver {
            handed_over: "m-1".into(),
            at_ms: 1_000,
        });
        let (at, passed, line) = h.row().unwrap();
        assert_eq!((at, passed), (1_000, true));
        assert!(line.starts_with("{\"handed_over\""), "{line}");
        let back: HandOver = serde_json::from_str(&line).unwrap();
        assert_eq!(back.handed_over, "m-1");
        let c = Shared::OwnRoute(OwnRouteCharge {
            own_route: "r".into(),
            segments: 1,
            at_ms: 1_000,
        });
        assert!(c.row().unwrap().2.starts_with("{\"own_route\""));
        let status = MetadataEvent::Status(classifier::StatusMeta {
            at: classifier::Timestamp::from_unix_millis(1_000),
            id: "m-1".into(),
            status: classifier::DeliveryStatus::Failed,
        });
        let line = Shared::Observed(status, true).row().unwrap().2;
        assert!(line.starts_with("{\"event\""), "{line}");
    }
}
