//! The SMSC side: SMS applications bind to the gateway.
//!
//! * Bind: `system_id` and password are checked against `smpp_clients`
//!   (PBKDF2, see [`super::credentials`]); wrong ones get
//!   `ESME_RINVPASWD` and the connection is closed, and anything but a
//!   bind before binding gets `ESME_RINVBNDSTS`. With `tls_cert` /
//!   `tls_key` the listener speaks TLS only.
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
//! * Towards the client ([`super::outgoing`]): inbound messages to the
//!   numbers it owns and the receipts it asked for, as `deliver_sm` over
//!   its receiver or transceiver binds, up to `window` outstanding per
//!   connection.
//! * The client table is re-read every [`DIRECTORY_REFRESH`]: numbers
//!   added or changed with the CLI take effect, and the binds of a removed
//!   (or removed and re-added) client are closed.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use adapters::smpp::concat::{self, Incoming};
use adapters::smpp::status;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rusmpp::pdus::{BindReceiverResp, BindTransceiverResp, BindTransmitterResp, SubmitSmResp};
use rusmpp::{Command, CommandId, Pdu};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::SmppServerConfig;
use super::client::from_smpp;
use super::credentials::ClientInfo;
use super::owners::Owners;
use super::parts::{Outcome, Parts};
use super::session::Session;
use super::wire;
use crate::pipeline::Pipeline;
use crate::pipeline::status::StatusObserver;
use crate::pipeline::{OutboundText, accept_outbound_text};
use crate::store::Target;

/// How long a connection may take to bind (and to finish its TLS handshake).
const BIND_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the client table is re-read.
pub const DIRECTORY_REFRESH: Duration = Duration::from_secs(2);
/// How often a cluster node publishes which clients are not bound to it.
const BINDS_PUBLISHED: Duration = Duration::from_millis(250);

/// How a server connection is bound.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Kind {
    Transmitter,
    Receiver,
    Transceiver,
}

impl Kind {
    /// True when `deliver_sm` may go to this bind.
    pub(super) const fn receives(self) -> bool {
        matches!(self, Self::Receiver | Self::Transceiver)
    }
}

/// One bound connection of a client.
#[derive(Clone)]
pub(super) struct Bound {
    pub(super) conn: u64,
    pub(super) kind: Kind,
    pub(super) session: Arc<Session>,
    /// Outstanding `deliver_sm` towards the client (the server's `window`).
    pub(super) window: Arc<Semaphore>,
    /// `created_at` of the client row it bound as: a client removed and
    /// added again under the same id has a new one, and old binds go.
    created_at: i64,
}

impl Bound {
    /// A bind over `session` for unit tests of the senders.
    #[cfg(test)]
    pub(super) fn for_test(session: Arc<Session>, window: usize) -> Self {
        Self {
            conn: 0,
            kind: Kind::Transceiver,
            session,
            window: Arc::new(Semaphore::new(window)),
            created_at: 0,
        }
    }
}

/// The clients known from the table: who exists, who owns which number.
#[derive(Default)]
struct Directory {
    /// system_id → created_at.
    clients: HashMap<String, i64>,
    owners: Owners,
}

/// Owed receipts to look at: ids whose status just changed, or everything.
#[derive(Default)]
struct Hints {
    ids: Vec<String>,
    full: bool,
}

/// Most ids remembered between two receipt passes; beyond it the next
/// pass reads every owed receipt instead.
const MAX_HINTS: usize = 8192;

/// What the receipt sender should look at next, and its wake-up. The status
/// path holds it (as a [`StatusObserver`]); it holds nothing back, so no
/// reference cycle runs through it.
#[derive(Default)]
pub struct ReceiptHints {
    hints: Mutex<Hints>,
    wake: Notify,
}

impl ReceiptHints {
    /// Notes that a message's status changed: a receipt may be due.
    pub fn note(&self, id: &str) {
        {
            let mut h = lock(&self.hints);
            if h.ids.len() >= MAX_HINTS {
                h.full = true;
                h.ids.clear();
            } else if !h.full {
                h.ids.push(id.to_string());
            }
        }
        self.wake.notify_one();
    }

    /// Asks for a pass over every owed receipt (a client bound).
    pub(super) fn note_all(&self) {
        lock(&self.hints).full = true;
        self.wake.notify_one();
    }

    /// The ids noted since the last call, and whether a full pass was asked for.
    pub(super) fn take(&self) -> (Vec<String>, bool) {
        let mut h = lock(&self.hints);
        (std::mem::take(&mut h.ids), std::mem::take(&mut h.full))
    }

    /// Waits for the next note.
    pub(super) async fn notified(&self) {
        self.wake.notified().await;
    }
}

/// A final status of an outbound message may owe a server client its receipt.
impl StatusObserver for ReceiptHints {
    fn status_moved(
        &self,
        id: &str,
        outbound: bool,
        _before: crate::store::MessageStatus,
        status: crate::store::MessageStatus,
    ) {
        if outbound && status.is_final() {
            self.note(id);
        }
    }
}

/// Server-wide state shared by connections, the directory refresher and
/// the `deliver_sm` senders.
pub struct Server {
    pub(super) cfg: SmppServerConfig,
    region: phonenumber::country::Id,
    tls: Option<tokio_rustls::TlsAcceptor>,
    binds: Mutex<HashMap<String, Vec<Bound>>>,
    directory: RwLock<Directory>,
    limiters: Mutex<HashMap<String, Arc<DefaultDirectRateLimiter>>>,
    next_conn: std::sync::atomic::AtomicU64,
    /// Where the listener is bound, once it is (for health).
    listening: Mutex<Option<String>>,
    pub(super) receipts: Arc<ReceiptHints>,
    /// Inbound message id → parts already acknowledged by the client.
    pub(super) progress: Mutex<HashMap<String, Vec<bool>>>,
    /// Concatenation references held by long inbound messages in flight to
    /// a client (see `super::references`).
    pub(super) references: super::references::References,
    /// Held while the unbound clients are computed and published (a
    /// cluster), so a stale list never overwrites a newer one.
    publishing: Mutex<()>,
    /// On a cluster (PostgreSQL): other nodes may queue messages for a
    /// client this node's directory does not know yet (it refreshes every
    /// [`DIRECTORY_REFRESH`]); only a client seen and then removed is
    /// gone for good. `None` on SQLite (one process: unknown is removed).
    removed: Option<Mutex<std::collections::HashSet<String>>>,
    metrics: Arc<crate::core::metrics::Metrics>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere must not stop the SMPP side; the data stays usable.
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Server {
    /// A server for `cfg` (not yet listening): loads its TLS key pair and
    /// the client table, so a bad file fails the start, not the first bind.
    pub fn new(
        cfg: SmppServerConfig,
        store: &crate::store::Store,
        region: phonenumber::country::Id,
        metrics: Arc<crate::core::metrics::Metrics>,
    ) -> crate::Result<Self> {
        let tls = match (&cfg.tls_cert, &cfg.tls_key) {
            (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
            _ => None,
        };
        let s = Self {
            cfg,
            region,
            tls,
            binds: Mutex::new(HashMap::new()),
            directory: RwLock::new(Directory::default()),
            limiters: Mutex::new(HashMap::new()),
            next_conn: std::sync::atomic::AtomicU64::new(1),
            listening: Mutex::new(None),
            receipts: Arc::default(),
            progress: Mutex::new(HashMap::new()),
            references: Default::default(),
            publishing: Mutex::new(()),
            removed: store.is_postgres().then(Mutex::default),
            metrics,
        };
        let clients = store.smpp_clients_blocking()?;
        s.set_directory(&clients);
        Ok(s)
    }

    /// Installs a fresh client table; returns the ids whose binds must go
    /// (removed, or removed and added again).
    fn set_directory(&self, clients: &[ClientInfo]) -> Vec<String> {
        let pairs: Vec<(String, Vec<String>)> = clients
            .iter()
            .map(|c| (c.system_id.clone(), c.addresses.clone()))
            .collect();
        let (owners, skipped) = Owners::build(&pairs, self.region);
        for sid in skipped {
            tracing::warn!(system_id = %sid, "SMPP client has an address that is not a number or +prefix*; ignored");
        }
        let fresh: HashMap<String, i64> = clients
            .iter()
            .map(|c| (c.system_id.clone(), c.created_at))
            .collect();
        let gone = {
            let binds = lock(&self.binds);
            binds
                .iter()
                .filter(|(sid, list)| {
                    !list.is_empty()
                        && list
                            .iter()
                            .any(|b| fresh.get(sid.as_str()) != Some(&b.created_at))
                })
                .map(|(sid, _)| sid.clone())
                .collect()
        };
        if let Some(removed) = &self.removed {
            let mut r = lock(removed);
            if let Ok(d) = self.directory.read() {
                r.extend(
                    d.clients
                        .keys()
                        .filter(|c| !fresh.contains_key(*c))
                        .cloned(),
                );
            }
            r.retain(|c| !fresh.contains_key(c));
        }
        if let Ok(mut d) = self.directory.write() {
            *d = Directory {
                clients: fresh,
                owners,
            };
        }
        gone
    }

    /// True when a client with this id exists (as of the last refresh).
    pub(super) fn exists(&self, system_id: &str) -> bool {
        self.directory
            .read()
            .map(|d| d.clients.contains_key(system_id))
            .unwrap_or(true)
    }

    /// Tells the store which known clients have no receiving bind here
    /// (PostgreSQL: their inbound messages are left to other nodes).
    fn publish_unbound(&self, store: &crate::store::Store) {
        let _one_at_a_time = lock(&self.publishing);
        store.set_smpp_elsewhere(self.unbound_clients());
    }

    /// Known clients with no receiving bind here (on a cluster their
    /// inbound messages are left to the nodes where they are bound).
    fn unbound_clients(&self) -> Vec<String> {
        let bound = self.receiving_clients();
        self.directory
            .read()
            .map(|d| {
                d.clients
                    .keys()
                    .filter(|c| !bound.contains(c))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether a client this node does not know is gone for good (it was
    /// removed), not merely not yet seen (a cluster's newer client).
    pub(super) fn gone_for_good(&self, system_id: &str) -> bool {
        self.removed
            .as_ref()
            .is_none_or(|r| lock(r).contains(system_id))
    }

    /// The client that owns `to`, if any.
    pub fn owner_of(&self, to: &str) -> Option<String> {
        let d = self.directory.read().ok()?;
        if d.owners.is_empty() {
            return None;
        }
        d.owners.owner(to).map(str::to_string)
    }

    fn limiter(&self, client: &ClientInfo) -> Arc<DefaultDirectRateLimiter> {
        let rate = client.throughput.unwrap_or(self.cfg.throughput).max(0.001);
        let mut map = lock(&self.limiters);
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

    /// The receiving bind of `system_id` with the most free window, if one
    /// is up.
    pub(super) fn receiver(&self, system_id: &str) -> Option<Bound> {
        let mut map = lock(&self.binds);
        let list = map.get_mut(system_id)?;
        list.retain(|b| !b.session.is_closed());
        list.iter()
            .filter(|b| b.kind.receives())
            .max_by_key(|b| b.window.available_permits())
            .cloned()
    }

    /// Clients with at least one receiving bind up.
    pub(super) fn receiving_clients(&self) -> Vec<String> {
        lock(&self.binds)
            .iter()
            .filter(|(_, l)| {
                l.iter()
                    .any(|b| b.kind.receives() && !b.session.is_closed())
            })
            .map(|(sid, _)| sid.clone())
            .collect()
    }

    fn register(&self, system_id: &str, b: Bound) {
        let n = {
            let mut map = lock(&self.binds);
            let list = map.entry(system_id.to_string()).or_default();
            list.push(b);
            list.len()
        };
        self.gauge(system_id, n);
    }

    fn unregister(&self, system_id: &str, conn: u64) {
        let n = {
            let mut map = lock(&self.binds);
            let list = map.entry(system_id.to_string()).or_default();
            list.retain(|b| b.conn != conn && !b.session.is_closed());
            let n = list.len();
            if n == 0 {
                map.remove(system_id);
            }
            n
        };
        self.gauge(system_id, n);
    }

    fn gauge(&self, system_id: &str, n: usize) {
        self.metrics
            .smpp_server_binds
            .get_or_create(&crate::core::metrics::SmppClientLabels {
                system_id: system_id.to_string(),
            })
            .set(n as i64);
    }

    /// Closes every bind of `system_id` (its client was removed).
    fn close_binds(&self, system_id: &str) {
        let list = lock(&self.binds).remove(system_id).unwrap_or_default();
        for b in list {
            tracing::info!(system_id = %system_id, conn = b.conn, "SMPP client removed; closing its bind");
            tokio::spawn(async move {
                let _ = b
                    .session
                    .request(Pdu::Unbind, Duration::from_millis(500))
                    .await;
                b.session.close();
            });
        }
        self.gauge(system_id, 0);
    }

    /// Health: where it listens, and per client whether it is bound.
    pub fn health_json(&self) -> serde_json::Value {
        let mut clients: Vec<String> = self
            .directory
            .read()
            .map(|d| d.clients.keys().cloned().collect())
            .unwrap_or_default();
        clients.sort();
        let binds = lock(&self.binds);
        let per_client: serde_json::Map<String, serde_json::Value> = clients
            .into_iter()
            .map(|sid| {
                let live: Vec<&Bound> = binds
                    .get(&sid)
                    .map(|l| l.iter().filter(|b| !b.session.is_closed()).collect())
                    .unwrap_or_default();
                let receivers = live.iter().filter(|b| b.kind.receives()).count();
                let v = serde_json::json!({
                    "bound": !live.is_empty(),
                    "binds": live.len(),
                    "receivers": receivers,
                });
                (sid, v)
            })
            .collect();
        serde_json::json!({
            "listening": lock(&self.listening).clone(),
            "tls": self.tls.is_some(),
            "clients": per_client,
        })
    }
}

/// The multipart submits of every client, waiting for their missing
/// parts. Held by the listener task and its connections only, never by
/// [`Server`] (which the service state holds): the parts hold the service
/// state, and a state that held them back would never be dropped.
struct ClientParts {
    by_client: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Parts>>>>,
    timeout_secs: u64,
}

impl ClientParts {
    fn new(timeout_secs: u64) -> Self {
        Self {
            by_client: Mutex::new(HashMap::new()),
            timeout_secs,
        }
    }

    /// The waiting parts of `system_id`, reloaded from the store the first time.
    async fn of(
        &self,
        pipeline: &Arc<Pipeline>,
        system_id: &str,
    ) -> Arc<tokio::sync::Mutex<Parts>> {
        let existing = lock(&self.by_client).get(system_id).cloned();
        if let Some(p) = existing {
            return p;
        }
        let mut p = Parts::new(
            pipeline.clone(),
            format!("smpp-server:{system_id}"),
            String::new(),
            self.timeout_secs,
        );
        if let Err(e) = p.reload().await {
            tracing::error!(error = %e, "reloading waiting SMPP parts failed");
        }
        let p = Arc::new(tokio::sync::Mutex::new(p));
        lock(&self.by_client)
            .entry(system_id.to_string())
            .or_insert(p)
            .clone()
    }
}

/// The TLS server configuration from PEM files: the certificate chain
/// (leaf first) and its private key (PKCS#8, PKCS#1 or SEC1).
fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> crate::Result<tokio_rustls::TlsAcceptor> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, e: String| crate::Error::Config(format!("smpp.server.{what}: {e}"));
    let cert_pem =
        std::fs::read(cert).map_err(|e| crate::Error::io("read", cert.display().to_string(), e))?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("tls_cert", e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("tls_cert", "no CERTIFICATE in the file".into()));
    }
    let key_pem =
        std::fs::read(key).map_err(|e| crate::Error::io("read", key.display().to_string(), e))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| bad("tls_key", e.to_string()))?;
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad("tls_cert", e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| bad("tls_key", e.to_string()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// Re-reads the client table until `shutdown`: owners change, removed
/// clients lose their binds, and inbound messages queued for them are made
/// due so the queue dead-letters them now rather than after a backoff.
async fn directory_loop(pipeline: Arc<Pipeline>, server: Arc<Server>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(DIRECTORY_REFRESH) => {}
        }
        let clients = match pipeline.store.smpp_clients().await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "reading SMPP clients failed");
                continue;
            }
        };
        let gone = server.set_directory(&clients);
        // A new client is nobody's here until it binds (on a cluster).
        server.publish_unbound(&pipeline.store);
        for sid in gone {
            server.close_binds(&sid);
            if !server.exists(&sid) {
                make_due(&pipeline, &sid).await;
            }
        }
    }
}

/// On a cluster, tells the store every [`BINDS_PUBLISHED`] which clients
/// have no receiving bind here, so this node's delivery worker leaves
/// their inbound messages to a node where they are bound (instead of
/// claiming them only to fail the attempt and back off).
async fn publish_binds(pipeline: Arc<Pipeline>, server: Arc<Server>, shutdown: CancellationToken) {
    loop {
        server.publish_unbound(&pipeline.store);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(BINDS_PUBLISHED) => {}
        }
    }
}

/// Makes the queued inbound messages of `system_id` due now and wakes the
/// delivery worker (the client just bound, or is gone for good).
pub(super) async fn make_due(pipeline: &Arc<Pipeline>, system_id: &str) {
    let r = pipeline
        .store
        .make_due(Target::Smpp(system_id.to_string()))
        .await;
    match r {
        Ok(n) if n > 0 => pipeline.handoff.wake(),
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "rescheduling queued SMPP deliveries failed"),
    }
}

/// Listens until `shutdown`. Logs `smpp listening` with the bound address
/// (tests read it to find an ephemeral port).
pub async fn run(pipeline: Arc<Pipeline>, server: Arc<Server>, shutdown: CancellationToken) {
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
    *lock(&server.listening) = Some(local.clone());
    tracing::info!(addr = %local, tls = server.tls.is_some(), "smpp listening");
    let limit = Arc::new(Semaphore::new(server.cfg.max_connections.max(1)));
    let parts = Arc::new(ClientParts::new(server.cfg.reassembly_timeout_secs));
    let receipts = tokio::spawn(super::outgoing::receipts(
        pipeline.clone(),
        server.clone(),
        shutdown.clone(),
    ));
    let directory = tokio::spawn(directory_loop(
        pipeline.clone(),
        server.clone(),
        shutdown.clone(),
    ));
    if pipeline.store.is_postgres() {
        tokio::spawn(publish_binds(
            pipeline.clone(),
            server.clone(),
            shutdown.clone(),
        ));
    }
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
        let (pipeline, server, parts, shutdown) = (
            pipeline.clone(),
            server.clone(),
            parts.clone(),
            shutdown.clone(),
        );
        conns.spawn(async move {
            match server.tls.clone() {
                Some(acceptor) => {
                    match tokio::time::timeout(BIND_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => connection(pipeline, server, parts, tls, shutdown).await,
                        Ok(Err(e)) => {
                            tracing::warn!(peer = %peer, error = %e, "SMPP TLS handshake failed");
                        }
                        Err(_) => tracing::warn!(peer = %peer, "SMPP TLS handshake timed out"),
                    }
                }
                None => connection(pipeline, server, parts, stream, shutdown).await,
            }
            drop(permit);
        });
    }
    let _ = receipts.await;
    let _ = directory.await;
    // Connections see the shutdown token and unbind themselves.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
}

/// Bound state: nothing but a bind is accepted until the client binds with
/// good credentials (within [`BIND_TIMEOUT`]); a wrong password closes the
/// connection. The bind's kind and the client, once bound.
async fn await_bind(
    pipeline: &Pipeline,
    server: &Server,
    session: &Session,
    incoming: &mut mpsc::Receiver<Command>,
) -> Option<(Kind, ClientInfo)> {
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
            let checked = pipeline
                .store
                .verify_smpp_client(system_id.clone(), password.clone())
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
                    return None;
                }
                Err(e) => {
                    tracing::error!(error = %e, "checking SMPP credentials failed");
                    let _ = session
                        .respond_header(resp_id, status::RBINDFAIL, seq)
                        .await;
                    return None;
                }
            }
        }
    })
    .await;
    bound.ok().flatten()
}

/// One connection: the bind, then the bound client's commands until it
/// unbinds, the connection drops or the service stops.
async fn connection<S>(
    pipeline: Arc<Pipeline>,
    server: Arc<Server>,
    parts: Arc<ClientParts>,
    stream: S,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (session, mut incoming) = Session::start(stream);
    let Some((kind, client)) = await_bind(&pipeline, &server, &session, &mut incoming).await else {
        session.close();
        return;
    };
    let conn_id = server
        .next_conn
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(system_id = %client.system_id, conn = conn_id, kind = ?kind, "SMPP client bound");
    server.register(
        &client.system_id,
        Bound {
            conn: conn_id,
            kind,
            session: session.clone(),
            window: Arc::new(Semaphore::new(server.cfg.window.max(1) as usize)),
            created_at: client.created_at,
        },
    );
    if kind.receives() {
        // What waited for this client goes now: receipts, and inbound
        // messages whose next attempt lies in their backoff.
        server.receipts.note_all();
        // On a cluster, this node now claims them (before they are due).
        server.publish_unbound(&pipeline.store);
        make_due(&pipeline, &client.system_id).await;
    }
    tokio::spawn(session.clone().keep_alive(
        Duration::from_secs(server.cfg.enquire_link_secs),
        Duration::from_secs(server.cfg.response_timeout_secs),
    ));
    let client = Arc::new(client);
    let bound = BoundClient {
        pipeline,
        parts,
        session: session.clone(),
        client: client.clone(),
        kind,
    };
    serve_client(&server, bound, incoming, shutdown).await;
    session.close();
    server.unregister(&client.system_id, conn_id);
    tracing::info!(system_id = %client.system_id, conn = conn_id, "SMPP client unbound");
}

/// A bound client's connection, as its command loop uses it.
struct BoundClient {
    pipeline: Arc<Pipeline>,
    parts: Arc<ClientParts>,
    session: Arc<Session>,
    client: Arc<ClientInfo>,
    kind: Kind,
}

/// The commands of a bound client: `submit_sm` within its throughput and
/// the connection's window (each answered after its commit), `unbind`.
async fn serve_client(
    server: &Server,
    b: BoundClient,
    mut incoming: mpsc::Receiver<Command>,
    shutdown: CancellationToken,
) {
    let session = &b.session;
    let limiter = server.limiter(&b.client);
    let window = Arc::new(Semaphore::new(server.cfg.window.max(1) as usize));
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
            CommandId::SubmitSm if b.kind == Kind::Receiver => {
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
                let (pipeline, parts, session, client) = (
                    b.pipeline.clone(),
                    b.parts.clone(),
                    session.clone(),
                    b.client.clone(),
                );
                tokio::spawn(async move {
                    let (code, id) = submit(&pipeline, &parts, &client, &c).await;
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
}

async fn submit(
    pipeline: &Arc<Pipeline>,
    parts: &ClientParts,
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
        let code = accept(pipeline, client, id.clone(), &from, &to, text, rd, 1).await;
        return (code, id);
    }
    let (sequence, total) = (part.sequence, part.total);
    let parts = parts.of(pipeline, &client.system_id).await;
    let mut guard = parts.lock().await;
    match guard.insert(part).await {
        Ok(Outcome::Duplicate { group } | Outcome::Pending { group }) => {
            (status::ROK, format!("{group}-{sequence}"))
        }
        Ok(Outcome::Complete {
            group,
            key,
            content,
        }) => {
            // Outbound 8-bit data is not supported: refused, not lost.
            let adapters::sms::Content::Text(text) = content else {
                guard.forget(&key).await;
                return (status::RX_P_APPN, String::new());
            };
            let code = accept(pipeline, client, group.clone(), &from, &to, text, rd, total).await;
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
    pipeline: &Arc<Pipeline>,
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
    // An account sends as its tenant, under the same sender rules and
    // quota as the tenant's API keys; with tenants configured, an account
    // no tenant lists may not send at all.
    let tenants = &pipeline.tenants;
    let tenant = tenants.of_smpp(&client.system_id);
    if tenants.configured() && tenant.is_none() {
        return status::RX_R_APPN;
    }
    match accept_outbound_text(pipeline, msg, None, identity.as_deref(), tenant).await {
        Ok(a) => {
            tracing::debug!(msg_id = %a.id, system_id = %client.system_id, status = %a.status, "SMPP submit committed");
            if registered_delivery != 0 {
                let owed = pipeline
                    .store
                    .owe_smpp_receipt(
                        a.id.clone(),
                        client.system_id.clone(),
                        i64::from(parts),
                        registered_delivery == 2,
                    )
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
        Err(crate::Error::SenderNotAllowed) => status::RINVSRCADR,
        Err(crate::Error::RateLimited { .. } | crate::Error::QuotaExceeded { .. }) => {
            status::RTHROTTLED
        }
        Err(crate::Error::Refused(_)) => status::RX_R_APPN,
        Err(e) => {
            tracing::error!(error = %e, "accepting an SMPP submit failed");
            status::RSYSERR
        }
    }
}
