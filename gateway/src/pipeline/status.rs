//! The one status path. Every delivery status, whoever reports it (Twilio,
//! Telnyx and generic callbacks, an Android phone's events per part, a
//! modem's status reports, SMPP receipts, RBM events, the delivery worker's
//! own outcomes), goes through [`StatusPath`]:
//!
//! 1. the store applies it by the one rule of
//!    [`MessageStatus::advance`](crate::store::MessageStatus::advance), in
//!    the transaction that reads the current status: forward only along
//!    `queued -> sending -> sent -> delivered | failed | expired`, the first
//!    final status wins, parts are counted in any arrival order, a late
//!    report is kept in the history (marked late) and changes nothing, a
//!    repeat changes nothing;
//! 2. a status that moved is counted in the metrics and announced to every
//!    [`StatusObserver`]: the classifier's delivery features (outbound
//!    delivered / failed) and the SMPP server's receipts.
//!
//! So no channel can forget a side effect, and none can move a message
//! backwards.

use std::sync::Arc;

use crate::core::error::{Error, Result};
use crate::core::metrics::Metrics;
use crate::store::{Applied, MessageStatus, PartReport, StatusReport, Store};

/// Something that wants to know when a message's status moved.
pub trait StatusObserver: Send + Sync {
    /// Message `id` (`outbound` or not) moved to `status`.
    fn status_moved(&self, id: &str, outbound: bool, status: MessageStatus);
}

/// The classifier learns from outbound delivery outcomes: a sender whose
/// messages fail (or are given up on) looks like one that sends to made-up
/// numbers.
impl StatusObserver for crate::spam::SpamGate {
    fn status_moved(&self, id: &str, outbound: bool, status: MessageStatus) {
        if !outbound {
            return;
        }
        match status {
            MessageStatus::Delivered => self.observe_status(id, true),
            MessageStatus::Failed | MessageStatus::Dead => self.observe_status(id, false),
            _ => {}
        }
    }
}

/// Applies reported statuses and announces the ones that moved.
pub struct StatusPath {
    store: Store,
    metrics: Arc<Metrics>,
    observers: Vec<Arc<dyn StatusObserver>>,
}

impl StatusPath {
    /// A path over `store` that counts in `metrics` and tells `observers`.
    pub fn new(
        store: Store,
        metrics: Arc<Metrics>,
        observers: Vec<Arc<dyn StatusObserver>>,
    ) -> Self {
        Self {
            store,
            metrics,
            observers,
        }
    }

    /// Applies `report` to message `id`; `None` when there is no such
    /// message.
    pub async fn report(&self, id: String, report: StatusReport) -> Result<Option<Applied>> {
        let applied = self.store.report_status(id.clone(), report).await?;
        if let Some(a) = &applied {
            self.announce(&id, a);
        }
        Ok(applied)
    }

    /// The delivery worker gave up on message `id` (attempts or age): it is
    /// dead-lettered, and `dead` is its status unless a report already made
    /// it final.
    pub async fn dead_letter(&self, id: String, attempts: u32, error: String) -> Result<()> {
        if let Some(a) = self.store.dead_letter(id.clone(), attempts, error).await? {
            self.announce(&id, &a);
        }
        Ok(())
    }

    /// Counts and announces a status the store applied by itself (the
    /// retention sweep's `expired`).
    pub fn announce(&self, id: &str, a: &Applied) {
        let Some(status) = a.moved() else {
            return;
        };
        let outbound = a.direction == "outbound";
        self.metrics.message(
            if outbound { "outbound" } else { "inbound" },
            status.as_str(),
        );
        for o in &self.observers {
            o.status_moved(id, outbound, status);
        }
    }
}

/// A carrier's status word for an outbound message (the generic adapter's
/// callback, Twilio's and Telnyx's statuses as their adapters map them);
/// false when there is no such message.
pub async fn record_reported(
    path: &StatusPath,
    id: String,
    status: &str,
    detail: Option<String>,
) -> Result<bool> {
    let Some(status) = MessageStatus::reported(status) else {
        return Err(Error::invalid(
            "status",
            "must be delivered, failed or sent",
        ));
    };
    Ok(path
        .report(id, StatusReport::new(status, detail))
        .await?
        .is_some())
}

/// The reports an Android phone's outbound events make: `sms:sent` tells
/// how many parts went out, `sms:delivered` comes once per part, and
/// `sms:failed` fails the message.
pub fn android_report(
    event: &str,
    parts: Option<u32>,
    delivery_id: &str,
    reason: Option<String>,
) -> Option<StatusReport> {
    let (status, part, detail) = match event {
        "sms:sent" => (
            MessageStatus::Sent,
            Some(PartReport::Count(parts.unwrap_or(1))),
            None,
        ),
        "sms:delivered" => (
            MessageStatus::Delivered,
            Some(PartReport::Delivered {
                key: delivery_id.to_string(),
            }),
            None,
        ),
        "sms:failed" => (MessageStatus::Failed, None, reason),
        _ => return None,
    };
    Some(StatusReport {
        status,
        detail,
        carrier_id: None,
        part,
        finish_queue: false,
    })
}
