//! The single writer: one thread owns the write connection and folds every
//! write that is waiting into one transaction (group commit), so many
//! concurrent requests share one fsync.
//!
//! Each job runs inside its own SAVEPOINT, so a job that fails (a constraint,
//! a bad value) is rolled back alone and the rest of the batch still commits.
//! A job's caller hears back only after the COMMIT returned: that is the
//! moment the message is durable and may be acknowledged.
//!
//! Shutdown is explicit: [`Writer::close`] asks the thread to commit what
//! is queued and stop, whoever still holds a handle (later writes fail
//! with `StoreClosed`). Stopping never waits for the last handle to be
//! dropped, so a handle kept alive by mistake cannot keep the process up.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::time::Instant;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use crate::core::error::{Error, Result};
use crate::core::metrics::Metrics;

/// One queued write.
trait Job: Send {
    /// Runs the job in a savepoint; returns whether it succeeded.
    fn run(&mut self, tx: &Transaction<'_>) -> bool;
    /// Whether the job failed because the disk is full.
    fn hit_disk_full(&self) -> bool;
    /// Fails the job without running it (its batch cannot commit).
    fn skip(&mut self, error: Error);
    /// Reports the outcome once the batch's commit is known.
    fn finish(self: Box<Self>, commit: std::result::Result<(), CommitFailure>);
}

struct TypedJob<F, R> {
    work: Option<F>,
    result: Option<Result<R>>,
    reply: oneshot::Sender<Result<R>>,
}

impl<F, R> Job for TypedJob<F, R>
where
    F: FnOnce(&Transaction<'_>) -> Result<R> + Send,
    R: Send,
{
    fn run(&mut self, tx: &Transaction<'_>) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        // Cached statements: parsing SAVEPOINT/RELEASE text for every job
        // was a measurable share of the CPU at high rates.
        let exec = |sql: &str| {
            tx.prepare_cached(sql)
                .and_then(|mut st| st.execute([]))
                .map(|_| ())
        };
        let outcome = match exec("SAVEPOINT job") {
            Ok(()) => {
                let r = work(tx);
                let end = if r.is_ok() {
                    exec("RELEASE job")
                } else {
                    exec("ROLLBACK TO job").and_then(|()| exec("RELEASE job"))
                };
                // A failed job's own error wins over its rollback's: after
                // SQLITE_FULL, SQLite has already rolled the whole
                // transaction back and the savepoint is gone.
                match end {
                    Ok(()) => r,
                    Err(e) => r.and(Err(Error::from(e))),
                }
            }
            Err(e) => Err(Error::from(e)),
        };
        let ok = outcome.is_ok();
        self.result = Some(outcome);
        ok
    }

    fn hit_disk_full(&self) -> bool {
        matches!(self.result, Some(Err(Error::StorageFull)))
    }

    fn skip(&mut self, error: Error) {
        self.work = None;
        self.result = Some(Err(error));
    }

    fn finish(self: Box<Self>, commit: std::result::Result<(), CommitFailure>) {
        let result = match (commit, self.result) {
            (Ok(()), Some(r)) => r,
            (Err(CommitFailure::DiskFull), Some(Ok(_))) => Err(Error::StorageFull),
            (Err(CommitFailure::Other(e)), Some(Ok(_))) => {
                Err(Error::Store(format!("commit failed: {e}")))
            }
            (_, Some(Err(e))) => Err(e),
            (_, None) => Err(Error::StoreClosed),
        };
        // The caller may have gone away (client disconnected); nothing to do then.
        let _ = self.reply.send(result);
    }
}

/// Why a group commit failed, for every job of the batch.
#[derive(Debug, Clone)]
enum CommitFailure {
    /// The disk is full: answered as `storage_full`, retryable.
    DiskFull,
    /// Anything else, described.
    Other(String),
}

impl From<rusqlite::Error> for CommitFailure {
    fn from(e: rusqlite::Error) -> Self {
        if super::is_disk_full(&e) {
            CommitFailure::DiskFull
        } else {
            CommitFailure::Other(e.to_string())
        }
    }
}

/// What the writer thread is sent.
enum Msg {
    /// A write.
    Job(Box<dyn Job>),
    /// Commit what is queued, then stop.
    Close,
}

/// Handle used to submit writes; cheap to clone.
#[derive(Clone)]
pub(super) struct Writer {
    tx: Sender<Msg>,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(super) fn start(
        conn: Connection,
        max_batch: usize,
        metrics: Arc<Metrics>,
    ) -> Result<(Self, std::thread::JoinHandle<()>)> {
        let (tx, rx) = std::sync::mpsc::channel::<Msg>();
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(conn, rx, max_batch.max(1), &metrics))
            .map_err(|e| Error::io("spawn", "store-writer", e))?;
        Ok((Self { tx }, handle))
    }

    fn submit<F, R>(&self, work: F) -> Result<oneshot::Receiver<Result<R>>>
    where
        F: FnOnce(&Transaction<'_>) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job = TypedJob {
            work: Some(work),
            result: None,
            reply,
        };
        self.tx
            .send(Msg::Job(Box::new(job)))
            .map_err(|_| Error::StoreClosed)?;
        Ok(rx)
    }

    /// Asks the thread to commit the writes already queued and stop.
    pub(super) fn close(&self) {
        let _ = self.tx.send(Msg::Close);
    }

    /// Runs `work` in the next group commit and returns its result once the
    /// commit is durable.
    pub(super) async fn write<F, R>(&self, work: F) -> Result<R>
    where
        F: FnOnce(&Transaction<'_>) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        self.submit(work)?.await.map_err(|_| Error::StoreClosed)?
    }
}

fn run(mut conn: Connection, rx: Receiver<Msg>, max_batch: usize, metrics: &Metrics) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(max_batch);
    let mut closing = false;
    // Ends at `Close` (after committing what was queued before it), or when
    // every Writer handle is gone and the channel is drained.
    while !closing {
        match rx.recv() {
            Ok(Msg::Job(first)) => batch.push(first),
            Ok(Msg::Close) | Err(_) => closing = true,
        }
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(Msg::Job(job)) => batch.push(job),
                Ok(Msg::Close) => closing = true,
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        let started = Instant::now();
        let commit = commit_batch(&mut conn, &mut batch);
        metrics.observe_commit(batch.len(), started.elapsed());
        if let Err(e) = &commit {
            metrics
                .store_commit_failed_at
                .set(crate::core::clock::now_ms() / 1000);
            tracing::error!(error = ?e, jobs = batch.len(), "group commit failed");
        }
        for job in batch.drain(..) {
            job.finish(commit.clone());
        }
    }
    tracing::debug!("store writer stopped");
}

fn commit_batch(
    conn: &mut Connection,
    batch: &mut [Box<dyn Job>],
) -> std::result::Result<(), CommitFailure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut full = false;
    for job in batch.iter_mut() {
        if full {
            // SQLITE_FULL rolled the transaction back: running more jobs
            // would run them outside it, each in its own autocommit
            job.skip(Error::StorageFull);
            continue;
        }
        job.run(&tx);
        full |= job.hit_disk_full();
    }
    if full {
        // a job ran out of space: commit nothing, so nothing is
        // acknowledged that may not be stored
        return Err(CommitFailure::DiskFull);
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn open(
        name: &str,
    ) -> (
        Writer,
        std::thread::JoinHandle<()>,
        Arc<Metrics>,
        std::path::PathBuf,
    ) {
        let dir = crate::core::fs::test_dir(name);
        let path = dir.join("t.db");
        let conn =
            crate::store::open_connection(&path, crate::store::config::Synchronous::Full).unwrap();
        conn.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            .unwrap();
        let metrics = Arc::new(Metrics::new());
        let (w, h) = Writer::start(conn, 1024, metrics.clone()).unwrap();
        (w, h, metrics, path)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_share_commits_and_a_failing_job_fails_alone() {
        let (w, h, metrics, path) = open("writer");
        let mut tasks = Vec::new();
        for i in 0..500i64 {
            let w = w.clone();
            tasks.push(tokio::spawn(async move {
                w.write(move |tx| {
                    tx.execute("INSERT INTO t (k, v) VALUES (?1, 'x')", [i])?;
                    Ok(i)
                })
                .await
            }));
        }
        // A job that writes, then fails: its write must be rolled back alone.
        let bad = w
            .write(|tx| {
                tx.execute("INSERT INTO t (k, v) VALUES (100000, 'partial')", [])?;
                tx.execute("INSERT INTO t (k, v) VALUES (100001, NULL)", [])?;
                Ok(())
            })
            .await;
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert!(bad.is_err());
        drop(w);
        h.join().unwrap();
        let c = rusqlite::Connection::open(&path).unwrap();
        let n: i64 = c
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            n, 500,
            "every good write committed, the failed job's partial write rolled back"
        );
        let text = metrics.render();
        let count_line = text
            .lines()
            .find(|l| l.starts_with("gateway_commit_batch_size_count"))
            .unwrap();
        let commits: f64 = count_line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(
            commits < 501.0,
            "group commit folded writes together: {commits} commits for 501 jobs"
        );
    }
}
