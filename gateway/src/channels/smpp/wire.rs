//! Glue between sockets and the `rusmpp` codec: framing with a length cap,
//! a decode failure turned into the header fields needed to answer it
//! (`generic_nack`), and small conversions to and from rusmpp's types.
//!
//! Why not `rusmpp::tokio_codec::CommandCodec` with `Framed`: a decode
//! error ends a `Framed` stream, and a server must instead answer the bad
//! PDU (`generic_nack`) and carry on with the next one. Reading the
//! length-prefixed frame ourselves (a dozen lines) keeps the connection
//! usable; the decoding itself is rusmpp's.

use bytes::BytesMut;
use rusmpp::decode::DecodeWithLength;
use rusmpp::encode::{Encode, Length};
use rusmpp::tlvs::{Tlv, TlvTag, TlvValue};
use rusmpp::{Command, CommandStatus, Pdu};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest PDU accepted (a `submit_sm` with a 40 KiB `message_payload`
/// fits; SMPP itself allows 64 KiB TLVs, which no text needs).
pub const MAX_PDU: usize = 48 * 1024;
/// `generic_nack` command id.
pub const GENERIC_NACK: u32 = 0x8000_0000;

/// One frame read from the wire.
pub enum Frame {
    /// A decoded command.
    Command(Box<Command>),
    /// A frame of the right length whose body rusmpp could not decode.
    Undecodable {
        /// `command_id` from the header.
        command_id: u32,
        /// `sequence_number` from the header.
        sequence: u32,
    },
}

/// Why the stream cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The socket failed or closed mid-frame.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The length field is impossible; framing is lost.
    #[error("command_length {0} out of range")]
    Length(u32),
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Frame>, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let n = u32::from_be_bytes(len);
    let size = n as usize;
    if !(16..=MAX_PDU).contains(&size) {
        return Err(FrameError::Length(n));
    }
    let mut buf = BytesMut::zeroed(size - 4);
    r.read_exact(&mut buf).await?;
    Ok(Some(decode_body(buf)))
}

/// Decodes a frame's body (everything after `command_length`, which must
/// be at least the 12 remaining header bytes; `read_frame` checked that).
pub fn decode_body(mut buf: BytesMut) -> Frame {
    let word = |b: &BytesMut, i: usize| {
        b.get(i..i + 4)
            .map_or(0, |w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
    };
    let (command_id, sequence) = (word(&buf, 0), word(&buf, 8));
    let len = buf.len();
    match Command::decode(&mut buf, len) {
        Ok((c, _)) => Frame::Command(Box::new(c)),
        Err(_) => Frame::Undecodable {
            command_id,
            sequence,
        },
    }
}

/// The wire bytes of a command, length prefix included.
pub fn encode(c: &Command) -> Vec<u8> {
    let len = 4 + c.length();
    let mut out = vec![0u8; len];
    out[..4].copy_from_slice(&(len as u32).to_be_bytes());
    c.encode(&mut out[4..]);
    out
}

/// A header-only PDU (`generic_nack`, or a response whose body SMPP omits
/// on error, e.g. `submit_sm_resp` with a non-zero status).
pub fn header_only(command_id: u32, status: u32, sequence: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    for w in [16, command_id, status, sequence] {
        out.extend_from_slice(&w.to_be_bytes());
    }
    out
}

/// A command with status and sequence number.
pub fn command(status: u32, sequence: u32, pdu: impl Into<Pdu>) -> Command {
    Command::new(CommandStatus::from(status), sequence, pdu)
}

/// `command_status` as a number.
pub fn status_of(c: &Command) -> u32 {
    u32::from(c.status())
}

/// A C-octet string field from text, truncated to the field's maximum
/// (`MAX` includes the NUL). Used for addresses and ids we produce, which
/// are ASCII; a value that cannot be one becomes empty.
pub fn cstr<const MIN: usize, const MAX: usize>(s: &str) -> rusmpp::types::COctetString<MIN, MAX> {
    let mut v: Vec<u8> = s.bytes().filter(|&b| b != 0).take(MAX - 1).collect();
    v.push(0);
    rusmpp::types::COctetString::from_vec(v).unwrap_or_default()
}

/// The text of a C-octet string (lossy for non-UTF-8 bytes).
pub fn text<const MIN: usize, const MAX: usize>(
    s: &rusmpp::types::COctetString<MIN, MAX>,
) -> String {
    s.as_str().to_string()
}

/// The raw value of a TLV, found by tag number, whatever rusmpp decoded
/// it into. Returns the encoded value bytes.
pub fn tlv_bytes(tlvs: &[Tlv], tag: u16) -> Option<Vec<u8>> {
    let t = tlvs.iter().find(|t| u16::from(t.tag()) == tag)?;
    let v = t.value()?;
    let mut out = vec![0u8; v.length()];
    v.encode(&mut out);
    Some(out)
}

/// `sar_msg_ref_num`, `sar_total_segments`, `sar_segment_seqnum` together.
pub fn sar(tlvs: &[Tlv]) -> Option<adapters::smpp::Sar> {
    let mut reference = None;
    let mut total = None;
    let mut sequence = None;
    for t in tlvs {
        match t.value() {
            Some(TlvValue::SarMsgRefNum(v)) => reference = Some(*v),
            Some(TlvValue::SarTotalSegments(v)) => total = Some(*v),
            Some(TlvValue::SarSegmentSeqnum(v)) => sequence = Some(*v),
            _ => {}
        }
    }
    Some(adapters::smpp::Sar {
        reference: reference?,
        total: total?,
        sequence: sequence?,
    })
}

/// Tag numbers used here (SMPP 3.4 §5.3.2).
pub mod tag {
    /// `receipted_message_id`.
    pub const RECEIPTED_MESSAGE_ID: u16 = 0x001E;
    /// `message_state`.
    pub const MESSAGE_STATE: u16 = 0x0427;
    /// `message_payload`.
    pub const MESSAGE_PAYLOAD: u16 = 0x0424;
}

/// `receipted_message_id` as text (without its NUL).
pub fn receipted_message_id(tlvs: &[Tlv]) -> Option<String> {
    tlvs.iter().find_map(|t| match t.value() {
        Some(TlvValue::ReceiptedMessageId(id)) => Some(id.as_str().to_string()),
        _ => None,
    })
}

/// `message_state` as its number.
pub fn message_state(tlvs: &[Tlv]) -> Option<u8> {
    let b = tlv_bytes(tlvs, tag::MESSAGE_STATE)?;
    b.first().copied()
}

/// True when a TLV with this tag is present.
pub fn has_tlv(tlvs: &[Tlv], tag: TlvTag) -> bool {
    tlvs.iter().any(|t| t.tag() == tag)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_bad_bodies_keep_the_stream() {
        let c = command(0, 7, Pdu::EnquireLink);
        let mut bytes = encode(&c);
        assert_eq!(bytes.len(), 16);
        // A submit_sm whose body is garbage (sm_length past the end).
        let mut bad = header_only(0x04, 0, 9);
        bad.extend_from_slice(&[0xFF; 8]);
        let n = bad.len() as u32;
        bad[..4].copy_from_slice(&n.to_be_bytes());
        bytes.extend_from_slice(&bad);
        bytes.extend_from_slice(&encode(&command(0, 8, Pdu::Unbind)));
        let mut r = &bytes[..];
        match read_frame(&mut r).await.unwrap().unwrap() {
            Frame::Command(c) => assert_eq!(c.sequence_number(), 7),
            Frame::Undecodable { .. } => panic!(),
        }
        match read_frame(&mut r).await.unwrap().unwrap() {
            Frame::Undecodable {
                command_id,
                sequence,
            } => assert_eq!((command_id, sequence), (4, 9)),
            Frame::Command(_) => panic!("garbage decoded"),
        }
        match read_frame(&mut r).await.unwrap().unwrap() {
            Frame::Command(c) => assert_eq!(c.sequence_number(), 8),
            Frame::Undecodable { .. } => panic!(),
        }
        assert!(read_frame(&mut r).await.unwrap().is_none());
        let huge = (MAX_PDU as u32 + 1).to_be_bytes();
        assert!(matches!(
            read_frame(&mut &huge[..]).await,
            Err(FrameError::Length(_))
        ));
    }

    #[test]
    fn cstr_truncates_and_hosts_split() {
        let s: rusmpp::types::COctetString<1, 9> = cstr("0123456789");
        assert_eq!(s.as_str(), "01234567");
        assert_eq!(
            crate::channels::smpp::config::split_host("127.0.0.1:2775"),
            Some(("127.0.0.1", 2775))
        );
        assert_eq!(crate::channels::smpp::config::split_host("smsc"), None);
    }
}
