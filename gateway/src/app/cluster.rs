//! The node's part in a cluster (PostgreSQL): a heartbeat that records the
//! node in the registry and takes, renews and gives back the leases of its
//! physical channels (`store::cluster`), and the `cluster` section of
//! `/healthz` (this node, the nodes seen, who holds which channel).
//!
//! A lease lasts `[store] lease_secs` (the queue's lease too) and is
//! renewed every quarter of it, so a node that misses three heartbeats in
//! a row still holds its channels, and a killed node's channels move to
//! another within one lease plus one heartbeat. Nodes' clocks must agree
//! to well within a lease (as for queue leases).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::core::clock::now_ms;
use crate::http::Health;
use crate::store::Store;

/// What `/healthz` shows of the cluster, as of the last heartbeat.
#[derive(Default)]
pub struct ClusterHealth(Mutex<serde_json::Value>);

impl Health for ClusterHealth {
    fn health_json(&self) -> serde_json::Value {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// Beats until `shutdown`, then gives the node's channel leases back.
pub async fn heartbeat(
    store: Store,
    lease_secs: u64,
    health: Arc<ClusterHealth>,
    shutdown: CancellationToken,
) {
    let lease_ms = i64::try_from(lease_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let every = Duration::from_millis((lease_secs.saturating_mul(250)).max(250));
    let started_at = now_ms();
    let node = store.node_name().unwrap_or_default();
    let mut held: Vec<String> = Vec::new();
    loop {
        match store.heartbeat(now_ms(), started_at, lease_ms).await {
            Ok(now_held) => {
                for ch in now_held.iter().filter(|c| !held.contains(c)) {
                    tracing::info!(channel = %ch, node = %node, "channel lease taken");
                }
                held = now_held;
            }
            Err(e) => tracing::warn!(error = %e, "cluster heartbeat failed; will retry"),
        }
        if let Ok((nodes, leases)) = store.cluster_view().await {
            let now = now_ms();
            let view = serde_json::json!({
                "node": node,
                "nodes": nodes.iter().map(|n| serde_json::json!({
                    "node": n.node,
                    "alive": n.last_seen + lease_ms > now,
                    "last_seen_ms_ago": (now - n.last_seen).max(0),
                })).collect::<Vec<_>>(),
                "channels": leases.iter().map(|l| serde_json::json!({
                    "channel": l.channel,
                    "node": l.node,
                    "valid": l.until > now,
                    "here": l.node == node && l.until > now,
                })).collect::<Vec<_>>(),
            });
            if let Ok(mut h) = health.0.lock() {
                *h = view;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.cancelled() => break,
        }
    }
    match store.release_channels().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(released = n, "channel leases handed back to the cluster"),
        Err(e) => {
            tracing::warn!(error = %e, "handing back channel leases failed; they end with their lease")
        }
    }
}
