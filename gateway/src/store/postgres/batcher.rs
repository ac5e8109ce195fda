//! Group commit on PostgreSQL: the per-message writes of many concurrent
//! callers in one transaction, one round trip per step and one WAL flush.
//!
//! What goes through it: accepting a message (`insert_message`: the row,
//! its first history entry, its queue entry) and recording an attempt's
//! outcome (`report_status`: the status rule under the row's lock, the
//! queue entry's end, the body's erasure). Those two are every message's
//! writes; measured before, each was its own transaction of four to nine
//! statements, and the server's CPU per message was three quarters of the
//! machine's (see README, "How far it goes").
//!
//! How, modelled on the SQLite writer (`store/writer.rs`): one task
//! collects what callers submitted while the previous batch was running
//! (no added wait: under load, a batch fills during the one before it;
//! alone, a job runs at once), at most [`MAX_BATCH`] jobs, and runs them in
//! one transaction with their statements *pipelined*: every job's first
//! statement goes out before the first answer comes back (tokio-postgres
//! pipelines the queries of concurrently polled futures on one
//! connection), so a batch costs about as many round trips as its longest
//! job, not the sum. Each caller hears back only after the COMMIT: a 202
//! still means the row is durable.
//!
//! A job must not fail its neighbours. When any job of a batch fails (a
//! constraint, a lock timeout, a deadlock with another node), or answers in
//! a way that needs its own rollback (an insert found a duplicate after it
//! had claimed its idempotency key), the batch is rolled back and each job
//! replayed alone, in its own transaction, exactly as before the batcher;
//! so a job may run twice, and only its last run's writes are committed.
//! Jobs that touch the same row (two reports for one message, two inserts
//! with one idempotency key or carrier id) never share a batch: the later
//! waits for the next one, so the status rule sees them in order. Within
//! a batch jobs are ordered by message id, so that two batches (on this
//! node or another) take the message rows' locks in the same order.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use deadpool_postgres::Pool;
use futures_util::future::join_all;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::cached::Tx;
use super::messages::{Lease, insert_leased, report_and_settle};
use super::{pg_error, pool_error};
use crate::core::error::{Error, Result};
use crate::store::messages::{Applied, InsertOutcome, NewMessage, StatusReport};

/// Most jobs in one transaction (`[store] max_batch` may ask for fewer).
pub(super) const MAX_BATCH: usize = 64;
/// Batches in flight at once (each on its own connection): while one
/// waits for its COMMIT's WAL flush, the next one's statements run.
const IN_FLIGHT: usize = 2;

/// One caller's write.
enum Work {
    /// Accept a message (see `messages::insert_leased`).
    Insert {
        m: Box<NewMessage>,
        lease: Option<Lease>,
    },
    /// Record a status (see `messages::report_and_settle`).
    Status {
        id: String,
        report: StatusReport,
        keep_ms: i64,
        now: i64,
    },
}

/// A write's answer.
enum Done {
    Inserted(InsertOutcome),
    Status(Option<Applied>, bool),
}

struct Job {
    work: Work,
    reply: oneshot::Sender<Result<Done>>,
}

impl Work {
    /// The message it writes: a batch's order.
    fn message_id(&self) -> &str {
        match self {
            Work::Insert { m, .. } => &m.id,
            Work::Status { id, .. } => id,
        }
    }

    /// The rows two jobs of one batch must not share (see the module doc).
    fn keys(&self) -> Vec<String> {
        let mut keys = vec![format!("m\0{}", self.message_id())];
        if let Work::Insert { m, .. } = self {
            if let Some(i) = &m.idempotency {
                keys.push(format!("i\0{}\0{}", i.scope, i.key));
            }
            if let Some((adapter, cid)) = &m.carrier_id {
                keys.push(format!("c\0{adapter}\0{cid}"));
            }
        }
        keys
    }

    /// Whether this answer may be committed with the batch. An insert
    /// answered "duplicate" wrote nothing, unless it had claimed its
    /// idempotency key before finding its carrier id taken: that claim
    /// must be rolled back, so the job runs alone.
    fn commits_with_batch(&self, done: &Done) -> bool {
        match (self, done) {
            (Work::Insert { m, .. }, Done::Inserted(out)) => {
                *out == InsertOutcome::Inserted || m.idempotency.is_none() || m.carrier_id.is_none()
            }
            _ => true,
        }
    }

    /// Whether a job run alone commits: an insert only when it inserted
    /// (as before the batcher), a status always.
    fn commits_alone(&self, done: &Done) -> bool {
        !matches!(done, Done::Inserted(out) if *out != InsertOutcome::Inserted)
    }
}

/// Runs one job's statements in `tx`.
async fn run(tx: &Tx<'_>, work: &Work) -> Result<Done> {
    match work {
        Work::Insert { m, lease } => {
            Ok(Done::Inserted(insert_leased(tx, m, lease.as_ref()).await?))
        }
        Work::Status {
            id,
            report,
            keep_ms,
            now,
        } => {
            let (applied, erased) = report_and_settle(tx, id, report, *now, *keep_ms).await?;
            Ok(Done::Status(applied, erased))
        }
    }
}

/// Handle on a node's batcher; cheap to clone.
#[derive(Clone)]
pub(super) struct Batcher {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Batcher {
    /// Starts the batcher task on the current runtime. It ends at `stop`
    /// or when every handle is gone; jobs still queued then fail with
    /// `StoreClosed`.
    pub(super) fn start(pool: Pool, max_batch: usize, stop: CancellationToken) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(collect_loop(pool, rx, max_batch.clamp(1, MAX_BATCH), stop));
        Self { jobs }
    }

    async fn submit(&self, work: Work) -> Result<Done> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { work, reply })
            .map_err(|_| Error::StoreClosed)?;
        answer.await.map_err(|_| Error::StoreClosed)?
    }

    /// Inserts a message in the next batch.
    pub(super) async fn insert(
        &self,
        m: NewMessage,
        lease: Option<Lease>,
    ) -> Result<InsertOutcome> {
        let work = Work::Insert {
            m: Box::new(m),
            lease,
        };
        match self.submit(work).await? {
            Done::Inserted(out) => Ok(out),
            Done::Status(..) => Err(Error::Store("batcher: mismatched answer".into())),
        }
    }

    /// Applies a status (and settles the body) in the next batch.
    pub(super) async fn report_status(
        &self,
        id: String,
        report: StatusReport,
        keep_ms: i64,
        now: i64,
    ) -> Result<(Option<Applied>, bool)> {
        let work = Work::Status {
            id,
            report,
            keep_ms,
            now,
        };
        match self.submit(work).await? {
            Done::Status(applied, erased) => Ok((applied, erased)),
            Done::Inserted(_) => Err(Error::Store("batcher: mismatched answer".into())),
        }
    }
}

/// Collects batches while a slot is free and hands each to its own task.
async fn collect_loop(
    pool: Pool,
    mut rx: mpsc::UnboundedReceiver<Job>,
    max_batch: usize,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut pending = VecDeque::new();
    loop {
        // Wait for a free slot first: meanwhile, jobs queue up.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let batch = tokio::select! {
            b = collect(&mut rx, &mut pending, max_batch) => b,
            () = stop.cancelled() => None,
        };
        let Some(batch) = batch else {
            return;
        };
        let pool = pool.clone();
        tokio::spawn(async move {
            commit_batch(&pool, batch).await;
            drop(slot);
        });
    }
}

/// The next batch: jobs left over from the last one first, then what is
/// queued, without two jobs on one row; `None` once every handle is gone.
async fn collect(
    rx: &mut mpsc::UnboundedReceiver<Job>,
    pending: &mut VecDeque<Job>,
    max_batch: usize,
) -> Option<Vec<Job>> {
    if pending.is_empty() {
        pending.push_back(rx.recv().await?);
    }
    let mut batch = Vec::new();
    let mut later = VecDeque::new();
    let mut taken: HashSet<String> = HashSet::new();
    while batch.len() < max_batch {
        let Some(job) = pending.pop_front().or_else(|| rx.try_recv().ok()) else {
            break;
        };
        let keys = job.work.keys();
        let clash = keys.iter().any(|k| taken.contains(k));
        // A deferred job's rows stay taken, so no later job on them
        // overtakes it.
        taken.extend(keys);
        if clash {
            later.push_back(job);
        } else {
            batch.push(job);
        }
    }
    later.append(pending);
    *pending = later;
    Some(batch)
}

/// Runs a batch in one transaction, or, when that cannot commit as a
/// whole, each job alone; then answers every caller.
async fn commit_batch(pool: &Pool, mut batch: Vec<Job>) {
    if batch.len() > 1 {
        batch.sort_by(|a, b| a.work.message_id().cmp(b.work.message_id()));
        match together(pool, &batch).await {
            Together::Committed(answers) => {
                for (job, done) in batch.into_iter().zip(answers) {
                    let _ = job.reply.send(Ok(done));
                }
                return;
            }
            Together::Failed(e) => {
                let why = e.to_string();
                for job in batch {
                    let _ = job.reply.send(Err(Error::Store(why.clone())));
                }
                return;
            }
            Together::Alone => {}
        }
    }
    // Alone, concurrently: each on its own pooled connection.
    join_all(batch.into_iter().map(|job| async move {
        let done = alone(pool, &job.work).await;
        let _ = job.reply.send(done);
    }))
    .await;
}

/// What running a batch as one transaction came to.
enum Together {
    /// Committed: each job's answer, in the batch's order.
    Committed(Vec<Done>),
    /// The COMMIT failed: nothing of the batch is known to be durable.
    Failed(Error),
    /// Rolled back: run each job alone.
    Alone,
}

async fn together(pool: &Pool, batch: &[Job]) -> Together {
    let Ok(mut c) = pool.get().await else {
        return Together::Alone;
    };
    let Ok(tx) = c.transaction().await else {
        return Together::Alone;
    };
    // Pipelined: every job's statements are in flight at once.
    let answers = join_all(batch.iter().map(|job| run(&tx, &job.work))).await;
    let mut done = Vec::with_capacity(answers.len());
    for (job, answer) in batch.iter().zip(answers) {
        match answer {
            Ok(d) if job.work.commits_with_batch(&d) => done.push(d),
            // The transaction is dropped: rolled back.
            _ => return Together::Alone,
        }
    }
    match tx.commit().await {
        Ok(()) => {
            tracing::debug!(jobs = done.len(), "postgres group commit");
            Together::Committed(done)
        }
        Err(e) => Together::Failed(pg_error(e)),
    }
}

/// One job in its own transaction (the path before the batcher).
async fn alone(pool: &Pool, work: &Work) -> Result<Done> {
    let mut c = pool.get().await.map_err(pool_error)?;
    let tx = c.transaction().await.map_err(pg_error)?;
    let done = run(&tx, work).await?;
    if work.commits_alone(&done) {
        tx.commit().await.map_err(pg_error)?;
    }
    Ok(done)
}
