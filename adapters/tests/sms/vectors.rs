//! Hand-derived vectors from `fixtures/pdu/` (see its README).

use std::fs;

use adapters::sms::{
    self, DecodedPdu, Encoding, Gsm7Tables, ModemPdu, SubmitParams, Tpdu, decode_modem_hex,
    encode_submit, parse_hex,
};
use serde_json::Value;

use crate::fixtures;

fn load(dir: &str) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = fs::read_dir(fixtures().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let v: Value = serde_json::from_str(&fs::read_to_string(&p).unwrap()).unwrap();
            (p.file_stem().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no vectors in {dir}");
    out
}

#[test]
fn decode_vectors() {
    let vectors = load("decode");
    assert!(vectors.len() >= 20);
    for (name, v) in vectors {
        let hex = v["hex"].as_str().unwrap();
        let joined: String = v["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f[0].as_str().unwrap())
            .collect();
        assert_eq!(
            joined.to_uppercase(),
            hex,
            "{name}: fields do not add up to hex"
        );
        let result = decode_modem_hex(hex);
        if let Some(err) = v.get("expect_error") {
            let e = result.expect_err(&name);
            assert_eq!(e.to_string(), err.as_str().unwrap(), "{name}");
            continue;
        }
        let decoded = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        let json = serde_json::to_value(&decoded).unwrap();
        for (k, want) in v["expect"].as_object().unwrap() {
            let got = json.get(k).unwrap_or(&Value::Null);
            assert_eq!(got, want, "{name}: field {k}");
        }
        if v["reencodes_identically"].as_bool().unwrap() {
            let pdu = ModemPdu::decode_bytes(&parse_hex(hex).unwrap()).unwrap();
            assert_eq!(pdu.to_hex(), hex, "{name}: re-encoding differs");
        }
    }
}

/// Every strict prefix of every valid vector must fail cleanly (never
/// panic), with an error that names a field and an offset inside the input.
/// Status reports are the exception: TP-PI and what follows are optional,
/// so a prefix ending after TP-ST is itself a valid PDU.
#[test]
fn truncation_at_every_offset_errors() {
    let mut checked = 0;
    for (name, v) in load("decode") {
        if v.get("expect_error").is_some() {
            continue;
        }
        let bytes = parse_hex(v["hex"].as_str().unwrap()).unwrap();
        for cut in 0..bytes.len() {
            let prefix = &bytes[..cut];
            match ModemPdu::decode_bytes(prefix) {
                Ok(ModemPdu {
                    tpdu: Tpdu::StatusReport(_),
                    ..
                }) => {}
                Ok(_) => panic!("{name}: prefix of {cut} octets decoded"),
                Err(adapters::Error::Pdu { offset, .. }) => {
                    assert!(offset <= cut, "{name}: offset {offset} past cut {cut}");
                    checked += 1;
                }
                Err(e) => panic!("{name}: unexpected error kind {e}"),
            }
            // The hex path must agree.
            let _ = decode_modem_hex(&hex::encode(prefix));
        }
    }
    assert!(checked > 300);
}

#[test]
fn encode_vectors() {
    for (name, v) in load("encode") {
        let params: SubmitParams = serde_json::from_value(v["params"].clone()).unwrap();
        let to = v["to"].as_str().unwrap();
        let text = v["text"].as_str().unwrap();
        let (plan, pdus) =
            encode_submit(to, text, &params).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want: Vec<&str> = v["expect_hex"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        let got: Vec<&str> = pdus.iter().map(|p| p.hex.as_str()).collect();
        assert_eq!(got, want, "{name}");
        assert_eq!(plan.segments, want.len(), "{name}: plan");
        assert_eq!(
            serde_json::to_value(plan.encoding).unwrap(),
            v["expect_encoding"],
            "{name}: encoding"
        );
        for p in &pdus {
            assert_eq!(sms::cmgs_length(&p.hex).unwrap(), p.tpdu_length, "{name}");
            // Each PDU decodes back to its recipient.
            let d: DecodedPdu = decode_modem_hex(&p.hex).unwrap();
            assert_eq!(d.kind, "submit");
            assert_eq!(d.recipient.as_deref(), Some(to), "{name}");
        }
    }
}

#[test]
fn every_character_of_the_default_and_extension_tables() {
    let tables: Value =
        serde_json::from_str(&fs::read_to_string(fixtures().join("gsm7_tables.json")).unwrap())
            .unwrap();
    let t = Gsm7Tables::DEFAULT;
    let default = tables["default"].as_array().unwrap();
    assert_eq!(default.len(), 128);
    for (code, c) in default.iter().enumerate() {
        let Some(c) = c.as_str() else {
            assert_eq!(code, 0x1B);
            continue;
        };
        let ch = c.chars().next().unwrap();
        let mut septets = Vec::new();
        t.encode(c, &mut septets).unwrap();
        assert_eq!(septets, vec![code as u8], "{ch:?}");
        let mut back = String::new();
        t.decode(&septets, &mut back);
        assert_eq!(back, c);
        assert!(sms::gsm7::is_default_alphabet(c));
    }
    let ext = tables["extension"].as_object().unwrap();
    assert_eq!(ext.len(), 10);
    for (code, c) in ext {
        let code = u8::from_str_radix(code, 16).unwrap();
        let c = c.as_str().unwrap();
        let mut septets = Vec::new();
        t.encode(c, &mut septets).unwrap();
        assert_eq!(septets, vec![0x1B, code], "{c:?}");
        let mut back = String::new();
        t.decode(&septets, &mut back);
        assert_eq!(back, c);
        assert_eq!(sms::plan(c, &Default::default()).units, 2);
    }
    // ASCII characters outside both tables force UCS-2.
    for c in ['`', '\u{1B}', '\t'] {
        let p = sms::plan(&c.to_string(), &Default::default());
        assert_eq!(p.encoding, Encoding::Ucs2, "{c:?}");
    }
}

#[test]
fn contract_examples() {
    // What `gateway pdu decode` / `pdu encode` are checked against.
    let d = decode_modem_hex(
        "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37",
    )
    .unwrap();
    let j = serde_json::to_value(&d).unwrap();
    assert_eq!(j["type"], "deliver");
    assert_eq!(j["sender"], "27838890001");
    assert_eq!(j["smsc"], "+27381000015");
    assert_eq!(j["encoding"], "gsm7");
    assert_eq!(j["text"], "hellohello");
    assert_eq!(j["concat"], Value::Null);
    assert_eq!(j["timestamp"], "1999-03-29T15:16:59+02:00");
    let e = decode_modem_hex("07917283010010F5040BC872").unwrap_err();
    assert_eq!(
        e.to_string(),
        "truncated PDU: TP-OA address digits at offset 11"
    );
    let pdus =
        sms::encode_submit_hex("+14155550101", &"x".repeat(161), &SubmitParams::default()).unwrap();
    assert_eq!(pdus.len(), 2);
    assert!(pdus.iter().all(|p| {
        p.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
    }));
}

#[test]
fn errors_never_contain_text() {
    let secret = "Sécret wörds 😀";
    let e = sms::encode_submit_hex("not a number", secret, &SubmitParams::default()).unwrap_err();
    assert!(!e.to_string().contains("Sécret"));
    let long = "z".repeat(153 * 255 + 1);
    let e = sms::encode_submit_hex("+1", &long, &SubmitParams::default()).unwrap_err();
    assert!(!e.to_string().contains("zzz"));
    // A PDU whose text is readable, cut short: the error names the field only.
    let mut hex = String::from("00040B914151550501F1000062301221430000");
    hex.push_str("0AE8329BFD4697D9EC");
    let e = decode_modem_hex(&hex).unwrap_err();
    assert_eq!(e.to_string(), "truncated PDU: TP-UD at offset 20");
}
