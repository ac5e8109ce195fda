//! The WAL checkpoint off the writer thread.
//!
//! By default SQLite checkpoints inside the COMMIT that takes the WAL past
//! 1000 pages: the committing connection copies those pages into the
//! database file and fsyncs it before COMMIT returns. On the group-commit
//! writer that meant every few seconds under load one commit took the
//! copy and two more fsyncs, and every request waiting on it stalled (the
//! p99 latency was ten times the disk's p99 fsync). Here the writer's
//! connection does not checkpoint by itself; this thread runs a PASSIVE
//! checkpoint on its own connection, which copies what no reader still
//! needs without taking the write lock, so the writer keeps committing
//! while it runs. The WAL is reused from its start once a checkpoint has
//! copied all of it, so it stays about the size of a checkpoint period's
//! writes.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::config::Synchronous;
use crate::core::error::{Error, Result};

/// How often the WAL is checkpointed.
const PERIOD: Duration = Duration::from_millis(200);

/// Stops the checkpoint thread when dropped (with the writer thread).
pub(super) struct Checkpointer {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` every [`PERIOD`].
    pub(super) fn start(path: &Path, sync: Synchronous) -> Result<Self> {
        let conn = super::open_connection(path, sync)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(PERIOD);
                    // Busy (a TRUNCATE checkpoint or a backup holds it) or
                    // failed: the next period tries again.
                    if let Err(e) =
                        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0))
                    {
                        tracing::debug!(error = %e, "WAL checkpoint failed; retried");
                    }
                }
            })
            .map_err(|e| Error::io("spawn", "store-checkpoint", e))?;
        Ok(Self {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
