//! One open connection to a modem (serial device or TCP modem server) with
//! the sans-IO engine on top: write commands, read events, keep URCs aside.

use std::collections::VecDeque;
use std::time::Duration;

use adapters::at::{Command, Event, Parser, Reply, SendAction, SendPdu, Urc};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::config::ModemConfig;

/// A byte stream to a modem.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Why a connection is no longer usable, or a command failed.
#[derive(Debug)]
pub enum ConnError {
    /// The device or socket failed or closed: reopen it.
    Io(String),
    /// No final answer in time: the modem is hung; reset it.
    Timeout(String),
    /// The modem answered with an error (the connection is fine).
    Modem(adapters::Error),
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "device: {e}"),
            Self::Timeout(c) => write!(f, "no answer to {c}"),
            Self::Modem(e) => e.fmt(f),
        }
    }
}

/// An open modem.
pub struct Conn {
    io: Box<dyn Io>,
    parser: Parser,
    events: VecDeque<Event>,
    /// URCs seen and not yet handled, in arrival order.
    pub urcs: VecDeque<Urc>,
    timeout: Duration,
    scratch: Vec<Event>,
}

impl Conn {
    /// Opens the configured device or TCP address.
    pub async fn open(cfg: &ModemConfig) -> Result<Self, ConnError> {
        let timeout = Duration::from_millis(cfg.command_timeout_ms);
        let io: Box<dyn Io> = if let Some(addr) = &cfg.tcp {
            let s = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr))
                .await
                .map_err(|_| ConnError::Io(format!("connecting to {addr} timed out")))?
                .map_err(|e| ConnError::Io(format!("connecting to {addr}: {e}")))?;
            let _ = s.set_nodelay(true);
            Box::new(s)
        } else if let Some(path) = &cfg.device {
            use tokio_serial::SerialPortBuilderExt;
            let port = tokio_serial::new(path.to_string_lossy(), cfg.baud)
                .open_native_async()
                .map_err(|e| ConnError::Io(format!("opening {}: {e}", path.display())))?;
            Box::new(port)
        } else {
            return Err(ConnError::Io("no device or tcp configured".into()));
        };
        Ok(Self::from_io(io, timeout))
    }

    /// Wraps an already open stream.
    pub fn from_io(io: Box<dyn Io>, timeout: Duration) -> Self {
        Self {
            io,
            parser: Parser::new(),
            events: VecDeque::new(),
            urcs: VecDeque::new(),
            timeout,
            scratch: Vec::new(),
        }
    }

    /// Reads once (cancel-safe) and parses what came; URCs go to `urcs`.
    pub async fn fill(&mut self) -> Result<(), ConnError> {
        let mut buf = [0u8; 1024];
        let n = self
            .io
            .read(&mut buf)
            .await
            .map_err(|e| ConnError::Io(e.to_string()))?;
        if n == 0 {
            return Err(ConnError::Io("device closed".into()));
        }
        self.parser.feed(&buf[..n], &mut self.scratch);
        for ev in self.scratch.drain(..) {
            match ev {
                Event::Urc(u) => self.urcs.push_back(u),
                Event::Garbage(why) => tracing::debug!(why, "modem garbage line"),
                Event::Echo(_) => {}
                other => self.events.push_back(other),
            }
        }
        Ok(())
    }

    /// Aborts a half-written `AT+CMGS` the modem may still be waiting on
    /// (ESC), then forgets whatever it answers. Used before bring-up.
    pub async fn abort_input(&mut self) -> Result<(), ConnError> {
        self.write(&[adapters::at::ESC, b'\r']).await?;
        let quiet = Instant::now() + Duration::from_millis(100);
        loop {
            match tokio::time::timeout_at(quiet, self.fill()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => break,
            }
        }
        self.drop_stale();
        Ok(())
    }

    /// Answers that arrived while nobody was asking (a late `OK` after a
    /// timeout, noise) are dropped so they cannot end the next command.
    pub fn drop_stale(&mut self) {
        for ev in self.events.drain(..) {
            tracing::debug!(event = ?std::mem::discriminant(&ev), "stale modem answer dropped");
        }
    }

    async fn next_event(&mut self, deadline: Instant, what: &str) -> Result<Event, ConnError> {
        loop {
            if let Some(ev) = self.events.pop_front() {
                return Ok(ev);
            }
            match tokio::time::timeout_at(deadline, self.fill()).await {
                Ok(r) => r?,
                Err(_) => return Err(ConnError::Timeout(what.to_string())),
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        let w = async {
            self.io.write_all(bytes).await?;
            self.io.flush().await
        };
        match tokio::time::timeout(self.timeout, w).await {
            Ok(r) => r.map_err(|e| ConnError::Io(e.to_string())),
            Err(_) => Err(ConnError::Timeout("write".into())),
        }
    }

    /// Runs one ordinary command to its final result.
    pub async fn command(&mut self, cmd: &Command) -> Result<Reply, ConnError> {
        self.drop_stale();
        let mut bytes = Vec::new();
        cmd.encode(&mut bytes);
        self.write(&bytes).await?;
        let deadline = Instant::now() + self.timeout;
        let what = cmd.to_string();
        let mut reply = Reply::default();
        loop {
            let ev = self.next_event(deadline, &what).await?;
            if reply.push(&ev) {
                return Ok(reply);
            }
        }
    }

    /// Like [`Conn::command`] but an error answer is an `Err`.
    pub async fn command_ok(&mut self, cmd: &Command) -> Result<Reply, ConnError> {
        let reply = self.command(cmd).await?;
        reply.ok_for(cmd).map_err(ConnError::Modem)?;
        Ok(reply)
    }

    /// Sends one PDU with `AT+CMGS`; the message reference when the modem
    /// gives one.
    pub async fn send_pdu(
        &mut self,
        hex: &str,
        tpdu_length: usize,
        timeout: Duration,
    ) -> Result<Option<u8>, ConnError> {
        self.drop_stale();
        let mut send = SendPdu::new(hex, tpdu_length);
        let mut bytes = Vec::new();
        send.command().encode(&mut bytes);
        self.write(&bytes).await?;
        let what = send.command().to_string();
        // The prompt comes quickly; the result waits for the network.
        let mut deadline = Instant::now() + self.timeout;
        loop {
            let ev = self.next_event(deadline, &what).await?;
            match send.handle(&ev).map_err(ConnError::Modem)? {
                SendAction::Wait => {}
                SendAction::Write(body) => {
                    self.write(&body).await?;
                    deadline = Instant::now() + timeout;
                }
                SendAction::Sent(mr) => return Ok(mr),
            }
        }
    }
}
