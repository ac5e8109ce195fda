//! SMS on the wire: GSM 03.38 alphabets, segmentation, 03.40 TPDUs and
//! multipart reassembly.
//!
//! Everything here is pure: bytes or text in, values out. No I/O, no clock
//! (the reassembler takes `now` as an argument), no randomness (callers pass
//! message and concatenation references). The modem driver and the HTTP
//! handlers wrap these functions at the edge.
//!
//! Entry points:
//! * [`plan`]: how many segments and which encoding a text needs;
//! * [`encode_submit_hex`] / [`encode_submit`]: text to `AT+CMGS`-ready PDUs;
//! * [`decode_modem_hex`]: a modem's PDU to a JSON-ready [`DecodedPdu`];
//! * [`ModemPdu`], [`Deliver`], [`Submit`], [`StatusReport`]: the TPDU codecs;
//! * [`Reassembler`]: joins concatenated parts.

pub mod address;
pub mod dcs;
pub mod gsm7;
pub mod modem;
pub mod national;
pub mod reader;
pub mod reassembly;
pub mod segment;
pub mod timestamp;
pub mod tpdu;
pub mod ucs2;
pub mod udh;
pub mod user_data;

pub use address::{Address, TypeOfNumber};
pub use dcs::{Dcs, MessageClass, MessageWaiting, WaitingKind};
pub use gsm7::Gsm7Tables;
pub use modem::{
    DecodedPdu, EncodedPdu, SubmitParams, decode_modem_hex, encode_submit, encode_submit_hex,
};
pub use national::NationalLanguage;
pub use reader::Reader;
pub use reassembly::{
    Content, Incomplete, IncompleteReason, InsertOutcome, Inserted, Message, Part, PartBody,
    Reassembler, ReassemblyConfig,
};
pub use segment::{
    EncodedText, Encoding, SegmentPlan, SmsOptions, encode_binary, encode_text, plan,
};
pub use timestamp::{Timestamp, ValidityPeriod};
pub use tpdu::{
    Deliver, ModemPdu, Status, StatusCategory, StatusReport, Submit, Tpdu, cmgs_length, parse_hex,
};
pub use udh::{Concat, InformationElement, Ports, Udh};
pub use user_data::UserData;
