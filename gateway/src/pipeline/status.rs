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
    /// Message `id` (`outbound` or not) moved to `status` from `before`.
    fn status_moved(&self, id: &str, outbound: bool, before: MessageStatus, status: MessageStatus);
}

/// The classifier learns from outbound delivery outcomes: a sender whose
/// messages fail at once looks like one that sends to made-up numbers.
///
/// It times a failure from the moment the message left the gateway (see
/// `classifier::Engine::handed_over`): when the far end accepted it
/// (`sent`), or, for a message the far end refused when it was handed
/// over (`failed` straight from the queue), the refusal itself. A message
/// the gateway gave up on (`dead`: attempts or age, a route that was down)
/// is timed from when it was accepted, so it says nothing about its number
/// unless that was moments ago.
impl StatusObserver for super::spam::SpamGate {
    fn status_moved(&self, id: &str, outbound: bool, before: MessageStatus, status: MessageStatus) {
        if !outbound {
            return;
        }
        match status {
            MessageStatus::Sent => self.handed_over(id),
            MessageStatus::Delivered => self.observe_status(id, true),
            MessageStatus::Failed => {
                if before != MessageStatus::Sent {
                    self.handed_over(id);
                }
                self.observe_status(id, false)
            }
            MessageStatus::Dead => self.observe_status(id, false),
            _ => {}
        }
    }
}

/// A status a client may hear about moved: the callback worker looks for
/// the callback the store owes now (the store wrote it with the status).
impl StatusObserver for crate::delivery::callbacks::Wake {
    fn status_moved(
        &self,
        _id: &str,
        outbound: bool,
        _before: MessageStatus,
        status: MessageStatus,
    ) {
        if outbound && crate::store::callbacks::notifies(status) {
            self.0.notify_one();
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
            o.status_moved(id, outbound, a.before, status);
        }
    }
}

/// The delivery worker's outcomes go the same way.
impl crate::delivery::Outcomes for StatusPath {
    fn report(&self, id: String, report: StatusReport) -> crate::core::BoxFuture<'_, Result<()>> {
        Box::pin(async move { StatusPath::report(self, id, report).await.map(|_| ()) })
    }

    fn dead_letter(
        &self,
        id: String,
        attempts: u32,
        error: String,
    ) -> crate::core::BoxFuture<'_, Result<()>> {
        Box::pin(StatusPath::dead_letter(self, id, attempts, error))
    }

    fn record_all(
        &self,
        outcomes: Vec<(String, crate::store::outcomes::Outcome)>,
    ) -> crate::core::BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let ids: Vec<String> = outcomes.iter().map(|(id, _)| id.clone()).collect();
            let applied = self.store.record_outcomes(outcomes).await?;
            for (id, a) in ids.iter().zip(&applied) {
                if let Some(a) = a {
                    self.announce(id, a);
                }
            }
            Ok(())
        })
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

#[cfg(test)]
mod tests {
    //! Every channel's reports, in every order: the message ends in the
    //! status the first final report gave it (else `sent`), parts are
    //! counted whatever their order, and a late report stays in the history.
    #![allow(clippy::unwrap_used)]
    use std::sync::Mutex;

    use super::*;
    use crate::store::config::Synchronous;
    use crate::store::{NewMessage, WriterThread};

    /// Records what the observers hear.
    #[derive(Default)]
    struct Heard(Mutex<Vec<(String, MessageStatus)>>);

    impl StatusObserver for Heard {
        fn status_moved(
            &self,
            id: &str,
            _outbound: bool,
            _before: MessageStatus,
            status: MessageStatus,
        ) {
            self.0.lock().unwrap().push((id.to_string(), status));
        }
    }

    struct World {
        store: Store,
        path: StatusPath,
        heard: Arc<Heard>,
        _writer: WriterThread,
        n: usize,
    }

    impl World {
        fn new(name: &str) -> Self {
            let dir = crate::core::fs::test_dir(name);
            let metrics = Arc::new(Metrics::new());
            let (store, writer) =
                Store::open(&dir, Synchronous::Normal, 64, 2, metrics.clone()).unwrap();
            let heard = Arc::new(Heard::default());
            let path = StatusPath::new(store.clone(), metrics, vec![heard.clone()]);
            Self {
                store,
                path,
                heard,
                _writer: writer,
                n: 0,
            }
        }

        /// A new queued outbound message.
        async fn message(&mut self) -> String {
            self.n += 1;
            let id = format!("m-{}", self.n);
            let row = NewMessage {
                id: id.clone(),
                direction: "outbound",
                channel: "sms",
                adapter: Some("route".into()),
                sender: "+14155550100".into(),
                recipient: "+14155550101".into(),
                segments: 2,
                encoding: "gsm7".into(),
                size_class: 0,
                status: MessageStatus::Queued,
                created_at: 1,
                expires_at: None,
                kid: "k".into(),
                header: vec![0],
                sealed: vec![0],
                carrier_id: None,
                queue: Some(crate::store::Target::Route("route".into())),
                deliver_to: None,
                verdict: None,
                flag_reasons: None,
                idempotency: None,
                transit: false,
                status_callback: None,
                tenant: None,
            };
            self.store.insert_message(row).await.unwrap();
            id
        }

        async fn report(&self, id: &str, r: StatusReport) {
            self.path.report(id.to_string(), r).await.unwrap().unwrap();
        }

        async fn status(&self, id: &str) -> MessageStatus {
            self.store
                .message(id.to_string())
                .await
                .unwrap()
                .unwrap()
                .status
        }

        async fn history(&self, id: &str) -> Vec<(String, bool)> {
            let v = self.store.message(id.to_string()).await.unwrap().unwrap();
            v.history.into_iter().map(|e| (e.status, e.late)).collect()
        }

        /// The observers heard each status of `id` once, in order.
        fn heard(&self, id: &str) -> Vec<MessageStatus> {
            let h = self.heard.0.lock().unwrap();
            h.iter().filter(|(i, _)| i == id).map(|(_, s)| *s).collect()
        }
    }

    /// The delivery worker's success: `sent`, with the carrier's id.
    fn worker_sent() -> StatusReport {
        StatusReport {
            status: MessageStatus::Sent,
            detail: Some("attempt 1".into()),
            carrier_id: Some("c-1".into()),
            part: None,
            finish_queue: true,
        }
    }

    /// What a sequence of whole-message reports must end in: the first
    /// final one, else `sent`.
    fn expected(seq: &[MessageStatus]) -> MessageStatus {
        seq.iter()
            .copied()
            .find(|s| s.is_final())
            .unwrap_or(MessageStatus::Sent)
    }

    /// Every ordered pair of distinct events, after or before the worker's
    /// own `sent`.
    async fn pairs(world: &mut World, events: &[(&str, StatusReport)]) {
        for (i, (na, a)) in events.iter().enumerate() {
            for (j, (nb, b)) in events.iter().enumerate() {
                if i == j {
                    continue;
                }
                for worker_first in [true, false] {
                    let id = world.message().await;
                    let mut seq = Vec::new();
                    if worker_first {
                        world.report(&id, worker_sent()).await;
                        seq.push(MessageStatus::Sent);
                    }
                    world.report(&id, a.clone()).await;
                    world.report(&id, b.clone()).await;
                    seq.extend([a.status, b.status]);
                    if !worker_first {
                        world.report(&id, worker_sent()).await;
                        seq.push(MessageStatus::Sent);
                    }
                    let want = expected(&seq);
                    assert_eq!(
                        world.status(&id).await,
                        want,
                        "{na} then {nb}, worker first: {worker_first}"
                    );
                    let heard = world.heard(&id);
                    assert_eq!(heard.last(), Some(&want), "{na} then {nb}");
                    assert!(
                        heard.windows(2).all(|w| w[0].stage() < w[1].stage()),
                        "never backwards: {heard:?}"
                    );
                    // What moved the message is in its history in order; what
                    // came too late is there too, marked late.
                    let history = world.history(&id).await;
                    let live: Vec<MessageStatus> = history
                        .iter()
                        .filter(|(_, late)| !late)
                        .filter_map(|(s, _)| MessageStatus::parse(s))
                        .collect();
                    assert!(
                        live.windows(2).all(|w| w[0].stage() < w[1].stage()),
                        "{na} then {nb}: {history:?}"
                    );
                    assert_eq!(live.last(), Some(&want), "{history:?}");
                }
            }
        }
    }

    fn carrier(word: &str, detail: Option<&str>) -> StatusReport {
        StatusReport::new(
            MessageStatus::reported(word).unwrap(),
            detail.map(str::to_string),
        )
    }

    #[tokio::test]
    async fn twilio_callbacks_in_any_order() {
        let mut w = World::new("status-twilio");
        let mut events = Vec::new();
        for s in ["sent", "delivered", "undelivered", "failed", "read"] {
            let params = vec![
                ("MessageSid".to_string(), "SM123".to_string()),
                ("MessageStatus".to_string(), s.to_string()),
            ];
            let cb = adapters::twilio::StatusCallback::from_params(&params).unwrap();
            events.push((s, carrier(cb.gateway_status().unwrap(), Some("twilio"))));
        }
        pairs(&mut w, &events).await;
        // A late `sent` after `delivered` is kept, marked late.
        let id = w.message().await;
        w.report(&id, worker_sent()).await;
        w.report(&id, carrier("delivered", None)).await;
        w.report(&id, carrier("sent", None)).await;
        assert_eq!(w.status(&id).await, MessageStatus::Delivered);
        assert_eq!(
            w.history(&id).await,
            [
                ("queued".to_string(), false),
                ("sent".to_string(), false),
                ("delivered".to_string(), false),
                ("sent".to_string(), true)
            ]
        );
    }

    #[tokio::test]
    async fn telnyx_events_in_any_order() {
        let mut w = World::new("status-telnyx");
        let raw =
            include_str!("../../../fixtures/webhooks/telnyx/message_finalized_delivered.json");
        let mut events = Vec::new();
        for s in [
            "sent",
            "delivered",
            "sending_failed",
            "delivery_failed",
            "delivery_unconfirmed",
        ] {
            let body = raw.replace("\"status\":\"delivered\"", &format!("\"status\":\"{s}\""));
            let hook = adapters::telnyx::Webhook::parse(body.as_bytes()).unwrap();
            events.push((s, carrier(hook.gateway_status().unwrap(), None)));
        }
        pairs(&mut w, &events).await;
    }

    /// An Android phone: `sms:sent` (2 parts), one `sms:delivered` per part,
    /// `sms:failed`; delivered once both parts are, in any order.
    #[tokio::test]
    async fn android_parts_in_any_order() {
        let mut w = World::new("status-android");
        let sent = || android_report("sms:sent", Some(2), "s", None).unwrap();
        let d = |k: &str| android_report("sms:delivered", None, k, None).unwrap();
        let failed =
            || android_report("sms:failed", None, "f", Some("RESULT_ERROR".into())).unwrap();
        // Every order of the worker's sent, the phone's sent and both parts.
        let events = [
            ("worker", worker_sent()),
            ("sent", sent()),
            ("d1", d("d1")),
            ("d2", d("d2")),
        ];
        for order in permutations(4) {
            let id = w.message().await;
            for &k in &order {
                w.report(&id, events[k].1.clone()).await;
            }
            let names: Vec<&str> = order.iter().map(|&k| events[k].0).collect();
            assert_eq!(w.status(&id).await, MessageStatus::Delivered, "{names:?}");
            assert_eq!(w.heard(&id).last(), Some(&MessageStatus::Delivered));
            let parts = w
                .history(&id)
                .await
                .iter()
                .filter(|(s, _)| s == "part_delivered")
                .count();
            assert_eq!(parts, 2, "{names:?}");
        }
        // One part twice (a retried webhook) is one part: still sent.
        for order in permutations(3) {
            let evs = [sent(), d("d1"), d("d1")];
            let id = w.message().await;
            w.report(&id, worker_sent()).await;
            for &k in &order {
                w.report(&id, evs[k].clone()).await;
            }
            assert_eq!(w.status(&id).await, MessageStatus::Sent, "{order:?}");
        }
        // `sms:failed` against each of the others, both ways round.
        for (name, other) in [("sent", sent()), ("d1", d("d1"))] {
            for failed_first in [true, false] {
                let id = w.message().await;
                w.report(&id, worker_sent()).await;
                if failed_first {
                    w.report(&id, failed()).await;
                    w.report(&id, other.clone()).await;
                } else {
                    w.report(&id, other.clone()).await;
                    w.report(&id, failed()).await;
                }
                assert_eq!(w.status(&id).await, MessageStatus::Failed, "{name}");
            }
        }
        // Both parts delivered, then a failure: the first final status stays.
        let id = w.message().await;
        for r in [worker_sent(), sent(), d("d1"), d("d2"), failed()] {
            w.report(&id, r).await;
        }
        assert_eq!(w.status(&id).await, MessageStatus::Delivered);
        assert!(w.history(&id).await.contains(&("failed".to_string(), true)));
    }

    /// SMPP receipts, one per part: delivered once every part is, failed at
    /// the first failed part, a repeated receipt counted once.
    #[tokio::test]
    async fn smpp_receipts_in_any_order() {
        let mut w = World::new("status-smpp");
        let receipt = |smsc_id: &str, status| StatusReport {
            status,
            detail: Some("smpp receipt".into()),
            carrier_id: None,
            part: Some(PartReport::Smpp {
                route: "smpp:acme".into(),
                smsc_id: smsc_id.into(),
            }),
            finish_queue: false,
        };
        let cases = [
            (
                [MessageStatus::Delivered, MessageStatus::Delivered],
                MessageStatus::Delivered,
            ),
            (
                [MessageStatus::Delivered, MessageStatus::Failed],
                MessageStatus::Failed,
            ),
            (
                [MessageStatus::Failed, MessageStatus::Failed],
                MessageStatus::Failed,
            ),
        ];
        for (parts, want) in cases {
            for order in permutations(4) {
                let id = w.message().await;
                let (a, b) = (format!("{id}-a"), format!("{id}-b"));
                w.store
                    .map_smpp_parts("smpp:acme".into(), id.clone(), vec![a.clone(), b.clone()])
                    .await
                    .unwrap();
                let events = [
                    worker_sent(),
                    receipt(&a, parts[0]),
                    receipt(&b, parts[1]),
                    // The SMSC repeats the first receipt.
                    receipt(&a, parts[0]),
                ];
                for &k in &order {
                    w.report(&id, events[k].clone()).await;
                }
                assert_eq!(w.status(&id).await, want, "{parts:?} in order {order:?}");
                assert_eq!(
                    w.heard(&id).iter().filter(|s| s.is_final()).count(),
                    1,
                    "one final status announced"
                );
            }
        }
        // One part of two: still sent.
        let id = w.message().await;
        w.store
            .map_smpp_parts(
                "smpp:acme".into(),
                id.clone(),
                vec!["x1".into(), "x2".into()],
            )
            .await
            .unwrap();
        w.report(&id, receipt("x1", MessageStatus::Delivered)).await;
        w.report(&id, worker_sent()).await;
        assert_eq!(w.status(&id).await, MessageStatus::Sent);
    }

    /// RBM: DELIVERED and READ (which implies it) in any order with the
    /// worker's `sent`; a repeated DELIVERED changes nothing.
    #[tokio::test]
    async fn rbm_events_in_any_order() {
        let mut w = World::new("status-rbm");
        let delivered =
            || StatusReport::new(MessageStatus::Delivered, Some("RBM DELIVERED".into()));
        let read = || StatusReport::new(MessageStatus::Delivered, Some("RBM READ".into()));
        for order in permutations(4) {
            let id = w.message().await;
            let events = [worker_sent(), delivered(), read(), delivered()];
            for &k in &order {
                w.report(&id, events[k].clone()).await;
            }
            assert_eq!(w.status(&id).await, MessageStatus::Delivered, "{order:?}");
            let history = w.history(&id).await;
            let live: Vec<&str> = history
                .iter()
                .filter(|(_, late)| !late)
                .map(|(s, _)| s.as_str())
                .collect();
            assert_eq!(
                live.iter().filter(|s| **s == "delivered").count(),
                1,
                "{order:?}: {history:?}"
            );
            assert_eq!(w.heard(&id).last(), Some(&MessageStatus::Delivered));
        }
    }

    /// Every order of `0..n`.
    fn permutations(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![Vec::new()];
        }
        let mut out = Vec::new();
        for p in permutations(n - 1) {
            for i in 0..=p.len() {
                let mut q = p.clone();
                q.insert(i, n - 1);
                out.push(q);
            }
        }
        out
    }
}
