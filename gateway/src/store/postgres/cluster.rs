//! What the nodes of a cluster tell each other through the database:
//!
//! - **Spam-gate observations** (`spam_events`): each node appends the
//!   metadata events its spam gate observed (a `classifier::MetadataEvent`
//!   as its JSON trace line: who to whom, when, segments, sizes; never
//!   text) in batches, and tails the other nodes' rows by id. Appends hold
//!   an advisory lock for their transaction, so ids commit in order and a
//!   reader that saw id n has seen every row below it. Rows are kept for
//!   [`SPAM_EVENTS_KEEP_MS`] and pruned by one node at a time.
//! - **The node registry** (`nodes`): each node's heartbeat, for status.
//! - **Channel leases** (`channel_leases`): a physical channel (a modem, an
//!   Android phone) belongs to the node holding its lease, renewed by the
//!   heartbeat and taken over by another node once it ran out. Queue
//!   entries for a channel this node does not hold are not claimed here
//!   (they wait for the owner), and a new message for it is not leased to
//!   this node.

use std::collections::HashSet;
use std::sync::RwLock;

use super::schema::{SPAM_APPEND_LOCK, SPAM_PRUNE_LOCK};
use super::{PgStore, pg_error};
use crate::core::error::Result;

/// How long shared observations are kept: far longer than any node lags
/// behind, short enough that the table stays small.
pub const SPAM_EVENTS_KEEP_MS: i64 = 10 * 60 * 1000;

/// The physical channels this node has and which of them it holds.
#[derive(Debug, Default)]
pub struct Leases {
    /// Route names of the node's physical channels.
    physical: RwLock<Vec<String>>,
    /// Of those, the ones whose lease this node holds, and until when
    /// (Unix ms, from the start of the heartbeat that renewed them): past
    /// it, this node no longer counts on them even if it could not reach
    /// the database to learn that another node took them.
    held: RwLock<(HashSet<String>, i64)>,
    /// SMPP server clients with no receiving bind on this node (kept
    /// current by the SMPP server): inbound messages queued for them are
    /// left to a node where they are bound.
    smpp_elsewhere: RwLock<Vec<String>>,
}

impl Leases {
    /// Whether this node may send on `route`: it is not physical, or this
    /// node holds its lease.
    pub fn owns(&self, route: &str) -> bool {
        let physical = self
            .physical
            .read()
            .map(|p| p.iter().any(|r| r == route))
            .unwrap_or(false);
        !physical
            || self
                .held
                .read()
                .map(|h| h.0.contains(route) && crate::core::clock::now_ms() < h.1)
                .unwrap_or(false)
    }

    /// Queue targets (`route:<name>`) this node must leave to their owner.
    fn foreign_targets(&self) -> Vec<String> {
        let physical = self.physical.read().map(|p| p.clone()).unwrap_or_default();
        physical
            .iter()
            .filter(|r| !self.owns(r))
            .map(|r| format!("route:{r}"))
            .chain(
                self.smpp_elsewhere
                    .read()
                    .map(|c| c.iter().map(|c| format!("smpp:{c}")).collect::<Vec<_>>())
                    .unwrap_or_default(),
            )
            .collect()
    }

    /// Whether a server client has a receiving bind here (or is unknown).
    fn smpp_here(&self, system_id: &str) -> bool {
        self.smpp_elsewhere
            .read()
            .map(|c| !c.iter().any(|c| c == system_id))
            .unwrap_or(true)
    }
}

/// One channel's lease, for status.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChannelLease {
    /// The channel's route name.
    pub channel: String,
    /// The node holding it.
    pub node: String,
    /// Until when (Unix ms).
    pub until: i64,
    /// Since when this node has held it (Unix ms).
    pub since: i64,
}

/// One node of the registry, for status.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeInfo {
    /// The node's name (process id and a random part; new per start).
    pub node: String,
    /// When it started (Unix ms).
    pub started_at: i64,
    /// Its last heartbeat (Unix ms).
    pub last_seen: i64,
}

impl PgStore {
    /// The queue targets this node must not claim (see [`Leases`]).
    pub(super) fn foreign_targets(&self) -> Vec<String> {
        self.leases.foreign_targets()
    }

    /// Whether this node may send on `route` now.
    pub fn owns_route(&self, route: &str) -> bool {
        self.leases.owns(route)
    }

    /// Names the SMPP server clients bound to no receiving bind here.
    pub fn set_smpp_elsewhere(&self, clients: Vec<String>) {
        if let Ok(mut c) = self.leases.smpp_elsewhere.write() {
            *c = clients;
        }
    }

    /// Whether an inbound message for server client `system_id` may be
    /// delivered from this node (it is bound here, or is no client).
    pub fn owns_smpp(&self, system_id: &str) -> bool {
        self.leases.smpp_here(system_id)
    }

    /// Names this node's physical channels (before serving).
    pub fn set_physical(&self, routes: Vec<String>) {
        if let Ok(mut p) = self.leases.physical.write() {
            *p = routes;
        }
    }

    /// Appends this node's observations: (time, whether its rate limits
    /// let the message through, JSON trace line).
    pub async fn append_spam_events(&self, events: &[(i64, bool, String)]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let ats: Vec<i64> = events.iter().map(|e| e.0).collect();
        let allowed: Vec<bool> = events.iter().map(|e| e.1).collect();
        let lines: Vec<&str> = events.iter().map(|e| e.2.as_str()).collect();
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SPAM_APPEND_LOCK])
            .await
            .map_err(pg_error)?;
        tx.execute(
            "INSERT INTO spam_events (node, at, allowed, event) \
             SELECT $1, a, ok, e FROM UNNEST($2::BIGINT[], $3::BOOLEAN[], $4::TEXT[]) AS x(a, ok, e)",
            &[&self.node, &ats, &allowed, &lines],
        )
        .await
        .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)
    }

    /// The newest observation's id (where a starting node begins tailing).
    pub async fn last_spam_event(&self) -> Result<i64> {
        let row = self
            .client()
            .await?
            .query_one("SELECT COALESCE(MAX(id), 0) FROM spam_events", &[])
            .await
            .map_err(pg_error)?;
        Ok(row.get(0))
    }

    /// Other nodes' observations after id `after`, oldest first, at most
    /// `limit`: (id, allowed, JSON line).
    pub async fn spam_events_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, bool, String)>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT id, allowed, event FROM spam_events WHERE id > $1 AND node <> $2 \
                 ORDER BY id LIMIT $3",
                &[&after, &self.node, &limit],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// Deletes observations older than `before` (one node at a time; a node
    /// finding the lock taken skips). Returns how many.
    pub async fn prune_spam_events(&self, before: i64) -> Result<u64> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        let locked: bool = tx
            .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&SPAM_PRUNE_LOCK])
            .await
            .map_err(pg_error)?
            .get(0);
        if !locked {
            return Ok(0);
        }
        let n = tx
            .execute("DELETE FROM spam_events WHERE at < $1", &[&before])
            .await
            .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)?;
        Ok(n)
    }

    /// One heartbeat: records this node as alive, renews the leases it
    /// holds and takes the ones that ran out (or were never taken) for its
    /// physical channels. Returns the channels it holds now.
    pub async fn heartbeat(&self, now: i64, started_at: i64, lease_ms: i64) -> Result<Vec<String>> {
        let physical = self
            .leases
            .physical
            .read()
            .map(|p| p.clone())
            .unwrap_or_default();
        let c = self.client().await?;
        c.execute(
            "INSERT INTO nodes (node, started_at, last_seen) VALUES ($1, $2, $3) \
             ON CONFLICT (node) DO UPDATE SET last_seen = EXCLUDED.last_seen",
            &[&self.node, &started_at, &now],
        )
        .await
        .map_err(pg_error)?;
        // Nodes silent for a day are history.
        c.execute(
            "DELETE FROM nodes WHERE last_seen < $1",
            &[&now.saturating_sub(86_400_000)],
        )
        .await
        .map_err(pg_error)?;
        let mut held = Vec::new();
        if !physical.is_empty() {
            let rows = c
                .query(
                    "INSERT INTO channel_leases AS l (channel, node, until, since) \
                     SELECT ch, $2, $3, $4 FROM UNNEST($1::TEXT[]) AS x(ch) \
                     ON CONFLICT (channel) DO UPDATE SET node = EXCLUDED.node, until = EXCLUDED.until, \
                       since = CASE WHEN l.node = EXCLUDED.node THEN l.since ELSE EXCLUDED.since END \
                     WHERE l.node = EXCLUDED.node OR l.until <= $4 \
                     RETURNING channel",
                    &[&physical, &self.node, &now.saturating_add(lease_ms), &now],
                )
                .await
                .map_err(pg_error)?;
            held = rows.into_iter().map(|r| r.get::<_, String>(0)).collect();
        }
        if let Ok(mut h) = self.leases.held.write() {
            *h = (held.iter().cloned().collect(), now.saturating_add(lease_ms));
        }
        Ok(held)
    }

    /// Gives up this node's channel leases (graceful shutdown) so another
    /// node takes them at its next heartbeat, not after the lease.
    pub async fn release_channels(&self) -> Result<u64> {
        if let Ok(mut h) = self.leases.held.write() {
            *h = (HashSet::new(), 0);
        }
        self.client()
            .await?
            .execute(
                "UPDATE channel_leases SET until = 0 WHERE node = $1",
                &[&self.node],
            )
            .await
            .map_err(pg_error)
    }

    /// Every channel lease and every node seen in the last day.
    pub async fn cluster_view(&self) -> Result<(Vec<NodeInfo>, Vec<ChannelLease>)> {
        let c = self.client().await?;
        let nodes = c
            .query(
                "SELECT node, started_at, last_seen FROM nodes ORDER BY started_at",
                &[],
            )
            .await
            .map_err(pg_error)?
            .into_iter()
            .map(|r| NodeInfo {
                node: r.get(0),
                started_at: r.get(1),
                last_seen: r.get(2),
            })
            .collect();
        let leases = c
            .query(
                "SELECT channel, node, until, since FROM channel_leases ORDER BY channel",
                &[],
            )
            .await
            .map_err(pg_error)?
            .into_iter()
            .map(|r| ChannelLease {
                channel: r.get(0),
                node: r.get(1),
                until: r.get(2),
                since: r.get(3),
            })
            .collect();
        Ok((nodes, leases))
    }
}
