//! Replays recorded modem transcripts from `fixtures/at/` through the engine.
//!
//! Format: `@bringup [pin=..] [smsc=..]`, `@send <len> <hex>` or
//! `@command <wire>` start a machine; `-> text` is what the engine must
//! write next (`^Z` = Ctrl-Z); `<- text` is a line the modem says (a line
//! `> ` is the prompt, sent without a line end); `= ...` checks the outcome
//! of the current machine or the URCs collected so far.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::path::PathBuf;

use super::*;

enum Machine {
    None,
    BringUp(BringUp, Reply),
    Send(SendPdu),
    Command(Command, Reply),
}

struct Harness {
    parser: Parser,
    machine: Machine,
    writes: VecDeque<Vec<u8>>,
    urcs: Vec<Urc>,
    outcome: Option<String>,
}

fn outcome_of_error(e: &Error) -> String {
    let kind = if e.is_transient() {
        "transient"
    } else {
        "permanent"
    };
    format!("error {kind}: {e}")
}

impl Harness {
    fn write_command(&mut self, c: &Command) {
        let mut out = Vec::new();
        c.encode(&mut out);
        self.writes.push_back(out);
    }

    fn start(&mut self, directive: &str) {
        self.outcome = None;
        let mut words = directive.split_whitespace();
        match words.next().unwrap() {
            "@bringup" => {
                let mut cfg = BringUpConfig {
                    pin: None,
                    storage: "SM".into(),
                    indications: Cnmi::FALLBACKS.to_vec(),
                    smsc: None,
                };
                for w in words {
                    if let Some(p) = w.strip_prefix("pin=") {
                        cfg.pin = Some(p.into());
                    }
                    if let Some(s) = w.strip_prefix("smsc=") {
                        cfg.smsc = Some(s.into());
                    }
                }
                let b = BringUp::new(cfg);
                let c = b.command().unwrap();
                self.write_command(&c);
                self.machine = Machine::BringUp(b, Reply::default());
            }
            "@send" => {
                let len: usize = words.next().unwrap().parse().unwrap();
                let s = SendPdu::new(words.next().unwrap(), len);
                self.write_command(&s.command().clone());
                self.machine = Machine::Send(s);
            }
            "@command" => {
                let wire = words.next().unwrap();
                let c = if let Some(n) = wire.strip_prefix("AT+CMGL=") {
                    Command::List(n.parse().unwrap())
                } else if let Some(n) = wire.strip_prefix("AT+CMGR=") {
                    Command::Read(n.parse().unwrap())
                } else {
                    panic!("unknown command {wire}")
                };
                self.write_command(&c);
                self.machine = Machine::Command(c, Reply::default());
            }
            d => panic!("unknown directive {d}"),
        }
    }

    fn modem_says(&mut self, bytes: &[u8]) {
        let mut events = Vec::new();
        self.parser.feed(bytes, &mut events);
        for ev in events {
            if let Event::Urc(u) = &ev {
                self.urcs.push(u.clone());
                continue;
            }
            self.step(&ev);
        }
    }

    fn step(&mut self, ev: &Event) {
        match std::mem::replace(&mut self.machine, Machine::None) {
            Machine::None => {}
            Machine::BringUp(b, mut reply) => {
                if !reply.push(ev) {
                    self.machine = Machine::BringUp(b, reply);
                    return;
                }
                match b.handle(&reply) {
                    Ok(b) => match b.command() {
                        Some(c) => {
                            self.write_command(&c);
                            self.machine = Machine::BringUp(b, Reply::default());
                        }
                        None => {
                            let c = b.indications.unwrap();
                            self.outcome = Some(format!(
                                "ready cnmi={},{},{},{},{}",
                                c.mode, c.mt, c.bm, c.ds, c.bfr
                            ));
                        }
                    },
                    Err(e) => self.outcome = Some(outcome_of_error(&e)),
                }
            }
            Machine::Send(mut s) => match s.handle(ev) {
                Ok(SendAction::Wait) => self.machine = Machine::Send(s),
                Ok(SendAction::Write(b)) => {
                    self.writes.push_back(b);
                    self.machine = Machine::Send(s);
                }
                Ok(SendAction::Sent(mr)) => {
                    self.outcome = Some(format!("sent mr={}", mr.unwrap()));
                }
                Err(e) => self.outcome = Some(outcome_of_error(&e)),
            },
            Machine::Command(c, mut reply) => {
                if !reply.push(ev) {
                    self.machine = Machine::Command(c, reply);
                    return;
                }
                reply.ok_for(&c).unwrap();
                let idx: Vec<String> = reply
                    .listed
                    .iter()
                    .map(|(h, pdu)| {
                        assert!(crate::sms::decode_modem_hex(pdu).is_ok());
                        Listing::parse(h)
                            .unwrap()
                            .index
                            .map_or("-".to_string(), |i| i.to_string())
                    })
                    .collect();
                self.outcome = Some(format!("listed {}", idx.join(" ")));
            }
        }
    }
}

fn urc_name(u: &Urc) -> String {
    match u {
        Urc::MessageStored { mem, index } => format!("MessageStored({mem},{index})"),
        Urc::StatusReportStored { mem, index } => format!("StatusReportStored({mem},{index})"),
        Urc::Message { length, .. } => format!("Message({length})"),
        Urc::StatusReport { length, pdu } => {
            assert!(crate::sms::decode_modem_hex(pdu).is_ok(), "bad +CDS PDU");
            format!("StatusReport({length})")
        }
        Urc::Ring => "Ring".into(),
        Urc::Vendor(_) => "Vendor".into(),
    }
}

fn replay(name: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/at")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut h = Harness {
        parser: Parser::new(),
        machine: Machine::None,
        writes: VecDeque::new(),
        urcs: Vec::new(),
        outcome: None,
    };
    for (n, line) in text.lines().enumerate() {
        let at = format!("{name}:{}", n + 1);
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.starts_with('@') {
            h.start(line);
        } else if let Some(w) = line.strip_prefix("-> ") {
            let want = w.replace("^Z", "\u{1a}");
            let got = h
                .writes
                .pop_front()
                .unwrap_or_else(|| panic!("{at}: nothing written"));
            let got = String::from_utf8(got).unwrap();
            let got = got.strip_suffix('\r').unwrap_or(&got);
            assert_eq!(got, want, "{at}");
        } else if let Some(m) = line.strip_prefix("<- ") {
            if m == ">" || m == "> " {
                h.modem_says(b"> ");
            } else {
                h.modem_says(format!("\r\n{m}\r\n").as_bytes());
            }
        } else if line.trim() == "<-" {
            h.modem_says(b"\r\n");
        } else if let Some(want) = line.strip_prefix("= urcs ") {
            let got: Vec<String> = h.urcs.iter().map(urc_name).collect();
            assert_eq!(got.join(" "), want, "{at}");
        } else if let Some(want) = line.strip_prefix("= ") {
            assert_eq!(h.outcome.as_deref(), Some(want), "{at}");
            assert!(
                h.writes.is_empty(),
                "{at}: unexpected writes {:?}",
                h.writes
            );
        } else {
            panic!("{at}: cannot read transcript line");
        }
    }
}

#[test]
fn transcript_bringup_pin_fallback() {
    replay("bringup_pin_fallback.txt");
}

#[test]
fn transcript_bringup_wrong_pin() {
    replay("bringup_wrong_pin.txt");
}

#[test]
fn transcript_send_with_urcs() {
    replay("send_with_urcs.txt");
}

#[test]
fn transcript_send_cms_error() {
    replay("send_cms_error.txt");
}

#[test]
fn transcript_read_and_list() {
    replay("read_and_list.txt");
}

#[test]
fn cms_classes() {
    for c in [331, 332, 314, 300, 500, 0xC0, 42] {
        assert!(cms_is_transient(c), "{c}");
    }
    for c in [1, 21, 304, 330, 0xC5, 96] {
        assert!(!cms_is_transient(c), "{c}");
    }
}

#[test]
fn bringup_without_pin_refuses_locked_sim() {
    let mut b = BringUp::new(BringUpConfig {
        pin: None,
        storage: "SM".into(),
        indications: vec![Cnmi::STORE_AND_NOTIFY],
        smsc: None,
    });
    let ok = Reply {
        result: Some(Final::Ok),
        ..Reply::default()
    };
    b = b.handle(&ok).unwrap();
    b = b.handle(&ok).unwrap();
    assert_eq!(b.command(), Some(Command::PinStatus));
    let locked = Reply {
        info: vec!["+CPIN: SIM PIN".into()],
        result: Some(Final::Ok),
        ..Reply::default()
    };
    let e = b.handle(&locked).unwrap_err();
    assert!(e.is_permanent());
    assert!(e.to_string().contains("AT+CPIN?"), "{e}");
}
