//! TPDUs (TS 23.040 §9.2.2): SMS-DELIVER, SMS-SUBMIT and SMS-STATUS-REPORT,
//! and the modem PDU-mode framing that puts the SMSC address in front
//! (TS 27.005 §3.1).
//!
//! Every type follows one codec shape: `encode(&self, &mut Vec<u8>)`,
//! `decode(&mut Reader) -> Result<Self, Error>`, and `decode_bytes` that
//! rejects trailing bytes. Decoding never panics and checks every length
//! against the input before using it; `decode(encode(decode(x)))` equals
//! `decode(x)` (bits the model does not keep, such as reserved bits, are
//! normalised on the first decode).

use serde::Serialize;

use super::address::{self, Address};
use super::dcs::Dcs;
use super::reader::Reader;
use super::segment::Encoding;
use super::timestamp::{Timestamp, ValidityPeriod};
use super::user_data::UserData;
use crate::Error;

const FIRST_OCTET: &str = "TP-MTI first octet";

/// Reads TP-DCS and the alphabet it selects, refusing compressed data.
fn decode_dcs(r: &mut Reader<'_>) -> Result<(Dcs, Encoding), Error> {
    let offset = r.offset();
    let dcs = Dcs(r.u8("TP-DCS")?);
    let encoding = dcs
        .encoding()
        .map_err(|why| Error::unsupported("TP-DCS", offset, why))?;
    Ok((dcs, encoding))
}

fn bit(b: u8, n: u8) -> bool {
    b & (1 << n) != 0
}

fn flag(v: bool, n: u8) -> u8 {
    u8::from(v) << n
}

/// SMS-DELIVER: a message from the service centre to the phone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Deliver {
    /// TP-RP: a reply path is set up.
    pub reply_path: bool,
    /// TP-MMS inverted: more messages wait in the service centre.
    pub more_messages: bool,
    /// TP-LP: loop prevention (the message was forwarded).
    pub loop_prevention: bool,
    /// TP-SRI: the sender asked for a status report.
    pub status_report_indication: bool,
    /// TP-OA: who sent it.
    pub originator: Address,
    /// TP-PID: protocol identifier (0 = plain SMS).
    pub pid: u8,
    /// TP-DCS: must agree with `user_data`'s encoding.
    pub dcs: Dcs,
    /// TP-SCTS: when the service centre received it.
    pub scts: Timestamp,
    /// TP-UDL/TP-UD (TP-UDHI follows from its header).
    pub user_data: UserData,
}

impl Deliver {
    /// Writes the TPDU (no SMSC prefix).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(
            flag(!self.more_messages, 2)
                | flag(self.loop_prevention, 3)
                | flag(self.status_report_indication, 5)
                | flag(self.user_data.header().is_some(), 6)
                | flag(self.reply_path, 7),
        );
        self.originator.encode(out);
        out.push(self.pid);
        out.push(self.dcs.0);
        self.scts.encode(out);
        self.user_data.encode(out);
    }

    /// Reads the TPDU starting at its first octet.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, Error> {
        let offset = r.offset();
        let fo = r.u8(FIRST_OCTET)?;
        if fo & 0x03 != 0 {
            return Err(Error::malformed(FIRST_OCTET, offset, "not an SMS-DELIVER"));
        }
        let originator = Address::decode_tp(r, address::TP_OA)?;
        let pid = r.u8("TP-PID")?;
        let (dcs, encoding) = decode_dcs(r)?;
        let scts = Timestamp::decode(r, "TP-SCTS")?;
        let user_data = UserData::decode(r, encoding, bit(fo, 6))?;
        Ok(Self {
            reply_path: bit(fo, 7),
            more_messages: !bit(fo, 2),
            loop_prevention: bit(fo, 3),
            status_report_indication: bit(fo, 5),
            originator,
            pid,
            dcs,
            scts,
            user_data,
        })
    }

    /// Decodes exactly one TPDU from `b`.
    pub fn decode_bytes(b: &[u8]) -> Result<Self, Error> {
        Reader::decode_exactly(b, Self::decode)
    }
}

/// SMS-SUBMIT: a message from the phone (or gateway) to the service centre.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Submit {
    /// TP-RP: request a reply path.
    pub reply_path: bool,
    /// TP-RD: the service centre should reject a duplicate (same TP-MR and
    /// TP-DA) still held.
    pub reject_duplicates: bool,
    /// TP-SRR: request a status report.
    pub status_report_request: bool,
    /// TP-MR: message reference (many modems overwrite it).
    pub message_reference: u8,
    /// TP-DA: the recipient.
    pub destination: Address,
    /// TP-PID: protocol identifier (0 = plain SMS).
    pub pid: u8,
    /// TP-DCS: must agree with `user_data`'s encoding.
    pub dcs: Dcs,
    /// TP-VP with its format (TP-VPF follows from it).
    pub validity: Option<ValidityPeriod>,
    /// TP-UDL/TP-UD (TP-UDHI follows from its header).
    pub user_data: UserData,
}

impl Submit {
    /// A plain SMS-SUBMIT to `destination` whose DCS matches the user data.
    pub fn new(destination: Address, user_data: UserData) -> Self {
        Self {
            reply_path: false,
            reject_duplicates: false,
            status_report_request: false,
            message_reference: 0,
            destination,
            pid: 0,
            dcs: Dcs::general(user_data.encoding(), None),
            validity: None,
            user_data,
        }
    }

    /// Writes the TPDU (no SMSC prefix).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let vpf = self.validity.as_ref().map_or(0, ValidityPeriod::vpf);
        out.push(
            0x01 | flag(self.reject_duplicates, 2)
                | (vpf << 3)
                | flag(self.status_report_request, 5)
                | flag(self.user_data.header().is_some(), 6)
                | flag(self.reply_path, 7),
        );
        out.push(self.message_reference);
        self.destination.encode(out);
        out.push(self.pid);
        out.push(self.dcs.0);
        if let Some(vp) = &self.validity {
            vp.encode(out);
        }
        self.user_data.encode(out);
    }

    /// Reads the TPDU starting at its first octet.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, Error> {
        let offset = r.offset();
        let fo = r.u8(FIRST_OCTET)?;
        if fo & 0x03 != 0x01 {
            return Err(Error::malformed(FIRST_OCTET, offset, "not an SMS-SUBMIT"));
        }
        let message_reference = r.u8("TP-MR")?;
        let destination = Address::decode_tp(r, address::TP_DA)?;
        let pid = r.u8("TP-PID")?;
        let (dcs, encoding) = decode_dcs(r)?;
        let validity = ValidityPeriod::decode(r, (fo >> 3) & 0x03)?;
        let user_data = UserData::decode(r, encoding, bit(fo, 6))?;
        Ok(Self {
            reply_path: bit(fo, 7),
            reject_duplicates: bit(fo, 2),
            status_report_request: bit(fo, 5),
            message_reference,
            destination,
            pid,
            dcs,
            validity,
            user_data,
        })
    }

    /// Decodes exactly one TPDU from `b`.
    pub fn decode_bytes(b: &[u8]) -> Result<Self, Error> {
        Reader::decode_exactly(b, Self::decode)
    }
}

/// TP-ST, the outcome a status report announces (TS 23.040 §9.2.3.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Status(pub u8);

/// Broad meaning of a [`Status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StatusCategory {
    /// 0x00..=0x1F: the short message was delivered (or replaced).
    Delivered,
    /// 0x20..=0x3F: temporary error, the service centre keeps trying.
    Temporary,
    /// 0x40..=0x5F: permanent error, the service centre gave up.
    Permanent,
    /// 0x60..=0x7F: temporary error, but the service centre stopped trying.
    TemporaryStopped,
    /// 0x80..=0xFF: reserved values.
    Reserved,
}

impl Status {
    /// The broad category of this status.
    pub const fn category(self) -> StatusCategory {
        match self.0 {
            0x00..=0x1F => StatusCategory::Delivered,
            0x20..=0x3F => StatusCategory::Temporary,
            0x40..=0x5F => StatusCategory::Permanent,
            0x60..=0x7F => StatusCategory::TemporaryStopped,
            _ => StatusCategory::Reserved,
        }
    }

    /// A short English description of the code (TS 23.040 §9.2.3.15).
    pub const fn description(self) -> &'static str {
        match self.0 {
            0x00 => "received by the SME",
            0x01 => "forwarded to the SME, delivery not confirmed",
            0x02 => "replaced by the SC",
            0x20 | 0x60 => "congestion",
            0x21 | 0x61 => "SME busy",
            0x22 | 0x62 => "no response from SME",
            0x23 | 0x63 => "service rejected",
            0x24 | 0x44 | 0x64 => "quality of service not available",
            0x25 | 0x65 => "error in SME",
            0x40 => "remote procedure error",
            0x41 => "incompatible destination",
            0x42 => "connection rejected by SME",
            0x43 => "not obtainable",
            0x45 => "no interworking available",
            0x46 => "SM validity period expired",
            0x47 => "SM deleted by originating SME",
            0x48 => "SM deleted by SC administration",
            0x49 => "SM does not exist",
            _ => match self.category() {
                StatusCategory::Delivered => "delivered (reserved or SC-specific code)",
                StatusCategory::Temporary => "temporary error (reserved or SC-specific code)",
                StatusCategory::Permanent => "permanent error (reserved or SC-specific code)",
                StatusCategory::TemporaryStopped => {
                    "temporary error, SC stopped trying (reserved or SC-specific code)"
                }
                StatusCategory::Reserved => "reserved",
            },
        }
    }
}

/// SMS-STATUS-REPORT: the outcome of an earlier SMS-SUBMIT with TP-SRR.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatusReport {
    /// TP-MMS inverted: more messages wait in the service centre.
    pub more_messages: bool,
    /// TP-LP: loop prevention.
    pub loop_prevention: bool,
    /// TP-SRQ: true if this reports on an SMS-COMMAND, false on an SMS-SUBMIT.
    pub status_report_qualifier: bool,
    /// TP-MR of the SMS-SUBMIT this reports on.
    pub message_reference: u8,
    /// TP-RA: the recipient of that message.
    pub recipient: Address,
    /// TP-SCTS: when the service centre received the original message.
    pub scts: Timestamp,
    /// TP-DT: when the status was reached (delivery time, or failure time).
    pub discharge_time: Timestamp,
    /// TP-ST: what happened.
    pub status: Status,
    /// TP-PID, if TP-PI says it is present.
    pub pid: Option<u8>,
    /// TP-DCS, if TP-PI says it is present.
    pub dcs: Option<Dcs>,
    /// TP-UDL/TP-UD, if TP-PI says it is present.
    pub user_data: Option<UserData>,
}

impl StatusReport {
    /// Writes the TPDU (no SMSC prefix).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(
            0x02 | flag(!self.more_messages, 2)
                | flag(self.loop_prevention, 3)
                | flag(self.status_report_qualifier, 5)
                | flag(
                    self.user_data
                        .as_ref()
                        .is_some_and(|u| u.header().is_some()),
                    6,
                ),
        );
        out.push(self.message_reference);
        self.recipient.encode(out);
        self.scts.encode(out);
        self.discharge_time.encode(out);
        out.push(self.status.0);
        // A UCS-2 or 8-bit body needs its DCS even if none was given.
        let dcs = self.dcs.or_else(|| {
            self.user_data
                .as_ref()
                .filter(|u| u.encoding() != Encoding::Gsm7)
                .map(|u| Dcs::general(u.encoding(), None))
        });
        if self.pid.is_some() || dcs.is_some() || self.user_data.is_some() {
            out.push(
                flag(self.pid.is_some(), 0)
                    | flag(dcs.is_some(), 1)
                    | flag(self.user_data.is_some(), 2),
            );
            if let Some(pid) = self.pid {
                out.push(pid);
            }
            if let Some(dcs) = dcs {
                out.push(dcs.0);
            }
            if let Some(ud) = &self.user_data {
                ud.encode(out);
            }
        }
    }

    /// Reads the TPDU starting at its first octet.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, Error> {
        let offset = r.offset();
        let fo = r.u8(FIRST_OCTET)?;
        if fo & 0x03 != 0x02 {
            return Err(Error::malformed(
                FIRST_OCTET,
                offset,
                "not an SMS-STATUS-REPORT",
            ));
        }
        let message_reference = r.u8("TP-MR")?;
        let recipient = Address::decode_tp(r, address::TP_RA)?;
        let scts = Timestamp::decode(r, "TP-SCTS")?;
        let discharge_time = Timestamp::decode(r, "TP-DT")?;
        let status = Status(r.u8("TP-ST")?);
        let (mut pid, mut dcs, mut user_data) = (None, None, None);
        if !r.is_empty() {
            let pi = r.u8("TP-PI")?;
            // Extension octets (bit 7) carry no parameters defined so far.
            let mut ext = pi;
            while ext & 0x80 != 0 {
                ext = r.u8("TP-PI")?;
            }
            if bit(pi, 0) {
                pid = Some(r.u8("TP-PID")?);
            }
            let mut encoding = Encoding::Gsm7;
            if bit(pi, 1) {
                let (d, e) = decode_dcs(r)?;
                dcs = Some(d);
                encoding = e;
            }
            if bit(pi, 2) {
                user_data = Some(UserData::decode(r, encoding, bit(fo, 6))?);
            }
        }
        Ok(Self {
            more_messages: !bit(fo, 2),
            loop_prevention: bit(fo, 3),
            status_report_qualifier: bit(fo, 5),
            message_reference,
            recipient,
            scts,
            discharge_time,
            status,
            pid,
            dcs,
            user_data,
        })
    }

    /// Decodes exactly one TPDU from `b`.
    pub fn decode_bytes(b: &[u8]) -> Result<Self, Error> {
        Reader::decode_exactly(b, Self::decode)
    }
}

/// Any TPDU a modem shows in PDU mode, told apart by TP-MTI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Tpdu {
    /// MTI 00.
    Deliver(Deliver),
    /// MTI 01.
    Submit(Submit),
    /// MTI 10.
    StatusReport(StatusReport),
}

impl Tpdu {
    /// Writes the TPDU.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Deliver(t) => t.encode(out),
            Self::Submit(t) => t.encode(out),
            Self::StatusReport(t) => t.encode(out),
        }
    }

    /// Reads a TPDU of any of the three types. MTI 11 is reserved and
    /// rejected. (The MTI alone cannot tell SMS-DELIVER from
    /// SMS-DELIVER-REPORT; a modem only shows the former.)
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, Error> {
        let offset = r.offset();
        match r.peek().map(|b| b & 0x03) {
            None => Err(Error::truncated(FIRST_OCTET, offset)),
            Some(0) => Deliver::decode(r).map(Self::Deliver),
            Some(1) => Submit::decode(r).map(Self::Submit),
            Some(2) => StatusReport::decode(r).map(Self::StatusReport),
            Some(_) => Err(Error::malformed(
                FIRST_OCTET,
                offset,
                "reserved message type 11",
            )),
        }
    }

    /// Decodes exactly one TPDU from `b`.
    pub fn decode_bytes(b: &[u8]) -> Result<Self, Error> {
        Reader::decode_exactly(b, Self::decode)
    }

    /// The user data, if the TPDU carries any.
    pub fn user_data(&self) -> Option<&UserData> {
        match self {
            Self::Deliver(t) => Some(&t.user_data),
            Self::Submit(t) => Some(&t.user_data),
            Self::StatusReport(t) => t.user_data.as_ref(),
        }
    }
}

/// A PDU as a modem shows it in PDU mode: SMSC address, then the TPDU.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModemPdu {
    /// The service centre; `None` is the `00` prefix (use the SIM's default).
    pub smsc: Option<Address>,
    /// The TPDU.
    pub tpdu: Tpdu,
}

impl ModemPdu {
    /// Writes SMSC prefix and TPDU.
    pub fn encode(&self, out: &mut Vec<u8>) {
        Address::encode_smsc(self.smsc.as_ref(), out);
        self.tpdu.encode(out);
    }

    /// Reads SMSC prefix and TPDU.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, Error> {
        let smsc = Address::decode_smsc(r)?;
        let tpdu = Tpdu::decode(r)?;
        Ok(Self { smsc, tpdu })
    }

    /// Decodes exactly one modem PDU from `b`, rejecting trailing bytes.
    pub fn decode_bytes(b: &[u8]) -> Result<Self, Error> {
        Reader::decode_exactly(b, Self::decode)
    }

    /// The encoded PDU as uppercase hex.
    pub fn to_hex(&self) -> String {
        let mut b = Vec::with_capacity(176);
        self.encode(&mut b);
        hex::encode_upper(b)
    }

    /// Octets of the TPDU without the SMSC field: the `<length>` of
    /// `AT+CMGS=<length>` (TS 27.005 §3.5.1).
    pub fn tpdu_len(&self) -> usize {
        let mut b = Vec::with_capacity(176);
        self.tpdu.encode(&mut b);
        b.len()
    }
}

/// Hex text (as a modem prints it) to bytes. Whitespace around is ignored;
/// odd length or non-hex characters are errors naming the position.
pub fn parse_hex(hex: &str) -> Result<Vec<u8>, Error> {
    let s = hex.trim().as_bytes();
    // Caps the work done on absurd input: the longest modem PDU is
    // 12 (SMSC) + 164 (TPDU) octets.
    const MAX_HEX: usize = 2 * 200;
    if s.len() > MAX_HEX {
        return Err(Error::Hex { position: MAX_HEX });
    }
    let nib = |i: usize| -> Result<u8, Error> {
        let c = s.get(i).copied().ok_or(Error::Hex { position: i })?;
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(Error::Hex { position: i }),
        }
    };
    let mut out = Vec::with_capacity(s.len() / 2);
    for i in (0..s.len()).step_by(2) {
        let hi = nib(i)?;
        let lo = nib(i + 1)?;
        out.push(hi << 4 | lo);
    }
    Ok(out)
}

/// `AT+CMGS` length for a modem PDU in hex: octets after the SMSC field.
pub fn cmgs_length(pdu_hex: &str) -> Result<usize, Error> {
    let b = parse_hex(pdu_hex)?;
    let smsc = usize::from(
        *b.first()
            .ok_or(Error::truncated("SMSC address length", 0))?,
    );
    b.len()
        .checked_sub(1 + smsc)
        .ok_or(Error::truncated("SMSC address digits", 1))
}
