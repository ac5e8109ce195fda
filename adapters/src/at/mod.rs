//! A sans-IO AT-command engine for GSM modems in PDU mode (TS 27.007,
//! TS 27.005): bytes in, events out; commands in, bytes out. No tokio, no
//! serial port, no clock: the gateway's modem task owns the device, the
//! timeouts and the retries, and drives these types.
//!
//! * [`Command`] encodes the exact wire form of each command;
//! * [`Parser`] turns the modem's byte stream into [`Event`]s, separating
//!   final results, intermediate answers and unsolicited result codes
//!   ([`Urc`]) that can arrive at any time;
//! * [`Reply`] collects the answer to one ordinary command;
//! * [`BringUp`] and [`SendPdu`] are the explicit state machines of modem
//!   initialisation and of one `AT+CMGS` exchange;
//! * [`cms_is_transient`] classes `+CMS ERROR` codes.
//!
//! Why the state machines never see URCs: a `+CMTI` between the `> ` prompt
//! and `+CMGS: <mr>` is the classic way drivers lose a send or a message.
//! The driver hands URCs to its own queue before it calls `handle`, so a
//! machine's transitions depend only on answers to its own command.

mod command;
mod parser;

pub use command::{CTRL_Z, Cnmi, Command, ESC, pdu_body};
pub use parser::{Event, Final, Listing, MAX_LINE, Parser, Urc};

use crate::Error;

/// True when a `+CMS ERROR: <code>` is worth retrying later (network,
/// congestion, busy SIM, timeouts, modem hiccups); false when the same
/// message would fail again (bad PDU, invalid or barred destination,
/// unsupported operation).
pub fn cms_is_transient(code: u16) -> bool {
    match code {
        // RP causes (TS 24.011 §8.2.5.4): only the temporary ones.
        // 38 network out of order, 41 temporary failure, 42 congestion,
        // 47 resources unavailable, 98/111/127 protocol or unspecified.
        0..=127 => matches!(code, 38 | 41 | 42 | 47 | 98 | 111 | 127),
        // TP-FCS (TS 23.040 §9.2.3.22): SC busy, SC system failure,
        // memory full / SIM busy / unspecified errors.
        128..=255 => matches!(code, 0xC0 | 0xC2 | 0xD0 | 0xD3 | 0xD4 | 0xFF),
        // 27.005 §3.2.5: operation not allowed/supported, invalid PDU or
        // text parameters, SMSC unknown and "no +CNMA expected" are the
        // caller's or the configuration's fault.
        301..=305 | 330 | 340 => false,
        // ME/SIM/memory/network failures (300, 310-322, 331, 332, 500) and
        // vendor codes: the device may recover.
        _ => true,
    }
}

/// An error answer to `command`, classed for retry.
pub fn command_error(command: &Command, answer: &Final) -> Error {
    let transient = match answer {
        Final::CmsError(c) => cms_is_transient(*c),
        _ => true,
    };
    Error::Modem {
        command: command.to_string(),
        answer: answer.to_string(),
        transient,
    }
}

/// The complete answer to one ordinary command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// Intermediate lines, in order.
    pub info: Vec<String>,
    /// `+CMGR` / `+CMGL` headers with their PDU lines.
    pub listed: Vec<(String, String)>,
    /// The final result, once it arrived.
    pub result: Option<Final>,
}

impl Reply {
    /// Adds one answer event; returns true once the final result is in.
    /// URCs, echo and garbage are not answers and are ignored here.
    pub fn push(&mut self, ev: &Event) -> bool {
        match ev {
            Event::Final(f) => {
                self.result = Some(f.clone());
                true
            }
            Event::Info(s) => {
                self.info.push(s.clone());
                false
            }
            Event::Listed { header, pdu } => {
                self.listed.push((header.clone(), pdu.clone()));
                false
            }
            Event::Prompt | Event::Urc(_) | Event::Echo(_) | Event::Garbage(_) => false,
        }
    }

    /// The first info line starting with `prefix`, with the prefix removed.
    pub fn field(&self, prefix: &str) -> Option<&str> {
        self.info
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
    }

    /// Ok(()) for `OK`, else the classified error for `command`.
    pub fn ok_for(&self, command: &Command) -> Result<(), Error> {
        match &self.result {
            Some(Final::Ok) => Ok(()),
            Some(f) => Err(command_error(command, f)),
            None => Err(Error::AtProtocol {
                reason: "reply has no final result",
            }),
        }
    }
}

/// What bring-up needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BringUpConfig {
    /// SIM PIN, entered only when the SIM asks for it.
    pub pin: Option<String>,
    /// Message storage for `AT+CPMS` (`SM`, `ME`, `MT`).
    pub storage: String,
    /// Indication modes to try, in order (the first the modem accepts wins).
    pub indications: Vec<Cnmi>,
    /// SMSC number to set with `AT+CSCA`; `None` keeps the SIM's.
    pub smsc: Option<String>,
}

/// States of modem initialisation, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BringUpState {
    /// `ATE0` sent.
    ExpectEchoOff,
    /// `AT+CMEE=1` sent.
    ExpectErrorMode,
    /// `AT+CPIN?` sent.
    ExpectPinStatus,
    /// `AT+CPIN="..."` sent.
    ExpectPinAccepted,
    /// `AT+CMGF=0` sent.
    ExpectPduMode,
    /// `AT+CPMS` sent.
    ExpectStorage,
    /// `AT+CNMI` sent with the `n`th configured mode.
    ExpectIndications(usize),
    /// `AT+CSCA` sent.
    ExpectServiceCentre,
    /// Done: the modem is in PDU mode and indicates new messages.
    Ready,
}

/// The bring-up state machine: `command()` is what to send now, `handle`
/// takes its complete [`Reply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BringUp {
    config: BringUpConfig,
    state: BringUpState,
    /// The indication mode the modem accepted.
    pub indications: Option<Cnmi>,
}

impl BringUp {
    /// Starts at `ATE0`.
    pub fn new(config: BringUpConfig) -> Self {
        Self {
            config,
            state: BringUpState::ExpectEchoOff,
            indications: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> &BringUpState {
        &self.state
    }

    /// The command the current state waits on; `None` when ready.
    pub fn command(&self) -> Option<Command> {
        Some(match &self.state {
            BringUpState::ExpectEchoOff => Command::Echo(false),
            BringUpState::ExpectErrorMode => Command::ReportErrors(1),
            BringUpState::ExpectPinStatus => Command::PinStatus,
            BringUpState::ExpectPinAccepted => Command::EnterPin(self.config.pin.clone()?),
            BringUpState::ExpectPduMode => Command::MessageFormat(0),
            BringUpState::ExpectStorage => Command::Storage(self.config.storage.clone()),
            BringUpState::ExpectIndications(i) => {
                Command::Indications(*self.config.indications.get(*i)?)
            }
            BringUpState::ExpectServiceCentre => Command::ServiceCentre(self.config.smsc.clone()?),
            BringUpState::Ready => return None,
        })
    }

    /// Moves on with the reply to [`BringUp::command`]. Errors name the
    /// command (PIN masked) and the modem's answer.
    pub fn handle(mut self, reply: &Reply) -> Result<Self, Error> {
        let Some(cmd) = self.command() else {
            return Ok(self);
        };
        self.state = match self.state {
            BringUpState::ExpectEchoOff => {
                reply.ok_for(&cmd)?;
                BringUpState::ExpectErrorMode
            }
            BringUpState::ExpectErrorMode => {
                reply.ok_for(&cmd)?;
                BringUpState::ExpectPinStatus
            }
            BringUpState::ExpectPinStatus => {
                reply.ok_for(&cmd)?;
                match reply.field("+CPIN:") {
                    Some("READY") => BringUpState::ExpectPduMode,
                    Some("SIM PIN") if self.config.pin.is_some() => BringUpState::ExpectPinAccepted,
                    Some(other) => {
                        return Err(Error::Modem {
                            command: cmd.to_string(),
                            answer: format!(
                                "+CPIN: {other} (configure the SIM PIN, or unlock the SIM)"
                            ),
                            transient: false,
                        });
                    }
                    None => {
                        return Err(Error::Modem {
                            command: cmd.to_string(),
                            answer: "OK without +CPIN".into(),
                            transient: true,
                        });
                    }
                }
            }
            BringUpState::ExpectPinAccepted => {
                reply.ok_for(&cmd).map_err(|e| match e {
                    Error::Modem {
                        command, answer, ..
                    } => Error::Modem {
                        command,
                        answer,
                        // A wrong PIN must not be retried: three tries lock the SIM.
                        transient: false,
                    },
                    e => e,
                })?;
                BringUpState::ExpectPduMode
            }
            BringUpState::ExpectPduMode => {
                reply.ok_for(&cmd)?;
                BringUpState::ExpectStorage
            }
            BringUpState::ExpectStorage => {
                reply.ok_for(&cmd)?;
                self.first_indication()
            }
            BringUpState::ExpectIndications(i) => match reply.ok_for(&cmd) {
                Ok(()) => {
                    self.indications = self.config.indications.get(i).copied();
                    self.after_indications()
                }
                Err(e) if i + 1 >= self.config.indications.len() => return Err(e),
                Err(_) => BringUpState::ExpectIndications(i + 1),
            },
            BringUpState::ExpectServiceCentre => {
                reply.ok_for(&cmd)?;
                BringUpState::Ready
            }
            BringUpState::Ready => BringUpState::Ready,
        };
        Ok(self)
    }

    fn first_indication(&self) -> BringUpState {
        if self.config.indications.is_empty() {
            self.after_indications()
        } else {
            BringUpState::ExpectIndications(0)
        }
    }

    fn after_indications(&self) -> BringUpState {
        if self.config.smsc.is_some() {
            BringUpState::ExpectServiceCentre
        } else {
            BringUpState::Ready
        }
    }
}

/// States of one `AT+CMGS` exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendState {
    /// `AT+CMGS=<n>` written; waiting for `> `.
    ExpectPrompt,
    /// PDU and Ctrl-Z written; waiting for `+CMGS: <mr>` and `OK`.
    ExpectResult {
        /// The message reference, once `+CMGS:` arrived.
        mr: Option<u8>,
    },
}

/// What the driver must do after [`SendPdu::handle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendAction {
    /// Keep reading.
    Wait,
    /// Write these bytes (the PDU and Ctrl-Z), then keep reading.
    Write(Vec<u8>),
    /// The modem accepted the PDU; the message reference when it gave one.
    Sent(Option<u8>),
}

/// One PDU being sent with `AT+CMGS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendPdu {
    command: Command,
    hex: String,
    state: SendState,
}

impl SendPdu {
    /// A send of `hex` (SMSC field first) whose TPDU is `tpdu_length` octets.
    /// Write [`SendPdu::command`] first.
    pub fn new(hex: &str, tpdu_length: usize) -> Self {
        Self {
            command: Command::Send(tpdu_length),
            hex: hex.to_ascii_uppercase(),
            state: SendState::ExpectPrompt,
        }
    }

    /// The `AT+CMGS=<n>` command that starts the exchange.
    pub fn command(&self) -> &Command {
        &self.command
    }

    /// The current state.
    pub fn state(&self) -> SendState {
        self.state
    }

    /// Takes one event (URCs, echo and garbage are ignored: the driver
    /// queues URCs itself). Errors are the modem's refusal, classed.
    pub fn handle(&mut self, ev: &Event) -> Result<SendAction, Error> {
        match (self.state, ev) {
            (SendState::ExpectPrompt, Event::Prompt) => {
                self.state = SendState::ExpectResult { mr: None };
                let mut out = Vec::with_capacity(self.hex.len() + 1);
                pdu_body(&self.hex, &mut out);
                Ok(SendAction::Write(out))
            }
            (SendState::ExpectPrompt, Event::Final(Final::Ok)) => Err(Error::AtProtocol {
                reason: "OK before the AT+CMGS prompt",
            }),
            (_, Event::Final(f)) if !f.is_ok() => Err(command_error(&self.command, f)),
            (SendState::ExpectResult { .. }, Event::Info(line)) => {
                if let Some(rest) = line.strip_prefix("+CMGS:") {
                    let mr = rest.split(',').next().and_then(|s| s.trim().parse().ok());
                    self.state = SendState::ExpectResult { mr };
                }
                Ok(SendAction::Wait)
            }
            (SendState::ExpectResult { mr }, Event::Final(_)) => Ok(SendAction::Sent(mr)),
            _ => Ok(SendAction::Wait),
        }
    }
}

#[cfg(test)]
mod tests;
