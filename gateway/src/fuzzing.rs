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
