//! The per-modem task: a supervisor that (re)opens the device and a session
//! loop that multiplexes sends, URCs, health probes and reassembly deadlines.

use std::collections::HashMap;
use std::time::Duration;

use adapters::at::{BringUp, BringUpConfig, Command, Listing, Urc};
use adapters::sms::{
    Content as SmsContent, Deliver, Incomplete, Inserted, ModemPdu, Part, Reassembler,
    ReassemblyConfig, StatusCategory, StatusReport, Tpdu,
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Modems;
use super::config::{IncompletePolicy, ModemConfig};
use super::conn::{Conn, ConnError};
use super::{ADAPTER, SendJob};
use crate::core::address::redact;
use crate::delivery::route::SendOutcome;
use crate::envelope::Content;
use crate::pipeline::Pipeline;
use crate::pipeline::parts as pending_parts;
use crate::pipeline::{InboundMessage, accept_inbound};
use crate::store::MessageStatus;
use std::sync::Arc;

const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_TRACKED: usize = 4096;

enum End {
    Shutdown,
    Failed(String),
}

type PartKey = (String, u16, u8);

struct Awaiting {
    remaining: usize,
    failed: bool,
}

struct Modem {
    pipeline: Arc<Pipeline>,
    modems: Arc<Modems>,
    cfg: ModemConfig,
    pin: Option<String>,
    store_key: String,
    reassembler: Reassembler,
    rows: HashMap<PartKey, Vec<i64>>,
    /// Message id -> references of the parts the modem already accepted.
    progress: HashMap<String, Vec<Option<u8>>>,
    by_mr: HashMap<u8, String>,
    awaiting: HashMap<String, Awaiting>,
    next_send: Instant,
}

pub(super) async fn supervise(
    pipeline: Arc<Pipeline>,
    modems: Arc<Modems>,
    cfg: ModemConfig,
    pin: Option<String>,
    jobs: &mut mpsc::Receiver<SendJob>,
    shutdown: CancellationToken,
) {
    let mut m = Modem {
        store_key: format!("{ADAPTER}:{}", cfg.name),
        reassembler: Reassembler::new(reassembly_config(&cfg)),
        pipeline,
        modems,
        cfg,
        pin,
        rows: HashMap::new(),
        progress: HashMap::new(),
        by_mr: HashMap::new(),
        awaiting: HashMap::new(),
        next_send: Instant::now(),
    };
    if let Err(e) = m.reload_parts().await {
        tracing::error!(error = %e, "reloading waiting multipart parts failed");
    }
    let max = Duration::from_secs(m.cfg.reconnect_max_secs.max(1));
    let mut backoff = FIRST_BACKOFF;
    let mut sessions = 0u64;
    loop {
        if sessions > 0 {
            m.modems.update(&m.cfg.name, |h| h.resets += 1);
            m.event("reset");
        }
        sessions += 1;
        let (end, was_up) = m.session(jobs, &shutdown).await;
        m.set_up(false);
        match end {
            End::Shutdown => return,
            End::Failed(why) => {
                tracing::warn!(error = %why, "modem unavailable; reopening");
                m.modems.update(&m.cfg.name, |h| h.last_error = Some(why));
            }
        }
        if was_up {
            backoff = FIRST_BACKOFF;
        }
        let until = Instant::now() + backoff;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep_until(until) => break,
                job = jobs.recv() => match job {
                    Some(j) => {
                        let _ = j.reply.send(SendOutcome::Retry(format!("modem {} is not connected", m.cfg.name)));
                    }
                    None => return,
                },
            }
        }
        backoff = (backoff * 2).min(max);
    }
}

fn reassembly_config(cfg: &ModemConfig) -> ReassemblyConfig {
    ReassemblyConfig {
        timeout: time::Duration::seconds(cfg.reassembly_timeout_secs as i64),
        ..ReassemblyConfig::default()
    }
}

fn carrier_id(name: &str, parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    let d = h.finalize();
    format!("{name}:{}", hex::encode(&d[..16]))
}

fn to_instant(at: OffsetDateTime) -> Instant {
    let left = at - OffsetDateTime::now_utc();
    Instant::now() + Duration::try_from(left).unwrap_or(Duration::ZERO)
}

impl Modem {
    fn event(&self, event: &'static str) {
        self.pipeline.metrics.modem_event(&self.cfg.name, event);
    }

    fn set_up(&self, up: bool) {
        self.pipeline.metrics.modem_up(&self.cfg.name, up);
        self.modems.update(&self.cfg.name, |h| {
            h.state = if up { "up" } else { "down" };
        });
    }

    async fn session(
        &mut self,
        jobs: &mut mpsc::Receiver<SendJob>,
        shutdown: &CancellationToken,
    ) -> (End, bool) {
        let mut conn = tokio::select! {
            () = shutdown.cancelled() => return (End::Shutdown, false),
            c = self.bring_up() => match c {
                Ok(c) => c,
                Err(e) => return (End::Failed(e.to_string()), false),
            },
        };
        self.set_up(true);
        tracing::info!("modem ready");
        if let Err(e) = self.sweep(&mut conn).await {
            return (End::Failed(e.to_string()), true);
        }
        let probe_every = Duration::from_secs(self.cfg.health_check_secs.max(1));
        let mut last_io = Instant::now();
        loop {
            while let Some(u) = conn.urcs.pop_front() {
                if let Err(e) = self.on_urc(&mut conn, u).await {
                    return (End::Failed(e.to_string()), true);
                }
                last_io = Instant::now();
            }
            let expire_at = self
                .reassembler
                .next_deadline()
                .map(to_instant)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let r = tokio::select! {
                () = shutdown.cancelled() => return (End::Shutdown, true),
                r = conn.fill() => {
                    // Answers nobody asked for (noise after a reset) are dropped.
                    conn.drop_stale();
                    r
                }
                job = jobs.recv() => match job {
                    Some(job) => self.send(&mut conn, job).await,
                    None => return (End::Shutdown, true),
                },
                () = tokio::time::sleep_until(last_io + probe_every) => {
                    conn.command_ok(&Command::Attention).await.map(|_| ())
                }
                () = tokio::time::sleep_until(expire_at) => {
                    self.expire().await;
                    Ok(())
                }
            };
            match r {
                Ok(()) => last_io = Instant::now(),
                Err(ConnError::Modem(e)) => {
                    tracing::warn!(error = %e, "modem refused a command");
                    last_io = Instant::now();
                }
                Err(e) => {
                    if matches!(e, ConnError::Timeout(_)) {
                        self.event("timeout");
                    }
                    return (End::Failed(e.to_string()), true);
                }
            }
        }
    }

    async fn bring_up(&self) -> Result<Conn, ConnError> {
        let mut conn = Conn::open(&self.cfg).await?;
        conn.abort_input().await?;
        let mut b = BringUp::new(BringUpConfig {
            pin: self.pin.clone(),
            storage: self.cfg.storage.clone(),
            indications: self.cfg.indications().unwrap_or_default(),
            smsc: self.cfg.smsc.clone(),
        });
        while let Some(cmd) = b.command() {
            let reply = conn.command(&cmd).await?;
            b = b.handle(&reply).map_err(ConnError::Modem)?;
        }
        Ok(conn)
    }

    /// Reads every message already stored (`AT+CMGL=4`) and handles it.
    async fn sweep(&mut self, conn: &mut Conn) -> Result<(), ConnError> {
        let reply = match conn.command_ok(&Command::List(4)).await {
            Ok(r) => r,
            Err(ConnError::Modem(e)) => {
                tracing::warn!(error = %e, "listing stored messages failed");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        for (header, pdu) in reply.listed {
            let Some(index) = Listing::parse(&header).and_then(|l| l.index) else {
                continue;
            };
            self.on_stored(conn, index, &pdu).await?;
        }
        Ok(())
    }

    async fn on_urc(&mut self, conn: &mut Conn, urc: Urc) -> Result<(), ConnError> {
        match urc {
            Urc::MessageStored { index, .. } | Urc::StatusReportStored { index, .. } => {
                let reply = match conn.command_ok(&Command::Read(index)).await {
                    Ok(r) => r,
                    Err(ConnError::Modem(e)) => {
                        tracing::warn!(error = %e, index, "reading a stored message failed");
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                };
                if let Some((_, pdu)) = reply.listed.first() {
                    self.on_stored(conn, index, pdu).await?;
                }
            }
            Urc::Message { pdu, .. } | Urc::StatusReport { pdu, .. }
                // Acknowledge only after the commit; without the ack the
                // network redelivers (and the carrier id absorbs it).
                if self.on_pdu(&pdu).await =>
            {
                match conn.command(&Command::Acknowledge).await {
                    Ok(_) | Err(ConnError::Modem(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Urc::Ring | Urc::Vendor(_) => {}
            _ => {}
        }
        Ok(())
    }

    async fn on_stored(&mut self, conn: &mut Conn, index: u32, pdu: &str) -> Result<(), ConnError> {
        if self.on_pdu(pdu).await {
            match conn.command_ok(&Command::Delete(index)).await {
                Ok(_) => {}
                Err(ConnError::Modem(e)) => {
                    tracing::warn!(error = %e, index, "deleting a stored message failed");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Handles one received PDU; true when it is safely committed (or
    /// worthless) and may be deleted / acknowledged.
    async fn on_pdu(&mut self, hex: &str) -> bool {
        let pdu = match adapters::sms::parse_hex(hex).and_then(|b| ModemPdu::decode_bytes(&b)) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable PDU from the modem dropped");
                return true;
            }
        };
        match pdu.tpdu {
            Tpdu::Deliver(d) => self.on_deliver(d).await,
            Tpdu::StatusReport(r) => {
                self.on_report(&r);
                true
            }
            // Our own stored outgoing messages (never written by us): leave them.
            Tpdu::Submit(_) => false,
        }
    }

    async fn on_deliver(&mut self, d: Deliver) -> bool {
        let source = d.originator.to_string();
        let part = Part::from_deliver(&d, source.clone(), OffsetDateTime::now_utc());
        let single_id = carrier_id(
            &self.cfg.name,
            &[
                source.as_bytes(),
                d.scts.to_rfc3339().as_bytes(),
                &part.body.data,
            ],
        );
        let outcome = match self.reassembler.insert(part.clone()) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, from = %redact(&source), "impossible SMS part dropped");
                return true;
            }
        };
        for inc in outcome.surfaced {
            self.on_incomplete(inc).await;
        }
        match outcome.inserted {
            Inserted::Duplicate => true,
            Inserted::Pending { received, total } => {
                tracing::debug!(received, total, from = %redact(&source), "multipart part waiting for siblings");
                match self.persist_part(&part).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::error!(error = %e, "storing a waiting part failed; it stays on the SIM");
                        false
                    }
                }
            }
            Inserted::Complete(msg) => {
                let key = (msg.source.clone(), msg.reference, msg.total);
                let id = if msg.total == 1 {
                    single_id
                } else {
                    let text = match &msg.content {
                        SmsContent::Text(t) => t.as_bytes().to_vec(),
                        SmsContent::Binary(b) => b.clone(),
                    };
                    carrier_id(
                        &self.cfg.name,
                        &[
                            msg.source.as_bytes(),
                            &msg.reference.to_be_bytes(),
                            &[msg.total],
                            &text,
                        ],
                    )
                };
                self.deliver(key, msg.content, id).await
            }
        }
    }

    async fn deliver(&mut self, key: PartKey, content: SmsContent, carrier_id: String) -> bool {
        let multipart = key.2 > 1;
        let msg = InboundMessage {
            adapter: ADAPTER,
            carrier_id,
            from: key.0.clone(),
            to: self.cfg.number.clone(),
            content: Content::from(content),
        };
        match accept_inbound(&self.pipeline, msg).await {
            Ok(o) => {
                tracing::debug!(msg_id = %o.id, duplicate = o.duplicate, parts = key.2, "inbound SMS committed");
                if !o.duplicate {
                    self.event("received");
                    self.modems.update(&self.cfg.name, |h| h.received += 1);
                }
                self.forget_rows(&key).await;
                true
            }
            Err(e) if e.is_transient() => {
                tracing::error!(error = %e, "committing an inbound SMS failed; it stays on the SIM");
                if multipart {
                    // Its parts left the reassembler; take them back from the store.
                    if let Err(e) = self.reload_parts().await {
                        tracing::error!(error = %e, "reloading waiting parts failed");
                    }
                }
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, from = %redact(&key.0), "inbound SMS refused by the pipeline; dropped");
                self.forget_rows(&key).await;
                true
            }
        }
    }

    async fn on_incomplete(&mut self, inc: Incomplete) {
        let key = (inc.source.clone(), inc.reference, inc.total);
        tracing::info!(
            from = %redact(&inc.source),
            received = inc.received.len(),
            total = inc.total,
            policy = ?self.cfg.incomplete,
            "multipart SMS incomplete at its deadline"
        );
        match self.cfg.incomplete {
            IncompletePolicy::Deliver => {
                let received: Vec<u8> = inc.received.clone();
                let id = carrier_id(
                    &self.cfg.name,
                    &[
                        b"incomplete",
                        inc.source.as_bytes(),
                        &inc.reference.to_be_bytes(),
                        &[inc.total],
                        &received,
                    ],
                );
                self.deliver(key, inc.content, id).await;
            }
            IncompletePolicy::Drop => self.forget_rows(&key).await,
        }
    }

    async fn expire(&mut self) {
        for inc in self.reassembler.expire(OffsetDateTime::now_utc()) {
            self.on_incomplete(inc).await;
        }
    }

    fn on_report(&mut self, r: &StatusReport) {
        let mr = r.message_reference;
        let Some(id) = self.by_mr.get(&mr).cloned() else {
            tracing::debug!(mr, "status report for an unknown message reference");
            return;
        };
        let failed = match r.status.category() {
            StatusCategory::Delivered => false,
            StatusCategory::Temporary => return,
            StatusCategory::Permanent
            | StatusCategory::TemporaryStopped
            | StatusCategory::Reserved => true,
        };
        self.by_mr.remove(&mr);
        self.event("report");
        self.modems.update(&self.cfg.name, |h| h.reports += 1);
        let Some(a) = self.awaiting.get_mut(&id) else {
            return;
        };
        let first_failure = failed && !a.failed;
        a.failed |= failed;
        a.remaining = a.remaining.saturating_sub(1);
        let status = if first_failure {
            MessageStatus::Failed
        } else if a.remaining == 0 && !a.failed {
            MessageStatus::Delivered
        } else {
            if a.remaining == 0 {
                self.awaiting.remove(&id);
            }
            return;
        };
        if a.remaining == 0 {
            self.awaiting.remove(&id);
        }
        let detail = format!("status report: {}", r.status.description());
        let path = self.pipeline.status.clone();
        // A report may overtake the delivery worker's own `sent`; the status
        // path keeps the message from moving back, so it need not wait.
        tokio::spawn(async move {
            let report = crate::store::StatusReport::new(status, Some(detail));
            if let Err(e) = path.report(id.clone(), report).await {
                tracing::error!(error = %e, msg_id = %id, "recording a status report failed");
            }
        });
    }

    async fn send(&mut self, conn: &mut Conn, job: SendJob) -> Result<(), ConnError> {
        if self.progress.len() > MAX_TRACKED {
            self.progress.clear();
        }
        if self.awaiting.len() > MAX_TRACKED {
            self.awaiting.clear();
        }
        let total = job.pdus.len();
        let mut done = self.progress.remove(&job.id).unwrap_or_default();
        if done.len() > total {
            done.clear();
        }
        let pace = (self.cfg.pace_per_minute > 0)
            .then(|| Duration::from_secs(60) / self.cfg.pace_per_minute);
        let send_timeout = Duration::from_secs(self.cfg.send_timeout_secs);
        let mut outcome = None;
        let mut broken = None;
        for pdu in job.pdus.iter().skip(done.len()) {
            if job.reply.is_closed() {
                // The route gave up waiting; keep what was sent for its retry.
                self.progress.insert(job.id.clone(), done);
                return Ok(());
            }
            tokio::time::sleep_until(self.next_send).await;
            match conn.send_pdu(&pdu.hex, pdu.tpdu_length, send_timeout).await {
                Ok(mr) => {
                    if let Some(p) = pace {
                        self.next_send = Instant::now() + p;
                    }
                    self.event("sent_part");
                    self.modems.update(&self.cfg.name, |h| h.sent_parts += 1);
                    if let (Some(mr), true) = (mr, self.cfg.status_reports) {
                        self.by_mr.insert(mr, job.id.clone());
                        self.awaiting.entry(job.id.clone()).or_insert(Awaiting {
                            remaining: total,
                            failed: false,
                        });
                    }
                    done.push(mr);
                }
                Err(ConnError::Modem(e)) => {
                    self.event("send_refused");
                    tracing::warn!(msg_id = %job.id, error = %e, part = done.len() + 1, "modem refused a part");
                    outcome = Some(if e.is_transient() {
                        self.progress.insert(job.id.clone(), done.clone());
                        SendOutcome::Retry(e.to_string())
                    } else {
                        self.awaiting.remove(&job.id);
                        self.by_mr.retain(|_, v| *v != job.id);
                        SendOutcome::Permanent(e.to_string())
                    });
                    break;
                }
                Err(e) => {
                    self.progress.insert(job.id.clone(), done.clone());
                    outcome = Some(SendOutcome::Retry(format!("modem {}: {e}", self.cfg.name)));
                    broken = Some(e);
                    break;
                }
            }
        }
        let outcome = outcome.unwrap_or_else(|| {
            let mrs: Vec<String> = done
                .iter()
                .map(|m| m.map_or("-".to_string(), |m| m.to_string()))
                .collect();
            SendOutcome::Accepted {
                status: crate::store::MessageStatus::Sent,
                carrier_id: Some(format!("{}:{}", self.cfg.name, mrs.join(","))),
            }
        });
        let _ = job.reply.send(outcome);
        broken.map_or(Ok(()), Err)
    }

    async fn persist_part(&mut self, part: &Part) -> crate::Result<()> {
        let owner = pending_parts::Owner {
            adapter: self.store_key.clone(),
            sender: part.source.clone(),
            group: uuid::Uuid::now_v7().to_string(),
            from: part.source.clone(),
            to: self.cfg.number.clone(),
        };
        let id = pending_parts::insert(&self.pipeline, owner, part).await?;
        self.rows
            .entry((part.source.clone(), part.reference, part.total))
            .or_default()
            .push(id);
        Ok(())
    }

    async fn forget_rows(&mut self, key: &PartKey) {
        let Some(ids) = self.rows.remove(key) else {
            return;
        };
        let r = pending_parts::delete(&self.pipeline, ids).await;
        if let Err(e) = r {
            tracing::error!(error = %e, "deleting delivered parts failed");
        }
    }

    /// Rebuilds the reassembler from `pending_parts` (start, or after a
    /// failed commit), opening each sealed part with the edge key.
    async fn reload_parts(&mut self) -> crate::Result<()> {
        let rows = pending_parts::load(&self.pipeline, self.store_key.clone()).await?;
        self.reassembler = Reassembler::new(reassembly_config(&self.cfg));
        self.rows.clear();
        let mut completed = Vec::new();
        let n = rows.len();
        for (id, opened) in rows {
            let part = match opened {
                Ok((_, p)) => p,
                Err(e) => {
                    tracing::error!(error = %e, row = id, "a stored part cannot be opened; left in place");
                    continue;
                }
            };
            let key = (part.source.clone(), part.reference, part.total);
            self.rows.entry(key.clone()).or_default().push(id);
            match self.reassembler.insert(part) {
                Ok(o) => {
                    if let Inserted::Complete(m) = o.inserted {
                        completed.push((key, m));
                    }
                }
                Err(e) => tracing::warn!(error = %e, row = id, "stored part refused"),
            }
        }
        if n > 0 {
            tracing::info!(
                parts = n,
                messages = self.reassembler.pending_messages(),
                "waiting multipart parts reloaded"
            );
        }
        for (key, m) in completed {
            let text = match &m.content {
                SmsContent::Text(t) => t.as_bytes().to_vec(),
                SmsContent::Binary(b) => b.clone(),
            };
            let id = carrier_id(
                &self.cfg.name,
                &[
                    m.source.as_bytes(),
                    &m.reference.to_be_bytes(),
                    &[m.total],
                    &text,
                ],
            );
            Box::pin(self.deliver(key, m.content, id)).await;
        }
        Ok(())
    }
}
