//! The convenience layer the gateway's CLI and modem driver call: modem hex
//! in, one JSON-ready value out; text in, `AT+CMGS`-ready hex PDUs out.

use serde::{Deserialize, Serialize};

use super::address::{Address, TypeOfNumber};
use super::dcs::{Dcs, MessageClass, MessageWaiting};
use super::segment::{Encoding, SegmentPlan, SmsOptions, encode_text};
use super::timestamp::ValidityPeriod;
use super::tpdu::{
    Deliver, ModemPdu, Status, StatusCategory, StatusReport, Submit, Tpdu, parse_hex,
};
use super::udh::{Concat, Ports};
use super::user_data::UserData;
use crate::Error;

/// Concatenation info in JSON: `{reference, total, part, reference_bits}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConcatJson {
    /// Reference shared by all parts.
    pub reference: u16,
    /// Number of parts.
    pub total: u8,
    /// This part (1-based).
    pub part: u8,
    /// 8 (IEI 0x00) or 16 (IEI 0x08).
    pub reference_bits: u8,
}

impl From<Concat> for ConcatJson {
    fn from(c: Concat) -> Self {
        Self {
            reference: c.reference,
            total: c.total,
            part: c.part,
            reference_bits: if c.wide_reference { 16 } else { 8 },
        }
    }
}

/// One UDH information element in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UdhElementJson {
    /// Element identifier.
    pub iei: u8,
    /// Element data as uppercase hex.
    pub data: String,
}

/// Validity period in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidityJson {
    /// `relative`, `absolute` or `enhanced`.
    pub format: &'static str,
    /// The duration in seconds, when the format states one.
    pub seconds: Option<u64>,
    /// The expiry time (absolute format), RFC 3339.
    pub until: Option<String>,
}

/// Delivery status in JSON (status reports).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusJson {
    /// TP-ST value.
    pub code: u8,
    /// Broad category.
    pub category: StatusCategory,
    /// Short description.
    pub description: &'static str,
}

/// Everything `gateway pdu decode` prints: one JSON object per PDU.
///
/// Fields that do not apply to the PDU's type are omitted (`sender` only for
/// deliver, `recipient` for submit and status-report); `concat`, `text`,
/// `encoding`, `timestamp` and `smsc` are always present, `null` when absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecodedPdu {
    /// `deliver`, `submit` or `status-report`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Service centre number (`+` for international), `null` for `00`.
    pub smsc: Option<String>,
    /// Originator (deliver): `+` and digits for international numbers, plain
    /// digits for other types of number, text for alphanumeric senders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// Type of number of `sender`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_type: Option<TypeOfNumber>,
    /// Destination (submit) or recipient (status report), same format.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// Type of number of `recipient`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_type: Option<TypeOfNumber>,
    /// TP-MR (submit, status report).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_reference: Option<u8>,
    /// Alphabet of the user data (`null` for a status report without any).
    pub encoding: Option<Encoding>,
    /// The text of this PDU, or for 8-bit data its hex (see `text_format`).
    pub text: Option<String>,
    /// `text` or `hex`.
    pub text_format: &'static str,
    /// Concatenation info, `null` for a single-part message.
    pub concat: Option<ConcatJson>,
    /// TP-SCTS as RFC 3339 with the PDU's offset (deliver, status report).
    pub timestamp: Option<String>,
    /// TP-DT (status report).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discharge_time: Option<String>,
    /// TP-ST (status report).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusJson>,
    /// TP-PID.
    pub pid: Option<u8>,
    /// TP-DCS octet.
    pub dcs: Option<u8>,
    /// Message class from the DCS (`"0"` = flash).
    pub class: Option<MessageClass>,
    /// True for class 0 ("flash") messages.
    pub flash: bool,
    /// Message-waiting indication (DCS groups 0xC0..=0xEF).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_waiting: Option<MessageWaiting>,
    /// Application ports (UDH IEI 0x04/0x05).
    pub ports: Option<Ports>,
    /// National single-shift language id (UDH IEI 0x24).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub single_shift: Option<u8>,
    /// National locking-shift language id (UDH IEI 0x25).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locking_shift: Option<u8>,
    /// Every UDH element, raw.
    pub udh: Vec<UdhElementJson>,
    /// TP-VP (submit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validity_period: Option<ValidityJson>,
    /// TP-SRR (submit) or TP-SRI (deliver): a status report was requested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_report_requested: Option<bool>,
    /// TP-RD (submit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject_duplicates: Option<bool>,
    /// TP-RP (deliver, submit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_path: Option<bool>,
    /// TP-MMS inverted (deliver, status report).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub more_messages: Option<bool>,
    /// TPDU octets after the SMSC field (the `AT+CMGS` length).
    pub tpdu_length: usize,
}

fn user_data_fields(d: &mut DecodedPdu, dcs: Option<Dcs>, ud: Option<&UserData>) {
    d.dcs = dcs.map(|x| x.0);
    d.class = dcs.and_then(Dcs::class);
    d.flash = d.class == Some(MessageClass::Class0);
    d.message_waiting = dcs.and_then(Dcs::message_waiting);
    let Some(ud) = ud else { return };
    d.encoding = Some(ud.encoding());
    match ud.text() {
        Some(t) => d.text = Some(t),
        None => {
            d.text = Some(hex::encode_upper(ud.body()));
            d.text_format = "hex";
        }
    }
    if let Some(h) = ud.header() {
        d.concat = h.concat().map(ConcatJson::from);
        d.ports = h.ports();
        d.single_shift = h.single_shift();
        d.locking_shift = h.locking_shift();
        d.udh = h
            .elements
            .iter()
            .map(|e| {
                let mut b = Vec::new();
                e.encode(&mut b);
                UdhElementJson {
                    iei: e.iei(),
                    data: hex::encode_upper(b.get(2..).unwrap_or(&[])),
                }
            })
            .collect();
    }
}

fn validity_json(v: &ValidityPeriod) -> ValidityJson {
    ValidityJson {
        format: match v {
            ValidityPeriod::Relative(_) => "relative",
            ValidityPeriod::Absolute(_) => "absolute",
            ValidityPeriod::Enhanced(_) => "enhanced",
        },
        seconds: v.duration().map(|d| d.as_secs()),
        until: match v {
            ValidityPeriod::Absolute(t) => Some(t.to_rfc3339()),
            _ => None,
        },
    }
}

impl DecodedPdu {
    /// The JSON view of a decoded modem PDU.
    pub fn from_pdu(pdu: &ModemPdu) -> Self {
        let mut d = DecodedPdu {
            kind: "deliver",
            smsc: pdu.smsc.as_ref().map(Address::to_string),
            sender: None,
            sender_type: None,
            recipient: None,
            recipient_type: None,
            message_reference: None,
            encoding: None,
            text: None,
            text_format: "text",
            concat: None,
            timestamp: None,
            discharge_time: None,
            status: None,
            pid: None,
            dcs: None,
            class: None,
            flash: false,
            message_waiting: None,
            ports: None,
            single_shift: None,
            locking_shift: None,
            udh: Vec::new(),
            validity_period: None,
            status_report_requested: None,
            reject_duplicates: None,
            reply_path: None,
            more_messages: None,
            tpdu_length: pdu.tpdu_len(),
        };
        match &pdu.tpdu {
            Tpdu::Deliver(t) => {
                let Deliver {
                    reply_path,
                    more_messages,
                    status_report_indication,
                    originator,
                    pid,
                    dcs,
                    scts,
                    user_data,
                    ..
                } = t;
                d.sender = Some(originator.to_string());
                d.sender_type = Some(originator.ton());
                d.pid = Some(*pid);
                d.timestamp = Some(scts.to_rfc3339());
                d.status_report_requested = Some(*status_report_indication);
                d.reply_path = Some(*reply_path);
                d.more_messages = Some(*more_messages);
                user_data_fields(&mut d, Some(*dcs), Some(user_data));
            }
            Tpdu::Submit(t) => {
                d.kind = "submit";
                d.recipient = Some(t.destination.to_string());
                d.recipient_type = Some(t.destination.ton());
                d.message_reference = Some(t.message_reference);
                d.pid = Some(t.pid);
                d.validity_period = t.validity.as_ref().map(validity_json);
                d.status_report_requested = Some(t.status_report_request);
                d.reject_duplicates = Some(t.reject_duplicates);
                d.reply_path = Some(t.reply_path);
                user_data_fields(&mut d, Some(t.dcs), Some(&t.user_data));
            }
            Tpdu::StatusReport(t) => {
                let StatusReport {
                    more_messages,
                    message_reference,
                    recipient,
                    scts,
                    discharge_time,
                    status,
                    pid,
                    dcs,
                    user_data,
                    ..
                } = t;
                d.kind = "status-report";
                d.recipient = Some(recipient.to_string());
                d.recipient_type = Some(recipient.ton());
                d.message_reference = Some(*message_reference);
                d.timestamp = Some(scts.to_rfc3339());
                d.discharge_time = Some(discharge_time.to_rfc3339());
                d.status = Some(status_json(*status));
                d.pid = *pid;
                d.more_messages = Some(*more_messages);
                user_data_fields(&mut d, *dcs, user_data.as_ref());
            }
        }
        d
    }
}

fn status_json(s: Status) -> StatusJson {
    StatusJson {
        code: s.0,
        category: s.category(),
        description: s.description(),
    }
}

/// Decodes a PDU as a modem shows it in PDU mode (SMSC field first) into the
/// JSON-ready view `gateway pdu decode` prints. Errors name the field and
/// byte offset and never contain message text.
pub fn decode_modem_hex(hex: &str) -> Result<DecodedPdu, Error> {
    let bytes = parse_hex(hex)?;
    let pdu = ModemPdu::decode_bytes(&bytes)?;
    Ok(DecodedPdu::from_pdu(&pdu))
}

/// Parameters of an outgoing SMS-SUBMIT besides recipient and text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubmitParams {
    /// SMSC number to put in front (`+` for international); `None` writes `00`
    /// so the modem uses the SIM's default.
    pub smsc: Option<String>,
    /// Set TP-SRR: ask for a status report.
    pub request_report: bool,
    /// TP-MR of the first part; part *n* uses `message_reference + n - 1`
    /// (wrapping). Most modems replace it with their own counter.
    pub message_reference: u8,
    /// Concatenation reference shared by all parts (low byte used unless
    /// `options.wide_concat_reference`). The caller picks it, e.g. from a
    /// per-recipient counter, so that encoding stays deterministic.
    pub concat_reference: u16,
    /// Relative validity period in seconds (rounded up to what TP-VP can
    /// say); `None` leaves TP-VP out.
    pub validity_seconds: Option<u64>,
    /// Send as class 0 ("flash") SMS.
    pub flash: bool,
    /// Encoding options (national tables, smart encoding, 16-bit references).
    pub options: SmsOptions,
}

/// One encoded SMS-SUBMIT, ready for `AT+CMGS=<tpdu_length>` then `hex`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EncodedPdu {
    /// The full PDU (SMSC field first) in uppercase hex.
    pub hex: String,
    /// TPDU octets excluding the SMSC field: the `AT+CMGS` length.
    pub tpdu_length: usize,
}

/// Encodes `text` for `to` into SMS-SUBMIT PDUs, one per part in part
/// order, with the plan that was followed.
pub fn encode_submit(
    to: &str,
    text: &str,
    params: &SubmitParams,
) -> Result<(SegmentPlan, Vec<EncodedPdu>), Error> {
    let destination = Address::parse_number(to)?;
    let smsc = params
        .smsc
        .as_deref()
        .map(Address::parse_number)
        .transpose()?;
    let encoded = encode_text(text, &params.options, params.concat_reference)?;
    let validity = params
        .validity_seconds
        .map(|s| ValidityPeriod::relative_at_least(std::time::Duration::from_secs(s)));
    let class = params.flash.then_some(MessageClass::Class0);
    let mut out = Vec::with_capacity(encoded.parts.len());
    for (i, user_data) in encoded.parts.into_iter().enumerate() {
        let encoding = user_data.encoding();
        let submit = Submit {
            reply_path: false,
            reject_duplicates: false,
            status_report_request: params.request_report,
            message_reference: params.message_reference.wrapping_add(i as u8),
            destination: destination.clone(),
            pid: 0,
            dcs: Dcs::general(encoding, class),
            validity,
            user_data,
        };
        let pdu = ModemPdu {
            smsc: smsc.clone(),
            tpdu: Tpdu::Submit(submit),
        };
        let mut bytes = Vec::with_capacity(176);
        pdu.encode(&mut bytes);
        let smsc_len = 1 + usize::from(bytes.first().copied().unwrap_or(0));
        out.push(EncodedPdu {
            tpdu_length: bytes.len().saturating_sub(smsc_len),
            hex: hex::encode_upper(&bytes),
        });
    }
    Ok((encoded.plan, out))
}

/// Encodes `text` for `to` into uppercase-hex SMS-SUBMIT PDUs (SMSC field
/// first), one per part in part order, ready for `AT+CMGS`. GSM 7-bit when
/// every character is in the default alphabet or its extension table, else
/// UCS-2 (unless `params.options` allows national tables or smart encoding).
/// Use [`crate::sms::cmgs_length`] or [`encode_submit`] for the `AT+CMGS`
/// length.
pub fn encode_submit_hex(
    to: &str,
    text: &str,
    params: &SubmitParams,
) -> Result<Vec<String>, Error> {
    Ok(encode_submit(to, text, params)?
        .1
        .into_iter()
        .map(|p| p.hex)
        .collect())
}
