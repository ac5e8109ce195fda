//! The second stage of the group commit: makes committed batches durable
//! while the writer already runs the next one.
//!
//! With `synchronous = FULL`, SQLite's COMMIT in WAL mode writes the
//! batch's frames to the WAL and then fsyncs it before returning, so the
//! writer thread spent every fsync idle while requests queued behind it.
//! Here the writer's connection runs with `synchronous = NORMAL` (COMMIT
//! writes the frames and returns; nothing else about the transaction
//! changes) and hands the committed batch to this thread, which fsyncs the
//! WAL file (`fdatasync` on its own descriptor of the same file) and only
//! then answers the batch's callers. Meanwhile the writer already runs the
//! statements of the next batch: the fsync of batch N overlaps the
//! statements of N + 1.
//!
//! Why every acknowledgement is still durable:
//! * A caller hears back only from [`Committed::settle`], called after a
//!   `sync_data` that *began after* its batch's COMMIT returned. Every WAL
//!   frame of that commit was written (`write(2)`) before COMMIT returned,
//!   and `fdatasync` flushes all of the file's data written before it is
//!   called, whichever descriptor wrote it: the commit frame and every
//!   frame before it are on disk.
//! * SQLite's recovery replays the WAL from its header up to the last
//!   valid commit frame (salted, checksummed chain), so frames of a later,
//!   unsynced commit torn by a power loss end the chain *after* the synced
//!   commit and cannot take it with them. That is the same argument SQLite
//!   makes for `synchronous = FULL`, which is just this fsync inside COMMIT.
//! * Checkpoints (their own thread, `synchronous = FULL`) fsync the WAL
//!   before copying it and the database after, and the WAL is only reused
//!   from its start once a checkpoint has copied all of it and synced the
//!   database; so a frame the writer committed is in the synced WAL or in
//!   the synced database, never only in a page the WAL restart overwrote.
//! * The descriptor is reopened when the `-wal` file is not the one it
//!   holds (another inode): a sync of a stale file would prove nothing.
//! * A failed fsync fails every job of the batches it covered
//!   (`commit failed: …`), as SQLite's own failed fsync fails the COMMIT.
//!
//! What changes: other connections (the delivery poller's reads) may see a
//! batch in the moments between its COMMIT and its fsync. Only a power
//! loss or kernel crash in those milliseconds (not a process crash: the
//! written frames are in the kernel's page cache) can then lose a row that
//! was already read, e.g. a message handed on whose 202 was never sent;
//! the client's retry then makes it a duplicate, the same at-least-once
//! outcome as a crash between a send and its recorded outcome.
//!
//! The writer hands over one batch at a time and commits the next one
//! when this stage has settled the last (see `writer`), so a batch holds
//! everything that arrived during one fsync, as before.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};
use std::time::Instant;

use crate::core::error::{Error, Result};
use crate::core::metrics::Metrics;

/// A batch whose COMMIT returned, waiting to be made durable.
pub(super) trait Committed: Send + 'static {
    /// Whether the commit wrote to the WAL (a failed one did not).
    fn wrote(&self) -> bool;
    /// Answers the batch's callers; `synced` is the fsync's outcome.
    fn settle(self, synced: std::result::Result<(), String>);
}

/// How committed batches are made durable.
pub(super) trait Flush: Send + 'static {
    /// Makes everything written to the WAL so far durable.
    fn flush(&mut self) -> io::Result<()>;
}

/// The fsync of the database's `-wal` file.
pub(super) struct WalFile {
    path: PathBuf,
    /// The open descriptor and the inode it was opened on.
    file: Option<(File, u64)>,
}

impl WalFile {
    /// The WAL of the database at `db` (`<db>-wal`), opened on first sync.
    pub(super) fn of(db: &std::path::Path) -> Self {
        let mut p = db.as_os_str().to_owned();
        p.push("-wal");
        Self {
            path: PathBuf::from(p),
            file: None,
        }
    }

    fn inode(path: &std::path::Path) -> io::Result<u64> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Ok(std::fs::metadata(path)?.ino())
        }
        #[cfg(not(unix))]
        {
            std::fs::metadata(path).map(|_| 0)
        }
    }
}

impl Flush for WalFile {
    fn flush(&mut self) -> io::Result<()> {
        let ino = Self::inode(&self.path)?;
        let stale = !matches!(&self.file, Some((_, held)) if *held == ino);
        if stale {
            self.file = Some((File::open(&self.path)?, ino));
        }
        match &self.file {
            Some((f, _)) => f.sync_data(),
            None => Err(io::Error::other("WAL file not open")),
        }
    }
}

/// No sync: `synchronous = NORMAL` was asked for (acknowledged writes may
/// be lost to a power loss, by configuration).
pub(super) struct NoSync;

impl Flush for NoSync {
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Starts the sync thread; the writer hands batches over through the
/// returned sender (one at a time: it waits for a batch's `settle` before
/// handing over the next) and joins the thread after dropping it.
pub(super) fn start<T: Committed>(
    flush: Box<dyn Flush>,
    metrics: Arc<Metrics>,
) -> Result<(SyncSender<T>, std::thread::JoinHandle<()>)> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<T>(1);
    let handle = std::thread::Builder::new()
        .name("store-sync".into())
        .spawn(move || run(rx, flush, &metrics))
        .map_err(|e| Error::io("spawn", "store-sync", e))?;
    Ok((tx, handle))
}

fn run<T: Committed>(rx: Receiver<T>, mut flush: Box<dyn Flush>, metrics: &Metrics) {
    // Ends when the writer drops its sender (after its last batch).
    while let Ok(batch) = rx.recv() {
        let synced = if batch.wrote() {
            let started = Instant::now();
            let r = flush.flush().map_err(|e| format!("fsync of the WAL: {e}"));
            metrics.observe_sync(started.elapsed());
            r
        } else {
            Ok(())
        };
        batch.settle(synced);
    }
}
