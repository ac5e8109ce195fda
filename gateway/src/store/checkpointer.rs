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
//!
//! Under a steady stream of commits that last step never happened: a
//! PASSIVE checkpoint copies the frames that were in the WAL when it
//! began, and by the time it ends the writer has appended more, so the WAL
//! was never wholly copied, never reused, and grew by ~45 MB/s at 4,500
//! single sends a second until the privacy sweep's TRUNCATE checkpoint
//! (`Store::checkpoint`) cut it back every 2 s. That TRUNCATE holds the
//! write lock while it copies and drops ~90 MB (40-50 ms measured, most
//! of it the `ftruncate`: page-cache teardown and the disk's discard), and
//! the writer, stalled in SQLite's busy handler behind it, held every
//! request for that long: the 16-connection p99 tail of 40-130 ms. So after
//! each pass this thread asks the writer ([`Checkpointer::catch_up`]) to
//! copy, on its own connection between two batches, the frames committed
//! while the pass ran (a batch or two); the next transaction then restarts
//! the WAL from its start, and the file stays at about one period's writes.

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
    /// Set after every pass that found frames; the writer clears it.
    catch_up: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` every [`PERIOD`].
    pub(super) fn start(path: &Path, sync: Synchronous) -> Result<Self> {
        let conn = super::open_connection(path, sync)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let catch_up = Arc::new(AtomicBool::new(false));
        let ask = catch_up.clone();
        let handle = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(PERIOD);
                    // Busy (a TRUNCATE checkpoint or a backup holds it) or
                    // failed: the next period tries again.
                    if passive(&conn).is_some_and(|frames| frames > 0) {
                        ask.store(true, Ordering::Relaxed);
                    }
                }
            })
            .map_err(|e| Error::io("spawn", "store-checkpoint", e))?;
        Ok(Self {
            stop,
            catch_up,
            handle: Some(handle),
        })
    }

    /// Whether a pass ran since the last call (and clears the request):
    /// the writer then runs [`finish_pass`].
    pub(super) fn catch_up(&self) -> bool {
        self.catch_up.swap(false, Ordering::Relaxed)
    }
}

/// Copies, on the writer's own connection and between its transactions,
/// the frames the last pass left behind (those written while it ran: a
/// few commits' worth), so that the next transaction reuses the WAL from
/// its start. PASSIVE: it waits for no one; a reader still on an old
/// snapshot just leaves the rest to the next pass.
pub(super) fn finish_pass(conn: &rusqlite::Connection) {
    let _ = passive(conn);
}

/// One PASSIVE checkpoint pass: the frames in the WAL when it ended, or
/// none when it failed (logged; the next pass tries again).
fn passive(conn: &rusqlite::Connection) -> Option<i64> {
    // One row: (busy, frames in the WAL, frames copied).
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
        Ok(frames) => Some(frames),
        Err(e) => {
            tracing::debug!(error = %e, "WAL checkpoint failed; retried");
            None
        }
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

/// How long a truncating checkpoint waits for readers still on the WAL
/// before it gives up (the sweep tries again a second later): the writer
/// runs it, and every commit waits while it does.
const TRUNCATE_WAIT: Duration = Duration::from_millis(20);

/// Checkpoints the WAL into the database file and truncates it, on the
/// writer's connection between two batches. Returns whether it completed.
pub(super) fn truncate(conn: &rusqlite::Connection) -> bool {
    let _ = conn.busy_timeout(TRUNCATE_WAIT);
    // One row: (busy, frames in the WAL, frames checkpointed).
    let done = match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(busy) => busy == 0,
        Err(e) => {
            tracing::debug!(error = %e, "truncating WAL checkpoint failed; retried");
            false
        }
    };
    let _ = conn.busy_timeout(super::BUSY_TIMEOUT);
    done
}
