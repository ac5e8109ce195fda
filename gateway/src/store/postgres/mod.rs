//! The PostgreSQL backend: several gateway nodes on one database.
//!
//! The same named operations as the SQLite store, behind the same `Store`
//! handle (see `Backend` in the parent module); the SQL of this backend
//! lives here only. Operations not yet ported answer with an error naming
//! the operation (`not_ported`), never silently with SQLite's file.
//!
//! What makes several nodes safe: queue entries are claimed with `FOR
//! UPDATE SKIP LOCKED` and a lease (owner node, until); status changes
//! lock the message row; migrations and the retention sweep run under
//! advisory locks, so two nodes never run them at once.

mod api_keys;
mod backup;
mod batcher;
mod cached;
mod callbacks;
pub mod cluster;
mod edge_key;
mod fallback;
mod lease;
mod listing;
mod messages;
pub mod notify;
mod parts;
mod pseudonymise;
mod queue;
mod reads;
mod review;
mod review_reads;
mod schema;
mod smpp;
mod trace;

pub use backup::{PgSnapshot, TableDump};
pub use review_reads::PgReview;
pub use smpp::PgSmppClients;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use crate::core::error::{Error, Result};
use crate::store::config::{STORE_SECRET_ENV, StoreConfig};

/// How long connecting to the server may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long an operation waits for a free pooled connection.
const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// One node's handle on the shared database.
pub struct PgStore {
    pool: Pool,
    /// This process's name in queue leases (unique per start: a restarted
    /// node takes its old leases over like any other node, after they end).
    node: String,
    /// How long a claim holds a queue entry (ms).
    lease_ms: i64,
    /// Most queue entries one poll claims: what the node can start at once
    /// (`delivery.concurrency`), so no claimed entry waits for a send slot
    /// longer than one send, and a lease never runs out under a backlog.
    claim_max: std::sync::atomic::AtomicUsize,
    /// The connection settings, for the listening connection (`notify`).
    config: tokio_postgres::Config,
    /// What other nodes changed, per cached kind (`notify`).
    generations: std::sync::Arc<notify::Generations>,
    /// Stops the listening connection at `close`.
    stop: tokio_util::sync::CancellationToken,
    /// Physical channels and the ones this node holds (`cluster.rs`).
    leases: cluster::Leases,
    /// Group commit of every message's writes (`batcher.rs`), started on
    /// first use in the runtime that uses it.
    batcher: std::sync::OnceLock<batcher::Batcher>,
    /// `[store] max_batch`: 1 runs each write in its own transaction.
    max_batch: usize,
}

/// The error of a PostgreSQL operation, in words: the SQLSTATE and the
/// server's message, never its DETAIL (which can quote row values). A full
/// disk on the server (53100) is the same retryable `StorageFull` as a
/// full SQLite file: the API answers 503 `storage_full`, as on SQLite.
pub(crate) fn pg_error(e: tokio_postgres::Error) -> Error {
    if e.code() == Some(&tokio_postgres::error::SqlState::DISK_FULL) {
        return Error::StorageFull;
    }
    match e.as_db_error() {
        Some(db) => Error::Store(format!("postgres {}: {}", db.code().code(), db.message())),
        None => Error::Store(format!("postgres: {e}")),
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> Error {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg_error(e),
        other => Error::Store(format!("postgres pool: {other}")),
    }
}

/// The error of an operation this backend does not have yet.
pub(crate) fn not_ported(operation: &str) -> Error {
    Error::Store(format!(
        "store operation `{operation}` is not yet available on the postgres backend"
    ))
}

impl PgStore {
    /// Connects (the password from `secret_env` / `secret_file`), migrates
    /// under the cluster's migration lock, and answers a first query.
    pub async fn connect(cfg: &StoreConfig) -> Result<Self> {
        let this = Self::open(cfg)?;
        let mut client = this.client().await?;
        schema::migrate(&mut client).await?;
        drop(client);
        Ok(this)
    }

    /// The pool, not yet connected nor migrated (`connect`; `restore`
    /// creates the schema itself).
    fn open(cfg: &StoreConfig) -> Result<Self> {
        let url = cfg.url.as_deref().ok_or_else(|| {
            Error::Config("store.url is required with backend = \"postgres\"".into())
        })?;
        let mut pg: tokio_postgres::Config = url
            .parse()
            .map_err(|_| Error::Config("store.url is not a valid PostgreSQL URL".into()))?;
        if let Some(secret) = cfg.password.resolve(STORE_SECRET_ENV)? {
            pg.password(crate::core::secrets::text_secret(secret, "store password")?);
        }
        pg.application_name("gateway");
        // An unreachable server fails the operation, not hangs it for the
        // operating system's TCP timeout.
        pg.connect_timeout(CONNECT_TIMEOUT);
        // A silently dropped listening connection is noticed in about a
        // minute, not the operating system's two hours.
        pg.keepalives_idle(std::time::Duration::from_secs(30));
        let manager = Manager::from_config(
            pg.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(cfg.pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .wait_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| Error::Store(format!("postgres pool: {e}")))?;
        let this = Self {
            pool,
            node: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            lease_ms: i64::try_from(cfg.lease_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            claim_max: std::sync::atomic::AtomicUsize::new(usize::MAX),
            config: pg,
            generations: Default::default(),
            stop: Default::default(),
            leases: cluster::Leases::default(),
            batcher: std::sync::OnceLock::new(),
            max_batch: cfg.max_batch,
        };
        Ok(this)
    }

    /// A pooled connection.
    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_error)
    }

    /// The batcher, started on first use; `None` with `max_batch = 1`
    /// (each write in its own transaction, on its caller's connection).
    fn batcher(&self) -> Option<&batcher::Batcher> {
        (self.max_batch > 1).then(|| {
            self.batcher.get_or_init(|| {
                batcher::Batcher::start(self.pool.clone(), self.max_batch, self.stop.clone())
            })
        })
    }

    /// Claims at most `n` queue entries per poll (the node's send slots).
    pub fn cap_claims(&self, n: usize) {
        self.claim_max
            .store(n.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// This node's lease owner name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether the database answers (health).
    pub async fn ping(&self) -> Result<()> {
        self.client()
            .await?
            .query_one("SELECT 1", &[])
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    /// Closes the pool and the listening connection (shutdown); later
    /// operations fail.
    pub fn close(&self) {
        self.stop.cancel();
        self.pool.close();
    }

    /// Starts listening for other nodes' cache notices (a serving node;
    /// one-shot commands do not need it). Returns once listening.
    pub async fn listen(&self) -> Result<()> {
        notify::start(
            self.config.clone(),
            self.generations.clone(),
            self.stop.clone(),
        )
        .await
    }

    /// The generation of `kind`'s cache: it changes whenever any node
    /// changed what that cache holds (or notices may have been lost).
    pub fn generation(&self, kind: notify::CacheKind) -> u64 {
        self.generations.get(kind)
    }

    /// Runs `f` to completion from synchronous code inside the service's
    /// (multi-threaded) runtime: the few operations the service reads once
    /// at start without `.await`.
    pub(crate) fn block_on<F, R>(&self, f: F) -> Result<R>
    where
        F: std::future::Future<Output = Result<R>>,
    {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::Store("the postgres backend needs a tokio runtime".into()))?;
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return Err(Error::Store(
                "the postgres backend needs the multi-threaded runtime for this operation".into(),
            ));
        }
        tokio::task::block_in_place(|| handle.block_on(f))
    }
}
