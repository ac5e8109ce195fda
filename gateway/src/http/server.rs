//! The accept loop: hyper's HTTP/1 connection driver with the bounds a
//! public webhook endpoint needs, which `axum::serve` does not set: a cap on
//! open connections (and on those of any one peer address: beyond it a new
//! connection is closed at once), a deadline for a request's header (slow-header clients
//! and idle keep-alive connections are closed), and caps on header size and
//! count. Bodies are bounded by the router (`DefaultBodyLimit`) and handler
//! time by its timeout layer.
//!
//! Shutdown: when `shutdown` fires the loop stops accepting, every
//! connection finishes the request it is serving and closes, and `serve`
//! returns once they all have.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::http::config::HttpConfig;

/// How long to back off when `accept` fails (out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `app` on `listener` until `shutdown`, within `limits`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &HttpConfig,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    // No one address may take every connection slot.
    let per_peer = super::guard::PeerSlots::new(limits.max_connections_per_peer);
    let connections = TaskTracker::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(Duration::from_secs(limits.header_read_timeout_secs))
        .max_header_size(limits.max_header_bytes)
        .max_headers(limits.max_headers)
        // Reads are buffered up to the header cap (hyper needs at least 8 KiB).
        .max_buf_size(limits.max_header_bytes.max(8192));
    loop {
        // A permit first: at the cap, new clients wait in the kernel's
        // backlog instead of taking memory here.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let Some(peer_slot) = per_peer.take(peer.ip()) else {
            tracing::debug!(peer = %peer.ip(), "too many connections from one address; closed");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone().map_request(
            move |req: hyper::Request<Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(super::guard::PeerAddr(peer));
                req
            },
        ));
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let stop = shutdown.clone();
        connections.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(peer_slot);
            drop(permit);
        });
    }
    connections.close();
    connections.wait().await;
}
