//! The response side: bytes from the modem in, [`Event`]s out.
//!
//! A modem interleaves three kinds of output on one line-oriented stream:
//! answers to the command in progress (intermediate lines, then exactly one
//! final result), unsolicited result codes that can arrive at any moment
//! (between two commands, between the `> ` prompt of `AT+CMGS` and its
//! result, in the middle of a listing), and noise (echo, garbage after a
//! reset, vendor status lines). [`Parser`] separates them so that the
//! command state machines only ever see answers and the driver sees every
//! URC exactly once, whatever it arrived between.
//!
//! Some lines announce that the next line is a PDU (`+CMT:`, `+CDS:`,
//! `+CMGR:`, `+CMGL:`); the parser joins the pair into one event. Line
//! length is capped: a line longer than [`MAX_LINE`] is dropped and reported
//! as [`Event::Garbage`], so a babbling device cannot grow memory.

/// Longest line kept, in bytes. A PDU is at most 176 octets (352 hex digits)
/// plus an SMSC field; 1 KiB leaves room for vendor lines.
pub const MAX_LINE: usize = 1024;

/// A final result code: the command in progress is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Final {
    /// `OK`.
    Ok,
    /// `ERROR` (no detail; `AT+CMEE=1` was not accepted or not applicable).
    Error,
    /// `+CMS ERROR: <n>` (message service failure, TS 27.005 §3.2.5).
    CmsError(u16),
    /// `+CME ERROR: <n>` (equipment failure, TS 27.007 §9.2); `None` when the
    /// modem gave text instead of a number.
    CmeError(Option<u16>),
}

impl Final {
    /// True for `OK`.
    pub fn is_ok(&self) -> bool {
        *self == Self::Ok
    }
}

impl std::fmt::Display for Final {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ok => f.write_str("OK"),
            Self::Error => f.write_str("ERROR"),
            Self::CmsError(n) => write!(f, "+CMS ERROR: {n}"),
            Self::CmeError(Some(n)) => write!(f, "+CME ERROR: {n}"),
            Self::CmeError(None) => f.write_str("+CME ERROR"),
        }
    }
}

/// An unsolicited result code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Urc {
    /// `+CMTI: "<mem>",<index>`: a message was stored.
    MessageStored {
        /// Storage name, e.g. `SM`.
        mem: String,
        /// Index in that storage.
        index: u32,
    },
    /// `+CMT: [<alpha>],<length>` + PDU line: a message routed directly.
    Message {
        /// TPDU length announced.
        length: usize,
        /// The PDU in hex (SMSC field first).
        pdu: String,
    },
    /// `+CDS: <length>` + PDU line: a status report routed directly.
    StatusReport {
        /// TPDU length announced.
        length: usize,
        /// The PDU in hex (SMSC field first).
        pdu: String,
    },
    /// `+CDSI: "<mem>",<index>`: a status report was stored.
    StatusReportStored {
        /// Storage name.
        mem: String,
        /// Index in that storage.
        index: u32,
    },
    /// `RING` (voice call; ignored, but it must not break a command).
    Ring,
    /// A `^`-prefixed vendor line (Huawei `^RSSI:`, `^BOOT:`, ...).
    Vendor(String),
}

/// One thing the modem said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A final result code.
    Final(Final),
    /// The `> ` prompt of `AT+CMGS`: send the PDU now.
    Prompt,
    /// An intermediate response line (`+CMGS: 12`, `+CPIN: READY`, ...).
    Info(String),
    /// An intermediate response followed by its PDU line (`+CMGR:`, `+CMGL:`).
    Listed {
        /// The header line, e.g. `+CMGL: 2,1,,23`.
        header: String,
        /// The PDU line in hex.
        pdu: String,
    },
    /// An unsolicited result code.
    Urc(Urc),
    /// An echoed command line (echo was on).
    Echo(String),
    /// A line that could not be understood where it appeared (too long, or
    /// not hex where a PDU was announced). Carries a short log-safe reason.
    Garbage(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    /// The next line should be the PDU of this header.
    Cmt(usize),
    Cds(usize),
    Listed(String),
}

/// Incremental splitter and classifier; feed it bytes as they arrive.
#[derive(Debug, Default, Clone)]
pub struct Parser {
    line: Vec<u8>,
    overlong: bool,
    /// The previous byte was the `>` of a prompt; swallow its spaces.
    after_prompt: bool,
    pending: Option<Pending>,
}

impl Parser {
    /// A parser at the start of a line.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when a partial line is buffered.
    pub fn has_partial(&self) -> bool {
        !self.line.is_empty() || self.pending.is_some()
    }

    /// Forgets any partial line (after a reconnect).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Consumes `bytes`, appending every complete event to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Event>) {
        for &b in bytes {
            if self.after_prompt {
                if b == b' ' {
                    continue;
                }
                self.after_prompt = false;
            }
            match b {
                b'\r' | b'\n' => self.end_line(out),
                b'>' if self.line.is_empty() && !self.overlong && self.pending.is_none() => {
                    self.after_prompt = true;
                    out.push(Event::Prompt);
                }
                0 => {}
                _ => {
                    if self.line.len() >= MAX_LINE {
                        self.overlong = true;
                        self.line.clear();
                    }
                    if !self.overlong {
                        self.line.push(b);
                    }
                }
            }
        }
    }

    fn end_line(&mut self, out: &mut Vec<Event>) {
        if self.overlong {
            self.overlong = false;
            self.line.clear();
            self.pending = None;
            out.push(Event::Garbage("line too long"));
            return;
        }
        if self.line.is_empty() {
            return;
        }
        let raw = std::mem::take(&mut self.line);
        let text = String::from_utf8_lossy(&raw);
        let line = text.trim();
        if line.is_empty() {
            return;
        }
        if let Some(p) = self.pending.take() {
            if is_hex(line) {
                let pdu = line.to_ascii_uppercase();
                out.push(match p {
                    Pending::Cmt(length) => Event::Urc(Urc::Message { length, pdu }),
                    Pending::Cds(length) => Event::Urc(Urc::StatusReport { length, pdu }),
                    Pending::Listed(header) => Event::Listed { header, pdu },
                });
                return;
            }
            // The announced PDU never came: report it and read this line as
            // what it is (often the final result or another URC).
            out.push(Event::Garbage("PDU line expected"));
        }
        self.classify(line, out);
    }

    fn classify(&mut self, line: &str, out: &mut Vec<Event>) {
        if let Some(f) = parse_final(line) {
            out.push(Event::Final(f));
            return;
        }
        if let Some(rest) = line.strip_prefix("+CMTI:") {
            match parse_mem_index(rest) {
                Some((mem, index)) => out.push(Event::Urc(Urc::MessageStored { mem, index })),
                None => out.push(Event::Garbage("malformed +CMTI")),
            }
            return;
        }
        if let Some(rest) = line.strip_prefix("+CDSI:") {
            match parse_mem_index(rest) {
                Some((mem, index)) => out.push(Event::Urc(Urc::StatusReportStored { mem, index })),
                None => out.push(Event::Garbage("malformed +CDSI")),
            }
            return;
        }
        if let Some(rest) = line.strip_prefix("+CMT:") {
            match last_number(rest) {
                Some(len) => self.pending = Some(Pending::Cmt(len)),
                None => out.push(Event::Garbage("malformed +CMT")),
            }
            return;
        }
        if let Some(rest) = line.strip_prefix("+CDS:") {
            match last_number(rest) {
                Some(len) => self.pending = Some(Pending::Cds(len)),
                None => out.push(Event::Garbage("malformed +CDS")),
            }
            return;
        }
        if line.starts_with("+CMGR:") || line.starts_with("+CMGL:") {
            self.pending = Some(Pending::Listed(line.to_string()));
            return;
        }
        if line == "RING" {
            out.push(Event::Urc(Urc::Ring));
            return;
        }
        if line.starts_with('^') {
            out.push(Event::Urc(Urc::Vendor(line.to_string())));
            return;
        }
        if line.len() >= 2 && line.as_bytes()[..2].eq_ignore_ascii_case(b"AT") {
            out.push(Event::Echo(line.to_string()));
            return;
        }
        out.push(Event::Info(line.to_string()));
    }
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.len().is_multiple_of(2) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn parse_final(line: &str) -> Option<Final> {
    match line {
        "OK" => return Some(Final::Ok),
        "ERROR" => return Some(Final::Error),
        _ => {}
    }
    if let Some(rest) = line.strip_prefix("+CMS ERROR:") {
        return Some(
            rest.trim()
                .parse()
                .map_or(Final::CmsError(500), Final::CmsError),
        );
    }
    if let Some(rest) = line.strip_prefix("+CME ERROR:") {
        return Some(Final::CmeError(rest.trim().parse().ok()));
    }
    None
}

/// `"SM",3` -> (`SM`, 3).
fn parse_mem_index(rest: &str) -> Option<(String, u32)> {
    let (mem, index) = rest.trim().rsplit_once(',')?;
    let mem = mem.trim().trim_matches('"');
    if mem.len() > 8 {
        return None;
    }
    Some((mem.to_string(), index.trim().parse().ok()?))
}

/// The last comma-separated field as a number (`,23` or `"alpha",23` -> 23).
fn last_number(rest: &str) -> Option<usize> {
    let last = rest.rsplit(',').next()?.trim();
    let n: usize = last.parse().ok()?;
    (n <= 255).then_some(n)
}

/// The fields of a `+CMGR: <stat>,[<alpha>],<length>` or
/// `+CMGL: <index>,<stat>,[<alpha>],<length>` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listing {
    /// Storage index (`+CMGL` only).
    pub index: Option<u32>,
    /// 0 received unread, 1 received read, 2 stored unsent, 3 stored sent.
    pub stat: u8,
    /// TPDU length.
    pub length: usize,
}

impl Listing {
    /// Parses a `+CMGR:` or `+CMGL:` header line.
    pub fn parse(header: &str) -> Option<Self> {
        let (cmgl, rest) = if let Some(r) = header.strip_prefix("+CMGL:") {
            (true, r)
        } else {
            (false, header.strip_prefix("+CMGR:")?)
        };
        let fields: Vec<&str> = rest.split(',').map(str::trim).collect();
        let mut it = fields.iter();
        let index = if cmgl {
            Some(it.next()?.parse().ok()?)
        } else {
            None
        };
        let stat = it.next()?.parse().ok()?;
        let length = fields.last()?.parse().ok()?;
        Some(Self {
            index,
            stat,
            length,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<Event> {
        let mut p = Parser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, &mut out);
        }
        out
    }

    #[test]
    fn finals_and_info() {
        let ev = parse_all(&[
            b"\r\n+CPIN: READY\r\n\r\nOK\r\n\r\n+CMS ERROR: 332\r\n+CME ERROR: 10\r\nERROR\r\n",
        ]);
        assert_eq!(
            ev,
            vec![
                Event::Info("+CPIN: READY".into()),
                Event::Final(Final::Ok),
                Event::Final(Final::CmsError(332)),
                Event::Final(Final::CmeError(Some(10))),
                Event::Final(Final::Error),
            ]
        );
    }

    #[test]
    fn split_anywhere_gives_the_same_events() {
        let whole: &[u8] = b"\r\n+CMT: ,24\r\n07911326040000F0040B911346610089F600002080629173148005E8329BFD06\r\n> \r\n+CMTI: \"SM\",3\r\n^RSSI:14\r\nRING\r\n+CMGS: 7\r\n\r\nOK\r\n";
        let reference = parse_all(&[whole]);
        assert_eq!(reference.len(), 7, "{reference:?}");
        for cut in 0..whole.len() {
            let (a, b) = whole.split_at(cut);
            assert_eq!(parse_all(&[a, b]), reference, "cut at {cut}");
        }
        let bytewise: Vec<&[u8]> = whole.chunks(1).collect();
        assert_eq!(parse_all(&bytewise), reference);
    }

    #[test]
    fn pdu_missing_after_header_is_reported_and_line_kept() {
        let ev = parse_all(&[b"+CMT: ,24\r\nOK\r\n"]);
        assert_eq!(
            ev,
            vec![Event::Garbage("PDU line expected"), Event::Final(Final::Ok)]
        );
    }

    #[test]
    fn overlong_lines_are_dropped() {
        let mut long = vec![b'A'; MAX_LINE * 3];
        long.extend_from_slice(b"\r\nOK\r\n");
        assert_eq!(
            parse_all(&[&long]),
            vec![Event::Garbage("line too long"), Event::Final(Final::Ok)]
        );
    }

    #[test]
    fn listing_headers() {
        assert_eq!(
            Listing::parse("+CMGL: 2,1,,23"),
            Some(Listing {
                index: Some(2),
                stat: 1,
                length: 23
            })
        );
        assert_eq!(
            Listing::parse("+CMGR: 0,\"alpha\",40"),
            Some(Listing {
                index: None,
                stat: 0,
                length: 40
            })
        );
        assert_eq!(Listing::parse("+CMGL: x"), None);
    }
}
