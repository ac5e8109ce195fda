//! Cache coherence across nodes: LISTEN/NOTIFY on channel `gateway_cache`.
//!
//! Every operation that changes what a node caches (API keys, identities,
//! opt-outs, allow/block lists, review decisions) sends `NOTIFY
//! gateway_cache, '<kind>'` inside its own transaction, so the notice goes
//! out exactly when the change commits (and never when it rolls back). The
//! payload is the kind only: never a number, a key or any text.
//!
//! Each node keeps one dedicated connection (outside the pool) that
//! LISTENs; a notice bumps that kind's generation counter, and each cache
//! compares the generation it loaded under with the current one, so the
//! next lookup on any node reads the database again. Notices are not
//! durable: if the connection drops, the ones sent meanwhile are lost, so a
//! reconnect bumps every generation (every cache is dropped once). The
//! caches keep their own expiry as a fallback.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_postgres::{AsyncMessage, NoTls};
use tokio_util::sync::CancellationToken;

use super::pg_error;
use crate::core::error::Result;

/// The NOTIFY channel.
const CHANNEL: &str = "gateway_cache";
/// First wait before reconnecting a dropped listener; doubles up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What changed: the one word a notice carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheKind {
    /// API keys (created, revoked, rotated).
    ApiKeys,
    /// Registered identities (recipients' public keys).
    Identities,
    /// Opt-outs (STOP / START).
    OptOuts,
    /// Allow/block list entries.
    Lists,
    /// Operators' review decisions.
    Reviews,
}

impl CacheKind {
    /// Every kind, in counter order.
    pub const ALL: [CacheKind; 5] = [
        CacheKind::ApiKeys,
        CacheKind::Identities,
        CacheKind::OptOuts,
        CacheKind::Lists,
        CacheKind::Reviews,
    ];

    /// The notice's payload.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheKind::ApiKeys => "api_keys",
            CacheKind::Identities => "identities",
            CacheKind::OptOuts => "opt_outs",
            CacheKind::Lists => "lists",
            CacheKind::Reviews => "reviews",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One counter per kind, bumped by every notice of that kind (and all of
/// them when notices may have been lost). Starts at 0.
#[derive(Debug, Default)]
pub struct Generations([AtomicU64; CacheKind::ALL.len()]);

impl Generations {
    /// The current generation of `kind`.
    pub fn get(&self, kind: CacheKind) -> u64 {
        self.0[kind.index()].load(Ordering::Acquire)
    }

    fn bump(&self, kind: CacheKind) {
        self.0[kind.index()].fetch_add(1, Ordering::AcqRel);
    }

    fn bump_all(&self) {
        for k in CacheKind::ALL {
            self.bump(k);
        }
    }
}

/// Sends the notice of `kind` in transaction `tx` (delivered at commit).
pub(super) async fn notify(tx: &tokio_postgres::Transaction<'_>, kind: CacheKind) -> Result<()> {
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &kind.as_str()])
        .await
        .map_err(pg_error)?;
    Ok(())
}

/// Connects the listening connection and starts the task that keeps it
/// (reconnecting with backoff) until `stop`. Returns once the first LISTEN
/// is in place, so a change committed after this returns is seen.
pub(super) async fn start(
    pg: tokio_postgres::Config,
    generations: Arc<Generations>,
    stop: CancellationToken,
) -> Result<()> {
    let first = listen_once(&pg, generations.clone()).await?;
    tokio::spawn(async move {
        let mut running = first;
        let mut backoff = FIRST_BACKOFF;
        loop {
            tokio::select! {
                _ = stop.cancelled() => {
                    // Closes the listening connection with the pool.
                    running.abort();
                    return;
                }
                _ = &mut running => {}
            }
            // The connection ended: notices may have been lost meanwhile.
            generations.bump_all();
            tracing::warn!("cache notification connection lost; reconnecting");
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                match listen_once(&pg, generations.clone()).await {
                    Ok(handle) => {
                        running = handle;
                        // What changed while nobody listened.
                        generations.bump_all();
                        backoff = FIRST_BACKOFF;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cache notification reconnect failed");
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
        }
    });
    Ok(())
}

/// Opens one connection, LISTENs, and returns the task that polls it (it
/// ends when the connection does). The client is kept in the task: the
/// connection closes when its last client is dropped.
async fn listen_once(
    pg: &tokio_postgres::Config,
    generations: Arc<Generations>,
) -> Result<tokio::task::JoinHandle<()>> {
    let (client, mut connection) = pg.connect(NoTls).await.map_err(pg_error)?;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<tokio_postgres::Client>();
    let task = tokio::spawn(async move {
        // Holds the client (sent below) until the connection ends.
        let _client = ready_rx;
        loop {
            let msg = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
            match msg {
                Some(Ok(AsyncMessage::Notification(n))) => match CacheKind::parse(n.payload()) {
                    Some(kind) => generations.bump(kind),
                    // Unknown word (a newer node): drop every cache.
                    None => generations.bump_all(),
                },
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %pg_error(e), "cache notification connection failed");
                    return;
                }
                None => return,
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(pg_error)?;
    // The task keeps the client alive from here on; if it already ended,
    // the send fails and the supervisor sees the finished task.
    let _ = ready_tx.send(client);
    Ok(task)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_bump_their_own_counter() {
        let g = Generations::default();
        for k in CacheKind::ALL {
            assert_eq!(CacheKind::parse(k.as_str()), Some(k));
        }
        g.bump(CacheKind::Lists);
        assert_eq!(g.get(CacheKind::Lists), 1);
        assert_eq!(g.get(CacheKind::ApiKeys), 0);
        g.bump_all();
        assert_eq!(g.get(CacheKind::Lists), 2);
        assert_eq!(g.get(CacheKind::Reviews), 1);
    }
}
