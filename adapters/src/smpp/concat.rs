//! Text to `submit_sm` parts and `submit_sm`/`deliver_sm` parts back to
//! reassembler parts: `data_coding`, the UDH in `short_message`, the SAR
//! TLVs, and `message_payload`.
//!
//! Segmentation is the SMS codec's ([`crate::sms::encode_text`]), so an
//! SMPP message is split exactly as the same text sent through a modem:
//! same encoding choice, same part count, the same boundaries (never
//! inside a GSM-7 escape or a UTF-16 surrogate pair). SMPP carries GSM-7
//! unpacked, one septet per octet (`data_coding` 0, "SMSC default
//! alphabet" as Kannel, Jasmin and smpplib use it), so no bit packing here.

use time::OffsetDateTime;

use crate::Error;
use crate::sms::reader::Reader;
use crate::sms::{Encoding, Gsm7Tables, Part, PartBody, SegmentPlan, SmsOptions, Udh};

/// `data_coding` of the SMSC default alphabet (GSM-7, unpacked).
pub const DC_DEFAULT: u8 = 0x00;
/// `data_coding` IA5 (ASCII).
pub const DC_IA5: u8 = 0x01;
/// `data_coding` 8-bit binary.
pub const DC_BINARY: u8 = 0x04;
/// `data_coding` Latin-1 (ISO-8859-1).
pub const DC_LATIN1: u8 = 0x03;
/// `data_coding` UCS-2 (ISO/IEC-10646, big endian).
pub const DC_UCS2: u8 = 0x08;
/// `esm_class` bit: `short_message` starts with a UDH.
pub const ESM_UDHI: u8 = 0x40;
/// `esm_class` message type: SMSC delivery receipt.
pub const ESM_RECEIPT: u8 = 0x04;
/// Longest `message_payload` accepted on input (SMPP allows 64 KiB; a
/// 255-part UCS-2 message is under 36 KiB).
pub const MAX_PAYLOAD: usize = 40 * 1024;

/// How a long message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Concatenation {
    /// One `submit_sm` per part, a concatenation UDH in `short_message`
    /// (esm_class UDHI). What handsets see; every SMSC passes it through.
    #[default]
    Udh,
    /// One `submit_sm` per part with `sar_msg_ref_num` /
    /// `sar_total_segments` / `sar_segment_seqnum` TLVs; the SMSC builds
    /// the UDH.
    Sar,
    /// One `submit_sm` with the whole text in `message_payload`; the SMSC
    /// splits it.
    Payload,
}

/// SAR TLV values of one part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sar {
    /// `sar_msg_ref_num`.
    pub reference: u16,
    /// `sar_total_segments`.
    pub total: u8,
    /// `sar_segment_seqnum` (1-based).
    pub sequence: u8,
}

/// The message fields of one `submit_sm` (or `deliver_sm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmPart {
    /// `data_coding`.
    pub data_coding: u8,
    /// Whether `esm_class` needs the UDHI bit.
    pub udhi: bool,
    /// `short_message` (UDH included when `udhi`).
    pub short_message: Vec<u8>,
    /// SAR TLVs, in [`Concatenation::Sar`] mode for multipart messages.
    pub sar: Option<Sar>,
    /// `message_payload` TLV, in [`Concatenation::Payload`] mode.
    pub message_payload: Option<Vec<u8>>,
}

fn data_coding_of(e: Encoding) -> u8 {
    match e {
        Encoding::Gsm7 => DC_DEFAULT,
        Encoding::Ucs2 => DC_UCS2,
        Encoding::EightBit => DC_BINARY,
    }
}

/// Splits `text` into the parts to submit. `reference` is the
/// concatenation reference (stable per message, so a retried message is
/// recognised by the handset). The plan tells the caller segments and
/// encoding, as the API reports them.
pub fn encode(
    text: &str,
    opts: &SmsOptions,
    mode: Concatenation,
    reference: u16,
) -> Result<(SegmentPlan, Vec<SmPart>), Error> {
    let enc = crate::sms::encode_text(text, opts, reference)?;
    let data_coding = data_coding_of(enc.plan.encoding);
    let total = enc.parts.len();
    if mode == Concatenation::Payload {
        let mut payload = Vec::new();
        let mut udhi = false;
        if total == 1 {
            // One part: its header (national shift tables only) stays.
            if let Some(h) = enc.parts[0].header() {
                h.encode(&mut payload);
                udhi = true;
            }
        } else if enc
            .parts
            .iter()
            .any(|p| p.header().is_some_and(|h| h.elements.len() > 1))
        {
            return Err(Error::Smpp {
                field: "message_payload",
                reason: "national language tables need udh or sar concatenation",
            });
        }
        for p in &enc.parts {
            payload.extend_from_slice(p.body());
        }
        return Ok((
            enc.plan,
            vec![SmPart {
                data_coding,
                udhi,
                short_message: Vec::new(),
                sar: None,
                message_payload: Some(payload),
            }],
        ));
    }
    let mut out = Vec::with_capacity(total);
    for (i, p) in enc.parts.iter().enumerate() {
        let mut sm = Vec::with_capacity(160);
        let (header, sar) = match (mode, p.header()) {
            (Concatenation::Sar, Some(h)) if total > 1 => {
                // The SMSC adds the concatenation element; keep the others.
                let rest: Vec<_> = h
                    .elements
                    .iter()
                    .filter(|e| {
                        !matches!(
                            e,
                            crate::sms::InformationElement::Concat8 { .. }
                                | crate::sms::InformationElement::Concat16 { .. }
                        )
                    })
                    .cloned()
                    .collect();
                let sar = Sar {
                    reference,
                    total: u8::try_from(total).unwrap_or(u8::MAX),
                    sequence: u8::try_from(i + 1).unwrap_or(u8::MAX),
                };
                (
                    (!rest.is_empty()).then_some(Udh { elements: rest }),
                    Some(sar),
                )
            }
            (_, h) => (h.cloned(), None),
        };
        if let Some(h) = &header {
            h.encode(&mut sm);
        }
        sm.extend_from_slice(p.body());
        out.push(SmPart {
            data_coding,
            udhi: header.is_some(),
            short_message: sm,
            sar,
            message_payload: None,
        });
    }
    Ok((enc.plan, out))
}

/// The message fields of a received `submit_sm` / `deliver_sm`, as the
/// transport decoded them.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// `data_coding`.
    pub data_coding: u8,
    /// `esm_class`.
    pub esm_class: u8,
    /// `short_message`.
    pub short_message: &'a [u8],
    /// `message_payload` TLV, if present.
    pub message_payload: Option<&'a [u8]>,
    /// SAR TLVs, if all three are present.
    pub sar: Option<Sar>,
}

/// The alphabet a `data_coding` value names, and how to turn its octets
/// into a reassembler body.
fn body_of(data_coding: u8, octets: &[u8], tables: Gsm7Tables) -> Result<PartBody, Error> {
    let bad = |reason| Error::Smpp {
        field: "data_coding",
        reason,
    };
    // Group bits of the GSM data coding scheme (TS 23.038 §4) for values
    // beyond the SMPP table; 0xF0 group: bit 2 = 8-bit.
    let alphabet = match data_coding {
        DC_DEFAULT => Encoding::Gsm7,
        DC_UCS2 => Encoding::Ucs2,
        0x02 | DC_BINARY => Encoding::EightBit,
        DC_IA5 | DC_LATIN1 => {
            if data_coding == DC_IA5 && octets.iter().any(|&b| b >= 0x80) {
                return Err(bad("IA5 text with octets above 0x7F"));
            }
            // Latin-1 maps 1:1 onto U+0000..U+00FF: carry it as UCS-2 so the
            // reassembler needs no third text alphabet.
            let mut data = Vec::with_capacity(octets.len() * 2);
            for &b in octets {
                data.extend_from_slice(&u16::from(b).to_be_bytes());
            }
            return Ok(PartBody {
                encoding: Encoding::Ucs2,
                tables: Gsm7Tables::DEFAULT,
                data,
            });
        }
        0x10..=0x1F | 0x30..=0x3F => match (data_coding >> 2) & 0x03 {
            0 => Encoding::Gsm7,
            1 => Encoding::EightBit,
            2 => Encoding::Ucs2,
            _ => return Err(bad("reserved alphabet")),
        },
        0xF0..=0xFF if data_coding & 0x04 != 0 => Encoding::EightBit,
        0xF0..=0xFF => Encoding::Gsm7,
        _ => return Err(bad("unsupported value")),
    };
    match alphabet {
        Encoding::Gsm7 if octets.iter().any(|&b| b >= 0x80) => {
            Err(bad("GSM 7-bit text (unpacked) with octets above 0x7F"))
        }
        Encoding::Ucs2 if !octets.len().is_multiple_of(2) => Err(Error::Smpp {
            field: "short_message",
            reason: "UCS-2 text of odd length",
        }),
        _ => Ok(PartBody {
            encoding: alphabet,
            tables,
            data: octets.to_vec(),
        }),
    }
}

/// Turns a received message PDU into a reassembler [`Part`] from `source`
/// (the caller's key: sender plus whatever keeps streams apart). A UDH
/// concatenation element wins over SAR TLVs; neither means part 1 of 1.
pub fn to_part(sm: &Incoming<'_>, source: String, now: OffsetDateTime) -> Result<Part, Error> {
    let data = match sm.message_payload {
        Some(p) if sm.short_message.is_empty() => {
            if p.len() > MAX_PAYLOAD {
                return Err(Error::Smpp {
                    field: "message_payload",
                    reason: "longer than 40 KiB",
                });
            }
            p
        }
        Some(_) => {
            return Err(Error::Smpp {
                field: "message_payload",
                reason: "given together with a short_message",
            });
        }
        None => sm.short_message,
    };
    let (udh, body) = if sm.esm_class & ESM_UDHI != 0 {
        let mut r = Reader::new(data);
        let udh = Udh::decode(&mut r).map_err(|_| Error::Smpp {
            field: "short_message",
            reason: "UDHI set but the user data header is malformed",
        })?;
        (Some(udh), r.rest())
    } else {
        (None, data)
    };
    let tables = udh.as_ref().map_or(Gsm7Tables::DEFAULT, |h| {
        Gsm7Tables::from_ids(h.locking_shift(), h.single_shift())
    });
    let body = body_of(sm.data_coding, body, tables)?;
    let concat = udh.as_ref().and_then(Udh::concat);
    let (reference, wide, total, sequence) = match (concat, sm.sar) {
        (Some(c), _) => (c.reference, c.wide_reference, c.total, c.part),
        (None, Some(s)) => (s.reference, true, s.total, s.sequence),
        (None, None) => (0, false, 1, 1),
    };
    if total == 0 || sequence == 0 || sequence > total {
        return Err(Error::Smpp {
            field: "sar_segment_seqnum",
            reason: "part number 0 or above the total",
        });
    }
    Ok(Part {
        source,
        reference,
        wide_reference: wide,
        total,
        sequence,
        arrived_at: now,
        body,
    })
}

/// The text of a complete single part (for example a whole message in
/// `message_payload`, which the reassembler's one-segment limit refuses);
/// `None` for 8-bit data.
pub fn text_of(part: &Part) -> Option<String> {
    let mut s = String::with_capacity(part.body.data.len());
    match part.body.encoding {
        Encoding::Gsm7 => part.body.tables.decode(&part.body.data, &mut s),
        Encoding::Ucs2 => crate::sms::ucs2::decode(&part.body.data, &mut s),
        Encoding::EightBit => return None,
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::sms::{Content, Inserted, Reassembler, ReassemblyConfig};

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-03-01 12:00 UTC)
    }

    fn incoming(p: &SmPart) -> Incoming<'_> {
        Incoming {
            data_coding: p.data_coding,
            esm_class: if p.udhi { ESM_UDHI } else { 0 },
            short_message: &p.short_message,
            message_payload: p.message_payload.as_deref(),
            sar: p.sar,
        }
    }

    fn roundtrip(text: &str, mode: Concatenation) -> (usize, String) {
        let (_, parts) = encode(text, &SmsOptions::default(), mode, 0x1234).unwrap();
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let mut done = None;
        // Out of order on purpose.
        for p in parts.iter().rev() {
            let part = to_part(&incoming(p), "+14155550100".into(), now()).unwrap();
            if part.total == 1 {
                return (1, text_of(&part).unwrap());
            }
            if let Inserted::Complete(m) = r.insert(part).unwrap().inserted {
                done = Some(m);
            }
        }
        match done.unwrap().content {
            Content::Text(t) => (parts.len(), t),
            Content::Binary(_) => panic!("binary"),
        }
    }

    #[test]
    fn every_mode_round_trips_through_the_reassembler() {
        let long_gsm = "The quick brown fox jumps over the lazy dog {€} ".repeat(8);
        let long_ucs2 = "Привет, мир! 👋 ".repeat(12);
        for mode in [
            Concatenation::Udh,
            Concatenation::Sar,
            Concatenation::Payload,
        ] {
            assert_eq!(roundtrip("hello", mode), (1, "hello".to_string()));
            let (n, t) = roundtrip(&long_gsm, mode);
            assert_eq!(t, long_gsm, "{mode:?}");
            assert_eq!(n, if mode == Concatenation::Payload { 1 } else { 3 });
            let (_, t) = roundtrip(&long_ucs2, mode);
            assert_eq!(t, long_ucs2, "{mode:?}");
        }
    }

    #[test]
    fn udh_mode_uses_the_codec_split_and_udhi() {
        let text = "a".repeat(161);
        let (plan, parts) = encode(&text, &SmsOptions::default(), Concatenation::Udh, 7).unwrap();
        assert_eq!((plan.segments, parts.len()), (2, 2));
        assert!(parts.iter().all(|p| p.udhi && p.data_coding == DC_DEFAULT));
        // 05 00 03 ref total seq, then 153 unpacked septets.
        assert_eq!(&parts[0].short_message[..6], &[5, 0, 3, 7, 2, 1]);
        assert_eq!(parts[0].short_message.len(), 6 + 153);
        let (_, sar) = encode(&text, &SmsOptions::default(), Concatenation::Sar, 7).unwrap();
        assert_eq!(
            sar[1].sar,
            Some(Sar {
                reference: 7,
                total: 2,
                sequence: 2
            })
        );
        assert!(!sar[1].udhi && sar[1].short_message.len() == 8);
        let (_, ucs2) = encode("ж", &SmsOptions::default(), Concatenation::Udh, 7).unwrap();
        assert_eq!(
            (ucs2[0].data_coding, ucs2[0].short_message.as_slice()),
            (DC_UCS2, &[0x04, 0x36][..])
        );
    }

    #[test]
    fn data_codings_and_smpplib_shapes() {
        // smpplib's make_parts: UDH 05 00 03 uid total seq + GSM septets.
        let sm = [5u8, 0, 3, 0xAB, 2, 1, b'H', b'i'];
        let p = to_part(
            &Incoming {
                data_coding: 0,
                esm_class: 0x40,
                short_message: &sm,
                message_payload: None,
                sar: None,
            },
            "x".into(),
            now(),
        )
        .unwrap();
        assert_eq!((p.reference, p.total, p.sequence), (0xAB, 2, 1));
        // Latin-1 becomes UCS-2.
        let p = to_part(
            &Incoming {
                data_coding: DC_LATIN1,
                esm_class: 0,
                short_message: &[0xE9],
                message_payload: None,
                sar: None,
            },
            "x".into(),
            now(),
        )
        .unwrap();
        assert_eq!(
            (p.body.encoding, p.body.data.as_slice()),
            (Encoding::Ucs2, &[0, 0xE9][..])
        );
        let bad = |dc: u8, esm: u8, sm: &[u8], sar: Option<Sar>| {
            to_part(
                &Incoming {
                    data_coding: dc,
                    esm_class: esm,
                    short_message: sm,
                    message_payload: None,
                    sar,
                },
                "x".into(),
                now(),
            )
            .is_err()
        };
        assert!(bad(0, 0, &[0x80], None), "GSM octet above 0x7F");
        assert!(bad(8, 0, &[0x00], None), "odd UCS-2");
        assert!(bad(0, 0x40, &[9, 0, 3], None), "UDHL past the end");
        assert!(bad(0x07, 0, b"x", None), "unknown data_coding");
        assert!(bad(
            0,
            0,
            b"x",
            Some(Sar {
                reference: 1,
                total: 2,
                sequence: 3
            })
        ));
        assert!(
            to_part(
                &Incoming {
                    data_coding: 0,
                    esm_class: 0,
                    short_message: b"x",
                    message_payload: Some(b"y"),
                    sar: None
                },
                "x".into(),
                now()
            )
            .is_err()
        );
    }

    proptest::proptest! {
        #[test]
        fn to_part_never_panics(dc in 0u8..=255, esm in 0u8..=255,
                                sm in proptest::collection::vec(proptest::num::u8::ANY, 0..255)) {
            let _ = to_part(&Incoming { data_coding: dc, esm_class: esm, short_message: &sm,
                                        message_payload: None, sar: None }, "x".into(), now());
        }
    }
}
