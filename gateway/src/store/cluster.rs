//! The cluster's shared state, through the `Store` handle (see
//! `postgres/cluster.rs`): spam-gate observations, the node registry and
//! channel leases. On SQLite (one node) there is no cluster: observations
//! are not kept, and the node owns every channel.

use super::Store;
pub use super::postgres::cluster::{ChannelLease, NodeInfo, SPAM_EVENTS_KEEP_MS};
use crate::core::error::Result;

impl Store {
    /// This node's name in the cluster (PostgreSQL), or `None` (SQLite).
    pub fn node_name(&self) -> Option<String> {
        self.pg().map(|pg| pg.node().to_string())
    }

    /// Whether this node may send on `route` now: always on SQLite; on
    /// PostgreSQL unless `route` is a physical channel another node holds.
    pub fn owns_route(&self, route: &str) -> bool {
        self.pg().is_none_or(|pg| pg.owns_route(route))
    }

    /// On PostgreSQL, names the SMPP server clients with no receiving
    /// bind on this node: their queued inbound messages are left to the
    /// nodes where they are bound. Nothing on SQLite.
    pub fn set_smpp_elsewhere(&self, clients: Vec<String>) {
        if let Some(pg) = self.pg() {
            pg.set_smpp_elsewhere(clients);
        }
    }

    /// Whether this node may deliver to SMPP server client `system_id`:
    /// always on SQLite; on PostgreSQL unless it is bound to other nodes
    /// only (see [`Store::set_smpp_elsewhere`]).
    pub fn owns_smpp(&self, system_id: &str) -> bool {
        self.pg().is_none_or(|pg| pg.owns_smpp(system_id))
    }

    /// Names this node's physical channels (their routes), before serving.
    pub fn set_physical(&self, routes: Vec<String>) {
        if let Some(pg) = self.pg() {
            pg.set_physical(routes);
        }
    }

    /// Appends this node's spam-gate observations (time, let through by
    /// its rate limits, JSON trace line).
    pub async fn append_spam_events(&self, events: &[(i64, bool, String)]) -> Result<()> {
        match self.pg() {
            Some(pg) => pg.append_spam_events(events).await,
            None => Ok(()),
        }
    }

    /// The newest observation's id (0 when none, or on SQLite).
    pub async fn last_spam_event(&self) -> Result<i64> {
        match self.pg() {
            Some(pg) => pg.last_spam_event().await,
            None => Ok(0),
        }
    }

    /// Other nodes' observations after id `after`: (id, allowed, JSON line).
    pub async fn spam_events_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, bool, String)>> {
        match self.pg() {
            Some(pg) => pg.spam_events_after(after, limit).await,
            None => Ok(Vec::new()),
        }
    }

    /// Deletes observations older than `before` (one node at a time).
    pub async fn prune_spam_events(&self, before: i64) -> Result<u64> {
        match self.pg() {
            Some(pg) => pg.prune_spam_events(before).await,
            None => Ok(0),
        }
    }

    /// One heartbeat (see `PgStore::heartbeat`): the channels held now.
    pub async fn heartbeat(&self, now: i64, started_at: i64, lease_ms: i64) -> Result<Vec<String>> {
        match self.pg() {
            Some(pg) => pg.heartbeat(now, started_at, lease_ms).await,
            None => Ok(Vec::new()),
        }
    }

    /// Gives up this node's channel leases (graceful shutdown).
    pub async fn release_channels(&self) -> Result<u64> {
        match self.pg() {
            Some(pg) => pg.release_channels().await,
            None => Ok(0),
        }
    }

    /// The cluster's nodes and channel leases (empty on SQLite).
    pub async fn cluster_view(&self) -> Result<(Vec<NodeInfo>, Vec<ChannelLease>)> {
        match self.pg() {
            Some(pg) => pg.cluster_view().await,
            None => Ok((Vec::new(), Vec::new())),
        }
    }
}
