//! The durable store: SQLite in WAL mode, one group-committing writer thread,
//! and a small pool of read connections used from `spawn_blocking` so rusqlite
//! never runs on the async worker threads.
//!
//! With `[store] backend = "postgres"` the same `Store` runs its operations
//! on PostgreSQL instead (`postgres/`, several nodes on one database); the
//! operations not ported yet refuse there, naming themselves.
//!
//! Only the envelope header (metadata) is stored in clear columns; the sealed
//! body is the one place content lives, and it is erased (with SQLite's
//! `secure_delete`) when the message expires.

pub mod activity;
pub mod backup;
pub mod callbacks;
mod checkpointer;
pub mod cluster;
pub mod config;
pub mod credentials;
mod db;
pub mod fallback;
pub mod health;
pub mod listing;
pub mod messages;
pub mod optout;
pub mod outcomes;
pub mod parts;
pub mod postgres;
pub mod privacy;
pub mod pseudonymise;
pub mod review;
pub mod review_ops;
mod schema;
pub mod smpp;
pub mod spam;
pub mod status;
mod syncer;
mod tenancy;
pub mod undo;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};

pub use credentials::{ApiKey, ApiKeyInfo, NewApiKey, hash_token, new_token};
pub use db::{Db, SenderActivity, SenderMessage, TraceRow};
pub use messages::{
    Applied, Idempotency, InsertOutcome, MessageEvent, MessageView, NewMessage, PartReport,
    QueueItem, StatusReport, Target,
};
pub use postgres::notify::CacheKind;
pub use status::{MessageStatus, Tally, Transition, Verdict};
use writer::Writer;

use crate::core::error::{Error, Result};
use crate::core::metrics::Metrics;
use crate::store::config::Synchronous;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "gateway.db";

/// The store's errors, as the crate's one error type: the cause in words
/// (SQLite's message names the table or constraint, never a value).
impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        if is_disk_full(&e) {
            return Error::StorageFull;
        }
        Error::Store(e.to_string())
    }
}

/// SQLITE_FULL: the disk (or the file-size limit) stopped the database
/// from growing; the write was not made and may succeed later.
pub(crate) fn is_disk_full(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
}

/// How long a connection waits for a lock another one holds.
pub(crate) const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Opens a connection with the pragmas every connection needs.
pub(crate) fn open_connection(path: &Path, sync: Synchronous) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(
        None,
        "synchronous",
        match sync {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        },
    )?;
    // Erased bodies are overwritten with zeros, not just unlinked from the b-tree.
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// Opens the database for a one-shot command (CLI), migrating it if needed.
pub fn open_for_cli(data_dir: &Path) -> Result<Db> {
    crate::core::fs::create_private_dir(data_dir)?;
    let path = data_dir.join(DB_FILE);
    let mut conn = open_connection(&path, Synchronous::Full)?;
    schema::migrate(&mut conn)?;
    restrict_db_files(&path)?;
    Ok(Db::new(conn))
}

fn restrict_db_files(path: &Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        crate::core::fs::restrict_file(Path::new(&p))?;
    }
    Ok(())
}

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    privacy: Arc<Privacy>,
}

/// Which database the named operations run on. Each operation ported to
/// PostgreSQL dispatches at its top (`if let Some(pg) = self.pg()`); the
/// others reach `write` / `read` below, which refuse on PostgreSQL with an
/// error naming the operation.
#[derive(Clone)]
enum Backend {
    Sqlite(Sqlite),
    Postgres(Arc<postgres::PgStore>),
}

/// The SQLite store's handles.
#[derive(Clone)]
struct Sqlite {
    path: Arc<PathBuf>,
    sync: Synchronous,
    readers: Arc<Mutex<Vec<Connection>>>,
    max_readers: usize,
    writer: Writer,
}

/// The store's part of `[privacy]`, and what it tells the sweep.
#[derive(Debug, Default)]
struct Privacy {
    /// How long an acknowledged body is kept (0: erased in the commit
    /// that records the acknowledgement).
    keep_after_delivery_ms: i64,
    /// Bodies erased on acknowledgement that a checkpoint has not yet
    /// truncated out of the WAL.
    erased: std::sync::atomic::AtomicUsize,
}

/// Joins the writer thread at shutdown (SQLite; PostgreSQL has none).
pub struct WriterThread(Option<std::thread::JoinHandle<()>>);

impl WriterThread {
    /// Waits for the writer to finish the writes already queued.
    pub fn join(self) {
        if let Some(h) = self.0 {
            let _ = h.join();
        }
    }
}

/// The operation a closure passed to `write` / `read` belongs to, from its
/// type's name (`…::smpp::<impl …Store>::smpp_bind::{{closure}}` names
/// `smpp_bind`): the error of an operation not yet ported says which.
fn operation_of<F>() -> &'static str {
    std::any::type_name::<F>()
        .split("::")
        .filter(|seg| !seg.starts_with('{') && !seg.starts_with('<') && !seg.ends_with('>'))
        .last()
        .unwrap_or("unknown")
}

impl Store {
    /// Opens (creating and migrating) the database in `data_dir`.
    pub fn open(
        data_dir: &Path,
        sync: Synchronous,
        max_batch: usize,
        max_readers: usize,
        metrics: Arc<Metrics>,
    ) -> Result<(Self, WriterThread)> {
        let path = data_dir.join(DB_FILE);
        let mut conn = open_connection(&path, sync)?;
        schema::migrate(&mut conn)?;
        restrict_db_files(&path)?;
        // The writer's connection leaves checkpoints to their own thread
        // (see `checkpointer`), which stops with the writer.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpointer = checkpointer::Checkpointer::start(&path, sync)?;
        let flush: Box<dyn syncer::Flush> = match sync {
            Synchronous::Full => Box::new(syncer::WalFile::of(&path)),
            Synchronous::Normal => Box::new(syncer::NoSync),
        };
        let (writer, handle) = Writer::start(conn, max_batch, metrics, checkpointer, flush)?;
        Ok((
            Self {
                backend: Backend::Sqlite(Sqlite {
                    path: Arc::new(path),
                    sync,
                    readers: Arc::new(Mutex::new(Vec::new())),
                    max_readers: max_readers.max(1),
                    writer,
                }),
                privacy: Arc::default(),
            },
            WriterThread(Some(handle)),
        ))
    }

    /// Connects to the PostgreSQL database of `[store]` (migrating it under
    /// the cluster's migration lock).
    pub async fn open_postgres(cfg: &config::StoreConfig) -> Result<(Self, WriterThread)> {
        let pg = postgres::PgStore::connect(cfg).await?;
        Ok((
            Self {
                backend: Backend::Postgres(Arc::new(pg)),
                privacy: Arc::default(),
            },
            WriterThread(None),
        ))
    }

    /// Connects like [`Store::open_postgres`] and listens for other nodes'
    /// cache notices (`gateway serve`): see [`Store::cache_generation`].
    pub async fn open_postgres_listening(
        cfg: &config::StoreConfig,
    ) -> Result<(Self, WriterThread)> {
        let (store, writer) = Self::open_postgres(cfg).await?;
        if let Some(pg) = store.pg() {
            pg.listen().await?;
        }
        Ok((store, writer))
    }

    /// The generation of a cached kind: a cache loaded under another
    /// generation is stale. On PostgreSQL it changes when any node changed
    /// that kind (LISTEN/NOTIFY); on SQLite (one process) it stays 0 and
    /// the caches' own expiry covers the CLI's changes.
    pub fn cache_generation(&self, kind: CacheKind) -> u64 {
        self.pg().map_or(0, |pg| pg.generation(kind))
    }

    /// The PostgreSQL backend, when the store runs on it.
    pub(crate) fn pg(&self) -> Option<&postgres::PgStore> {
        match &self.backend {
            Backend::Postgres(pg) => Some(pg),
            Backend::Sqlite(_) => None,
        }
    }

    /// The review operations on this store's PostgreSQL database, for a
    /// synchronous caller off the runtime's threads (the console's
    /// blocking task); `None` on SQLite (the caller opens a `Db`).
    pub fn pg_review(
        &self,
        runtime: tokio::runtime::Handle,
        undo_window_secs: u64,
    ) -> Option<postgres::PgReview> {
        match &self.backend {
            Backend::Postgres(pg) => Some(postgres::PgReview::new(
                pg.clone(),
                runtime,
                undo_window_secs,
            )),
            Backend::Sqlite(_) => None,
        }
    }

    /// On PostgreSQL, claims at most `n` queue entries per poll (the
    /// delivery worker's concurrency); nothing on SQLite (one node).
    pub fn cap_claims(&self, n: usize) {
        if let Some(pg) = self.pg() {
            pg.cap_claims(n);
        }
    }

    /// On PostgreSQL, ends this node's claims (shutdown, after the last
    /// send recorded its outcome) so other nodes need not wait out the
    /// lease; nothing on SQLite.
    pub async fn release_leases(&self) -> Result<u64> {
        match self.pg() {
            Some(pg) => pg.release_leases().await,
            None => Ok(0),
        }
    }

    /// On PostgreSQL, how often the delivery worker renews the leases of
    /// the entries it still holds (`renew_leases`); `None` on SQLite (one
    /// node, no leases).
    pub fn lease_renewal(&self) -> Option<std::time::Duration> {
        self.pg().map(|pg| pg.renew_every())
    }

    /// On PostgreSQL, extends this node's lease on the queue entries `ids`
    /// (those it is still sending or about to send); nothing on SQLite.
    pub async fn renew_leases(&self, ids: Vec<String>, now: i64) -> Result<u64> {
        match self.pg() {
            Some(pg) => pg.renew_leases(ids, now).await,
            None => Ok(0),
        }
    }

    /// On PostgreSQL, refuses a node whose edge key is not the cluster's
    /// (fingerprints; see `postgres/edge_key.rs`); nothing on SQLite.
    pub async fn check_edge_key(&self, current: &str, known: &[String]) -> Result<()> {
        match self.pg() {
            Some(pg) => pg.check_edge_key(current, known).await,
            None => Ok(()),
        }
    }

    /// Whether the store runs on PostgreSQL (SQLite-only upkeep, such as
    /// WAL checkpoints, is skipped then).
    pub fn is_postgres(&self) -> bool {
        self.pg().is_some()
    }

    /// The SQLite handles, or the error of an operation not yet ported.
    fn sqlite<F>(&self) -> Result<&Sqlite> {
        match &self.backend {
            Backend::Sqlite(s) => Ok(s),
            Backend::Postgres(_) => Err(postgres::not_ported(operation_of::<F>())),
        }
    }

    /// Keeps an acknowledged message's sealed body `secs` seconds (0: it
    /// is erased in the commit that records the acknowledgement). Set
    /// before the handle is cloned.
    pub fn keep_after_delivery(mut self, secs: u64) -> Self {
        self.privacy = Arc::new(Privacy {
            keep_after_delivery_ms: i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            erased: Default::default(),
        });
        self
    }

    /// Runs `work` in the next group commit and returns its result once the
    /// commit is durable. Only the store's named operations use it.
    async fn write<F, R>(&self, work: F) -> Result<R>
    where
        F: FnMut(&rusqlite::Transaction<'_>) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        self.sqlite::<F>()?.writer.write(work).await
    }

    /// Runs a read query on a pooled connection off the async threads.
    async fn read<F, R>(&self, f: F) -> Result<R>
    where
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.read_blocking(f))
            .await
            .map_err(|e| Error::Store(format!("read task failed: {e}")))?
    }

    /// Runs a read query on the calling (blocking) thread.
    fn read_blocking<F, R>(&self, f: F) -> Result<R>
    where
        F: FnOnce(&Connection) -> Result<R>,
    {
        let s = self.sqlite::<F>()?;
        let pooled = s.readers.lock().ok().and_then(|mut p| p.pop());
        let conn = match pooled {
            Some(c) => c,
            None => open_connection(&s.path, s.sync)?,
        };
        let out = f(&conn);
        if let Ok(mut p) = s.readers.lock() {
            if p.len() < s.max_readers {
                p.push(conn);
            }
        }
        out
    }

    /// Stops the writer thread once the writes already queued are
    /// committed (shutdown); later writes fail with `StoreClosed`.
    pub fn close(&self) {
        match &self.backend {
            Backend::Sqlite(s) => s.writer.close(),
            Backend::Postgres(pg) => pg.close(),
        }
    }

    /// Caps the database file at `mb` MiB: past it, writes fail as on a
    /// full disk (SQLITE_FULL, answered `storage_full`).
    pub async fn limit_size(&self, mb: u64) -> Result<()> {
        self.write(move |tx| {
            let page: i64 = tx.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            let pages = (mb.saturating_mul(1 << 20) / page.max(512) as u64).max(1);
            tx.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    /// Checkpoints the WAL into the main file and truncates it, so erased
    /// bodies do not linger in the WAL. Returns whether it completed: with
    /// a reader open (a backup, `gateway review`) SQLite answers busy and
    /// leaves frames in the WAL, and the caller must try again. Runs on the
    /// writer's thread between two batches (see `Writer::truncate_wal`).
    pub async fn checkpoint(&self) -> Result<bool> {
        match &self.backend {
            Backend::Sqlite(s) => s.writer.truncate_wal().await,
            Backend::Postgres(_) => Err(postgres::not_ported("checkpoint")),
        }
    }
}
