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
//! A job's caller hears back only after the COMMIT returned and the WAL
//! holding it was fsynced by the second stage (`syncer`): that is the
//! moment the message is durable and may be acknowledged. While that fsync
//! runs, this thread already runs the jobs that arrive, inside the next
//! batch's open transaction, and commits them the moment the fsync ends:
//! the batch is as large as before (everything that arrived during one
//! fsync) and its statements are off the critical path. (Committing early
//! instead, one batch ahead of the fsync, was measured and made the
//! batches smaller and the latency longer.)
//!
//! Shutdown is explicit: [`Writer::close`] asks the thread to commit what
//! is queued and stop, whoever still holds a handle (later writes fail
//! with `StoreClosed`). Stopping never waits for the last handle to be
//! dropped, so a handle kept alive by mistake cannot keep the process up.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError};
use std::time::Instant;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use super::syncer::{self, Committed, Flush};
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
    /// The sync stage made the last handed-over batch durable.
    Synced,
    /// Checkpoint the WAL into the database and truncate it, between two
    /// batches; answers whether it completed (see [`Writer::truncate_wal`]).
    Truncate(oneshot::Sender<bool>),
}

/// Handle used to submit writes; cheap to clone.
#[derive(Clone)]
pub(super) struct Writer {
    tx: Sender<Msg>,
    /// Asks the thread to stop once the last handle is gone (the thread
    /// holds a sender of its own, for the sync stage's `Synced`, so the
    /// channel never disconnects by itself).
    _last: Arc<CloseOnDrop>,
}

/// Sends `Close` when dropped.
struct CloseOnDrop(Sender<Msg>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(Msg::Close);
    }
}

impl Writer {
    /// Starts the writer thread on `conn`.
    /// `flush` makes a commit durable (the WAL's fsync when the
    /// connection was opened `synchronous = FULL`: the connection is then
    /// switched to NORMAL and the fsync runs on the second stage).
    pub(super) fn start(
        conn: Connection,
        max_batch: usize,
        metrics: Arc<Metrics>,
        checkpointer: super::checkpointer::Checkpointer,
        flush: Box<dyn Flush>,
    ) -> Result<(Self, std::thread::JoinHandle<()>)> {
        // The savepoints of a replay and the statement journals of
        // multi-row statements live in memory instead of temp files
        // (measured: a savepoint's journal spilled to a temp file in a
        // tenth to half of the commits). They only serve rollbacks inside
        // an open transaction; crash recovery uses the WAL alone.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // COMMIT writes the WAL without waiting for the disk; the second
        // stage's fsync makes it durable before anyone hears back.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let (tx, rx) = std::sync::mpsc::channel::<Msg>();
        let (to_sync, syncer) = syncer::start::<Pending>(flush, metrics.clone())?;
        let to_self = tx.clone();
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                let stages = Stages {
                    rx,
                    to_self,
                    to_sync,
                    metrics,
                };
                run(conn, &stages, max_batch.max(1), &checkpointer);
                // Its sender gone, the sync stage ends after the last batch.
                drop(stages);
                // The last batches are answered once durable.
                let _ = syncer.join();
                // Checkpoints stop with the writer.
                drop(checkpointer);
            })
            .map_err(|e| Error::io("spawn", "store-writer", e))?;
        let last = Arc::new(CloseOnDrop(tx.clone()));
        Ok((Self { tx, _last: last }, handle))
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

    /// Checkpoints the WAL into the database file and truncates it, on the
    /// writer's own connection between two batches. Returns whether it
    /// completed (false: a reader kept it from completing; try again).
    ///
    /// On the writer's thread because a TRUNCATE checkpoint takes the write
    /// lock: run from another connection (as it was) it stalled the writer
    /// in SQLite's busy handler, whose sleeps (1, 2, 5, 10, 15, 20, 25 ms)
    /// rounded each stall up to the next step, and every waiting request
    /// with it. Here commits wait only for the checkpoint itself.
    pub(super) async fn truncate_wal(&self) -> Result<bool> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Truncate(reply))
            .map_err(|_| Error::StoreClosed)?;
        rx.await.map_err(|_| Error::StoreClosed)
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

/// A committed batch on its way to the second stage.
struct Pending {
    jobs: Vec<Box<dyn Job>>,
    commit: std::result::Result<(), CommitFailure>,
    started: Instant,
    metrics: Arc<Metrics>,
    /// Tells the writer the sync is done (it commits its next batch then).
    synced: Sender<Msg>,
}

impl Committed for Pending {
    fn wrote(&self) -> bool {
        self.commit.is_ok()
    }

    fn settle(self, synced: std::result::Result<(), String>) {
        let _ = self.synced.send(Msg::Synced);
        let commit = self
            .commit
            .and_then(|()| synced.map_err(CommitFailure::Other));
        self.metrics
            .observe_commit(self.jobs.len(), self.started.elapsed());
        if let Err(e) = &commit {
            self.metrics
                .store_commit_failed_at
                .set(crate::core::clock::now_ms() / 1000);
            tracing::error!(error = ?e, jobs = self.jobs.len(), "group commit failed");
        }
        for job in self.jobs {
            job.finish(commit.clone());
        }
    }
}

/// The writer thread's channels.
struct Stages {
    rx: Receiver<Msg>,
    to_self: Sender<Msg>,
    to_sync: SyncSender<Pending>,
    metrics: Arc<Metrics>,
}

/// What the writer knows between batches.
#[derive(Default)]
struct Flow {
    /// A batch is with the sync stage (no `Synced` yet).
    in_flight: bool,
    /// `Close` arrived: commit what came before it, then stop.
    closing: bool,
    /// Jobs that arrived while a full batch waited for the sync stage.
    backlog: VecDeque<Box<dyn Job>>,
    /// Truncating checkpoints asked for while a batch was open.
    truncate: Vec<oneshot::Sender<bool>>,
}

fn run(
    mut conn: Connection,
    stages: &Stages,
    max_batch: usize,
    checkpointer: &super::checkpointer::Checkpointer,
) {
    let mut flow = Flow::default();
    loop {
        let first = match flow.backlog.pop_front() {
            Some(job) => job,
            None if flow.closing && !flow.in_flight => break,
            None => match stages.rx.recv() {
                Ok(Msg::Job(job)) if !flow.closing => job,
                // After `Close`: dropped, its caller hears `StoreClosed`.
                Ok(Msg::Job(_)) => continue,
                Ok(Msg::Synced) => {
                    flow.in_flight = false;
                    continue;
                }
                Ok(Msg::Truncate(reply)) => {
                    let _ = reply.send(super::checkpointer::truncate(&conn));
                    continue;
                }
                Ok(Msg::Close) | Err(_) => {
                    flow.closing = true;
                    continue;
                }
            },
        };
        let started = Instant::now();
        let mut jobs = vec![first];
        let commit = gather_and_commit(&mut conn, &mut jobs, stages, &mut flow, max_batch);
        let pending = Pending {
            jobs,
            commit,
            started,
            metrics: stages.metrics.clone(),
            synced: stages.to_self.clone(),
        };
        // The sync stage is idle here (no batch in flight): no wait.
        match stages.to_sync.send(pending) {
            Ok(()) => flow.in_flight = true,
            // The sync thread is gone (it panicked): nothing can be made
            // durable any more, so nothing is acknowledged.
            Err(unsent) => unsent
                .0
                .settle(Err("the store's sync stage stopped".into())),
        }
        // While that fsync runs: finish the checkpoint thread's last pass,
        // so the WAL is reused instead of growing (see `checkpointer`).
        if checkpointer.catch_up() && flow.truncate.is_empty() {
            super::checkpointer::finish_pass(&conn);
        }
        for reply in flow.truncate.drain(..) {
            let _ = reply.send(super::checkpointer::truncate(&conn));
        }
    }
    tracing::debug!("store writer stopped");
}

/// How the open batch is doing.
#[derive(PartialEq)]
enum Batch {
    /// Every job so far succeeded.
    Plain,
    /// A job failed: the batch is rolled back and replayed job by job.
    Replay,
    /// SQLite ran out of space and rolled the transaction back.
    DiskFull,
}

/// Runs `jobs` and every job that arrives in one transaction until the
/// sync stage is idle (or the batch is full), then commits it: plainly
/// when every job succeeded, else by a replay with one savepoint per job.
fn gather_and_commit(
    conn: &mut Connection,
    jobs: &mut Vec<Box<dyn Job>>,
    stages: &Stages,
    flow: &mut Flow,
    max_batch: usize,
) -> std::result::Result<(), CommitFailure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut state = Batch::Plain;
    run_job(&tx, &mut jobs[0], &mut state);
    while jobs.len() < max_batch {
        let Some(mut job) = flow.backlog.pop_front() else {
            break;
        };
        run_job(&tx, &mut job, &mut state);
        jobs.push(job);
    }
    loop {
        // What is already queued joins without waiting.
        let next = match stages.rx.try_recv() {
            Ok(msg) => Some(msg),
            Err(TryRecvError::Empty | TryRecvError::Disconnected) if flow.in_flight => {
                // The fsync of the previous batch runs: wait for it or for
                // more work, whichever comes first.
                stages.rx.recv().ok()
            }
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => None,
        };
        match next {
            None => break,
            Some(Msg::Job(_)) if flow.closing => {}
            Some(Msg::Job(mut job)) if jobs.len() < max_batch => {
                run_job(&tx, &mut job, &mut state);
                jobs.push(job);
            }
            Some(Msg::Job(job)) => flow.backlog.push_back(job),
            Some(Msg::Synced) => flow.in_flight = false,
            Some(Msg::Truncate(reply)) => flow.truncate.push(reply),
            Some(Msg::Close) => flow.closing = true,
        }
    }
    match state {
        Batch::Plain => Ok(tx.commit()?),
        Batch::Replay => {
            // The failed job may have written part of its work: undo the
            // whole batch (an error here means SQLite already rolled it
            // back), then replay it job by job.
            let _ = tx.rollback();
            tracing::debug!(
                jobs = jobs.len(),
                "a job failed; replaying its batch job by job"
            );
            run_isolated(conn, jobs)
        }
        // Commit nothing, so nothing is acknowledged that may not be stored.
        Batch::DiskFull => Err(CommitFailure::DiskFull),
    }
}

/// Runs one job plainly in the open batch, if the batch is still plain.
fn run_job(tx: &Transaction<'_>, job: &mut Box<dyn Job>, state: &mut Batch) {
    match state {
        Batch::Plain if !job.run(tx) => {
            *state = if job.hit_disk_full() {
                Batch::DiskFull
            } else {
                Batch::Replay
            };
        }
        Batch::Plain | Batch::Replay => {}
        // SQLITE_FULL rolled the transaction back: running more jobs
        // would run them outside it.
        Batch::DiskFull => job.skip(Error::StorageFull),
    }
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
        open_with(name, |path| {
            Box::new(crate::store::syncer::WalFile::of(path))
        })
    }

    fn open_with(
        name: &str,
        flush: impl FnOnce(&std::path::Path) -> Box<dyn Flush>,
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
        let (w, h) =
            Writer::start(conn, 1024, metrics.clone(), checkpointer, flush(&path)).unwrap();
        (w, h, metrics, path)
    }

    /// A flush that reports each call and waits for the test's word.
    struct Gated {
        calls: Arc<std::sync::atomic::AtomicUsize>,
        gate: std::sync::mpsc::Receiver<std::io::Result<()>>,
    }

    impl Flush for Gated {
        fn flush(&mut self) -> std::io::Result<()> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.gate
                .recv_timeout(std::time::Duration::from_secs(10))
                .unwrap_or_else(|_| Err(std::io::Error::other("test gate timed out")))
        }
    }

    fn visible(path: &std::path::Path, k: i64) -> bool {
        let c = rusqlite::Connection::open(path).unwrap();
        c.query_row("SELECT COUNT(*) FROM t WHERE k = ?1", [k], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap()
            == 1
    }

    /// Waits (bounded) until `cond` holds.
    fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        for _ in 0..1000 {
            if cond() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("timed out waiting for {what}");
    }

    /// Under a steady stream of concurrent writes the WAL is reused from
    /// its start (the checkpoint passes, finished by the writer, let the
    /// next transaction restart it), so the file stays far smaller than
    /// what was written; and `truncate_wal` checkpoints and empties it
    /// between two batches while the writes go on, none of them failing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn under_steady_concurrent_writes_the_wal_is_reused_and_truncated_on_request() {
        let (w, h, _m, path) = open("wal-reused");
        let wal = path.with_file_name("t.db-wal");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let written = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut tasks = Vec::new();
        for t in 0..8i64 {
            let (w, stop, written) = (w.clone(), stop.clone(), written.clone());
            tasks.push(tokio::spawn(async move {
                let mut i = 0i64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let k = t * 1_000_000 + i;
                    i += 1;
                    w.write(move |tx| {
                        tx.execute(
                            "INSERT INTO t (k, v) VALUES (?1, ?2)",
                            rusqlite::params![k, "x".repeat(3000)],
                        )?;
                        Ok(())
                    })
                    .await
                    .unwrap();
                    written.fetch_add(3000, std::sync::atomic::Ordering::Relaxed);
                }
            }));
        }
        // Several checkpoint periods (200 ms) of writes.
        let mut largest = 0;
        for _ in 0..150 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
        }
        let total = written.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            largest < total / 2,
            "the WAL reached {largest} bytes for {total} bytes of rows: it was never reused"
        );
        // Truncated on request, writes still flowing.
        assert!(w.truncate_wal().await.unwrap());
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        assert!(w.truncate_wal().await.unwrap());
        assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
        let c = rusqlite::Connection::open(&path).unwrap();
        let rows: u64 = c
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            rows * 3000,
            written.load(std::sync::atomic::Ordering::Relaxed)
        );
        w.close();
        drop(w);
        tokio::task::spawn_blocking(move || h.join().unwrap())
            .await
            .unwrap();
    }

    /// The durability rule of the two-stage commit: a write is answered
    /// only after a WAL fsync that began after its COMMIT, while the next
    /// batch already commits during that fsync; a failed fsync fails the
    /// writes it covered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_is_answered_only_after_the_fsync_that_follows_its_commit() {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (gate_tx, gate) = std::sync::mpsc::channel();
        let seen = calls.clone();
        let (w, h, _metrics, path) = open_with("writer-sync", move |_| {
            Box::new(Gated { calls: seen, gate })
        });
        let n =
            |c: &Arc<std::sync::atomic::AtomicUsize>| c.load(std::sync::atomic::Ordering::SeqCst);
        let mut first = w
            .submit(|tx| {
                tx.execute("INSERT INTO t (k, v) VALUES (1, 'x')", [])?;
                Ok(1)
            })
            .unwrap();
        wait_for("the first fsync", || n(&calls) == 1);
        assert!(visible(&path, 1), "committed before its fsync");
        assert!(first.try_recv().is_err(), "not answered before its fsync");
        // The next job runs while the first one's fsync is held, in a
        // transaction that commits only once that fsync is done.
        let (ran_tx, ran) = std::sync::mpsc::channel();
        let mut second = w
            .submit(move |tx| {
                tx.execute("INSERT INTO t (k, v) VALUES (2, 'x')", [])?;
                let _ = ran_tx.send(());
                Ok(2)
            })
            .unwrap();
        ran.recv_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        assert!(!visible(&path, 2), "not committed during the first fsync");
        assert!(second.try_recv().is_err());
        assert_eq!(n(&calls), 1, "its fsync waits for the first one's");
        gate_tx.send(Ok(())).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), 1);
        wait_for("the second fsync", || n(&calls) == 2);
        assert!(visible(&path, 2), "committed once the first fsync ended");
        assert!(
            second.try_recv().is_err(),
            "not answered before its own fsync"
        );
        gate_tx
            .send(Err(std::io::Error::other("device gone")))
            .unwrap();
        let failed = second.await.unwrap();
        assert!(
            matches!(&failed, Err(Error::Store(m)) if m.contains("fsync")),
            "{failed:?}"
        );
        w.close();
        drop(w);
        h.join().unwrap();
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
        // Holds the writer inside a first job until the others are queued
        // (they join its batch).
        let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        let gate = std::sync::Mutex::new(gate_rx);
        let mut waited = false;
        let first = w
            .submit(move |_tx| {
                // Waits once: the replay of the batch runs it again.
                if !waited {
                    waited = true;
                    let _ = started_tx.send(());
                    let _ = gate
                        .lock()
                        .unwrap()
                        .recv_timeout(std::time::Duration::from_secs(10));
                }
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
            "1",
            "the gate's job and the 21 queued behind it, in one batch"
        );
    }
}
