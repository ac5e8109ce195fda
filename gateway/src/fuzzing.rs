//! Entry points for the cargo-fuzz targets in `fuzz/` (outside the
//! workspace). They panic only when an invariant breaks.

use crate::app::config::Config;

/// Parses `data` as a config file and validates it: any input gets a value
/// or an error, never a panic.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = Config::from_toml(text) {
        let _ = cfg.validate();
        // Building the routing rules from a parsed config must not panic either.
        let mut routes = crate::delivery::route::Routes::default();
        let _ = routes.set_rules(&cfg.routing);
    }
}

/// Decodes `data` as the body of an SMPP frame (what follows
/// `command_length`): anything gets a command or "undecodable", never a
/// panic, and the helpers the sessions use on a decoded command (status,
/// encoding, decoding that encoding) do not panic either.
///
/// It does not assert that a decoded command re-encodes to a valid PDU:
/// rusmpp 0.4 keeps a TLV's `value_length` as read even when the value it
/// decodes is shorter (the fuzzer found `dest_network_id` with length 70
/// and a 2-byte value), so re-encoding a hostile PDU writes an
/// inconsistent one. The gateway never re-encodes a PDU it received; it
/// builds its own, and those are read back by its own sessions and by
/// smpplib in the SMPP tests.
pub fn smpp_pdu(data: &[u8]) {
    use crate::channels::smpp::wire::{self, Frame};
    if data.len() < 12 || data.len() > wire::MAX_PDU {
        return;
    }
    let Frame::Command(c) = wire::decode_body(bytes::BytesMut::from(data)) else {
        return;
    };
    let _ = wire::status_of(&c);
    let bytes = wire::encode(&c);
    if let Some(body) = bytes.get(4..) {
        let _ = wire::decode_body(bytes::BytesMut::from(body));
    }
}

/// Parses request bodies of the HTTP API (`POST /v1/messages`, `PUT
/// /v1/identities/…`) built from `data` with a canary string placed in the
/// middle: parsing never panics, and an error quotes the canary only
/// inside the name of "unknown field `…`" (the caller's key, which is not
/// content; serde reports it before it reads the `:`). A value may be
/// message text, and error messages end up in clients' and proxies' logs.
pub fn api_body(data: &[u8]) {
    use crate::http::error::ApiError;
    use crate::http::identities::IdentityBody;
    use crate::http::json::parse;
    use crate::http::messages::SendBody;
    const CANARY: &str = "QzvCanaryQzv";
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let (head, tail) = rest.split_at(usize::from(cut).min(rest.len()));
    let mut body = head.to_vec();
    body.extend_from_slice(format!("\"{CANARY}\"").as_bytes());
    body.extend_from_slice(tail);
    let errors = [
        parse::<SendBody>(&body).err(),
        parse::<IdentityBody>(&body).err(),
    ];
    for e in errors.into_iter().flatten() {
        // Both are 400s; `InvalidJson` also names the field (a path of the
        // caller's keys, not content) and its number.
        let msg = match e {
            ApiError::BadRequest(m) | ApiError::InvalidJson { message: m, .. } => m,
            _ => panic!("a parse error that is not a 400"),
        };
        // The key named by an unknown-field error may hold the canary.
        let outside_key = match msg.split_once("unknown field `") {
            Some((before, after)) => {
                let rest = after.rsplit_once("`, expected").map_or("", |(_, r)| r);
                format!("{before}{rest}")
            }
            None => msg.clone(),
        };
        assert!(
            !outside_key.contains(CANARY),
            "an error quotes a value: {msg}"
        );
    }
}

/// Normalises a phone number text built from `data` (the first byte picks
/// the default region; then either the bytes as text, or, when the second
/// byte is even, the bytes mapped to digits and `+`, which is the shape the
/// fast path parses): never a panic, and for `+` and digits the answer and
/// the region are `phonenumber`'s own (`core::numbers` parses that shape
/// itself and must agree with it).
pub fn numbers(data: &[u8]) {
    use crate::core::numbers::{Normalised, normalise, region_of};
    use phonenumber::country::Id as Region;
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    if rest.len() > 40 {
        return;
    }
    // Sorted: the database iterates a hash map, so a crash must not depend
    // on the process's hash seed.
    let mut regions: Vec<Region> = phonenumber::metadata::DATABASE
        .iter()
        .filter_map(|m| m.id().parse().ok())
        .collect();
    regions.sort_by_key(|r| r.as_ref().to_string());
    let region = regions
        .get(usize::from(pick) % regions.len().max(1))
        .copied();
    let text: String = match rest.split_first() {
        Some((&mode, tail)) if mode % 2 == 0 => tail
            .iter()
            .map(|b| {
                if b % 16 >= 10 {
                    '+'
                } else {
                    char::from(b'0' + b % 16)
                }
            })
            .collect(),
        _ => match std::str::from_utf8(rest) {
            Ok(t) => t.to_string(),
            Err(_) => return,
        },
    };
    let answer = normalise(region, &text);
    if !crate::core::numbers::parsed_here(&text) {
        return;
    }
    let theirs = match phonenumber::parse(region, &text) {
        Err(_) => Normalised::Unparsable,
        Ok(n) if !phonenumber::is_valid(&n) => Normalised::Invalid,
        Ok(n) => Normalised::Valid(n.format().mode(phonenumber::Mode::E164).to_string()),
    };
    assert_eq!(answer, theirs, "normalise {text:?} in {region:?}");
    let theirs = phonenumber::parse(None, &text)
        .ok()
        .and_then(|n| n.country().id());
    assert_eq!(region_of(&text), theirs, "region_of {text:?}");
}

/// Envelopes from outside: the private side posts them (`POST /v1/messages`
/// with `envelope`, sealed to the edge key) and the CLI reads them. The
/// first byte picks what `data` is:
///
/// * even: the wire form. Parsing never panics; what parses writes back
///   to exactly `data` (the header bytes are the AEAD's associated data,
///   kept as sent), rebuilds from the store's two columns to the same
///   bytes, and opening it with a key never panics. The same bytes as
///   base64 text parse the same way.
/// * odd: the padded plaintext of a body sealed to a fixed key, as anyone
///   holding the edge key's public half can seal it: opening authenticates
///   it and then parses the padding and the content JSON; that never
///   panics, and content that opens writes back to JSON that reads as the
///   same content, and renders as SMS text (RCS content is rendered) that
///   plans to segments without a panic.
pub fn envelope(data: &[u8]) {
    use crate::envelope::keys::Kem;
    use crate::envelope::{Content, Envelope};
    use base64::Engine;
    use hpke::Kem as _;
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let (private, _) = Kem::derive_keypair(&FUZZ_KEY_IKM);
        if let Ok(env) = Envelope::from_bytes(rest) {
            assert_eq!(env.to_bytes(), rest, "the wire form is kept as sent");
            let stored = Envelope::from_parts(env.header_bytes(), &env.sealed_bytes());
            assert_eq!(stored.map(|e| e.to_bytes()).ok().as_deref(), Some(rest));
            let _ = env.open(&private);
        }
        let b64 = base64::engine::general_purpose::STANDARD.encode(rest);
        assert_eq!(
            Envelope::from_base64(&b64).is_ok(),
            Envelope::from_bytes(rest).is_ok()
        );
        return;
    }
    let Some(content) = open_sealed_plaintext(mode, rest) else {
        return;
    };
    let back = serde_json::to_vec(&content)
        .ok()
        .and_then(|json| serde_json::from_slice::<Content>(&json).ok());
    assert!(
        back == Some(content.clone()),
        "opened content reads back as itself"
    );
    let interwork = crate::delivery::interwork::Interwork::new(Default::default(), 4, None);
    let text = interwork.sms_text(&content);
    let _ = crate::pipeline::plan::plan(&text, interwork.sms());
}

/// The key pair of the envelope target: `docs/envelope.md`'s worked
/// example's recipient, so its wire form in the corpus opens.
const FUZZ_KEY_IKM: [u8; 32] = [0x11; 32];

/// `plain` sealed as the padded plaintext of an outbound envelope to the
/// fuzz key (`mode` seeds the ephemeral key), then opened: the content,
/// when the padding and the JSON inside are valid.
fn open_sealed_plaintext(mode: u8, plain: &[u8]) -> Option<crate::envelope::Content> {
    use crate::envelope::keys::Kem;
    use crate::envelope::{Channel, Direction, Envelope, Header};
    use hpke::Kem as _;
    use rand::SeedableRng;
    let (private, public) = Kem::derive_keypair(&FUZZ_KEY_IKM);
    let header = Header {
        v: crate::envelope::VERSION,
        id: "0192f3a4-5b6c-7d8e-9fa0-b1c2d3e4f506".into(),
        created_at: "2026-03-01T12:00:00.000Z".into(),
        channel: Channel::Sms,
        direction: Direction::Outbound,
        from: "+14155550100".into(),
        to: "+14155550101".into(),
        segments: 1,
        encoding: "gsm7".into(),
        size_class: u32::try_from(plain.len()).ok()?,
        expires_at: None,
        kid: crate::envelope::keys::kid_of(&public),
        carrier_ids: Default::default(),
        seal: Default::default(),
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(u64::from(mode));
    let env = Envelope::seal_padded(header, plain.to_vec(), &public, &mut rng).ok()?;
    env.open(&private).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// The committed seeds of the envelope target reach what they are for:
    /// the worked example's wire form opens with the target's key, and each
    /// sealed plaintext opens to content (a change of the content's JSON
    /// shape would otherwise leave the fuzzer mutating dead seeds).
    #[test]
    fn the_envelope_seeds_open() {
        use crate::envelope::Envelope;
        use crate::envelope::keys::Kem;
        use hpke::Kem as _;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/envelope");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let (&mode, rest) = data.split_first().unwrap();
            let opened = if mode % 2 == 0 {
                let (private, _) = Kem::derive_keypair(&super::FUZZ_KEY_IKM);
                Envelope::from_bytes(rest).unwrap().open(&private).is_ok()
            } else {
                super::open_sealed_plaintext(mode, rest).is_some()
            };
            assert!(opened, "{} does not open", path.display());
            super::envelope(&data);
            seen += 1;
        }
        assert!(seen >= 5, "{seen} seeds");
    }
}
