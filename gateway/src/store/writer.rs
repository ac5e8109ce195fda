//! The single writer: one thread owns the write connection and folds every
//! write that is waiting into one transaction (group commit), so many
//! concurrent requests share one fsync.
//!
//! The happy path runs the batch's jobs plainly, one after the other in the
//! one transaction: no SAVEPOINT per job (measured: the savepoints and the
//! statement journal they keep were a fifth of the writer's time, and the
//! journal spilled to a temp file in many commits). When a job fails (a
//! constraint, a bad value, an error of its own), the whole transaction is
//! rolled back and the batch replayed job by job, each in its own
//! SAVEPOINT, so the failing job is rolled back alone and the rest of the
//! batch still commits. Jobs are therefore `FnMut`: a job may run twice,
//! and only its last run's writes are committed (what a job does outside
//! the transaction must bear a rerun; the one such thing, the count of
//! erased bodies, at worst asks for an early checkpoint).
//!
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
    /// Runs the job plainly in the batch's transaction; returns whether it
    /// succeeded (on failure the caller rolls the whole batch back).
    fn run(&mut self, tx: &Transaction<'_>) -> bool;
    /// Runs the job in its own savepoint, so that a failure rolls back
    /// this job alone (the replay after a failed plain run).
    fn run_isolated(&mut self, tx: &Transaction<'_>) -> bool;
    /// Whether the job failed because the disk is full.
    fn hit_disk_full(&self) -> bool;
    /// Fails the job without running it (its batch cannot commit).
    fn skip(&mut self, error: Error);
    /// Reports the outcome once the batch's commit is known.
    fn finish(self: Box<Self>, commit: std::result::Result<(), CommitFailure>);
}

struct TypedJob<F, R> {
    work: F,
    /// Set by `skip`: the job must not run any more.
    skipped: bool,
    result: Option<Result<R>>,
    reply: oneshot::Sender<Result<R>>,
}

impl<F, R> TypedJob<F, R>
where
    F: FnMut(&Transaction<'_>) -> Result<R> + Send,
    R: Send,
{
    fn record(&mut self, outcome: Result<R>) -> bool {
        let ok = outcome.is_ok();
        self.result = Some(outcome);
        ok
    }
}

impl<F, R> Job for TypedJob<F, R>
where
    F: FnMut(&Transaction<'_>) -> Result<R> + Send,
    R: Send,
{
    fn run(&mut self, tx: &Transaction<'_>) -> bool {
        if self.skipped {
            return false;
        }
        let outcome = (self.work)(tx);
        self.record(outcome)
    }

    fn run_isolated(&mut self, tx: &Transaction<'_>) -> bool {
        if self.skipped {
            return false;
        }
        // Cached statements: parsing SAVEPOINT/RELEASE text for every job
        // was a measurable share of the CPU at high rates.
        let exec = |sql: &str| {
            tx.prepare_cached(sql)
                .and_then(|mut st| st.execute([]))
                .map(|_| ())
        };
        let outcome = match exec("SAVEPOINT job") {
            Ok(()) => {
                let r = (self.work)(tx);
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
        self.record(outcome)
    }

    fn hit_disk_full(&self) -> bool {
        matches!(self.result, Some(Err(Error::StorageFull)))
    }

    fn skip(&mut self, error: Error) {
        self.skipped = true;
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
        checkpointer: super::checkpointer::Checkpointer,
    ) -> Result<(Self, std::thread::JoinHandle<()>)> {
        // The savepoints of a replay and the statement journals of
        // multi-row statements live in memory instead of temp files
        // (measured: a savepoint's journal spilled to a temp file in a
        // tenth to half of the commits). They only serve rollbacks inside
        // an open transaction; crash recovery uses the WAL alone.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        let (tx, rx) = std::sync::mpsc::channel::<Msg>();
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                run(conn, rx, max_batch.max(1), &metrics);
                // Checkpoints stop with the writer.
                drop(checkpointer);
            })
            .map_err(|e| Error::io("spawn", "store-writer", e))?;
        Ok((Self { tx }, handle))
    }

    fn submit<F, R>(&self, work: F) -> Result<oneshot::Receiver<Result<R>>>
    where
        F: FnMut(&Transaction<'_>) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job = TypedJob {
            work,
            skipped: false,
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
        F: FnMut(&Transaction<'_>) -> Result<R> + Send + 'static,
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

/// Commits `batch` in one transaction: plainly when every job succeeds,
/// else by a replay with one savepoint per job.
fn commit_batch(
    conn: &mut Connection,
    batch: &mut [Box<dyn Job>],
) -> std::result::Result<(), CommitFailure> {
    if run_plain(conn, batch)? {
        return Ok(());
    }
    tracing::debug!(
        jobs = batch.len(),
        "a job failed; replaying its batch job by job"
    );
    run_isolated(conn, batch)
}

/// The happy path: every job in one transaction without savepoints.
/// `Ok(false)`: a job failed and the transaction was rolled back, so the
/// batch must be replayed.
fn run_plain(
    conn: &mut Connection,
    batch: &mut [Box<dyn Job>],
) -> std::result::Result<bool, CommitFailure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for i in 0..batch.len() {
        if batch[i].run(&tx) {
            continue;
        }
        if batch[i].hit_disk_full() {
            // SQLITE_FULL rolled the transaction back: commit nothing, so
            // nothing is acknowledged that may not be stored.
            for job in &mut batch[i + 1..] {
                job.skip(Error::StorageFull);
            }
            return Err(CommitFailure::DiskFull);
        }
        // The failed job may have written part of its work: undo the
        // whole batch (an error here means SQLite already rolled it back).
        let _ = tx.rollback();
        return Ok(false);
    }
    tx.commit()?;
    Ok(true)
}

/// The replay: each job in its own savepoint, so a failing job is rolled
/// back alone and the others commit.
fn run_isolated(
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
        job.run_isolated(&tx);
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
        let checkpointer = crate::store::checkpointer::Checkpointer::start(
            &path,
            crate::store::config::Synchronous::Full,
        )
        .unwrap();
        let (w, h) = Writer::start(conn, 1024, metrics.clone(), checkpointer).unwrap();
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

    /// One batch holding a failing job: its partial write is rolled back,
    /// every other job of the same batch commits, in one commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_job_in_a_batch_fails_alone_and_the_batch_commits() {
        let (w, h, metrics, path) = open("writer-replay");
        // Holds the writer inside a first batch of its own until the next
        // batch is queued.
        let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        let gate = std::sync::Mutex::new(gate_rx);
        let first = w
            .submit(move |_tx| {
                let _ = started_tx.send(());
                let _ = gate
                    .lock()
                    .unwrap()
                    .recv_timeout(std::time::Duration::from_secs(10));
                Ok(())
            })
            .unwrap();
        started_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        let mut replies = Vec::new();
        for i in 0..20i64 {
            replies.push(
                w.submit(move |tx| {
                    tx.execute("INSERT INTO t (k, v) VALUES (?1, 'x')", [i])?;
                    Ok(i)
                })
                .unwrap(),
            );
            if i == 9 {
                replies.push(
                    w.submit(|tx| {
                        tx.execute("INSERT INTO t (k, v) VALUES (100000, 'partial')", [])?;
                        tx.execute("INSERT INTO t (k, v) VALUES (100001, NULL)", [])?;
                        Ok(-1)
                    })
                    .unwrap(),
                );
            }
        }
        gate_tx.send(()).unwrap();
        first.await.unwrap().unwrap();
        let mut failed = 0;
        for r in replies {
            match r.await.unwrap() {
                Ok(i) => assert!((0..20).contains(&i)),
                Err(e) => {
                    assert!(matches!(e, Error::Store(_)), "{e:?}");
                    failed += 1;
                }
            }
        }
        assert_eq!(failed, 1, "only the failing job failed");
        w.close();
        h.join().unwrap();
        let c = rusqlite::Connection::open(&path).unwrap();
        let keys: Vec<i64> = c
            .prepare("SELECT k FROM t ORDER BY k")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(keys, (0..20).collect::<Vec<i64>>());
        let text = metrics.render();
        let count_line = text
            .lines()
            .find(|l| l.starts_with("gateway_commit_batch_size_count"))
            .unwrap();
        assert_eq!(
            count_line.rsplit(' ').next().unwrap(),
            "2",
            "the gate's batch and one batch of 21 jobs"
        );
    }
}
