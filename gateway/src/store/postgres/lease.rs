//! Lease renewal: a node keeps the queue entries it is still sending.
//!
//! A claim holds an entry for `lease_secs`; a far end slower than that (or
//! a backlog of accepted messages waiting for a send slot) would otherwise
//! let another node take the entry over while this one still sends it, and
//! the far end would see the same attempt id twice. The delivery worker
//! renews its in-flight and waiting entries every third of the lease (a
//! heartbeat); a node that dies stops renewing, and its entries are taken
//! over one lease after its last heartbeat.

use super::{PgStore, pg_error};
use crate::core::error::Result;

impl PgStore {
    /// Extends this node's lease on `ids` to `now` + the lease. Only
    /// entries still leased to this node are renewed: one another node
    /// took over after the lease ran out stays that node's. Returns how
    /// many were renewed.
    pub async fn renew_leases(&self, ids: Vec<String>, now: i64) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.client()
            .await?
            .execute(
                "UPDATE queue SET lease_until = $3 \
                 WHERE message_id = ANY($1) AND lease_owner = $2 AND NOT dead",
                &[&ids, &self.node, &now.saturating_add(self.lease_ms)],
            )
            .await
            .map_err(pg_error)
    }

    /// How often a node renews its leases: a third of the lease, so two
    /// heartbeats may fail before another node can take an entry over.
    pub fn renew_every(&self) -> std::time::Duration {
        let ms = u64::try_from(self.lease_ms / 3).unwrap_or(0).max(100);
        std::time::Duration::from_millis(ms)
    }
}
