//! Entry points for the cargo-fuzz targets in `fuzz/` (outside the
//! workspace). Each function panics only when an invariant breaks, which is
//! what the fuzzer looks for.

use time::{Duration, OffsetDateTime};

use crate::sms::{
    DecodedPdu, Encoding, Gsm7Tables, InsertOutcome, Inserted, ModemPdu, Part, PartBody,
    Reassembler, ReassemblyConfig, Tpdu,
};

/// Decodes `data` as a modem PDU, a bare TPDU and hex text. Whatever decodes
/// must re-encode to bytes that decode to the same value, and must render
/// to JSON.
pub fn pdu_decode(data: &[u8]) {
    if let Ok(pdu) = ModemPdu::decode_bytes(data) {
        let mut bytes = Vec::new();
        pdu.encode(&mut bytes);
        match ModemPdu::decode_bytes(&bytes) {
            Ok(again) => assert_eq!(again, pdu, "modem PDU changed after re-encoding"),
            Err(e) => panic!("re-encoded modem PDU does not decode: {e}"),
        }
        let view = DecodedPdu::from_pdu(&pdu);
        assert!(serde_json::to_string(&view).is_ok());
        assert_eq!(view.tpdu_length, bytes.len() - 1 - usize::from(bytes[0]));
    }
    if let Ok(tpdu) = Tpdu::decode_bytes(data) {
        let mut bytes = Vec::new();
        tpdu.encode(&mut bytes);
        match Tpdu::decode_bytes(&bytes) {
            Ok(again) => assert_eq!(again, tpdu, "TPDU changed after re-encoding"),
            Err(e) => panic!("re-encoded TPDU does not decode: {e}"),
        }
        if let Some(ud) = tpdu.user_data() {
            let _ = ud.text();
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::sms::decode_modem_hex(text);
    }
}

/// Runs a reassembler through operations read from `data` (4 bytes each) and
/// checks its invariants: part counts agree, caps hold, rebuilding from the
/// held parts gives the same state, and nothing panics.
pub fn reassembly(data: &[u8]) {
    let config = ReassemblyConfig {
        timeout: Duration::seconds(60),
        max_pending_messages: 4,
        max_pending_parts: 300,
    };
    let mut r = Reassembler::new(config);
    let start = OffsetDateTime::UNIX_EPOCH;
    let mut clock = 0i64;
    for op in data.chunks_exact(4) {
        let (kind, a, b, c) = (op[0], op[1], op[2], op[3]);
        clock += i64::from(kind >> 3);
        let now = start + Duration::seconds(clock);
        if kind & 0x07 == 7 {
            for inc in r.expire(now) {
                assert!(inc.deadline <= now);
                assert!(!inc.received.is_empty());
                assert_eq!(
                    inc.received.len() + inc.missing.len(),
                    usize::from(inc.total)
                );
            }
            continue;
        }
        let encoding = match kind & 0x03 {
            0 | 1 => Encoding::Gsm7,
            2 => Encoding::Ucs2,
            _ => Encoding::EightBit,
        };
        let data = match encoding {
            Encoding::Gsm7 => vec![a & 0x7F, b & 0x7F, 0x1B],
            _ => vec![a, b, c],
        };
        let part = Part {
            source: format!("+{}", a & 0x03),
            reference: u16::from(b & 0x03),
            wide_reference: b & 0x80 != 0,
            total: c & 0x07,
            sequence: (c >> 3) & 0x07,
            arrived_at: now,
            body: PartBody {
                encoding,
                tables: Gsm7Tables::DEFAULT,
                data,
            },
        };
        let valid = part.total >= 1 && part.sequence >= 1 && part.sequence <= part.total;
        match r.insert(part) {
            Ok(InsertOutcome { inserted, surfaced }) => {
                assert!(valid, "accepted an impossible part");
                if let Inserted::Pending { received, total } = inserted {
                    assert!(received < usize::from(total));
                }
                for inc in surfaced {
                    assert!(!inc.missing.is_empty());
                }
            }
            Err(_) => assert!(!valid, "rejected a valid part"),
        }
        let parts = r.parts();
        assert_eq!(parts.len(), r.pending_parts());
        assert!(r.pending_messages() <= 4);
        assert!(r.pending_parts() <= 300);
        let mut rebuilt = Reassembler::new(config);
        for p in parts.iter().cloned() {
            let _ = rebuilt.insert(p);
        }
        assert_eq!(
            rebuilt.parts(),
            parts,
            "re-inserting held parts changed the state"
        );
    }
}

/// Feeds `data` to the AT response parser whole and split at a point the
/// first byte picks: both must give the same events (the parser is
/// incremental), every event must reach the state machines without a
/// panic, and listing headers must parse or be refused cleanly.
pub fn at_parser(data: &[u8]) {
    use crate::at::{Event, Listing, Parser, Reply, SendPdu};
    let mut whole = Vec::new();
    Parser::new().feed(data, &mut whole);
    let cut = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let mut split = Vec::new();
    let mut p = Parser::new();
    p.feed(&data[..cut], &mut split);
    p.feed(&data[cut..], &mut split);
    assert_eq!(whole, split, "events depend on how the input was split");
    let mut send = SendPdu::new("0011000B916407281553F80000AA0AE8329BFD4697D9EC37", 23);
    let mut reply = Reply::default();
    for ev in &whole {
        let _ = send.handle(ev);
        reply.push(ev);
        if let Event::Listed { header, pdu } = ev {
            let _ = Listing::parse(header);
            assert!(pdu.len() <= crate::at::MAX_LINE);
        }
    }
}
/// Parses `data` as a Twilio form webhook (inbound and status); whatever
/// parses must never validate against a signature it was not signed with,
/// and a signature computed over it must validate.
pub fn twilio_webhook(data: &[u8]) {
    let Ok(params) = crate::twilio::parse_form(data) else {
        return;
    };
    if let Ok(m) = crate::twilio::Inbound::from_params(&params) {
        assert!(m.media.len() <= crate::twilio::MAX_MEDIA);
        assert!(!m.message_sid.is_empty());
    }
    if let Ok(s) = crate::twilio::StatusCallback::from_params(&params) {
        let _ = s.gateway_status();
    }
    let url = "https://gw.example/webhooks/twilio";
    let sig = crate::twilio::signature(b"token", url, &params);
    assert!(crate::twilio::validate(b"token", url, &params, Some(&sig)));
    assert!(!crate::twilio::validate(b"other", url, &params, Some(&sig)));
}

/// Parses `data` as a Telnyx webhook body.
pub fn telnyx_webhook(data: &[u8]) {
    if let Ok(w) = crate::telnyx::Webhook::parse(data) {
        assert!(!w.data.payload.id.is_empty());
        let _ = w.gateway_status();
    }
}

/// Parses `data` as an SMSGate relay webhook body, and checks that a
/// signature over it verifies while a changed timestamp does not.
pub fn android_webhook(data: &[u8]) {
    if let Ok(e) = crate::android_relay::Event::parse(data) {
        assert!(!e.id.is_empty());
        if let Some(p) = e.payload.parts_count {
            let _ = crate::android_relay::delivery_status(Some(p), p);
        }
    }
    let sig = crate::android_relay::sign(b"key", data, "1700000000");
    assert!(
        crate::android_relay::verify(
            b"key",
            Some(&sig),
            Some("1700000000"),
            data,
            1_700_000_000,
            300
        )
        .is_ok()
    );
    assert!(
        crate::android_relay::verify(
            b"key",
            Some(&sig),
            Some("1700000001"),
            data,
            1_700_000_000,
            300
        )
        .is_err()
    );
}

/// Parses `data` as a CPIM message; whatever parses must re-encode to
/// bytes that parse to the same message, and its accessors must not panic.
pub fn cpim(data: &[u8]) {
    use crate::rcs::cpim::CpimMessage;
    let Ok(m) = CpimMessage::decode(data) else {
        return;
    };
    let bytes = m.to_bytes();
    match CpimMessage::decode(&bytes) {
        Ok(again) => assert_eq!(again, m, "CPIM message changed after re-encoding"),
        Err(e) => panic!("re-encoded CPIM does not decode: {e}"),
    }
    let _ = (m.from_uri(), m.to_uri(), m.datetime(), m.content_type());
    let _ = (m.imdn_message_id(), m.disposition_notification());
    if m.content_type().as_deref() == Some(crate::rcs::imdn::CONTENT_TYPE) {
        let _ = crate::rcs::imdn::Imdn::parse(&m.body);
    }
}

/// Parses `data` as an IMDN document; whatever parses must write XML that
/// parses to the same notification.
pub fn imdn(data: &[u8]) {
    use crate::rcs::imdn::Imdn;
    let Ok(i) = Imdn::parse(data) else {
        return;
    };
    let xml = match i.to_xml() {
        Ok(x) => x,
        Err(e) => panic!("a parsed IMDN does not write: {e}"),
    };
    match Imdn::parse(&xml) {
        Ok(again) => assert_eq!(again, i, "IMDN changed after writing"),
        Err(e) => panic!("written IMDN does not parse: {e}"),
    }
    let _ = i.status.gateway_status();
}

/// Parses `data` as FT-HTTP XML; whatever parses must write XML that
/// parses to the same document, and convert to the content model.
pub fn ft_http(data: &[u8]) {
    use crate::rcs::ft_http::FtHttp;
    let Ok(d) = FtHttp::parse(data) else {
        return;
    };
    match FtHttp::parse(&d.to_xml()) {
        Ok(again) => assert_eq!(again, d, "FT-HTTP document changed after writing"),
        Err(e) => panic!("written FT-HTTP does not parse: {e}"),
    }
    assert!(d.to_file_transfer().is_ok());
}

/// Parses `data` as an RBM webhook body, and as the decoded event of a
/// push; a signature over a push's data verifies, with another client
/// token it does not. Also feeds the GSMA chatbot JSON parsers.
pub fn rbm_webhook(data: &[u8]) {
    use crate::rcs::rbm::{UserEvent, Webhook, sign, verify_signature};
    if let Ok(Webhook::Push { data: inner, .. }) = Webhook::parse(data) {
        let sig = sign(b"token", &inner);
        assert!(verify_signature(b"token", Some(&sig), &inner).is_ok());
        assert!(verify_signature(b"other", Some(&sig), &inner).is_err());
        let _ = UserEvent::parse(&inner);
    }
    if let Ok(UserEvent::Message {
        sender, message, ..
    }) = UserEvent::parse(data)
    {
        assert!(sender.starts_with('+'));
        let _ = message.as_text();
    }
    if let Ok(m) = crate::rcs::chatbot::parse_bot_message(data) {
        let opts = crate::rcs::render::RenderOptions::default();
        let r = crate::rcs::render::to_sms(&m, &opts);
        assert!(r.segments <= opts.max_segments);
    }
    let _ = crate::rcs::chatbot::parse_bot_suggestions(data);
    let _ = crate::rcs::chatbot::parse_suggestion_response(data);
    if let Ok(m) = crate::rcs::RcsMessage::from_json(data) {
        let _ = crate::rcs::rbm::agent_message(&m, Some(60));
        let opts = crate::rcs::render::RenderOptions {
            max_segments: 2,
            ..Default::default()
        };
        let r = crate::rcs::render::to_sms(&m, &opts);
        if !matches!(m.body, crate::rcs::Body::Text(_)) {
            assert!(r.segments <= 2, "rendering over budget");
        }
    }
}

/// Parses `data` as SMPP delivery-receipt text; whatever parses must format
/// and parse back to the same receipt, and its id forms must include it.
pub fn smpp_receipt(data: &[u8]) {
    let Ok(r) = crate::smpp::Receipt::parse(data) else {
        return;
    };
    assert!(!r.id.is_empty() && r.id.len() <= 65);
    // Formatting fills in missing fields; what was there must survive.
    let again = crate::smpp::Receipt::parse(r.format().as_bytes());
    let Ok(again) = again else {
        panic!("a formatted receipt does not parse");
    };
    assert_eq!((&again.id, again.stat), (&r.id, r.stat));
    for (a, b) in [
        (&again.sub, &r.sub),
        (&again.dlvrd, &r.dlvrd),
        (&again.submit_date, &r.submit_date),
        (&again.done_date, &r.done_date),
        (&again.err, &r.err),
    ] {
        if b.is_some() {
            assert_eq!(a, b);
        }
    }
    assert_eq!(crate::smpp::receipt::id_forms(&r.id)[0], r.id);
}

/// Parses `data` as the generic adapter's inbound and status webhook
/// bodies: no panic, errors never quote the input, what parses writes back
/// to JSON that parses to the same value, and the signature over the body
/// verifies with its secret and not with another.
pub fn generic_webhook(data: &[u8]) {
    use crate::generic::{InboundSms, StatusCallback};
    match serde_json::from_slice::<InboundSms>(data) {
        Ok(m) => {
            let again: Result<InboundSms, _> = serde_json::to_vec(&m)
                .map_err(|_| ())
                .and_then(|b| serde_json::from_slice(&b).map_err(|_| ()));
            assert_eq!(
                again.ok().as_ref(),
                Some(&m),
                "inbound SMS changed through JSON"
            );
        }
        Err(e) => {
            let _ = crate::json::describe_error(&e);
        }
    }
    if let Ok(s) = serde_json::from_slice::<StatusCallback>(data) {
        assert!(serde_json::to_vec(&s).is_ok());
    }
    let sig = crate::signing::sign(b"secret", 1_700_000_000, data);
    assert!(crate::signing::verify(b"secret", Some(&sig), data, 1_700_000_000, 300).is_ok());
    assert!(crate::signing::verify(b"other", Some(&sig), data, 1_700_000_000, 300).is_err());
}
