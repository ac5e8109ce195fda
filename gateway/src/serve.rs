//! `gateway serve`: wires the store, keys, HTTP server and background tasks
//! together and runs until SIGINT/SIGTERM.
//!
//! Shutdown order matters for "lose nothing": stop accepting connections and
//! let in-flight requests finish (their commits complete), stop the delivery
//! worker after its in-flight sends record their outcome, then let the writer
//! thread drain its queue and exit. Whatever was queued but not yet sent stays
//! in the database and goes out after the next start.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::core::error::{Error, Result};
use crate::core::metrics::Metrics;
use crate::envelope::keys::Keyring;
use crate::state::AppState;
use crate::store::Store;

/// How often expired bodies are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// How often the WAL is checkpointed and truncated after erasures.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);

/// Runs the service until a shutdown signal.
pub async fn run(config: Config) -> Result<()> {
    let shutdown = CancellationToken::new();
    let signal_token = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested; finishing in-flight work");
        signal_token.cancel();
    });
    run_until(config, shutdown).await
}

/// Runs the service until `shutdown` is cancelled.
pub async fn run_until(config: Config, shutdown: CancellationToken) -> Result<()> {
    crate::core::fs::create_private_dir(&config.data_dir)?;
    let keys = Keyring::open_or_create(&config.data_dir)?;
    let metrics = Arc::new(Metrics::new());
    let (store, writer_thread) = Store::open(
        &config.data_dir,
        config.store.synchronous,
        config.store.max_batch,
        config.store.read_connections,
        metrics.clone(),
    )?;
    if let Some(mb) = config.store.max_database_mb {
        store.limit_size(mb).await?;
    }
    let listen = config.listen;
    let (dispatch, dispatch_rx) = crate::delivery::Dispatch::new();
    let state = AppState::new(config, store, keys, metrics, dispatch)?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| Error::io("bind", listen.to_string(), e))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::io("bind", listen.to_string(), e))?;
    tracing::info!(
        addr = %local,
        data_dir = %state.config.data_dir.display(),
        edge_kid = %state.current_edge_key()?.kid,
        generic = state.config.generic.is_some(),
        private_side = state.config.private_side.webhook_url.is_some(),
        "listening"
    );

    let worker = tokio::spawn(crate::delivery::run(
        state.clone(),
        dispatch_rx,
        shutdown.clone(),
    ));
    let sweeper = tokio::spawn(sweep(state.clone(), shutdown.clone()));
    let modems = crate::modem::spawn_all(&state, shutdown.clone());
    let smpp = crate::smpp::spawn_all(&state, shutdown.clone());
    let relays = tokio::spawn(crate::carriers::register_webhooks(
        state.clone(),
        shutdown.clone(),
    ));
    let rcs_fallback = tokio::spawn(crate::rcs::fallback::run(state.clone(), shutdown.clone()));

    let app = crate::http::app(state.clone());
    crate::http::server::serve(listener, app, &state.config.http, shutdown.clone()).await;
    shutdown.cancel();
    let _ = worker.await;
    let _ = sweeper.await;
    let _ = modems.await;
    let _ = relays.await;
    let _ = rcs_fallback.await;
    let _ = smpp.await;
    // Every task has stopped: the writer commits what is queued and stops,
    // whether or not some handle to the store is still alive.
    state.store.close();
    drop(state);
    let _ = tokio::task::spawn_blocking(move || writer_thread.join()).await;
    tracing::info!("stopped");
    Ok(())
}

async fn sweep(state: AppState, shutdown: CancellationToken) {
    let mut last_checkpoint = tokio::time::Instant::now();
    let mut erased_since_checkpoint = 0usize;
    let body_retention = (state.config.store.body_retention_secs as i64).saturating_mul(1000);
    let metadata_retention =
        (state.config.store.metadata_retention_secs as i64).saturating_mul(1000);
    loop {
        tokio::select! {
            () = tokio::time::sleep(SWEEP_EVERY) => {}
            () = shutdown.cancelled() => break,
        }
        let now = crate::core::clock::now_ms();
        match state
            .store
            .sweep(now, now - body_retention, now - metadata_retention)
            .await
        {
            Ok(swept) if swept.touched == 0 => {}
            Ok(swept) => {
                // Messages that expired in the queue: their `expired` is a
                // status like any other (metrics, receipts).
                for (id, applied) in &swept.expired {
                    state.status.announce(id, applied);
                }
                let n = swept.touched;
                erased_since_checkpoint += n;
                tracing::debug!(erased = n, "expired bodies erased");
            }
            Err(e) => tracing::error!(error = %e, "erasing expired bodies failed"),
        }
        state
            .metrics
            .erasures_pending
            .set(erased_since_checkpoint as i64);
        if erased_since_checkpoint > 0 && last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
            // Erased pages may still sit in the WAL; fold it into the main
            // file (where secure_delete zeroed them) and truncate it. A
            // checkpoint a reader kept from completing is tried again on
            // the next sweep: the erasures stay pending until one completes.
            match state.store.checkpoint().await {
                Ok(true) => {
                    erased_since_checkpoint = 0;
                    state.metrics.erasures_pending.set(0);
                }
                Ok(false) => {
                    tracing::debug!(
                        pending = erased_since_checkpoint,
                        "WAL checkpoint busy (a reader is open); retrying"
                    )
                }
                Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
            }
            last_checkpoint = tokio::time::Instant::now();
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
