//! `deliver_sm` from the gateway's SMPP server to its clients: inbound
//! messages to the numbers a client owns, and the delivery receipts it
//! asked for.
//!
//! Both go over the client's receiver or transceiver binds with a window:
//! up to the server's `window` `deliver_sm` outstanding per connection,
//! their responses matched by sequence number, so a slow round trip costs
//! one wait per window instead of one per message. The parts of one
//! message are written in order and waited for together.
//!
//! * Inbound messages come from the durable delivery queue (target
//!   `smpp:<system_id>`, body sealed to the gateway's edge key, opened
//!   just before it is encoded). An attempt is one `deliver_sm` per part
//!   (the SMS codec's encoding, UDH for multipart); it succeeds when every
//!   part got `ESME_ROK`. No bind up, a timeout, a dropped connection and
//!   retryable statuses (`ESME_RX_T_APPN`, `ESME_RTHROTTLED`, …) are
//!   retries with the queue's backoff; statuses that say the message
//!   itself is refused (`ESME_RX_P_APPN`, `ESME_RX_R_APPN`, …) dead-letter
//!   it. Parts already acknowledged are not sent again on the next attempt.
//! * Receipts (`smpp_receipts`, committed with the submitted message) are
//!   sent once the message's status is final. The sender wakes when a
//!   status changes in this process (the status path notes it in
//!   [`super::server::ReceiptHints`]) and
//!   when a client binds; a full pass every [`FULL_PASS`] catches changes
//!   made by other processes (the review CLI, other nodes). A row is
//!   deleted once every part's receipt was acknowledged. On PostgreSQL a
//!   node reads only the rows of clients bound to it, and claims them
//!   with a lease (`store/postgres/smpp.rs`): of several nodes where one
//!   client is bound, one sends each receipt.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use adapters::smpp::concat;
use adapters::smpp::status::{self, Class};
use adapters::smpp::{Concatenation, Receipt, SmPart, Stat};
use rusmpp::Pdu;
use rusmpp::pdus::DeliverSm;
use rusmpp::tlvs::MessageDeliveryRequestTlvValue as DelTlv;
use rusmpp::types::OctetString;
use rusmpp::values::{DataCoding, EsmClass, MessageState, Npi, Ton};
use time::OffsetDateTime;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::server::{Bound, Server};
use super::session::SessionError;
use super::wire;
use crate::delivery::route::SendOutcome;
use crate::pipeline::Pipeline;
use crate::store::MessageStatus;
use crate::store::smpp::OwedReceipt as Owed;

/// How often every owed receipt of the bound clients is looked at, whether
/// or not something announced a change.
pub const FULL_PASS: Duration = Duration::from_secs(5);
/// Owed receipts read per client and pass.
const PER_PASS: i64 = 512;
/// Receipts being sent at most (each waits for window slots).
const MAX_IN_FLIGHT: usize = 4096;
/// Inbound messages whose partial progress is remembered at most.
const MAX_TRACKED: usize = 4096;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Sends `pdus` over `bind` in order, each as soon as a window slot is
/// free, and returns each one's `command_status` (or why it got none), in
/// the same order. A slot is held from the write until the response (or
/// the timeout), so at most `window` requests are outstanding on the
/// connection across every sender.
pub(super) async fn send_windowed(
    bind: &Bound,
    pdus: Vec<Pdu>,
    timeout: Duration,
) -> Vec<Result<u32, SessionError>> {
    enum Wait {
        Spawned(tokio::task::JoinHandle<Result<u32, SessionError>>),
        Done(SessionError),
    }
    let mut waits = Vec::with_capacity(pdus.len());
    for pdu in pdus {
        // A window that stays full for a whole timeout (a stuck client)
        // fails this part instead of holding the caller forever.
        let permit = tokio::select! {
            p = bind.window.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => { waits.push(Wait::Done(SessionError::Closed)); continue; }
            },
            () = bind.session.closed() => { waits.push(Wait::Done(SessionError::Closed)); continue; }
            () = tokio::time::sleep(timeout) => { waits.push(Wait::Done(SessionError::Timeout(timeout))); continue; }
        };
        match bind.session.start_request(pdu).await {
            Ok(pending) => waits.push(Wait::Spawned(tokio::spawn(async move {
                let r = pending.wait(timeout).await.map(|c| wire::status_of(&c));
                drop(permit);
                r
            }))),
            Err(e) => waits.push(Wait::Done(e)),
        }
    }
    let mut out = Vec::with_capacity(waits.len());
    for w in waits {
        out.push(match w {
            Wait::Spawned(h) => h.await.unwrap_or(Err(SessionError::Closed)),
            Wait::Done(e) => Err(e),
        });
    }
    out
}

/// TON/NPI and digits of an address for a `deliver_sm`.
pub(super) fn addr(a: &str) -> (Ton, Npi, String) {
    match a.strip_prefix('+') {
        Some(d) => (Ton::International, Npi::Isdn, d.to_string()),
        None if a.bytes().all(|b| b.is_ascii_digit()) => (Ton::Unknown, Npi::Isdn, a.to_string()),
        None => (Ton::Alphanumeric, Npi::Unknown, a.to_string()),
    }
}

/// One part of an inbound message as a `deliver_sm` (esm_class default,
/// UDHI when the part carries a UDH).
fn message_pdu(from: &str, to: &str, part: &SmPart) -> Result<DeliverSm, String> {
    let (sts, snpi, src) = addr(from);
    let (dts, dnpi, dst) = addr(to);
    let sm = OctetString::from_vec(part.short_message.clone())
        .map_err(|_| "short_message longer than 255 octets".to_string())?;
    let esm = if part.udhi { concat::ESM_UDHI } else { 0 };
    Ok(DeliverSm::builder()
        .source_addr_ton(sts)
        .source_addr_npi(snpi)
        .source_addr(wire::cstr(&src))
        .dest_addr_ton(dts)
        .dest_addr_npi(dnpi)
        .destination_addr(wire::cstr(&dst))
        .esm_class(EsmClass::from(esm))
        .data_coding(DataCoding::from(part.data_coding))
        .short_message(sm)
        .build())
}

/// The outcome of one attempt from the parts' answers: every part done,
/// or the worst failure (a refusal before a retry).
fn attempt_outcome(
    system_id: &str,
    done: &mut [bool],
    answers: impl IntoIterator<Item = (usize, Result<u32, SessionError>)>,
) -> SendOutcome {
    let mut permanent = None;
    let mut retry = None;
    for (i, answer) in answers {
        let code = match answer {
            Ok(c) | Err(SessionError::Nack(c)) => c,
            Err(e) => {
                retry = Some(format!("SMPP client {system_id}: {e}"));
                continue;
            }
        };
        match status::classify(code) {
            Class::Ok => {
                if let Some(d) = done.get_mut(i) {
                    *d = true;
                }
            }
            Class::Permanent => {
                permanent = Some(format!(
                    "SMPP client {system_id} refused the message: {}",
                    status::name(code)
                ));
            }
            _ => retry = Some(format!("SMPP client {system_id}: {}", status::name(code))),
        }
    }
    if let Some(p) = permanent {
        return SendOutcome::Permanent(p);
    }
    if done.iter().all(|d| *d) {
        return SendOutcome::Accepted {
            status: MessageStatus::Delivered,
            carrier_id: None,
        };
    }
    SendOutcome::Retry(
        retry
            .unwrap_or_else(|| format!("SMPP client {system_id}: not every part was acknowledged")),
    )
}

/// One delivery attempt of an inbound message to a server client.
pub(super) async fn deliver_inbound(
    sms: &adapters::sms::SmsOptions,
    server: &Server,
    system_id: &str,
    msg_id: &str,
    from: &str,
    to: &str,
    text: &str,
) -> SendOutcome {
    if !server.exists(system_id) {
        if !server.gone_for_good(system_id) {
            return SendOutcome::Retry(format!(
                "SMPP client {system_id} is not yet known to this node"
            ));
        }
        return SendOutcome::Permanent(format!("SMPP client {system_id} was removed"));
    }
    let Some(bind) = server.receiver(system_id) else {
        return SendOutcome::Retry(format!(
            "SMPP client {system_id} has no receiver or transceiver bind up"
        ));
    };
    let parts = match inbound_parts(sms, server, msg_id, to, text) {
        Ok(p) => p,
        Err(e) => return SendOutcome::Permanent(format!("encoding for SMPP: {e}")),
    };
    let outcome = deliver_parts(server, &bind, system_id, msg_id, from, to, &parts).await;
    if !matches!(outcome, SendOutcome::Retry(_)) {
        server.references.release(msg_id, to);
    }
    outcome
}

/// The `deliver_sm` parts of an inbound message, with a concatenation
/// reference no other long message in flight to the same recipient holds
/// (the client reassembles by sender, recipient and reference).
fn inbound_parts(
    sms: &adapters::sms::SmsOptions,
    server: &Server,
    msg_id: &str,
    to: &str,
    text: &str,
) -> Result<Vec<SmPart>, adapters::Error> {
    let encode = |reference| {
        concat::encode(text, sms, Concatenation::Udh, reference).map(|(_, parts)| parts)
    };
    server
        .references
        .parts(msg_id, to, sms.wide_concat_reference, encode)
}

/// Sends the parts of one inbound message not yet acknowledged, and keeps
/// the acknowledged ones for the retry.
async fn deliver_parts(
    server: &Server,
    bind: &Bound,
    system_id: &str,
    msg_id: &str,
    from: &str,
    to: &str,
    parts: &[SmPart],
) -> SendOutcome {
    let mut done = lock(&server.progress)
        .remove(msg_id)
        .filter(|d| d.len() == parts.len())
        .unwrap_or_else(|| vec![false; parts.len()]);
    let mut todo = Vec::new();
    let mut pdus = Vec::new();
    for (i, part) in parts.iter().enumerate().filter(|(i, _)| !done[*i]) {
        match message_pdu(from, to, part) {
            Ok(p) => {
                todo.push(i);
                pdus.push(Pdu::DeliverSm(p));
            }
            Err(e) => return SendOutcome::Permanent(e),
        }
    }
    let timeout = Duration::from_secs(server.cfg.response_timeout_secs);
    let answers = send_windowed(bind, pdus, timeout).await;
    let outcome = attempt_outcome(system_id, &mut done, todo.into_iter().zip(answers));
    if matches!(outcome, SendOutcome::Retry(_)) && done.iter().any(|d| *d) {
        let mut p = lock(&server.progress);
        if p.len() >= MAX_TRACKED {
            p.clear();
        }
        p.insert(msg_id.to_string(), done);
    }
    outcome
}

async fn forget_receipt(pipeline: &Arc<Pipeline>, id: String) {
    if let Err(e) = pipeline.store.forget_smpp_receipt(id).await {
        tracing::error!(error = %e, "deleting a sent SMPP receipt failed");
    }
}

/// Sends owed receipts until `shutdown`.
// Long on purpose: the pass loop keeps the in-flight and finished sets that
// prevent a second receipt for one message in one place.
pub(super) async fn receipts(
    pipeline: Arc<Pipeline>,
    server: Arc<Server>,
    shutdown: CancellationToken,
) {
    // An id stays "in flight" from its send until a read that began after
    // the send finished: a pass that read the row just before the sender
    // deleted it must not send the receipts a second time.
    let in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
    let finished: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    let mut next_full = Instant::now();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = server.receipts.notified() => {}
            () = tokio::time::sleep_until(next_full) => {}
        }
        while tasks.try_join_next().is_some() {}
        let (ids, mut full) = server.receipts.take();
        if Instant::now() >= next_full {
            full = true;
        }
        if full {
            next_full = Instant::now() + FULL_PASS;
        }
        let bound = server.receiving_clients();
        let clients: Vec<String> = if full { bound.clone() } else { Vec::new() };
        if ids.is_empty() && clients.is_empty() {
            continue;
        }
        let done_before_read = std::mem::take(&mut *lock(&finished));
        let read = pipeline
            .store
            .owed_smpp_receipts(ids, clients, bound, PER_PASS)
            .await;
        {
            let mut f = lock(&in_flight);
            for id in &done_before_read {
                f.remove(id);
            }
        }
        let rows = match read {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "reading owed SMPP receipts failed");
                continue;
            }
        };
        for owed in rows {
            if owed.failures_only && owed.status == MessageStatus::Delivered {
                // Asked for failure receipts only: nothing to send.
                forget_receipt(&pipeline, owed.message_id).await;
                continue;
            }
            let Some(bind) = server.receiver(&owed.system_id) else {
                continue; // Sent when the client binds again.
            };
            {
                let mut f = lock(&in_flight);
                if f.len() >= MAX_IN_FLIGHT || !f.insert(owed.message_id.clone()) {
                    continue;
                }
            }
            let (pipeline, finished) = (pipeline.clone(), finished.clone());
            let timeout = Duration::from_secs(server.cfg.response_timeout_secs);
            tasks.spawn(async move {
                let id = owed.message_id.clone();
                let sent = send_receipts(&bind, &owed, timeout).await;
                tracing::debug!(msg_id = %id, system_id = %owed.system_id, conn = bind.conn, sent, "SMPP receipts sent");
                if sent {
                    forget_receipt(&pipeline, id.clone()).await;
                }
                lock(&finished).push(id);
            });
        }
    }
    // Receipts on the wire get their answers (or their timeout); an
    // unacknowledged one stays owed and goes again after the restart.
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

fn date(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(Receipt::date)
        .unwrap_or_else(|_| "0000000000".into())
}

/// The receipt's `stat` for a final message status.
fn stat_of(status: MessageStatus) -> Stat {
    match status {
        MessageStatus::Delivered => Stat::Delivered,
        MessageStatus::Blocked => Stat::Rejected,
        MessageStatus::Expired => Stat::Expired,
        MessageStatus::Dropped => Stat::Deleted,
        _ => Stat::Undeliverable,
    }
}

/// The receipt `deliver_sm` of each part of a message.
fn receipt_pdus(owed: &Owed) -> Vec<Pdu> {
    let stat = stat_of(owed.status);
    let parts = owed.parts.clamp(1, 255);
    let mut out = Vec::with_capacity(parts as usize);
    for k in 1..=parts {
        let id = if parts == 1 {
            owed.message_id.clone()
        } else {
            format!("{}-{k}", owed.message_id)
        };
        let text = Receipt {
            id: id.clone(),
            sub: Some("001".into()),
            dlvrd: Some(
                if stat == Stat::Delivered {
                    "001"
                } else {
                    "000"
                }
                .into(),
            ),
            submit_date: Some(date(owed.created_at)),
            done_date: Some(date(owed.updated_at)),
            stat,
            err: Some("000".into()),
        }
        .format();
        // The receipt goes from the recipient back to the sender.
        let (sts, snpi, src) = addr(&owed.recipient);
        let (dts, dnpi, dst) = addr(&owed.sender);
        let Ok(sm) = OctetString::from_vec(text.into_bytes()) else {
            continue;
        };
        let mut d = DeliverSm::builder()
            .source_addr_ton(sts)
            .source_addr_npi(snpi)
            .source_addr(wire::cstr(&src))
            .dest_addr_ton(dts)
            .dest_addr_npi(dnpi)
            .destination_addr(wire::cstr(&dst))
            .esm_class(EsmClass::from(concat::ESM_RECEIPT))
            .short_message(sm)
            .build();
        d.push_tlv(DelTlv::ReceiptedMessageId(wire::cstr(&id)));
        d.push_tlv(DelTlv::MessageState(MessageState::from(
            stat.message_state(),
        )));
        out.push(Pdu::DeliverSm(d));
    }
    out
}

/// One receipt per part through the window; true when all were acknowledged.
async fn send_receipts(bind: &Bound, owed: &Owed, timeout: Duration) -> bool {
    let pdus = receipt_pdus(owed);
    let n = pdus.len();
    let answers = send_windowed(bind, pdus, timeout).await;
    n > 0
        && answers
            .iter()
            .all(|a| matches!(a, Ok(c) if *c == status::ROK))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rusmpp::pdus::DeliverSmResp;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn attempt_outcomes_by_status_class() {
        let mut done = vec![true, false, false];
        let o = attempt_outcome(
            "app",
            &mut done,
            vec![(1, Ok(0)), (2, Ok(status::RX_T_APPN))],
        );
        assert!(
            matches!(o, SendOutcome::Retry(ref e) if e.contains("ESME_RX_T_APPN")),
            "{o:?}"
        );
        assert_eq!(done, vec![true, true, false]);
        let o = attempt_outcome("app", &mut done, vec![(2, Ok(0))]);
        assert!(matches!(
            o,
            SendOutcome::Accepted {
                status: MessageStatus::Delivered,
                ..
            }
        ));
        let mut done = vec![false, false];
        let o = attempt_outcome(
            "app",
            &mut done,
            vec![(0, Ok(status::RX_P_APPN)), (1, Err(SessionError::Closed))],
        );
        assert!(matches!(o, SendOutcome::Permanent(ref e) if e.contains("ESME_RX_P_APPN")));
        let mut done = vec![false];
        let o = attempt_outcome(
            "app",
            &mut done,
            vec![(0, Err(SessionError::Nack(status::RTHROTTLED)))],
        );
        assert!(matches!(o, SendOutcome::Retry(_)));
        let o = attempt_outcome(
            "app",
            &mut done,
            vec![(0, Err(SessionError::Timeout(Duration::from_secs(1))))],
        );
        assert!(matches!(o, SendOutcome::Retry(ref e) if !e.is_empty()));
    }

    #[test]
    fn message_parts_become_deliver_sm_with_udhi() {
        let opts = adapters::sms::SmsOptions::default();
        let (_, parts) = concat::encode(&"x".repeat(200), &opts, Concatenation::Udh, 7).unwrap();
        assert_eq!(parts.len(), 2);
        let d = message_pdu("+14155550100", "+14155550101", &parts[0]).unwrap();
        assert_eq!(u8::from(d.esm_class), concat::ESM_UDHI);
        assert_eq!(d.source_addr.as_str(), "14155550100");
        assert_eq!(d.dest_addr_ton, Ton::International);
        let (_, one) = concat::encode("hi", &opts, Concatenation::Udh, 7).unwrap();
        let d = message_pdu("ACME", "12345", &one[0]).unwrap();
        assert_eq!(u8::from(d.esm_class), 0);
        assert_eq!(d.source_addr_ton, Ton::Alphanumeric);
        assert_eq!(d.short_message().as_ref(), b"hi");
    }

    #[test]
    fn receipts_per_part_with_the_final_stat() {
        let owed = Owed {
            message_id: "m1".into(),
            system_id: "app".into(),
            parts: 2,
            failures_only: false,
            status: MessageStatus::Expired,
            sender: "+14155550100".into(),
            recipient: "+14155550101".into(),
            created_at: 0,
            updated_at: 0,
        };
        let pdus = receipt_pdus(&owed);
        assert_eq!(pdus.len(), 2);
        let Pdu::DeliverSm(d) = &pdus[1] else {
            panic!()
        };
        assert_eq!(
            wire::receipted_message_id(d.tlvs()).as_deref(),
            Some("m1-2")
        );
        let text = String::from_utf8(d.short_message().as_ref().to_vec()).unwrap();
        assert!(
            text.contains("stat:EXPIRED") && text.ends_with("text:"),
            "{text}"
        );
        assert_eq!(stat_of(MessageStatus::Dropped), Stat::Deleted);
        assert_eq!(stat_of(MessageStatus::Dead), Stat::Undeliverable);
    }

    /// A peer that holds its answers until it has seen `hold` requests at
    /// once proves they were outstanding together; the window caps them.
    #[tokio::test]
    async fn the_window_keeps_several_deliver_sm_outstanding_and_no_more() {
        use super::super::session::Session;
        let (a, b) = tokio::io::duplex(1 << 16);
        let (left, _left_in) = Session::start(a);
        let (right, mut right_in) = Session::start(b);
        let window = 3;
        let bind = Bound::for_test(left.clone(), window);
        let max_seen = Arc::new(AtomicUsize::new(0));
        let seen = max_seen.clone();
        let peer = tokio::spawn(async move {
            let mut held = Vec::new();
            let mut answered = 0;
            while answered < 7 {
                // Collect what arrives until nothing more comes for a moment.
                match tokio::time::timeout(Duration::from_millis(100), right_in.recv()).await {
                    Ok(Some(c)) => {
                        held.push(c.sequence_number());
                        seen.fetch_max(held.len(), Ordering::SeqCst);
                        continue;
                    }
                    Ok(None) => return,
                    Err(_) => {}
                }
                for seq in held.drain(..) {
                    // The 5th request is refused, the rest accepted.
                    answered += 1;
                    let code = if answered == 5 { status::RX_T_APPN } else { 0 };
                    right
                        .respond(seq, code, Pdu::DeliverSmResp(DeliverSmResp::default()))
                        .await
                        .unwrap();
                }
            }
        });
        let pdus: Vec<Pdu> = (0..7)
            .map(|_| {
                let opts = adapters::sms::SmsOptions::default();
                let (_, p) = concat::encode("hi", &opts, Concatenation::Udh, 1).unwrap();
                Pdu::DeliverSm(message_pdu("+14155550100", "+14155550101", &p[0]).unwrap())
            })
            .collect();
        let answers = send_windowed(&bind, pdus, Duration::from_secs(5)).await;
        peer.await.unwrap();
        assert_eq!(
            max_seen.load(Ordering::SeqCst),
            window,
            "outstanding at once"
        );
        let codes: Vec<u32> = answers.into_iter().map(Result::unwrap).collect();
        assert_eq!(codes.iter().filter(|c| **c == status::RX_T_APPN).count(), 1);
        assert_eq!(codes.iter().filter(|c| **c == 0).count(), 6);
        // A closed connection fails what is left at once.
        left.close();
        let r = send_windowed(&bind, vec![Pdu::EnquireLink], Duration::from_secs(5)).await;
        assert!(matches!(r[0], Err(SessionError::Closed)));
    }
}
