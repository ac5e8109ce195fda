//! The cluster's edge key, as the database knows it: the fingerprint of
//! the current edge public key, recorded by the first node that starts.
//!
//! The keys themselves never enter the database (see `envelope::share`);
//! what does is enough to notice a node provisioned with other keys. Such
//! a node would seal what no other node opens, and fail to open what they
//! sealed, so it refuses to start instead.

use super::{PgStore, pg_error};
use crate::core::error::{Error, Result};

impl PgStore {
    /// Checks this node's current edge key (`current`, a fingerprint)
    /// against the one the cluster recorded, recording it on first start.
    /// A node whose keyring holds the recorded key as an older one (it
    /// rotated) records its new current key: the other nodes then refuse
    /// to start until they import the rotated keys. Any other difference
    /// is refused with an error that says how to provision the node.
    pub async fn check_edge_key(&self, current: &str, known: &[String]) -> Result<()> {
        let now = crate::core::clock::now_ms();
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        tx.execute(
            "INSERT INTO cluster_edge_key (fingerprint, recorded_at) VALUES ($1, $2) \
             ON CONFLICT (one) DO NOTHING",
            &[&current, &now],
        )
        .await
        .map_err(pg_error)?;
        let recorded: String = tx
            .query_one("SELECT fingerprint FROM cluster_edge_key FOR UPDATE", &[])
            .await
            .map_err(pg_error)?
            .get(0);
        if recorded != current {
            if !known.contains(&recorded) {
                return Err(Error::Config(format!(
                    "this node's edge key (fingerprint {current}) is not the cluster's \
                     (fingerprint {recorded} recorded in the database): every node must hold the \
                     same keys; run `gateway keys export --out FILE` on a node of the cluster and \
                     `gateway keys import FILE` here"
                )));
            }
            tx.execute(
                "UPDATE cluster_edge_key SET fingerprint = $1, recorded_at = $2",
                &[&current, &now],
            )
            .await
            .map_err(pg_error)?;
            tracing::warn!(
                fingerprint = %current,
                "this node's edge key was rotated: recorded as the cluster's; the other nodes need `gateway keys import` of the rotated keys before they start again"
            );
        }
        tx.commit().await.map_err(pg_error)
    }
}
