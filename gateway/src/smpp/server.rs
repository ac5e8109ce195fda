//! The SMSC side: SMS applications bind to the gateway.
//!
//! * Bind: `system_id` and password are checked against `smpp_clients`
//!   (PBKDF2, see [`super::credentials`]); wrong ones get
//!   `ESME_RINVPASWD`, and anything but a bind before binding gets
//!   `ESME_RINVBNDSTS`.
//! * `submit_sm`: the client's own governor limit (`ESME_RTHROTTLED` when
//!   over it), then reassembly of UDH / SAR / `message_payload` parts,
//!   then [`crate::pipeline::accept_outbound_text`], the same checks as
//!   `POST /v1/messages`: normalised numbers, opt-out, spam gate, sealing
//!   to the edge key, durable commit. Only then `submit_sm_resp` with the
//!   gateway's message id (`<id>` for a single part, `<id>-<k>` for part
//!   *k* of a multipart message). Refusals map to statuses: invalid
//!   destination `ESME_RINVDSTADR`, invalid sender `ESME_RINVSRCADR`, the
//!   gateway's rate limits `ESME_RTHROTTLED`, block list and opt-out
//!   `ESME_RX_R_APPN`, a failed commit `ESME_RSYSERR` (the client retries).
//! * Receipts: when `registered_delivery` asked for them, a row in
//!   `smpp_receipts` is committed with the message; a poller sends
//!   `deliver_sm` (esm_class 0x04, `receipted_message_id`, `message_state`,
//!   the appendix B text without message text) per part once the message
//!   is delivered, failed, dead or blocked, to any receiver or transceiver
//!   bind of that `system_id`, and deletes the row when every part was
//!   acknowledged. A client that is offline gets them when it binds again.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use adapters::smpp::concat::{self, Incoming};
use adapters::smpp::status;
use adapters::smpp::{Receipt, Stat};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rusmpp::pdus::{
    BindReceiverResp, BindTransceiverResp, BindTransmitterResp, DeliverSm, SubmitSmResp,
};
use rusmpp::tlvs::MessageDeliveryRequestTlvValue as DelTlv;
use rusmpp::types::OctetString;
use rusmpp::values::{EsmClass, MessageState, Npi, Ton};
use rusmpp::{Command, CommandId, Pdu};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::SmppServerConfig;
use super::client::from_smpp;
use super::credentials::{self, ClientInfo};
use super::parts::{Outcome, Parts};
use super::session::Session;
use super::wire;
use crate::pipeline::{OutboundText, accept_outbound_text};
use crate::state::AppState;

/// How often owed receipts are looked for.
const RECEIPT_POLL: Duration = Duration::from_millis(250);
/// How long a connection may take to bind.
const BIND_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound receiver (or transceiver) of one client.
struct Receiver {
    conn: u64,
    session: Arc<Session>,
}

/// Server-wide state shared by connections and the receipt poller.
pub struct Server {
    cfg: SmppServerConfig,
    receivers: Mutex<HashMap<String, Vec<Receiver>>>,
    limiters: Mutex<HashMap<String, Arc<DefaultDirectRateLimiter>>>,
    parts: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Parts>>>>,
    next_conn: std::sync::atomic::AtomicU64,
}

impl Server {
    /// A server for `cfg` (not yet listening).
    pub fn new(cfg: SmppServerConfig) -> Self {
        Self {
            cfg,
            receivers: Mutex::new(HashMap::new()),
            limiters: Mutex::new(HashMap::new()),
            parts: Mutex::new(HashMap::new()),
            next_conn: std::sync::atomic::AtomicU64::new(1),
        }
    }

    fn limiter(&self, client: &ClientInfo) -> Arc<DefaultDirectRateLimiter> {
        let rate = client.throughput.unwrap_or(self.cfg.throughput).max(0.001);
        let mut map = match self.limiters.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.entry(client.system_id.clone())
            .or_insert_with(|| {
                let per_sec =
                    NonZeroU32::new(rate.ceil().min(1e6) as u32).unwrap_or(NonZeroU32::MIN);
                // A burst of one second's worth: a client may send a window
                // at once, but not more than its rate over a second.
                let quota = Quota::with_period(Duration::from_secs_f64(1.0 / rate))
                    .unwrap_or_else(|| Quota::per_second(per_sec))
                    .allow_burst(per_sec);
                Arc::new(RateLimiter::direct(quota))
            })
            .clone()
    }

    async fn parts_of(&self, state: &AppState, system_id: &str) -> Arc<tokio::sync::Mutex<Parts>> {
        let existing = self
            .parts
            .lock()
            .ok()
            .and_then(|m| m.get(system_id).cloned());
        if let Some(p) = existing {
            return p;
        }
        let mut p = Parts::new(
            state.clone(),
            format!("smpp-server:{system_id}"),
            String::new(),
            self.cfg.reassembly_timeout_secs,
        );
        if let Err(e) = p.reload().await {
            tracing::error!(error = %e, "reloading waiting SMPP parts failed");
        }
        let p = Arc::new(tokio::sync::Mutex::new(p));
        if let Ok(mut m) = self.parts.lock() {
            return m.entry(system_id.to_string()).or_insert(p).clone();
        }
        p
    }

    fn receiver(&self, system_id: &str) -> Option<Arc<Session>> {
        let mut map = self.receivers.lock().ok()?;
        let list = map.get_mut(system_id)?;
        list.retain(|r| !r.session.is_closed());
        list.first().map(|r| r.session.clone())
    }
}

/// Listens until `shutdown`. Logs `smpp listening` with the bound address
/// (tests read it to find an ephemeral port).
pub async fn run(state: AppState, server: Arc<Server>, shutdown: CancellationToken) {
    let listener = match TcpListener::bind(server.cfg.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(addr = %server.cfg.listen, error = %e, "SMPP server cannot listen");
            return;
        }
    };
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(addr = %local, "smpp listening");
    let limit = Arc::new(Semaphore::new(server.cfg.max_connections.max(1)));
    let poller = tokio::spawn(receipts(state.clone(), server.clone(), shutdown.clone()));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        while conns.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "SMPP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(peer = %peer, "SMPP connection refused: too many connections");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (state, server, shutdown) = (state.clone(), server.clone(), shutdown.clone());
        conns.spawn(async move {
            connection(state, server, stream, shutdown).await;
            drop(permit);
        });
    }
    let _ = poller.await;
    // Connections see the shutdown token and unbind themselves.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Transmitter,
    Receiver,
    Transceiver,
}

async fn connection(
    state: AppState,
    server: Arc<Server>,
    stream: tokio::net::TcpStream,
    shutdown: CancellationToken,
) {
    let (session, mut incoming) = Session::start(stream);
    // Bound state: nothing but a bind is accepted until then.
    let bound = tokio::time::timeout(BIND_TIMEOUT, async {
        loop {
            let c = incoming.recv().await?;
            let seq = c.sequence_number();
            let (kind, system_id, password) = match c.pdu() {
                Some(Pdu::BindTransmitter(b)) => (
                    Kind::Transmitter,
                    wire::text(&b.system_id),
                    wire::text(&b.password),
                ),
                Some(Pdu::BindReceiver(b)) => (
                    Kind::Receiver,
                    wire::text(&b.system_id),
                    wire::text(&b.password),
                ),
                Some(Pdu::BindTransceiver(b)) => (
                    Kind::Transceiver,
                    wire::text(&b.system_id),
                    wire::text(&b.password),
                ),
                _ => {
                    let resp_id = u32::from(c.id()) | 0x8000_0000;
                    let id = if c.id() == CommandId::Other(u32::from(c.id())) {
                        wire::GENERIC_NACK
                    } else {
                        resp_id
                    };
                    let _ = session.respond_header(id, status::RINVBNDSTS, seq).await;
                    continue;
                }
            };
            let (sid, pw) = (system_id.clone(), password.clone());
            let checked = state
                .store
                .read(move |conn| credentials::verify(conn, &sid, &pw))
                .await;
            let resp_id = u32::from(c.id()) | 0x8000_0000;
            match checked {
                Ok(Some(client)) => {
                    let me = wire::cstr(&server.cfg.system_id);
                    let pdu = match kind {
                        Kind::Transmitter => {
                            Pdu::BindTransmitterResp(BindTransmitterResp::new(me, None))
                        }
                        Kind::Receiver => Pdu::BindReceiverResp(BindReceiverResp::new(me, None)),
                        Kind::Transceiver => {
                            Pdu::BindTransceiverResp(BindTransceiverResp::new(me, None))
                        }
                    };
                    let _ = session.respond(seq, status::ROK, pdu).await;
                    return Some((kind, client));
                }
                Ok(None) => {
                    tracing::warn!(system_id = %system_id, "SMPP bind refused: bad credentials");
                    let _ = session
                        .respond_header(resp_id, status::RINVPASWD, seq)
                        .await;
                    // One wrong password closes the connection: no guessing loop on one socket.
                    session.close();
                    return None;
                }
                Err(e) => {
                    tracing::error!(error = %e, "checking SMPP credentials failed");
                    let _ = session
                        .respond_header(resp_id, status::RBINDFAIL, seq)
                        .await;
                    session.close();
                    return None;
                }
            }
        }
    })
    .await;
    let Ok(Some((kind, client))) = bound else {
        session.close();
        return;
    };
    let conn_id = server
        .next_conn
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(system_id = %client.system_id, conn = conn_id, "SMPP client bound");
    if kind != Kind::Transmitter {
        if let Ok(mut m) = server.receivers.lock() {
            m.entry(client.system_id.clone())
                .or_default()
                .push(Receiver {
                    conn: conn_id,
                    session: session.clone(),
                });
        }
    }
    tokio::spawn(session.clone().keep_alive(
        Duration::from_secs(server.cfg.enquire_link_secs),
        Duration::from_secs(server.cfg.response_timeout_secs),
    ));
    let limiter = server.limiter(&client);
    let window = Arc::new(Semaphore::new(server.cfg.window.max(1) as usize));
    let client = Arc::new(client);
    loop {
        let c = tokio::select! {
            () = shutdown.cancelled() => {
                let _ = session.request(Pdu::Unbind, Duration::from_secs(2)).await;
                break;
            }
            () = session.closed() => break,
            c = incoming.recv() => match c { Some(c) => c, None => break },
        };
        let seq = c.sequence_number();
        match c.id() {
            CommandId::SubmitSm if kind == Kind::Receiver => {
                let _ = session
                    .respond_header(0x8000_0004, status::RINVBNDSTS, seq)
                    .await;
            }
            CommandId::SubmitSm => {
                if limiter.check().is_err() {
                    let _ = session
                        .respond_header(0x8000_0004, status::RTHROTTLED, seq)
                        .await;
                    continue;
                }
                let Ok(slot) = window.clone().acquire_owned().await else {
                    break;
                };
                let (state, server, session, client) = (
                    state.clone(),
                    server.clone(),
                    session.clone(),
                    client.clone(),
                );
                tokio::spawn(async move {
                    let (code, id) = submit(&state, &server, &client, &c).await;
                    if code == status::ROK {
                        let pdu = Pdu::SubmitSmResp(SubmitSmResp::new(wire::cstr(&id), Vec::new()));
                        let _ = session.respond(seq, code, pdu).await;
                    } else {
                        let _ = session.respond_header(0x8000_0004, code, seq).await;
                    }
                    drop(slot);
                });
            }
            CommandId::Unbind => {
                let _ = session.respond(seq, 0, Pdu::UnbindResp).await;
                break;
            }
            CommandId::BindReceiver | CommandId::BindTransmitter | CommandId::BindTransceiver => {
                let resp_id = u32::from(c.id()) | 0x8000_0000;
                let _ = session.respond_header(resp_id, status::RALYBND, seq).await;
            }
            _ => {
                let _ = session
                    .respond_header(wire::GENERIC_NACK, status::RINVCMDID, seq)
                    .await;
            }
        }
    }
    session.close();
    if let Ok(mut m) = server.receivers.lock() {
        if let Some(list) = m.get_mut(&client.system_id) {
            list.retain(|r| r.conn != conn_id);
        }
    }
    tracing::info!(system_id = %client.system_id, conn = conn_id, "SMPP client unbound");
}

/// Handles one `submit_sm`: its response status and message id.
async fn submit(
    state: &AppState,
    server: &Server,
    client: &ClientInfo,
    c: &Command,
) -> (u32, String) {
    let Some(Pdu::SubmitSm(s)) = c.pdu() else {
        return (status::RSYSERR, String::new());
    };
    let from = from_smpp(s.source_addr_ton, s.source_addr.as_str());
    let to = from_smpp(s.dest_addr_ton, s.destination_addr.as_str());
    if to.is_empty() {
        return (status::RINVDSTADR, String::new());
    }
    let payload = wire::tlv_bytes(s.tlvs(), wire::tag::MESSAGE_PAYLOAD);
    let sm = s.short_message().as_ref().to_vec();
    let incoming = Incoming {
        data_coding: u8::from(s.data_coding),
        esm_class: u8::from(s.esm_class),
        short_message: &sm,
        message_payload: payload.as_deref(),
        sar: wire::sar(s.tlvs()),
    };
    let rd = u8::from(s.registered_delivery) & 0x03;
    let key_source = format!("{from}\u{0}{to}");
    let part = match concat::to_part(&incoming, key_source, OffsetDateTime::now_utc()) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(system_id = %client.system_id, error = %e, "submit_sm refused");
            return (status::RINVMSGLEN, String::new());
        }
    };
    if part.total == 1 {
        let Some(text) = concat::text_of(&part) else {
            return (status::RX_P_APPN, String::new());
        };
        let id = uuid::Uuid::now_v7().to_string();
        let code = accept(state, client, id.clone(), &from, &to, text, rd, 1).await;
        return (code, id);
    }
    let (sequence, total) = (part.sequence, part.total);
    let parts = server.parts_of(state, &client.system_id).await;
    let mut guard = parts.lock().await;
    match guard.insert(part).await {
        Ok(Outcome::Duplicate { group } | Outcome::Pending { group }) => {
            (status::ROK, format!("{group}-{sequence}"))
        }
        Ok(Outcome::Complete { group, key, text }) => {
            let Some(text) = text else {
                guard.forget(&key).await;
                return (status::RX_P_APPN, String::new());
            };
            let code = accept(state, client, group.clone(), &from, &to, text, rd, total).await;
            if code != status::RSYSERR {
                // Committed, or refused for good: its parts are done with.
                guard.forget(&key).await;
            } else if let Err(e) = guard.reload().await {
                tracing::error!(error = %e, "reloading waiting SMPP parts failed");
            }
            (code, format!("{group}-{sequence}"))
        }
        Err(e) => {
            tracing::error!(error = %e, "storing an SMPP part failed");
            (status::RSYSERR, String::new())
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn accept(
    state: &AppState,
    client: &ClientInfo,
    id: String,
    from: &str,
    to: &str,
    text: String,
    registered_delivery: u8,
    parts: u8,
) -> u32 {
    let identity = if from.is_empty() {
        Some(format!("smpp:{}", client.system_id))
    } else {
        None
    };
    let msg = OutboundText {
        id: Some(id.clone()),
        to,
        from: (!from.is_empty()).then_some(from),
        text,
    };
    match accept_outbound_text(state, msg, None, identity.as_deref()).await {
        Ok(a) => {
            tracing::debug!(msg_id = %a.id, system_id = %client.system_id, status = %a.status, "SMPP submit committed");
            if registered_delivery != 0 {
                let (sid, mid) = (client.system_id.clone(), a.id.clone());
                let failures_only = registered_delivery == 2;
                let now = crate::clock::now_ms();
                let owed = state
                    .store
                    .writer()
                    .write(move |tx| {
                        tx.prepare_cached(
                            "INSERT OR IGNORE INTO smpp_receipts (message_id, system_id, parts, failures_only, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                        )?
                        .execute(rusqlite::params![mid, sid, i64::from(parts), failures_only, now])?;
                        Ok(())
                    })
                    .await;
                if let Err(e) = owed {
                    // The message is committed; only its receipt is lost.
                    tracing::error!(error = %e, msg_id = %a.id, "recording an owed SMPP receipt failed");
                }
            }
            status::ROK
        }
        Err(crate::Error::Invalid { field, .. }) => match field {
            "to" => status::RINVDSTADR,
            "from" => status::RINVSRCADR,
            _ => status::RINVMSGLEN,
        },
        Err(crate::Error::RateLimited(_)) => status::RTHROTTLED,
        Err(crate::Error::Refused(_)) => status::RX_R_APPN,
        Err(e) => {
            tracing::error!(error = %e, "accepting an SMPP submit failed");
            status::RSYSERR
        }
    }
}

/// Sends owed receipts until `shutdown`.
async fn receipts(state: AppState, server: Arc<Server>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RECEIPT_POLL) => {}
        }
        let due = state
            .store
            .read(|c| {
                let mut st = c.prepare_cached(
                    "SELECT r.message_id, r.system_id, r.parts, r.failures_only, m.status, m.sender, m.recipient, m.created_at, m.updated_at \
                     FROM smpp_receipts r JOIN messages m ON m.id = r.message_id \
                     WHERE m.status IN ('delivered', 'failed', 'dead', 'blocked') LIMIT 256",
                )?;
                let rows = st.query_map([], |r| {
                    Ok(Owed {
                        message_id: r.get(0)?,
                        system_id: r.get(1)?,
                        parts: r.get(2)?,
                        failures_only: r.get(3)?,
                        status: r.get(4)?,
                        sender: r.get(5)?,
                        recipient: r.get(6)?,
                        created_at: r.get(7)?,
                        updated_at: r.get(8)?,
                    })
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await;
        let due = match due {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "reading owed SMPP receipts failed");
                continue;
            }
        };
        for owed in due {
            let delivered = owed.status == "delivered";
            if !(delivered && owed.failures_only) {
                let Some(session) = server.receiver(&owed.system_id) else {
                    continue; // Sent when the client binds again.
                };
                if !send_receipts(&session, &owed, server.cfg.response_timeout_secs).await {
                    continue;
                }
            }
            let id = owed.message_id.clone();
            let r = state
                .store
                .writer()
                .write(move |tx| {
                    tx.prepare_cached("DELETE FROM smpp_receipts WHERE message_id = ?1")?
                        .execute(rusqlite::params![id])?;
                    Ok(())
                })
                .await;
            if let Err(e) = r {
                tracing::error!(error = %e, "deleting a sent SMPP receipt failed");
            }
        }
    }
}

struct Owed {
    message_id: String,
    system_id: String,
    parts: i64,
    failures_only: bool,
    status: String,
    sender: String,
    recipient: String,
    created_at: i64,
    updated_at: i64,
}

fn date(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(Receipt::date)
        .unwrap_or_else(|_| "0000000000".into())
}

/// One `deliver_sm` receipt per part; true when all were acknowledged.
async fn send_receipts(session: &Session, owed: &Owed, timeout_secs: u64) -> bool {
    let stat = match owed.status.as_str() {
        "delivered" => Stat::Delivered,
        "blocked" => Stat::Rejected,
        _ => Stat::Undeliverable,
    };
    let parts = owed.parts.clamp(1, 255);
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
            return false;
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
        match session
            .request(Pdu::DeliverSm(d), Duration::from_secs(timeout_secs))
            .await
        {
            Ok(c) if wire::status_of(&c) == status::ROK => {}
            _ => return false,
        }
    }
    true
}

fn addr(a: &str) -> (Ton, Npi, String) {
    match a.strip_prefix('+') {
        Some(d) => (Ton::International, Npi::Isdn, d.to_string()),
        None if a.bytes().all(|b| b.is_ascii_digit()) => (Ton::Unknown, Npi::Isdn, a.to_string()),
        None => (Ton::Alphanumeric, Npi::Unknown, a.to_string()),
    }
}
