//! The outcomes of single sends, recorded a commit's worth at a time.
//!
//! Why: a route without a batch form sends one message per request, and
//! each send ended in a writer job of its own (a boxed closure, a channel
//! send, a reply and a wake-up of the waiting task, a status lookup
//! prepared per job). With 64 connections that was one job per message in
//! every group commit, where the batch form has one job per batch.
//! Here every single send's outcome goes to one task that hands whatever
//! has piled up to the store as one job ([`Outcomes::record_all`], the
//! same job a batch's outcomes make, so the status rule, the history and
//! the body's erasure are those of a single outcome).
//!
//! At most [`IN_FLIGHT`] jobs are with the store at once: one being made
//! durable and one being gathered into the next transaction, which is what
//! the writer's two-stage group commit runs at a time, so outcomes that
//! arrive meanwhile wait for the next commit anyway and go as one job.
//!
//! What does not change: a send's task hears back only once its outcome is
//! committed and durable (its claim and send slot are held until then); a
//! job that fails is retried outcome by outcome, so one outcome the store
//! refuses fails alone, as it did when each was its own job.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

use super::Outcomes;
use crate::core::error::{Error, Result};
use crate::store::outcomes::Outcome;

/// Store jobs of outcomes at once, at most (see the module comment).
const IN_FLIGHT: usize = 2;
/// Outcomes in one job, at most.
const MAX_JOB: usize = 1024;

/// One outcome waiting to be recorded, and who waits for it.
struct Entry {
    id: String,
    outcome: Outcome,
    reply: oneshot::Sender<Result<()>>,
}

/// The handle the senders use; the task ends when every handle is gone.
#[derive(Clone)]
pub struct Coalescer {
    tx: mpsc::UnboundedSender<Entry>,
}

impl Coalescer {
    /// Starts the task that records into `outcomes`.
    pub fn start(outcomes: Arc<dyn Outcomes>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(outcomes, rx));
        Self { tx }
    }

    /// Records `outcome` of message `id` with the others waiting; returns
    /// once it is durable (or failed).
    pub async fn record(&self, id: String, outcome: Outcome) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Entry { id, outcome, reply })
            .map_err(|_| Error::StoreClosed)?;
        rx.await.map_err(|_| Error::StoreClosed)?
    }
}

/// Takes what is waiting whenever fewer than [`IN_FLIGHT`] jobs are out,
/// until every [`Coalescer`] is dropped; the jobs out then still finish
/// (their tasks answer their senders).
async fn run(outcomes: Arc<dyn Outcomes>, mut rx: mpsc::UnboundedReceiver<Entry>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut entries = vec![first];
        while entries.len() < MAX_JOB {
            match rx.try_recv() {
                Ok(e) => entries.push(e),
                Err(_) => break,
            }
        }
        let outcomes = outcomes.clone();
        tokio::spawn(async move {
            record(outcomes.as_ref(), entries).await;
            drop(slot);
        });
    }
}

/// Records `entries` as one job and answers each; when the job fails and
/// held more than one, each is recorded alone, so each hears its own
/// result.
async fn record(outcomes: &dyn Outcomes, entries: Vec<Entry>) {
    let (items, replies): (Vec<_>, Vec<_>) = entries
        .into_iter()
        .map(|e| ((e.id, e.outcome), e.reply))
        .unzip();
    // Kept for the retry one by one (an outcome is a few small strings).
    let copies = (items.len() > 1).then(|| items.clone());
    let result = outcomes.record_all(items).await;
    match (result, copies) {
        (Ok(()), _) => {
            for r in replies {
                let _ = r.send(Ok(()));
            }
        }
        (Err(e), None) => {
            if let Some(r) = replies.into_iter().next() {
                let _ = r.send(Err(e));
            }
        }
        (Err(_), Some(copies)) => {
            for (item, r) in copies.into_iter().zip(replies) {
                let _ = r.send(outcomes.record_all(vec![item]).await);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::core::BoxFuture;
    use crate::store::StatusReport;
    use std::sync::Mutex;

    /// Records the jobs it was given; fails any job holding id `bad`.
    #[derive(Default)]
    struct Jobs(Mutex<Vec<Vec<String>>>);

    impl Outcomes for Jobs {
        fn report(&self, _: String, _: StatusReport) -> BoxFuture<'_, Result<()>> {
            unreachable!("single outcomes go through record_all")
        }
        fn dead_letter(&self, _: String, _: u32, _: String) -> BoxFuture<'_, Result<()>> {
            unreachable!("single outcomes go through record_all")
        }
        fn record_all(&self, outcomes: Vec<(String, Outcome)>) -> BoxFuture<'_, Result<()>> {
            let ids: Vec<String> = outcomes.into_iter().map(|(id, _)| id).collect();
            let bad = ids.iter().any(|id| id == "bad");
            self.0.lock().unwrap().push(ids);
            Box::pin(async move {
                // As long as a commit, so that senders pile up meanwhile.
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                if bad {
                    Err(Error::Store("refused".into()))
                } else {
                    Ok(())
                }
            })
        }
    }

    fn dead() -> Outcome {
        Outcome::DeadLetter {
            attempts: 1,
            error: "x".into(),
        }
    }

    #[tokio::test]
    async fn outcomes_that_pile_up_go_as_one_job() {
        let jobs = Arc::new(Jobs::default());
        let c = Coalescer::start(jobs.clone());
        let mut sends = tokio::task::JoinSet::new();
        for i in 0..200 {
            let c = c.clone();
            sends.spawn(async move { c.record(format!("m{i}"), dead()).await });
        }
        while let Some(r) = sends.join_next().await {
            r.unwrap().unwrap();
        }
        let jobs = jobs.0.lock().unwrap();
        // Every outcome recorded exactly once, in far fewer jobs than outcomes.
        let mut ids: Vec<&String> = jobs.iter().flatten().collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 200);
        assert_eq!(jobs.iter().map(Vec::len).sum::<usize>(), 200);
        assert!(jobs.len() < 20, "{} jobs", jobs.len());
    }

    #[tokio::test]
    async fn a_refused_outcome_fails_alone() {
        let jobs = Arc::new(Jobs::default());
        let c = Coalescer::start(jobs.clone());
        // The first job holds one outcome; the next ones pile up behind it.
        let mut sends = tokio::task::JoinSet::new();
        for id in ["m0", "m1", "bad", "m2", "m3"] {
            let c = c.clone();
            sends.spawn(async move { (id, c.record(id.to_string(), dead()).await.is_ok()) });
        }
        let mut results = Vec::new();
        while let Some(r) = sends.join_next().await {
            results.push(r.unwrap());
        }
        results.sort();
        assert_eq!(
            results,
            [
                ("bad", false),
                ("m0", true),
                ("m1", true),
                ("m2", true),
                ("m3", true)
            ]
        );
        // The group holding `bad` was retried one by one.
        let jobs = jobs.0.lock().unwrap();
        assert!(
            jobs.iter()
                .any(|j| j.len() > 1 && j.contains(&"bad".to_string()))
        );
        assert!(jobs.contains(&vec!["bad".to_string()]));
    }
}
