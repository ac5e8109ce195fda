//! One SMPP session over one connection, for either side.
//!
//! SMPP is symmetric once bound: both ends send requests, and responses
//! come back in any order, matched by sequence number. The engine runs a
//! reader task (frames in: responses complete the waiting request,
//! `enquire_link` is answered at once, undecodable PDUs get a
//! `generic_nack`, other requests go to the owner) and a writer task (one
//! queue of encoded PDUs, flushed when it runs empty, so a window of
//! submits shares few syscalls). The owner (a client bind or a server
//! connection) reads requests from the channel [`Session::start`] returns
//! and answers them with [`Session::respond`] when it is ready, e.g. after
//! a commit.
//!
//! The session knows no message content: it moves `Command`s and never
//! formats one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusmpp::{Command, CommandId, Pdu};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::wire::{self, Frame};
use adapters::smpp::status;

/// Requests from the peer waiting for their owner, at most.
const INCOMING_QUEUE: usize = 1024;
/// Encoded PDUs waiting for the socket, at most.
const OUTGOING_QUEUE: usize = 4096;

/// Why a request got no usable response.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SessionError {
    /// The connection is gone.
    #[error("SMPP connection closed")]
    Closed,
    /// No response within the timeout.
    #[error("no SMPP response within {0:?}")]
    Timeout(Duration),
    /// The peer answered `generic_nack`.
    #[error("SMPP peer answered generic_nack ({})", status::name(*.0))]
    Nack(u32),
}

type Waiters = Arc<Mutex<HashMap<u32, oneshot::Sender<Command>>>>;

/// A running session; cheap to share (`Arc`).
pub struct Session {
    out: mpsc::Sender<Vec<u8>>,
    waiting: Waiters,
    sequence: AtomicU32,
    closed: CancellationToken,
    last_rx: Arc<Mutex<Instant>>,
}

impl Session {
    /// Starts the reader and writer tasks on `stream`. The receiver yields
    /// the peer's requests (never responses, never `enquire_link`).
    pub fn start<S>(stream: S) -> (Arc<Self>, mpsc::Receiver<Command>)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (rd, wr) = tokio::io::split(stream);
        let (out_tx, out_rx) = mpsc::channel::<Vec<u8>>(OUTGOING_QUEUE);
        let (in_tx, in_rx) = mpsc::channel(INCOMING_QUEUE);
        let s = Arc::new(Self {
            out: out_tx,
            waiting: Arc::default(),
            sequence: AtomicU32::new(1),
            closed: CancellationToken::new(),
            last_rx: Arc::new(Mutex::new(Instant::now())),
        });
        tokio::spawn(write_loop(wr, out_rx, s.closed.clone()));
        tokio::spawn(read_loop(rd, s.clone(), in_tx));
        (s, in_rx)
    }

    /// A fresh sequence number (1..=0x7FFFFFFF, wrapping).
    fn next_sequence(&self) -> u32 {
        loop {
            let n = self.sequence.fetch_add(1, Ordering::Relaxed) & 0x7FFF_FFFF;
            if n != 0 {
                return n;
            }
        }
    }

    /// True once the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    /// Resolves when the connection is gone.
    pub async fn closed(&self) {
        self.closed.cancelled().await;
    }

    /// Closes the connection (pending requests fail with `Closed`).
    pub fn close(&self) {
        self.closed.cancel();
    }

    /// Time since the peer last sent anything.
    pub fn idle(&self) -> Duration {
        self.last_rx.lock().map(|t| t.elapsed()).unwrap_or_default()
    }

    /// Sends a request and waits for its response (any status: the caller
    /// reads `command_status`), or `generic_nack`, or the timeout.
    pub async fn request(
        self: &Arc<Self>,
        pdu: Pdu,
        timeout: Duration,
    ) -> Result<Command, SessionError> {
        self.start_request(pdu).await?.wait(timeout).await
    }

    /// Queues a request for the socket and returns at once with a handle to
    /// its response. Requests are written in the order of these calls, so a
    /// sender can keep a window of them outstanding (the parts of one
    /// message in order) and wait for the responses afterwards.
    pub async fn start_request(self: &Arc<Self>, pdu: Pdu) -> Result<Pending, SessionError> {
        let seq = self.next_sequence();
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.waiting.lock() {
            w.insert(seq, tx);
        }
        let bytes = wire::encode(&wire::command(0, seq, pdu));
        if self.is_closed() || self.out.send(bytes).await.is_err() {
            self.forget(seq);
            return Err(SessionError::Closed);
        }
        Ok(Pending {
            session: self.clone(),
            seq,
            rx,
        })
    }

    fn forget(&self, seq: u32) {
        if let Ok(mut w) = self.waiting.lock() {
            w.remove(&seq);
        }
    }

    /// Answers the peer's request `sequence` with a response PDU.
    pub async fn respond(&self, sequence: u32, status: u32, pdu: Pdu) -> Result<(), SessionError> {
        self.send_raw(wire::encode(&wire::command(status, sequence, pdu)))
            .await
    }

    /// Answers with a header-only PDU (an error response without a body,
    /// or `generic_nack`).
    pub async fn respond_header(
        &self,
        command_id: u32,
        status: u32,
        sequence: u32,
    ) -> Result<(), SessionError> {
        self.send_raw(wire::header_only(command_id, status, sequence))
            .await
    }

    async fn send_raw(&self, bytes: Vec<u8>) -> Result<(), SessionError> {
        if self.is_closed() {
            return Err(SessionError::Closed);
        }
        self.out.send(bytes).await.map_err(|_| SessionError::Closed)
    }

    /// Keeps the link alive until it closes: after `every` without traffic
    /// from the peer, sends `enquire_link`; no answer within `timeout`
    /// closes the session (the owner reconnects or forgets it).
    pub async fn keep_alive(self: Arc<Self>, every: Duration, timeout: Duration) {
        loop {
            let wait = every
                .saturating_sub(self.idle())
                .max(Duration::from_millis(50));
            tokio::select! {
                () = self.closed.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            if self.idle() < every {
                continue;
            }
            match self.request(Pdu::EnquireLink, timeout).await {
                Ok(_) | Err(SessionError::Nack(_)) => {}
                Err(_) => {
                    tracing::warn!("SMPP peer did not answer enquire_link; closing");
                    self.close();
                    return;
                }
            }
        }
    }
}

/// A request on the wire, waiting for its response.
pub struct Pending {
    session: Arc<Session>,
    seq: u32,
    rx: oneshot::Receiver<Command>,
}

impl Pending {
    /// Waits for the response, `generic_nack`, the timeout or the close.
    pub async fn wait(self, timeout: Duration) -> Result<Command, SessionError> {
        // Biased: a response that arrived just before the connection closed
        // (the peer answers, then unbinds) counts as answered.
        let answer = tokio::select! {
            biased;
            r = self.rx => r.map_err(|_| SessionError::Closed),
            () = tokio::time::sleep(timeout) => Err(SessionError::Timeout(timeout)),
            () = self.session.closed.cancelled() => Err(SessionError::Closed),
        };
        self.session.forget(self.seq);
        let c = answer?;
        if c.id() == CommandId::GenericNack {
            return Err(SessionError::Nack(wire::status_of(&c)));
        }
        Ok(c)
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    wr: W,
    mut rx: mpsc::Receiver<Vec<u8>>,
    closed: CancellationToken,
) {
    let mut w = BufWriter::with_capacity(64 * 1024, wr);
    loop {
        let bytes = tokio::select! {
            b = rx.recv() => match b { Some(b) => b, None => break },
            () = closed.cancelled() => break,
        };
        if w.write_all(&bytes).await.is_err() {
            break;
        }
        // Batch what is already queued into the same flush.
        let mut failed = false;
        while let Ok(more) = rx.try_recv() {
            if w.write_all(&more).await.is_err() {
                failed = true;
                break;
            }
        }
        if failed || w.flush().await.is_err() {
            break;
        }
    }
    // Whatever was queued before a close (an unbind_resp, a nack) goes out.
    while let Ok(more) = rx.try_recv() {
        if w.write_all(&more).await.is_err() {
            break;
        }
    }
    let _ = w.flush().await;
    let _ = w.shutdown().await;
    closed.cancel();
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut rd: R,
    s: Arc<Session>,
    to_owner: mpsc::Sender<Command>,
) {
    loop {
        let frame = tokio::select! {
            f = wire::read_frame(&mut rd) => f,
            () = s.closed.cancelled() => break,
        };
        if let Ok(mut t) = s.last_rx.lock() {
            *t = Instant::now();
        }
        let c = match frame {
            Ok(Some(Frame::Command(c))) => *c,
            Ok(Some(Frame::Undecodable {
                command_id,
                sequence,
            })) => {
                tracing::warn!(
                    command_id = format_args!("0x{command_id:08X}"),
                    sequence,
                    "undecodable SMPP PDU answered with generic_nack"
                );
                if command_id & 0x8000_0000 == 0 {
                    let _ = s
                        .respond_header(wire::GENERIC_NACK, status::RINVCMDLEN, sequence)
                        .await;
                }
                continue;
            }
            Ok(None) => break,
            Err(e) => {
                if let wire::FrameError::Length(_) = e {
                    // Framing is lost: say so, then hang up.
                    let _ = s
                        .respond_header(wire::GENERIC_NACK, status::RINVCMDLEN, 0)
                        .await;
                }
                tracing::debug!(error = %e, "SMPP connection ended");
                break;
            }
        };
        let raw_id = u32::from(c.id());
        if raw_id & 0x8000_0000 != 0 {
            // A response (or generic_nack): complete the request waiting for it.
            let waiter = s
                .waiting
                .lock()
                .ok()
                .and_then(|mut w| w.remove(&c.sequence_number()));
            if let Some(tx) = waiter {
                let _ = tx.send(c);
            }
            continue;
        }
        match c.id() {
            CommandId::EnquireLink => {
                let _ = s
                    .respond(c.sequence_number(), 0, Pdu::EnquireLinkResp)
                    .await;
            }
            _ => {
                if to_owner.send(c).await.is_err() {
                    break;
                }
            }
        }
    }
    s.close();
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn requests_match_responses_out_of_order_and_enquire_link_is_answered() {
        let (a, b) = tokio::io::duplex(4096);
        let (left, _left_in) = Session::start(a);
        let (right, mut right_in) = Session::start(b);
        // Two unbinds in flight; the right side answers the second first.
        let l1 = left.clone();
        let first =
            tokio::spawn(async move { l1.request(Pdu::Unbind, Duration::from_secs(2)).await });
        let l2 = left.clone();
        let second =
            tokio::spawn(async move { l2.request(Pdu::Unbind, Duration::from_secs(2)).await });
        let r1 = right_in.recv().await.unwrap();
        let r2 = right_in.recv().await.unwrap();
        right
            .respond(r2.sequence_number(), 0, Pdu::UnbindResp)
            .await
            .unwrap();
        right
            .respond(r1.sequence_number(), 0x08, Pdu::UnbindResp)
            .await
            .unwrap();
        let (a1, a2) = (
            first.await.unwrap().unwrap(),
            second.await.unwrap().unwrap(),
        );
        assert_ne!(wire::status_of(&a1), wire::status_of(&a2));
        // enquire_link never reaches the owner; it is answered by the engine.
        left.request(Pdu::EnquireLink, Duration::from_secs(2))
            .await
            .unwrap();
        // A request that gets no answer times out; a closed session fails fast.
        let e = left
            .request(Pdu::Unbind, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(matches!(e, SessionError::Timeout(_)));
        right.close();
        left.closed().await;
        assert!(matches!(
            left.request(Pdu::Unbind, Duration::from_secs(1)).await,
            Err(SessionError::Closed)
        ));
    }
}
