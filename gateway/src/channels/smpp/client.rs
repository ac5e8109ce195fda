//! The ESME side: binds to an SMSC, the `smpp:<name>` route, inbound
//! `deliver_sm` and delivery receipts.
//!
//! Sending: the delivery worker calls [`SmppRoute::send`] once per attempt.
//! It picks a bind that is up (round robin over `binds`), waits for the
//! bind's pace (`throughput`, and the slow-down after `ESME_RTHROTTLED` /
//! `ESME_RMSGQFUL`), takes a window slot per outstanding `submit_sm`, and
//! returns only when every part has its `submit_sm_resp` (a missing one is
//! a retry after `response_timeout_secs`). Parts the SMSC already accepted
//! are remembered for the message's next attempt, so a retry after part
//! *k* failed goes on with part *k* and sends no part twice. The SMSC's
//! message id of each part is committed to `smpp_parts` before the route
//! answers, so a receipt can always be matched.
//!
//! A `submit_sm` whose response never came may still have been accepted;
//! SMPP has no idempotency key, so its retry can duplicate that one part.
//! That is inherent to the protocol (Kannel and Jasmin behave the same).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use adapters::smpp::concat::{self, Incoming};
use adapters::smpp::status::{self, Class};
use adapters::smpp::{Receipt, SmPart, Stat};
use adapters::sms::Content as SmsContent;
use rusmpp::pdus::{
    BindReceiver, BindTransceiver, BindTransmitter, DeliverSm, DeliverSmResp, SubmitSm,
};
use rusmpp::tlvs::MessageSubmissionRequestTlvValue as SubTlv;
use rusmpp::types::{AnyOctetString, OctetString};
use rusmpp::values::{
    DataCoding, EsmClass, InterfaceVersion, MessagePayload, Npi, RegisteredDelivery, Ton,
};
use rusmpp::{Command, CommandId, Pdu};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::parts::{Outcome, Parts};
use super::session::{Session, SessionError};
use super::wire;
use super::{SmppClientConfig, Version};
use crate::delivery::route::{OutboundSms, Route, SendFuture, SendOutcome};
use crate::envelope::Content;
use crate::pipeline::Pipeline;
use crate::pipeline::{InboundMessage, accept_inbound};
use crate::store::{MessageStatus, PartReport, StatusReport, Store};

/// Adapter name of inbound SMPP messages in the store.
pub const ADAPTER: &str = "smpp";
/// A send that would wait longer than this for its bind's pace is retried
/// later by the queue instead of holding a delivery slot.
const MAX_PACE_WAIT: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_TRACKED: usize = 4096;

/// Per-bind pacing: the configured rate, and a pause after the SMSC said
/// "too fast" that doubles while it keeps saying so.
struct Pace {
    next_at: Instant,
    interval: Option<Duration>,
    pause_until: Instant,
    penalty: Duration,
}

/// One connection to the SMSC.
pub struct Bind {
    index: usize,
    session: RwLock<Option<Arc<Session>>>,
    window: Arc<Semaphore>,
    pace: tokio::sync::Mutex<Pace>,
    up: AtomicBool,
    /// For health: the last connect/bind error and when the bind last
    /// went up or down.
    health: Mutex<BindHealth>,
}

/// What `/healthz` shows of one bind.
#[derive(Default, Clone)]
struct BindHealth {
    last_error: Option<String>,
    last_error_at: Option<i64>,
    since: Option<i64>,
}

impl Bind {
    fn session(&self) -> Option<Arc<Session>> {
        self.session
            .read()
            .ok()
            .and_then(|s| s.clone())
            .filter(|s| !s.is_closed())
    }

    /// Waits for this bind's next send slot; `false` when that is too far away.
    async fn paced(&self) -> bool {
        let wait_until = {
            let mut p = self.pace.lock().await;
            let now = Instant::now();
            let at = p.next_at.max(p.pause_until).max(now);
            if at - now > MAX_PACE_WAIT {
                return false;
            }
            if let Some(i) = p.interval {
                p.next_at = at + i;
            }
            at
        };
        tokio::time::sleep_until(wait_until).await;
        true
    }

    /// The SMSC throttled us: pause the bind, longer each time in a row.
    async fn slow_down(&self, class: Class) {
        let mut p = self.pace.lock().await;
        let (first, cap) = match class {
            Class::QueueFull => (Duration::from_secs(10), Duration::from_secs(180)),
            _ => (Duration::from_secs(1), Duration::from_secs(30)),
        };
        p.penalty = if p.penalty.is_zero() {
            first
        } else {
            (p.penalty * 2).min(cap)
        };
        p.pause_until = Instant::now() + p.penalty;
        tracing::warn!(
            bind = self.index,
            pause_ms = p.penalty.as_millis() as u64,
            status = %if class == Class::QueueFull { "ESME_RMSGQFUL" } else { "ESME_RTHROTTLED" },
            "SMSC asked to slow down; bind paused"
        );
    }

    async fn recovered(&self) {
        let mut p = self.pace.lock().await;
        p.penalty = Duration::ZERO;
    }
}

/// The `smpp:<name>` route.
pub struct SmppRoute {
    name: String,
    cfg: SmppClientConfig,
    binds: Vec<Arc<Bind>>,
    next: AtomicUsize,
    sms: adapters::sms::SmsOptions,
    store: Store,
    /// Message id -> SMSC ids of the parts already accepted.
    progress: Mutex<HashMap<String, Vec<String>>>,
    /// Concatenation references held by long messages in flight.
    references: super::references::References,
    /// The TLS connector when `tls = true` (roots: `tls_ca` or the web PKI).
    tls: Option<tokio_rustls::TlsConnector>,
}

/// TON/NPI and digits of an address as SMPP wants it.
fn address(a: &str) -> (Ton, Npi, String) {
    if let Some(digits) = a.strip_prefix('+') {
        (Ton::International, Npi::Isdn, digits.to_string())
    } else if !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()) {
        (Ton::National, Npi::Isdn, a.to_string())
    } else if a.is_empty() {
        (Ton::Unknown, Npi::Unknown, String::new())
    } else {
        (Ton::Alphanumeric, Npi::Unknown, a.to_string())
    }
}

/// An address from a PDU back to our form: `+` for international numbers.
pub(super) fn from_smpp(ton: Ton, addr: &str) -> String {
    if ton == Ton::International && !addr.starts_with('+') {
        format!("+{addr}")
    } else {
        addr.to_string()
    }
}

pub(super) fn submit_pdu(
    from: &str,
    to: &str,
    part: &SmPart,
    registered_delivery: u8,
) -> Result<SubmitSm, String> {
    let (sts, snpi, src) = address(from);
    let (dton, dnpi, dst) = address(to);
    let short_message = OctetString::from_vec(part.short_message.clone())
        .map_err(|_| "short_message longer than 255 octets".to_string())?;
    let esm = if part.udhi {
        EsmClass::from(concat::ESM_UDHI)
    } else {
        EsmClass::from(0)
    };
    let mut sm = SubmitSm::builder()
        .source_addr_ton(sts)
        .source_addr_npi(snpi)
        .source_addr(wire::cstr(&src))
        .dest_addr_ton(dton)
        .dest_addr_npi(dnpi)
        .destination_addr(wire::cstr(&dst))
        .esm_class(esm)
        .registered_delivery(RegisteredDelivery::from(registered_delivery))
        .data_coding(DataCoding::from(part.data_coding))
        .short_message(short_message)
        .build();
    if let Some(s) = part.sar {
        sm.push_tlv(SubTlv::SarMsgRefNum(s.reference));
        sm.push_tlv(SubTlv::SarTotalSegments(s.total));
        sm.push_tlv(SubTlv::SarSegmentSeqnum(s.sequence));
    }
    if let Some(p) = &part.message_payload {
        sm.push_tlv(SubTlv::MessagePayload(MessagePayload::new(
            AnyOctetString::from_slice(p),
        )));
    }
    Ok(sm)
}

impl SmppRoute {
    /// The route and its (not yet running) binds; fails when the TLS
    /// settings cannot be loaded (`tls_ca`).
    pub fn new(
        cfg: &SmppClientConfig,
        sms: adapters::sms::SmsOptions,
        store: Store,
    ) -> crate::Result<Self> {
        let tls =
            if cfg.tls {
                Some(tls_connector(cfg.tls_ca.as_deref()).map_err(|e| {
                    crate::Error::Config(format!("smpp client {:?}: {e}", cfg.name))
                })?)
            } else {
                None
            };
        let interval =
            (cfg.throughput > 0.0).then(|| Duration::from_secs_f64(1.0 / cfg.throughput));
        let binds = (0..cfg.binds as usize)
            .map(|index| {
                Arc::new(Bind {
                    index,
                    session: RwLock::new(None),
                    window: Arc::new(Semaphore::new(cfg.window as usize)),
                    pace: tokio::sync::Mutex::new(Pace {
                        next_at: Instant::now(),
                        interval,
                        pause_until: Instant::now(),
                        penalty: Duration::ZERO,
                    }),
                    up: AtomicBool::new(false),
                    health: Mutex::new(BindHealth::default()),
                })
            })
            .collect();
        Ok(Self {
            tls,
            name: cfg.route_name(),
            cfg: cfg.clone(),
            binds,
            next: AtomicUsize::new(0),
            sms,
            store,
            progress: Mutex::new(HashMap::new()),
            references: Default::default(),
        })
    }

    /// The route name, `smpp:<name>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Binds that are up, for health.
    pub fn binds_up(&self) -> usize {
        self.binds
            .iter()
            .filter(|b| b.up.load(Ordering::Relaxed))
            .count()
    }

    /// Health of each bind: up or down since when, and the last error
    /// (connect, TLS, bind refusal or a lost connection; never content).
    pub fn health_json(&self) -> serde_json::Value {
        let binds: Vec<serde_json::Value> = self
            .binds
            .iter()
            .map(|b| {
                let h = b.health.lock().map(|h| h.clone()).unwrap_or_default();
                serde_json::json!({
                    "bind": b.index,
                    "up": b.up.load(Ordering::Relaxed),
                    "since": h.since.map(crate::core::clock::rfc3339_ms),
                    "last_error": h.last_error,
                    "last_error_at": h.last_error_at.map(crate::core::clock::rfc3339_ms),
                })
            })
            .collect();
        serde_json::json!({
            "host": self.cfg.host,
            "tls": self.cfg.tls,
            "up": self.binds_up(),
            "binds": binds,
        })
    }

    fn pick(&self) -> Option<(Arc<Bind>, Arc<Session>)> {
        if !self.cfg.bind.transmits() {
            return None;
        }
        let n = self.binds.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n).find_map(|i| {
            let b = &self.binds[(start + i) % n];
            b.session().map(|s| (b.clone(), s))
        })
    }

    fn remember(&self, id: &str, done: Vec<String>) {
        if let Ok(mut p) = self.progress.lock() {
            if p.len() > MAX_TRACKED {
                p.clear();
            }
            p.insert(id.to_string(), done);
        }
    }

    async fn send_message(&self, msg: OutboundSms<'_>) -> SendOutcome {
        let outcome = self.attempt(&msg).await;
        if !matches!(outcome, SendOutcome::Retry(_)) {
            self.references.release(msg.id, &msg.header.to);
        }
        outcome
    }

    /// The parts of a message, with a concatenation reference no other long
    /// message in flight to the same recipient holds (see `references`).
    fn encode(&self, msg: &OutboundSms<'_>) -> Result<Vec<SmPart>, SendOutcome> {
        let encode = |reference| {
            concat::encode(msg.text(), &self.sms, self.cfg.concatenation, reference)
                .map(|(_, parts)| parts)
                .map_err(|e| SendOutcome::Permanent(format!("encoding for SMPP: {e}")))
        };
        let wide = self.sms.wide_concat_reference
            || self.cfg.concatenation == adapters::smpp::Concatenation::Sar;
        self.references.parts(msg.id, &msg.header.to, wide, encode)
    }

    // Long on purpose: one attempt is one pass over the parts, and each early
    // return (pace, window, every status class) keeps the parts already
    // accepted for the retry; split, that progress would travel through
    // every helper.
    async fn attempt(&self, msg: &OutboundSms<'_>) -> SendOutcome {
        let parts = match self.encode(msg) {
            Ok(p) => p,
            Err(outcome) => return outcome,
        };
        let from = if msg.header.from.is_empty() {
            self.cfg.from.clone().unwrap_or_default()
        } else {
            msg.header.from.clone()
        };
        let Some((bind, session)) = self.pick() else {
            return SendOutcome::Retry(format!("no {} bind is up", self.name));
        };
        let mut done = self
            .progress
            .lock()
            .ok()
            .and_then(|mut p| p.remove(msg.id))
            .unwrap_or_default();
        if done.len() > parts.len() {
            done.clear();
        }
        let timeout = Duration::from_secs(self.cfg.response_timeout_secs);
        let rd = u8::from(self.cfg.registered_delivery);
        for part in parts.iter().skip(done.len()) {
            let pdu = match submit_pdu(&from, &msg.header.to, part, rd) {
                Ok(p) => p,
                Err(e) => return SendOutcome::Permanent(e),
            };
            if !bind.paced().await {
                self.remember(msg.id, done);
                return SendOutcome::Retry(format!("{} bind is paused by the SMSC", self.name));
            }
            let Ok(_slot) = bind.window.clone().acquire_owned().await else {
                return SendOutcome::Retry("bind closed".into());
            };
            let answer = session.request(Pdu::SubmitSm(pdu), timeout).await;
            let (code, resp) = match answer {
                Ok(c) => (wire::status_of(&c), Some(c)),
                Err(SessionError::Nack(code)) => (code, None),
                Err(e) => {
                    self.remember(msg.id, done);
                    return SendOutcome::Retry(format!("{}: {e}", self.name));
                }
            };
            match status::classify(code) {
                Class::Ok => {
                    let id = match resp.as_ref().and_then(Command::pdu) {
                        Some(Pdu::SubmitSmResp(r)) => r.message_id().as_str().to_string(),
                        _ => String::new(),
                    };
                    bind.recovered().await;
                    done.push(id);
                }
                c @ (Class::Throttled | Class::QueueFull) => {
                    bind.slow_down(c).await;
                    self.remember(msg.id, done);
                    return SendOutcome::Retry(format!("{}: {}", self.name, status::name(code)));
                }
                Class::Transient => {
                    self.remember(msg.id, done);
                    return SendOutcome::Retry(format!("{}: {}", self.name, status::name(code)));
                }
                Class::Permanent => {
                    return SendOutcome::Permanent(format!(
                        "{} refused the message: {}",
                        self.name,
                        status::name(code)
                    ));
                }
            }
        }
        // Map every part's SMSC id to the message before answering, so a
        // receipt that arrives next finds it.
        let mapped = self
            .store
            .map_smpp_parts(self.name.clone(), msg.id.to_string(), done.clone())
            .await;
        if let Err(e) = mapped {
            // The SMSC has the message: retrying would send it twice.
            tracing::error!(error = %e, msg_id = %msg.id, "storing SMSC message ids failed; its receipts will not match");
        }
        SendOutcome::Accepted {
            status: crate::store::MessageStatus::Sent,
            carrier_id: Some(done.join(",")),
        }
    }
}

impl Route for SmppRoute {
    fn send<'a>(&'a self, msg: OutboundSms<'a>) -> SendFuture<'a> {
        Box::pin(self.send_message(msg))
    }

    fn default_from(&self) -> Option<&str> {
        self.cfg.from.as_deref()
    }
}

/// Runs one bind until `shutdown`: connect, bind, serve, reconnect.
pub(super) async fn run_bind(
    pipeline: Arc<Pipeline>,
    route: Arc<SmppRoute>,
    index: usize,
    password: String,
    parts: Arc<tokio::sync::Mutex<Parts>>,
    shutdown: CancellationToken,
) {
    let Some(bind) = route.binds.get(index).cloned() else {
        return;
    };
    let max = Duration::from_secs(route.cfg.reconnect_max_secs.max(1));
    let mut backoff = FIRST_BACKOFF;
    let gauge = pipeline
        .metrics
        .smpp_bind_up
        .get_or_create(&crate::core::metrics::SmppBindLabels {
            route: route.name.clone(),
            bind: index.to_string(),
        })
        .clone();
    let note = |up: bool, error: Option<String>| {
        if let Ok(mut h) = bind.health.lock() {
            let now = crate::core::clock::now_ms();
            if up != bind.up.load(Ordering::Relaxed) || h.since.is_none() {
                h.since = Some(now);
            }
            if let Some(e) = error {
                h.last_error = Some(e);
                h.last_error_at = Some(now);
            }
        }
        bind.up.store(up, Ordering::Relaxed);
        gauge.set(i64::from(up));
    };
    note(false, None);
    loop {
        let was_up = match connect_and_bind(&route, &password).await {
            Ok((session, incoming)) => {
                tracing::info!(route = %route.name, bind = index, "SMPP bound");
                if let Ok(mut s) = bind.session.write() {
                    *s = Some(session.clone());
                }
                note(true, None);
                serve(&pipeline, &route, &session, incoming, &parts, &shutdown).await;
                note(
                    false,
                    (!shutdown.is_cancelled()).then(|| "connection lost".to_string()),
                );
                if let Ok(mut s) = bind.session.write() {
                    *s = None;
                }
                true
            }
            Err(e) => {
                tracing::warn!(route = %route.name, bind = index, error = %e, "SMPP bind failed; will retry");
                note(false, Some(e));
                false
            }
        };
        if shutdown.is_cancelled() {
            return;
        }
        if was_up {
            tracing::warn!(route = %route.name, bind = index, "SMPP connection lost; reconnecting");
            backoff = FIRST_BACKOFF;
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(max);
    }
}

// Long on purpose: connect, TLS, bind and the bind's health bookkeeping,
// in the order the SMSC sees them, with one error path per step.
async fn connect_and_bind(
    route: &SmppRoute,
    password: &str,
) -> Result<(Arc<Session>, tokio::sync::mpsc::Receiver<Command>), String> {
    let cfg = &route.cfg;
    let tcp = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect(&cfg.host),
    )
    .await
    .map_err(|_| "connect timed out".to_string())?
    .map_err(|e| format!("connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let (session, incoming) = if cfg.tls {
        let host = cfg
            .tls_server_name
            .clone()
            .or_else(|| {
                crate::channels::smpp::config::split_host(&cfg.host).map(|(h, _)| h.to_string())
            })
            .unwrap_or_default();
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host)
            .map_err(|e| format!("TLS server name: {e}"))?;
        let Some(connector) = route.tls.clone() else {
            return Err("TLS connector missing".into());
        };
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        Session::start(tls)
    } else {
        Session::start(tcp)
    };
    let version = match cfg.version {
        Version::V34 => InterfaceVersion::Smpp3_4,
        Version::V50 => InterfaceVersion::Smpp5_0,
    };
    let (system_id, pw, system_type) = (
        wire::cstr(&cfg.system_id),
        wire::cstr(password),
        wire::cstr(&cfg.system_type),
    );
    let range = wire::cstr("");
    let pdu = match cfg.bind {
        super::BindType::Transmitter => Pdu::BindTransmitter(BindTransmitter::new(
            system_id,
            pw,
            system_type,
            version,
            Ton::Unknown,
            Npi::Unknown,
            range,
        )),
        super::BindType::Receiver => Pdu::BindReceiver(BindReceiver::new(
            system_id,
            pw,
            system_type,
            version,
            Ton::Unknown,
            Npi::Unknown,
            range,
        )),
        super::BindType::Transceiver => Pdu::BindTransceiver(BindTransceiver::new(
            system_id,
            pw,
            system_type,
            version,
            Ton::Unknown,
            Npi::Unknown,
            range,
        )),
    };
    let resp = session
        .request(pdu, Duration::from_secs(cfg.response_timeout_secs))
        .await
        .map_err(|e| e.to_string())?;
    let code = wire::status_of(&resp);
    if code != status::ROK {
        session.close();
        return Err(format!("SMSC refused the bind: {}", status::name(code)));
    }
    tokio::spawn(session.clone().keep_alive(
        Duration::from_secs(cfg.enquire_link_secs),
        Duration::from_secs(cfg.response_timeout_secs),
    ));
    Ok((session, incoming))
}

/// The TLS client configuration: the certificates of `ca` (a PEM file) as
/// the only roots when given (a private SMSC, or a test's self-signed
/// certificate), else the web PKI roots.
fn tls_connector(ca: Option<&std::path::Path>) -> Result<tokio_rustls::TlsConnector, String> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| format!("tls_ca {}: {e}", path.display()))?;
            let mut n = 0;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| format!("tls_ca {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("tls_ca {}: {e}", path.display()))?;
                n += 1;
            }
            if n == 0 {
                return Err(format!(
                    "tls_ca {}: no CERTIFICATE in the file",
                    path.display()
                ));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}

async fn serve(
    pipeline: &Arc<Pipeline>,
    route: &Arc<SmppRoute>,
    session: &Arc<Session>,
    mut incoming: tokio::sync::mpsc::Receiver<Command>,
    parts: &Arc<tokio::sync::Mutex<Parts>>,
    shutdown: &CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(route.cfg.window.max(1) as usize));
    loop {
        let deadline = parts.lock().await.next_deadline();
        let expire_in = deadline
            .map(|d| Duration::try_from(d - OffsetDateTime::now_utc()).unwrap_or(Duration::ZERO))
            .unwrap_or(Duration::from_secs(3600));
        // Biased, requests before the close: a receipt the SMSC wrote just
        // before it hung up is still applied (its response cannot go out,
        // but a repeated receipt is recognised if the SMSC sends it again).
        // The channel ends once the reader is gone, so this loop ends too.
        tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                let _ = session.request(Pdu::Unbind, Duration::from_secs(2)).await;
                session.close();
                return;
            }
            c = incoming.recv() => {
                let Some(c) = c else { return };
                let seq = c.sequence_number();
                match c.id() {
                    CommandId::DeliverSm => {
                        let Ok(slot) = slots.clone().acquire_owned().await else { return };
                        let (pipeline, route, session, parts) =
                            (pipeline.clone(), route.clone(), session.clone(), parts.clone());
                        tokio::spawn(async move {
                            let code = on_deliver(&pipeline, &route, c, &parts).await;
                            let _ = session
                                .respond(seq, code, Pdu::DeliverSmResp(DeliverSmResp::default()))
                                .await;
                            drop(slot);
                        });
                    }
                    CommandId::Unbind => {
                        let _ = session.respond(seq, 0, Pdu::UnbindResp).await;
                        session.close();
                        return;
                    }
                    // No response is defined for alert_notification.
                    CommandId::AlertNotification => {}
                    _ => {
                        let _ = session
                            .respond_header(wire::GENERIC_NACK, status::RINVCMDID, seq)
                            .await;
                    }
                }
            }
            () = session.closed() => return,
            () = tokio::time::sleep(expire_in) => {
                expire(pipeline, route, parts).await;
            }
        }
    }
}

/// A carrier id for an inbound message that an SMSC retry maps to the
/// same value: SMPP gives inbound messages no id, so it is a hash of what
/// arrived and a ten-minute time bucket (a retry comes within seconds; an
/// identical text from the same sender later is a new message).
fn inbound_carrier_id(route: &str, fields: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for f in fields {
        h.update((f.len() as u64).to_be_bytes());
        h.update(f);
    }
    let bucket = crate::core::clock::now_ms() / 600_000;
    h.update(bucket.to_be_bytes());
    format!("{route}:{}", hex::encode(&h.finalize()[..16]))
}

/// Handles one `deliver_sm`; the `command_status` of its response, given
/// only after the commit.
async fn on_deliver(
    pipeline: &Arc<Pipeline>,
    route: &SmppRoute,
    c: Command,
    parts: &Arc<tokio::sync::Mutex<Parts>>,
) -> u32 {
    let Some(Pdu::DeliverSm(d)) = c.pdu() else {
        return status::RSYSERR;
    };
    let esm = u8::from(d.esm_class);
    if esm & 0x3C == concat::ESM_RECEIPT || esm & 0x3C == 0x20 {
        return on_receipt(pipeline, route, d).await;
    }
    let from = from_smpp(d.source_addr_ton, d.source_addr.as_str());
    let mut to = from_smpp(d.dest_addr_ton, d.destination_addr.as_str());
    if to.is_empty() {
        to = route.cfg.number.clone().unwrap_or_default();
    }
    let payload = wire::tlv_bytes(d.tlvs(), wire::tag::MESSAGE_PAYLOAD);
    let sm = d.short_message().as_ref().to_vec();
    let incoming = Incoming {
        data_coding: u8::from(d.data_coding),
        esm_class: esm,
        short_message: &sm,
        message_payload: payload.as_deref(),
        sar: wire::sar(d.tlvs()),
    };
    let part = match concat::to_part(
        &incoming,
        format!("{from}\u{0}{to}"),
        OffsetDateTime::now_utc(),
    ) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(route = %route.name, error = %e, "undecodable inbound deliver_sm refused");
            return status::RX_P_APPN;
        }
    };
    if part.total == 1 {
        let content = super::parts::content_of(&part);
        let id = inbound_carrier_id(
            &route.name,
            &[
                from.as_bytes(),
                to.as_bytes(),
                &[incoming.data_coding],
                &part.body.data,
            ],
        );
        return commit_inbound(pipeline, route, id, &from, &to, content).await;
    }
    let mut guard = parts.lock().await;
    match guard.insert(part).await {
        Ok(Outcome::Duplicate { .. } | Outcome::Pending { .. }) => status::ROK,
        Ok(Outcome::Complete { key, content, .. }) => {
            let code = commit_complete(pipeline, route, &key, content).await;
            if code == status::ROK || code == status::RX_P_APPN {
                guard.forget(&key).await;
            } else if let Err(e) = guard.reload().await {
                tracing::error!(error = %e, "reloading waiting SMPP parts failed");
            }
            code
        }
        Err(e) => {
            tracing::error!(route = %route.name, error = %e, "storing an SMPP part failed");
            status::RX_T_APPN
        }
    }
}

/// Commits a reassembled message. Its carrier id comes from the part key
/// (sender, recipient, reference, count) and the content, so the live
/// path and a reload after a crash give the same id.
async fn commit_complete(
    pipeline: &Arc<Pipeline>,
    route: &SmppRoute,
    key: &super::parts::Key,
    content: SmsContent,
) -> u32 {
    let (from, to) = key.0.split_once('\u{0}').unwrap_or((key.0.as_str(), ""));
    let id = inbound_carrier_id(
        &route.name,
        &[
            from.as_bytes(),
            to.as_bytes(),
            &key.1.to_be_bytes(),
            &[key.2],
            octets(&content),
        ],
    );
    commit_inbound(pipeline, route, id, from, to, content).await
}

/// What an inbound message's carrier id hashes: the text's bytes or the
/// data's octets.
fn octets(c: &SmsContent) -> &[u8] {
    match c {
        SmsContent::Text(t) => t.as_bytes(),
        SmsContent::Binary(b) => b,
    }
}

async fn commit_inbound(
    pipeline: &Arc<Pipeline>,
    route: &SmppRoute,
    carrier_id: String,
    from: &str,
    to: &str,
    content: SmsContent,
) -> u32 {
    let msg = InboundMessage {
        adapter: ADAPTER,
        carrier_id,
        from: from.to_string(),
        to: to.to_string(),
        content: Content::from(content),
    };
    match accept_inbound(pipeline, msg).await {
        Ok(o) => {
            tracing::debug!(route = %route.name, msg_id = %o.id, duplicate = o.duplicate, "inbound SMPP message committed");
            status::ROK
        }
        Err(crate::Error::Invalid { field, .. }) => {
            tracing::warn!(route = %route.name, field, "inbound SMPP message refused as invalid");
            status::RX_P_APPN
        }
        Err(crate::Error::Refused(_)) => status::RX_R_APPN,
        Err(e) => {
            // Not committed: the SMSC keeps it and retries.
            tracing::error!(route = %route.name, error = %e, "committing an inbound SMPP message failed");
            status::RX_T_APPN
        }
    }
}

/// Rebuilds the route's waiting parts from the store and commits messages
/// that were complete already (a crash between storing the last part and
/// committing the message). Their carrier id is the one the live path
/// gives, so an SMSC that re-sent the last part meanwhile does not make a
/// second message.
pub(super) async fn reload_parts(
    pipeline: &Arc<Pipeline>,
    route: &SmppRoute,
    parts: &Arc<tokio::sync::Mutex<Parts>>,
) {
    let mut guard = parts.lock().await;
    let complete = match guard.reload().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "reloading waiting SMPP parts failed");
            return;
        }
    };
    for (_, key, content) in complete {
        let code = commit_complete(pipeline, route, &key, content).await;
        if code == status::ROK || code == status::RX_P_APPN {
            guard.forget(&key).await;
        }
    }
}

async fn expire(
    pipeline: &Arc<Pipeline>,
    route: &SmppRoute,
    parts: &Arc<tokio::sync::Mutex<Parts>>,
) {
    let mut guard = parts.lock().await;
    for (_, key, content) in guard.expire() {
        let (from, to) = key.0.split_once('\u{0}').unwrap_or((key.0.as_str(), ""));
        let (from, to) = (from.to_string(), to.to_string());
        let id = inbound_carrier_id(
            &route.name,
            &[
                b"incomplete",
                from.as_bytes(),
                &key.1.to_be_bytes(),
                &[key.2],
                octets(&content),
            ],
        );
        tracing::info!(route = %route.name, total = key.2, "incomplete SMPP multipart message delivered as it is");
        commit_inbound(pipeline, route, id, &from, &to, content).await;
        guard.forget(&key).await;
    }
}

/// Applies a delivery receipt. Answers `ESME_ROK` also for receipts of
/// unknown messages (nothing will ever match them; a retry would not
/// help), and `ESME_RX_T_APPN` when the store failed, so the SMSC retries.
async fn on_receipt(pipeline: &Arc<Pipeline>, route: &SmppRoute, d: &DeliverSm) -> u32 {
    let sm = d.short_message().as_ref().to_vec();
    let text = if sm.is_empty() {
        wire::tlv_bytes(d.tlvs(), wire::tag::MESSAGE_PAYLOAD).unwrap_or_default()
    } else {
        sm
    };
    let parsed = Receipt::parse(&text).ok();
    let id = wire::receipted_message_id(d.tlvs())
        .filter(|s| !s.is_empty())
        .or_else(|| parsed.as_ref().map(|r| r.id.clone()));
    let stat = wire::message_state(d.tlvs())
        .and_then(Stat::from_message_state)
        .or_else(|| parsed.as_ref().map(|r| r.stat));
    let (Some(id), Some(stat)) = (id, stat) else {
        tracing::warn!(route = %route.name, "delivery receipt without id or state ignored");
        return status::ROK;
    };
    let Some(outcome) = stat.gateway_status().and_then(MessageStatus::reported) else {
        return status::ROK;
    };
    // The network error code, kept short (it comes from the SMSC's text).
    let err: String = parsed
        .and_then(|r| r.err)
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    // The mapping is committed before the route answers the delivery
    // worker, but the receipt can overtake that answer: look a few times.
    let forms = adapters::smpp::receipt::id_forms(&id);
    let mut found = None;
    for _ in 0..25 {
        match pipeline
            .store
            .smpp_part(route.name.clone(), forms.clone())
            .await
        {
            Ok(Some(row)) => {
                found = Some(row);
                break;
            }
            Ok(None) => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(e) => {
                tracing::error!(error = %e, "looking up an SMPP receipt failed");
                return status::RX_T_APPN;
            }
        }
    }
    let Some((smsc_id, msg_id)) = found else {
        tracing::debug!(route = %route.name, "delivery receipt for an unknown SMSC message id");
        return status::ROK;
    };
    // The part is marked; the message is delivered when all its parts
    // are, failed at its first failed part (the status path counts them,
    // in any order, and a receipt that overtakes the worker's own `sent`
    // is not undone by it).
    let report = StatusReport {
        status: outcome,
        detail: Some(format!("smpp receipt: {} err:{err}", stat.word())),
        carrier_id: None,
        part: Some(PartReport::Smpp {
            route: route.name.clone(),
            smsc_id,
        }),
        finish_queue: false,
    };
    match pipeline.status.report(msg_id.clone(), report).await {
        Ok(_) => status::ROK,
        Err(e) => {
            tracing::error!(error = %e, msg_id = %msg_id, "recording an SMPP receipt failed");
            status::RX_T_APPN
        }
    }
}
