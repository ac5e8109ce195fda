//! Physical channels on a cluster: a modem or an Android phone belongs to
//! one node at a time, the node holding its lease (`store::cluster`;
//! the heartbeat that takes and renews leases runs in `app::cluster`).
//! A channel's long-running task starts once its node holds the lease and
//! stops when the node loses it; on SQLite (one node) it starts at once.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Pipeline;

/// How often a waiting or running channel looks at its lease.
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// Waits until this node holds `route`'s lease and returns a token
/// cancelled at `shutdown` or when the lease is lost; `None` at shutdown.
pub async fn hold(
    p: &Pipeline,
    route: &str,
    shutdown: &CancellationToken,
) -> Option<CancellationToken> {
    let mut told = false;
    while !p.store.owns_route(route) {
        if !told {
            tracing::info!(
                channel = route,
                "channel held by another node; standing by for its lease"
            );
            told = true;
        }
        tokio::select! {
            () = tokio::time::sleep(LOOK_EVERY) => {}
            () = shutdown.cancelled() => return None,
        }
    }
    if p.store.is_postgres() {
        tracing::info!(
            channel = route,
            "channel lease held: the channel runs on this node"
        );
    }
    let token = shutdown.child_token();
    let (store, watched, name) = (p.store.clone(), token.clone(), route.to_string());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(LOOK_EVERY) => {}
                () = watched.cancelled() => return,
            }
            if !store.owns_route(&name) {
                tracing::warn!(
                    channel = %name,
                    "channel lease lost: the channel stops on this node (restart the node to stand by for it again)"
                );
                watched.cancel();
                return;
            }
        }
    });
    Some(token)
}
