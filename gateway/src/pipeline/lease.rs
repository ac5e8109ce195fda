//! Physical channels on a cluster: a modem or an Android phone belongs to
//! one node at a time, the node holding its lease (`store::cluster`;
//! the heartbeat that takes and renews leases runs in `app::cluster`).
//! A channel's long-running task starts once its node holds the lease and
//! stops when the node loses it; on SQLite (one node) it starts at once.
//! A node that lost a lease (it stalled past the lease, or lost the
//! database that long, and another node took the channel) stands by for
//! it again and starts the channel anew when the lease comes back
//! ([`while_held`]), without a restart.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Pipeline;

/// How often a waiting or running channel looks at its lease.
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// Waits until this node holds `route`'s lease and returns a token
/// cancelled at `shutdown` or when the lease is lost; `None` at shutdown.
async fn hold(
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
                    "channel lease lost: the channel stops on this node and stands by for the lease"
                );
                watched.cancel();
                return;
            }
        }
    });
    Some(token)
}

/// Runs a physical channel on this node while it holds `route`'s lease,
/// until `shutdown`: waits for the lease ([`hold`]), runs `run` with a
/// token cancelled when the lease is lost, and when it is lost stands by
/// for it again. `run` is a fresh start of the channel each time (a new
/// bind, a reopened port), as after a restart. A `run` that finishes while
/// the lease is still held (a phone's webhook registration) is not run
/// again until the lease was lost and taken back.
pub async fn while_held<F, Fut>(p: &Pipeline, route: &str, shutdown: &CancellationToken, run: F)
where
    F: FnMut(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    while_held_or(p, route, shutdown, run, std::future::pending::<()>).await;
}

/// [`while_held`], running `standby` while the node waits for the lease
/// (stopped once it holds it): a channel whose route hands sends to its
/// task answers them there, so none waits for a lease that may never come
/// back (a send claimed just before the lease was lost).
pub async fn while_held_or<F, Fut, S, SFut>(
    p: &Pipeline,
    route: &str,
    shutdown: &CancellationToken,
    mut run: F,
    mut standby: S,
) where
    F: FnMut(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = ()>,
    S: FnMut() -> SFut,
    SFut: std::future::Future<Output = ()>,
{
    loop {
        let held = {
            let wait = hold(p, route, shutdown);
            tokio::pin!(wait);
            // The lease first: a node that holds it already (and SQLite's
            // one node, at once) never runs `standby`.
            tokio::select! {
                biased;
                held = &mut wait => held,
                () = standby() => wait.await,
            }
        };
        let Some(token) = held else { return };
        run(token.clone()).await;
        // Whatever `run` left, it ends with the lease (or the shutdown).
        token.cancelled().await;
        if shutdown.is_cancelled() {
            return;
        }
    }
}
