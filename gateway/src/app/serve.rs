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

use super::config::Config;
use crate::core::error::{Error, Result};
use crate::core::metrics::Metrics;
use crate::core::pseudonym::Pseudonyms;
use crate::envelope::keys::Keyring;
use crate::http::ApiState;
use crate::pipeline::Pipeline;
use crate::store::Store;
use crate::store::config::BackendKind;

/// How often expired bodies are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// How often the WAL is checkpointed and truncated after erasures.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);

/// How often numbers older than `pseudonymise_after_secs` are looked for
/// (the issue asks for at least once a minute).
const PSEUDONYMISE_EVERY: Duration = Duration::from_secs(5);

/// What the sweep needs of `[privacy]`.
struct PrivacySweep {
    /// A transit message unfinished this long after acceptance was lost.
    transit_stale_ms: i64,
    /// Numbers in metadata older than this are pseudonymised.
    pseudonymise_after_ms: i64,
    /// The deployment's pseudonym key.
    pseudonyms: Arc<Pseudonyms>,
}

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
    // Made before the service logs that it listens: whoever then copies
    // this node's keys to another node of a cluster finds this one whole.
    let pseudonyms = Arc::new(Pseudonyms::open_or_create(&config.data_dir)?);
    let metrics = Arc::new(Metrics::new());
    let (store, writer_thread) = match config.store.backend {
        BackendKind::Sqlite => Store::open(
            &config.data_dir,
            config.store.synchronous,
            config.store.max_batch,
            config.store.read_connections,
            metrics.clone(),
        )?,
        BackendKind::Postgres => Store::open_postgres_listening(&config.store).await?,
    };
    let (edge_key, edge_keys) = crate::envelope::share::fingerprints(&keys);
    store.check_edge_key(&edge_key, &edge_keys).await?;
    let store = store.keep_after_delivery(config.privacy.keep_after_delivery_secs);
    store.cap_claims(config.delivery.concurrency);
    if !store.is_postgres() && !store.secure_delete_on().await? {
        return Err(Error::Config(
            "SQLite does not zero freed content (PRAGMA secure_delete); erased bodies would stay in the file".into(),
        ));
    }
    if let Some(mb) = config.store.max_database_mb {
        store.limit_size(mb).await?;
    }
    let service = super::registry::build(&config, store, keys, metrics)?;
    let pipeline = service.pipeline.clone();
    // Number metadata loads lazily: load it before taking requests.
    let region = pipeline.region;
    let _ =
        tokio::task::spawn_blocking(move || crate::core::numbers::warm_up(region, "+14155550100"))
            .await;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::io("bind", config.listen.to_string(), e))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::io("bind", config.listen.to_string(), e))?;
    let admin = match config.admin.enabled {
        true => Some(
            TcpListener::bind(config.admin.listen)
                .await
                .map_err(|e| Error::io("bind", config.admin.listen.to_string(), e))?,
        ),
        false => None,
    };
    let admin_addr = admin
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(
        addr = %local,
        admin = %admin_addr,
        tenants = config.tenants.len(),
        data_dir = %config.data_dir.display(),
        edge_kid = %pipeline.keys.current()?.kid,
        generic = config.generic.is_some(),
        private_side = config.private_side.webhook_url.is_some(),
        "listening"
    );

    // Tasks first, then the listener; each task has the handles it needs.
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(crate::delivery::run(
        service.worker,
        service.dispatch,
        shutdown.clone(),
    ));
    // A transit message still unfinished this long after acceptance was
    // lost with a process (its carrier task answers by its deadline).
    let transit_stale_ms =
        ((config.privacy.transit_deadline_secs + config.delivery.request_timeout_secs + 5) as i64)
            .saturating_mul(1000);
    let privacy = PrivacySweep {
        transit_stale_ms,
        pseudonymise_after_ms: (config.privacy.pseudonymise_after_secs as i64).saturating_mul(1000),
        pseudonyms,
    };
    if let Some(cb) = service.callbacks {
        tasks.spawn(crate::delivery::callbacks::run(cb, shutdown.clone()));
    }
    tasks.spawn(sweep(
        pipeline.clone(),
        config.store.clone(),
        privacy,
        shutdown.clone(),
    ));
    // A cluster (PostgreSQL): the spam gate's shared observations, and
    // the heartbeat with the physical channels' leases.
    let mut health = service.health;
    if pipeline.store.is_postgres() {
        let cluster = Arc::new(super::cluster::ClusterHealth::default());
        health.push(("cluster", cluster.clone()));
        tasks.spawn(crate::pipeline::spam_share::run(
            pipeline.clone(),
            shutdown.clone(),
        ));
        tasks.spawn(super::cluster::heartbeat(
            pipeline.store.clone(),
            config.store.lease_secs,
            cluster,
            shutdown.clone(),
        ));
    }
    for task in service.tasks {
        tasks.spawn(task(pipeline.clone(), shutdown.clone()));
    }
    let routers = service
        .routers
        .into_iter()
        .map(|make| make(pipeline.clone()))
        .collect();
    let api = Arc::new(
        ApiState::new(pipeline.clone(), health, config.data_dir.clone())
            .with_undo_window(config.review.undo_window_secs),
    );
    let app = crate::http::app(api.clone(), routers, &config.http);
    let public = crate::http::server::serve(listener, app, &config.http, shutdown.clone());
    match admin {
        Some(l) => {
            let plane = crate::http::admin::router(api);
            let admin = crate::http::server::serve(l, plane, &config.http, shutdown.clone());
            tokio::join!(public, admin);
        }
        None => public.await,
    }

    // The listener has stopped (in-flight requests committed); every task
    // stops after the token, the delivery worker once its sends recorded
    // their outcome.
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}
    // PostgreSQL: what this node claimed and did not start goes back to
    // the cluster now, not after the lease.
    match pipeline.store.release_leases().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(released = n, "claims handed back to the cluster"),
        Err(e) => {
            tracing::warn!(error = %e, "handing back claims failed; they end with their lease")
        }
    }
    // The writer commits what is queued and stops, whether or not some
    // handle to the store is still alive.
    pipeline.store.close();
    drop(pipeline);
    let _ = tokio::task::spawn_blocking(move || writer_thread.join()).await;
    tracing::info!("stopped");
    Ok(())
}

/// Erases expired bodies, applies the retention policy and checkpoints the
/// WAL after erasures, until `shutdown`.
async fn sweep(
    p: Arc<Pipeline>,
    cfg: crate::store::config::StoreConfig,
    privacy: PrivacySweep,
    shutdown: CancellationToken,
) {
    let mut last_pseudonymised = tokio::time::Instant::now() - PSEUDONYMISE_EVERY;
    let mut last_checkpoint = tokio::time::Instant::now();
    let mut erased_since_checkpoint = 0usize;
    let body_retention = (cfg.body_retention_secs as i64).saturating_mul(1000);
    let metadata_retention = (cfg.metadata_retention_secs as i64).saturating_mul(1000);
    loop {
        tokio::select! {
            () = tokio::time::sleep(SWEEP_EVERY) => {}
            () = shutdown.cancelled() => break,
        }
        let now = crate::core::clock::now_ms();
        match p
            .store
            .sweep(now, now - body_retention, now - metadata_retention)
            .await
        {
            Ok(swept) if swept.touched == 0 => {}
            Ok(swept) => {
                // Messages that expired in the queue: their `expired` is a
                // status like any other (metrics, receipts).
                for (id, applied) in &swept.expired {
                    p.status.announce(id, applied);
                }
                erased_since_checkpoint += swept.touched;
                tracing::debug!(erased = swept.touched, "expired bodies erased");
            }
            Err(e) => tracing::error!(error = %e, "erasing expired bodies failed"),
        }
        // Bodies erased on acknowledgement (in the commit that recorded it),
        // and those whose kept time after it ran out.
        erased_since_checkpoint += p.store.take_erased();
        match p
            .store
            .fail_stale_transit(now - privacy.transit_stale_ms, now)
            .await
        {
            Ok(failed) => {
                for (id, applied) in &failed {
                    p.status.announce(id, applied);
                }
            }
            Err(e) => tracing::error!(error = %e, "failing lost transit messages failed"),
        }
        // Review drops whose undo window has passed: final, body erased.
        match p.store.finalize_drops(now).await {
            Ok(n) => erased_since_checkpoint += n,
            Err(e) => tracing::error!(error = %e, "finalizing review drops failed"),
        }
        match p.store.erase_acknowledged(now).await {
            Ok(n) => erased_since_checkpoint += n,
            Err(e) => tracing::error!(error = %e, "erasing acknowledged bodies failed"),
        }
        if last_pseudonymised.elapsed() >= PSEUDONYMISE_EVERY {
            last_pseudonymised = tokio::time::Instant::now();
            let cutoff = now - privacy.pseudonymise_after_ms;
            match p
                .store
                .pseudonymise(cutoff, privacy.pseudonyms.clone())
                .await
            {
                Ok(done) => {
                    if done.touched() > 0 {
                        tracing::debug!(?done, "numbers pseudonymised");
                    }
                    // Old rows with the numbers may sit in the WAL: checkpoint.
                    erased_since_checkpoint += done.touched();
                }
                Err(e) => tracing::error!(error = %e, "pseudonymising numbers failed"),
            }
        }
        p.metrics
            .erasures_pending
            .set(erased_since_checkpoint as i64);
        // PostgreSQL: no WAL of ours to checkpoint.
        if !p.store.is_postgres()
            && erased_since_checkpoint > 0
            && last_checkpoint.elapsed() >= CHECKPOINT_EVERY
        {
            // Erased pages may still sit in the WAL; fold it into the main
            // file (where secure_delete zeroed them) and truncate it. A
            // checkpoint a reader kept from completing is tried again on
            // the next sweep: the erasures stay pending until one completes.
            match p.store.checkpoint().await {
                Ok(true) => {
                    erased_since_checkpoint = 0;
                    p.metrics.erasures_pending.set(0);
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
