//! What keeps hostile load from starving real traffic, in front of every
//! route but `/healthz`, in this order:
//!
//! 1. **The body is read first, against a deadline** (`[http]
//!    body_read_timeout_secs`, less up to a fifth at random): a client that dribbles its body is answered
//!    408 and its connection closed after a few seconds, instead of holding
//!    a handler slot until the request timeout. Handlers then get the whole
//!    body at once (webhook signatures are checked over it).
//! 2. **Slow bodies are capped per peer address** (`[http]
//!    max_slow_bodies_per_peer`): a body that is not all there within a
//!    short grace needs one of its address's slots to go on waiting; beyond
//!    the cap the request is answered 503 and closed. A fast, complete
//!    request (a carrier's signed webhook arrives in one or two packets) is
//!    read within the grace and never needs a slot, so a flood of slow
//!    bodies from a carrier's own address, or one it shares, does not
//!    shut the carrier out. The cap applies to every route: an API request
//!    is not known to be authenticated before its handler runs.
//! 3. **One global in-flight limit** (`[http] max_in_flight`), taken only
//!    once the body is here: requests being handled at once, across all
//!    routes (a `Router::layer` would give each route its own limit);
//!    beyond it, 503 with Retry-After at once, not a queue.
//!
//! Connections themselves are bounded by the accept loop (`server.rs`:
//! `max_connections`, the header deadline).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use rand::Rng;
use tokio::sync::Semaphore;

use super::config::HttpConfig;
use super::error::ApiError;
use crate::core::metrics::{Metrics, OutcomeLabels};

/// How long a body may take before it counts as slow and needs a slot of
/// its peer: long enough for a complete request on a loaded machine, short
/// enough that a flood waits little for its 503.
const GRACE: Duration = Duration::from_millis(250);

/// The peer's address, put on each request by the accept loop (absent when
/// the router is called without a socket, as tests do: no per-peer cap).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// Counted slots per peer address, up to a cap each: slow bodies here,
/// connections in the accept loop.
pub struct PeerSlots {
    taken: Mutex<HashMap<IpAddr, usize>>,
    cap: usize,
}

impl PeerSlots {
    /// Up to `cap` slots per address.
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            taken: Mutex::new(HashMap::new()),
            cap,
        })
    }

    /// One of `ip`'s slots, if it has one left; given back on drop.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Option<PeerSlot> {
        let mut taken = self.taken.lock().ok()?;
        let n = taken.entry(ip).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            slots: self.clone(),
            ip,
        })
    }
}

/// A slot of one peer address, given back when dropped.
pub struct PeerSlot {
    slots: Arc<PeerSlots>,
    ip: IpAddr,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        if let Ok(mut taken) = self.slots.taken.lock() {
            if let Some(n) = taken.get_mut(&self.ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    taken.remove(&self.ip);
                }
            }
        }
    }
}

/// The limits, shared by every route.
pub struct Guard {
    metrics: Arc<Metrics>,
    in_flight: Arc<Semaphore>,
    slow: Arc<PeerSlots>,
    deadline: Duration,
    max_body: usize,
}

impl Guard {
    /// The limits of `[http]`, counted in `metrics`.
    pub fn new(http: &HttpConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            in_flight: Arc::new(Semaphore::new(http.max_in_flight)),
            slow: PeerSlots::new(http.max_slow_bodies_per_peer),
            deadline: Duration::from_secs(http.body_read_timeout_secs),
            max_body: http.max_body_bytes,
        }
    }
}

/// Why a body was not read.
enum BodyError {
    /// Over `max_body_bytes`: 413.
    TooLarge,
    /// The client went away or sent garbage: 400.
    Broken,
    /// Slow, and its peer has no slow-body slot left: 503.
    Busy,
    /// Not all there by the deadline: 408.
    Timeout,
}

impl BodyError {
    /// The answer, after which the connection closes.
    fn answer(self, metrics: &Metrics) -> Response {
        let reason = match self {
            Self::TooLarge | Self::Broken => None,
            Self::Busy => Some("slow_body_peer"),
            Self::Timeout => Some("body_timeout"),
        };
        if let Some(outcome) = reason {
            metrics
                .http_refused
                .get_or_create(&OutcomeLabels { outcome })
                .inc();
        }
        match self {
            Self::TooLarge => closing(ApiError::TooLarge),
            Self::Broken => closing(ApiError::BadRequest(
                "the request body could not be read".into(),
            )),
            Self::Busy => closing(ApiError::Unavailable(1)),
            Self::Timeout => body_timeout(),
        }
    }
}

/// Reads `body` into memory, at most `max` bytes.
async fn collect(body: Body, max: usize) -> Result<Bytes, BodyError> {
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| BodyError::Broken)?;
        if buf.len() + chunk.len() > max {
            return Err(BodyError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

/// An error answer after which the connection is closed: its request body
/// was not read to the end, and a client that dribbles gets no second go
/// on the same connection.
fn closing(resp: impl IntoResponse) -> Response {
    let mut resp = resp.into_response();
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

fn body_timeout() -> Response {
    closing(ApiError::BodyTimeout)
}

/// Reads the body within the grace, else with a slot of its peer within
/// the deadline.
async fn read_body(g: &Arc<Guard>, peer: Option<IpAddr>, body: Body) -> Result<Bytes, BodyError> {
    let mut reading = std::pin::pin!(collect(body, g.max_body));
    if let Ok(r) = tokio::time::timeout(GRACE, &mut reading).await {
        return r;
    }
    let _slot = match peer {
        Some(ip) => match g.slow.take(ip) {
            Some(s) => Some(s),
            None => {
                tracing::debug!(peer = %ip, "too many slow bodies from one address; refused");
                return Err(BodyError::Busy);
            }
        },
        None => None,
    };
    // 80 to 100 % of the deadline, at random: a flood that opened its
    // connections together is not cut off (and does not come back) all at
    // once, which would crowd out real requests for that moment.
    let deadline = g.deadline.mul_f64(rand::rng().random_range(0.8..=1.0));
    tokio::time::timeout(deadline.saturating_sub(GRACE), reading)
        .await
        .unwrap_or(Err(BodyError::Timeout))
}

/// The middleware: body first (deadline, per-peer cap), then the global
/// in-flight limit, then the handler.
pub async fn guard(State(g): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<PeerAddr>().map(|p| p.0.ip());
    // A body announced larger than the limit is refused before a byte of
    // it is waited for.
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > g.max_body as u64) {
        return BodyError::TooLarge.answer(&g.metrics);
    }
    let (parts, body) = req.into_parts();
    let bytes = match read_body(&g, peer, body).await {
        Ok(b) => b,
        Err(e) => return e.answer(&g.metrics),
    };
    let Ok(_permit) = g.in_flight.clone().try_acquire_owned() else {
        g.metrics
            .http_refused
            .get_or_create(&OutcomeLabels {
                outcome: "in_flight",
            })
            .inc();
        return ApiError::Unavailable(1).into_response();
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
