//! GSM modems: one task per `[[modems]]` entry drives the sans-IO AT engine
//! (`adapters::at`) over a serial device or a TCP modem server.
//!
//! * Outbound: [`ModemRoute`] (a [`Route`]) encodes the PDUs and queues them
//!   to the modem's task, which sends each part with `AT+CMGS` at the
//!   configured pace and answers with the message references. Parts already
//!   accepted are remembered, so a retry after a failed part continues with
//!   the next part instead of sending the first ones twice.
//! * Inbound: `+CMTI` / `+CMT` / the start-up sweep (`AT+CMGL=4`) → decode →
//!   reassemble (parts waiting for siblings are kept sealed in
//!   `pending_parts`) → `pipeline::accept_inbound` → only then `AT+CMGD`.
//! * Status reports (`+CDS`, `+CDSI`) are matched to the message by TP-MR.
//! * Resilience: every command has a timeout; a hung or vanished modem is
//!   reopened and brought up again with backoff, while sends get `Retry`.
//!
//! Message text never reaches a log line, an error or a metric: spans carry
//! the modem name and message ids, numbers are redacted.

pub mod config;
mod conn;
mod task;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::{BuildContext, Built, ChannelConfig};
use crate::core::error::{Error, Result};
use crate::delivery::route::{OutboundSms, Route, SendFuture, SendOutcome};
use config::ModemConfig;

/// Adapter name of inbound modem messages in the store.
pub const ADAPTER: &str = "modem";

/// One PDU of an outbound message.
#[derive(Debug, Clone)]
struct PduJob {
    hex: String,
    tpdu_length: usize,
}

/// A send queued to a modem task.
struct SendJob {
    id: String,
    pdus: Vec<PduJob>,
    reply: oneshot::Sender<SendOutcome>,
}

/// Health of one modem, for `/healthz`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Health {
    /// `starting`, `up` or `down`.
    pub state: &'static str,
    /// The last failure (command and answer, or the device error).
    pub last_error: Option<String>,
    /// Times the modem was reopened and brought up again.
    pub resets: u64,
    /// PDUs accepted by the modem.
    pub sent_parts: u64,
    /// Messages handed to the pipeline.
    pub received: u64,
    /// Status reports matched.
    pub reports: u64,
}

/// The modems' health, shown by `/healthz` (`{}` without modems).
#[derive(Default)]
pub struct Modems {
    health: Mutex<BTreeMap<String, Health>>,
}

impl super::Health for Modems {
    fn health_json(&self) -> serde_json::Value {
        self.health
            .lock()
            .ok()
            .and_then(|h| serde_json::to_value(&*h).ok())
            .unwrap_or_default()
    }
}

impl Modems {
    fn update(&self, name: &str, f: impl FnOnce(&mut Health)) {
        if let Ok(mut h) = self.health.lock() {
            if let Some(x) = h.get_mut(name) {
                f(x);
            }
        }
    }
}

/// Every `[[modems]]` entry: a route named after it, and a supervisor task
/// that drives it.
impl ChannelConfig for [ModemConfig] {
    fn build(&self, ctx: &BuildContext<'_>) -> Result<Built> {
        let modems = Arc::new(Modems::default());
        let mut built = Built::default();
        for m in self {
            let pin = m
                .pin
                .resolve(&m.pin_env())?
                .map(|p| {
                    String::from_utf8(p)
                        .map_err(|_| Error::Config(format!("modem {} PIN is not text", m.name)))
                })
                .transpose()?;
            let (tx, jobs) = mpsc::channel(64);
            built.routes.push((
                m.name.clone(),
                Arc::new(ModemRoute {
                    name: m.name.clone(),
                    jobs: tx,
                    params: adapters::sms::SubmitParams {
                        smsc: m.smsc.clone(),
                        request_report: m.status_reports,
                        options: ctx.sms.clone(),
                        ..Default::default()
                    },
                }),
            ));
            if let Ok(mut h) = modems.health.lock() {
                h.insert(
                    m.name.clone(),
                    Health {
                        state: "starting",
                        ..Health::default()
                    },
                );
            }
            let (cfg, modems) = (m.clone(), modems.clone());
            built.physical.push(m.name.clone());
            built.task(move |pipeline, shutdown| async move {
                // On a cluster, only the node holding the modem's lease
                // opens its port.
                // The send queue outlives each run: a lost and retaken
                // lease starts the modem again on the same queue; while
                // another node holds the modem, a send handed to this
                // node's queue (claimed just before the lease was lost) is
                // answered at once, to be retried where the modem runs.
                let jobs = tokio::sync::Mutex::new(jobs);
                let name = cfg.name.clone();
                let standby = || async {
                    let mut jobs = jobs.lock().await;
                    while let Some(job) = jobs.recv().await {
                        let _ = job.reply.send(SendOutcome::Retry(format!(
                            "modem {name} runs on another node"
                        )));
                    }
                };
                crate::pipeline::lease::while_held_or(
                    &pipeline,
                    &cfg.name,
                    &shutdown,
                    |token| {
                        let (pipeline, modems, cfg, pin) =
                            (pipeline.clone(), modems.clone(), cfg.clone(), pin.clone());
                        let jobs = &jobs;
                        async move {
                            let span = tracing::info_span!("modem", modem = %cfg.name);
                            let mut jobs = jobs.lock().await;
                            tracing::Instrument::instrument(
                                task::supervise(pipeline, modems, cfg, pin, &mut jobs, token),
                                span,
                            )
                            .await
                        }
                    },
                    standby,
                )
                .await
            });
        }
        built.health.push(("modems", modems));
        Ok(built)
    }
}

/// The route of one modem.
pub struct ModemRoute {
    name: String,
    jobs: mpsc::Sender<SendJob>,
    params: adapters::sms::SubmitParams,
}

impl Route for ModemRoute {
    fn send<'a>(&'a self, msg: OutboundSms<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let mut params = self.params.clone();
            params.concat_reference = crate::channels::concat_reference(msg.id);
            let pdus = match adapters::sms::encode_submit(&msg.header.to, msg.text(), &params) {
                Ok((_, p)) => p,
                Err(e) => return SendOutcome::Permanent(format!("encoding the PDU: {e}")),
            };
            let (reply, answer) = oneshot::channel();
            let job = SendJob {
                id: msg.id.to_string(),
                pdus: pdus
                    .into_iter()
                    .map(|p| PduJob {
                        hex: p.hex,
                        tpdu_length: p.tpdu_length,
                    })
                    .collect(),
                reply,
            };
            if self.jobs.send(job).await.is_err() {
                return SendOutcome::Retry(format!("modem {} is stopped", self.name));
            }
            answer.await.unwrap_or_else(|_| {
                SendOutcome::Retry(format!("modem {} dropped the send", self.name))
            })
        })
    }
}
