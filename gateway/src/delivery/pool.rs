//! A fixed pool of single-send workers: one task per send slot, started
//! once, each handed a message through its own one-place channel, instead
//! of a task spawned per message.
//!
//! Why: with one request per message the spawn and the `JoinSet` were
//! 1.7 % of the gateway's samples (~2.6 µs per message, README
//! "Performance"): a task allocated for every message, the large `deliver`
//! future moved into it, and the `JoinSet`'s own locked bookkeeping on
//! every spawn and every completion. Measured with it: ~5 % less CPU per
//! single send in three of four A/B rows, within this machine's noise. The workers' futures
//! stay where they are; handing a message over is a `try_send` and one
//! wake.
//!
//! What does not change: a send holds one of `[delivery] concurrency`
//! permits from before it is handed over until its outcome is committed,
//! so the limit is the same; an idle worker always exists for a permit
//! taken (a worker marks itself idle before it lets its permit go, and
//! the pool has as many workers as there are permits); the claim of an
//! entry ends as before, once its outcome is committed.

use std::sync::{Arc, Mutex};

use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::{Claims, Worker, deliver};
use crate::core::clock;
use crate::store::QueueItem;

/// One message for a worker, with the send slot it holds.
struct Job {
    item: QueueItem,
    permit: OwnedSemaphorePermit,
}

/// The workers and which of them wait for a message.
pub(super) struct Pool {
    senders: Vec<mpsc::Sender<Job>>,
    idle: Arc<Mutex<Vec<usize>>>,
    tasks: JoinSet<()>,
}

impl Pool {
    /// Starts `size` workers.
    pub(super) fn start(w: &Arc<Worker>, claims: &Arc<Claims>, size: usize) -> Self {
        let idle = Arc::new(Mutex::new((0..size).rev().collect::<Vec<_>>()));
        let mut tasks = JoinSet::new();
        let senders = (0..size)
            .map(|n| {
                let (tx, rx) = mpsc::channel(1);
                tasks.spawn(work(n, w.clone(), claims.clone(), rx, idle.clone()));
                tx
            })
            .collect();
        Self {
            senders,
            idle,
            tasks,
        }
    }

    /// Hands `item` to an idle worker; gives it back when none is idle
    /// (cannot happen while the pool is as large as the permits).
    pub(super) fn hand(
        &self,
        item: QueueItem,
        permit: OwnedSemaphorePermit,
    ) -> Option<(QueueItem, OwnedSemaphorePermit)> {
        let Some(n) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) else {
            return Some((item, permit));
        };
        let Some(tx) = self.senders.get(n) else {
            return Some((item, permit));
        };
        // A worker is idle only while its channel is empty, and its task
        // runs until the pool closes: neither error happens before that.
        tx.try_send(Job { item, permit }).err().map(|e| {
            let job = e.into_inner();
            (job.item, job.permit)
        })
    }

    /// Messages being sent now.
    pub(super) fn busy(&self) -> usize {
        self.senders.len() - self.idle.lock().map(|i| i.len()).unwrap_or(0)
    }

    /// Lets the workers end once their current message is recorded.
    pub(super) fn close(self) -> JoinSet<()> {
        drop(self.senders);
        self.tasks
    }
}

/// One worker: sends what it is handed, records the outcome, ends the
/// claim, marks itself idle, and only then gives its permit back.
async fn work(
    n: usize,
    w: Arc<Worker>,
    claims: Arc<Claims>,
    mut rx: mpsc::Receiver<Job>,
    idle: Arc<Mutex<Vec<usize>>>,
) {
    while let Some(Job { item, permit }) = rx.recv().await {
        send_one(&w, &claims, item).await;
        if let Ok(mut idle) = idle.lock() {
            idle.push(n);
        }
        drop(permit);
    }
}

/// Sends one message, records its outcome and ends its claim.
pub(super) async fn send_one(w: &Worker, claims: &Claims, item: QueueItem) {
    let id = item.message_id.clone();
    let span = tracing::debug_span!("deliver", msg_id = %id, attempt = item.attempts + 1);
    deliver(w, item).instrument(span).await;
    // the outcome is committed: a poll that starts from now on sees it
    claims.finished(&id, clock::now_ms());
}
