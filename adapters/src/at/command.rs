//! AT commands as types whose `encode` writes the exact wire form
//! (TS 27.007 / TS 27.005, PDU mode).

use std::fmt;

/// `AT+CNMI=<mode>,<mt>,<bm>,<ds>,<bfr>`: how new messages and status
/// reports are indicated (TS 27.005 §3.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cnmi {
    /// Buffering of indications (2 = buffer while the link is busy, flush after).
    pub mode: u8,
    /// 1 = store and indicate `+CMTI`; 2 = route directly as `+CMT`.
    pub mt: u8,
    /// Cell broadcast indications (0 = none).
    pub bm: u8,
    /// Status reports: 0 = none, 1 = direct `+CDS`, 2 = stored, `+CDSI`.
    pub ds: u8,
    /// Buffer flush behaviour when mode 1..3 is entered.
    pub bfr: u8,
}

impl Cnmi {
    /// python-gsmmodem's choice, and ours by default: store and indicate
    /// both messages and status reports, so nothing depends on `+CNMA`.
    pub const STORE_AND_NOTIFY: Self = Self {
        mode: 2,
        mt: 1,
        bm: 0,
        ds: 2,
        bfr: 0,
    };
    /// Fallbacks tried when a modem refuses the configured mode, in order.
    pub const FALLBACKS: [Self; 3] = [
        Self::STORE_AND_NOTIFY,
        Self {
            mode: 2,
            mt: 1,
            bm: 0,
            ds: 1,
            bfr: 0,
        },
        Self {
            mode: 1,
            mt: 1,
            bm: 0,
            ds: 0,
            bfr: 0,
        },
    ];
}

/// One AT command. `Display` is the log-safe form (the PIN is masked).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `AT`: is anybody there?
    Attention,
    /// `ATE0` / `ATE1`: command echo off or on.
    Echo(bool),
    /// `AT+CMEE=<n>`: numeric (1) or verbose (2) error codes.
    ReportErrors(u8),
    /// `AT+CPIN?`: SIM lock state.
    PinStatus,
    /// `AT+CPIN="<pin>"`: unlock the SIM.
    EnterPin(String),
    /// `AT+CMGF=<n>`: 0 = PDU mode, 1 = text mode.
    MessageFormat(u8),
    /// `AT+CPMS="<mem>","<mem>","<mem>"`: read, write and receive storage.
    Storage(String),
    /// `AT+CNMI=...`: new-message indications.
    Indications(Cnmi),
    /// `AT+CSCA="<number>",<toa>`: the SMSC address.
    ServiceCentre(String),
    /// `AT+CMGS=<length>`: send one PDU of `length` TPDU octets.
    Send(usize),
    /// `AT+CMGR=<index>`: read one stored message.
    Read(u32),
    /// `AT+CMGL=<stat>`: list stored messages (4 = all).
    List(u8),
    /// `AT+CMGD=<index>`: delete one stored message.
    Delete(u32),
    /// `AT+CNMA`: acknowledge a directly routed `+CMT` / `+CDS`.
    Acknowledge,
}

impl Command {
    /// Writes the exact bytes sent to the modem, `\r` included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.write(out, false);
        out.push(b'\r');
    }

    /// The wire form as a string, without the trailing `\r`.
    pub fn to_wire(&self) -> String {
        let mut v = Vec::new();
        self.write(&mut v, false);
        String::from_utf8_lossy(&v).into_owned()
    }

    fn write(&self, out: &mut Vec<u8>, mask: bool) {
        use std::io::Write;
        // Writing to a Vec cannot fail.
        let _ = match self {
            Self::Attention => write!(out, "AT"),
            Self::Echo(on) => write!(out, "ATE{}", u8::from(*on)),
            Self::ReportErrors(n) => write!(out, "AT+CMEE={n}"),
            Self::PinStatus => write!(out, "AT+CPIN?"),
            Self::EnterPin(pin) if mask => write!(out, "AT+CPIN=\"{}\"", "*".repeat(pin.len())),
            Self::EnterPin(pin) => write!(out, "AT+CPIN=\"{pin}\""),
            Self::MessageFormat(n) => write!(out, "AT+CMGF={n}"),
            Self::Storage(m) => write!(out, "AT+CPMS=\"{m}\",\"{m}\",\"{m}\""),
            Self::Indications(c) => write!(
                out,
                "AT+CNMI={},{},{},{},{}",
                c.mode, c.mt, c.bm, c.ds, c.bfr
            ),
            Self::ServiceCentre(n) => {
                let toa = if n.starts_with('+') { 145 } else { 129 };
                write!(out, "AT+CSCA=\"{n}\",{toa}")
            }
            Self::Send(len) => write!(out, "AT+CMGS={len}"),
            Self::Read(i) => write!(out, "AT+CMGR={i}"),
            Self::List(s) => write!(out, "AT+CMGL={s}"),
            Self::Delete(i) => write!(out, "AT+CMGD={i}"),
            Self::Acknowledge => write!(out, "AT+CNMA"),
        };
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = Vec::new();
        self.write(&mut v, true);
        f.write_str(&String::from_utf8_lossy(&v))
    }
}

/// The bytes that follow the `> ` prompt of `AT+CMGS`: the hex PDU and Ctrl-Z.
pub fn pdu_body(hex: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(hex.as_bytes());
    out.push(CTRL_Z);
}

/// Ends a PDU after the prompt (submit).
pub const CTRL_Z: u8 = 0x1A;
/// Aborts a PDU after the prompt.
pub const ESC: u8 = 0x1B;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_forms() {
        let cases = [
            (Command::Echo(false), "ATE0"),
            (Command::ReportErrors(1), "AT+CMEE=1"),
            (Command::MessageFormat(0), "AT+CMGF=0"),
            (
                Command::Storage("SM".into()),
                "AT+CPMS=\"SM\",\"SM\",\"SM\"",
            ),
            (
                Command::Indications(Cnmi::STORE_AND_NOTIFY),
                "AT+CNMI=2,1,0,2,0",
            ),
            (
                Command::ServiceCentre("+447785016005".into()),
                "AT+CSCA=\"+447785016005\",145",
            ),
            (Command::Send(23), "AT+CMGS=23"),
            (Command::Read(3), "AT+CMGR=3"),
            (Command::List(4), "AT+CMGL=4"),
            (Command::Delete(3), "AT+CMGD=3"),
            (Command::Acknowledge, "AT+CNMA"),
        ];
        for (c, w) in cases {
            let mut out = Vec::new();
            c.encode(&mut out);
            assert_eq!(out, format!("{w}\r").into_bytes());
        }
    }

    #[test]
    fn pin_is_masked_in_display() {
        let c = Command::EnterPin("1234".into());
        assert_eq!(c.to_wire(), "AT+CPIN=\"1234\"");
        assert_eq!(c.to_string(), "AT+CPIN=\"****\"");
    }
}
