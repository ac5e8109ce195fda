#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use hpke::Kem as _;

/// An RNG that returns fixed bytes, so HPKE's ephemeral key is
/// DeriveKeyPair(ikmE) as in RFC 9180's test vectors.
struct FixedRng(Vec<u8>);
impl RngCore for FixedRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        assert!(self.0.len() >= dest.len(), "FixedRng ran dry");
        let rest = self.0.split_off(dest.len());
        dest.copy_from_slice(&self.0);
        self.0 = rest;
    }
}
impl CryptoRng for FixedRng {}

fn example_header() -> Header {
    Header {
        v: 1,
        id: "0192f3a4-5b6c-7d8e-9fa0-b1c2d3e4f506".into(),
        created_at: "2026-03-01T12:00:00.000Z".into(),
        channel: Channel::Sms,
        direction: Direction::Inbound,
        from: "+14155550100".into(),
        to: "+14155550101".into(),
        segments: 1,
        encoding: "gsm7".into(),
        size_class: 0,
        expires_at: None,
        kid: String::new(),
        carrier_ids: [("generic".to_string(), "carrier-42".to_string())].into(),
        seal: SealMode::Base,
    }
}

/// Pulls the hex block that follows `marker` out of docs/envelope.md.
fn doc_block(marker: &str) -> String {
    let doc = include_str!("../../../docs/envelope.md");
    let start = doc.find(marker).expect("marker in docs/envelope.md");
    let after = &doc[start..];
    let open = after.find("```text\n").expect("code block") + 8;
    let close = after[open..].find("```").expect("closing fence");
    after[open..open + close].split_whitespace().collect()
}

fn worked_example() -> (PrivateKey, Envelope) {
    let ikm_r = [0x11u8; 32];
    let (sk_r, pk_r) = Kem::derive_keypair(&ikm_r);
    let ikm_e = vec![0x22u8; 32];
    let env = Envelope::seal(
        example_header(),
        &Content::text("Hello from the phone network"),
        &pk_r,
        &mut FixedRng(ikm_e),
    )
    .unwrap();
    (sk_r, env)
}

#[test]
fn worked_example_matches_the_spec_page() {
    let (sk, env) = worked_example();
    let hex_wire = hex::encode(env.to_bytes());
    if std::env::var("PRINT_ENVELOPE_EXAMPLE").is_ok() {
        println!(
            "recipient public key: {}",
            hex::encode(Kem::sk_to_pk(&sk).to_bytes())
        );
        println!("kid: {}", env.header.kid);
        println!("header: {}", String::from_utf8_lossy(env.header_bytes()));
        println!("wire: {hex_wire}");
    }
    assert_eq!(hex_wire, doc_block("<!-- worked-example-wire -->"));
    assert_eq!(
        hex::encode(Kem::sk_to_pk(&sk).to_bytes()),
        doc_block("<!-- worked-example-recipient-public -->")
    );
    let parsed =
        Envelope::from_bytes(&hex::decode(doc_block("<!-- worked-example-wire -->")).unwrap())
            .unwrap();
    assert_eq!(
        parsed.open(&sk).unwrap(),
        Content::text("Hello from the phone network")
    );
}

#[test]
fn round_trip_and_any_header_byte_flip_fails() {
    let (sk_r, pk_r) = keys::generate();
    let env = Envelope::seal(
        example_header(),
        &Content::text("héllo ✓"),
        &pk_r,
        &mut rand::rng(),
    )
    .unwrap();
    let wire = env.to_bytes();
    let back = Envelope::from_bytes(&wire).unwrap();
    assert_eq!(back.open(&sk_r).unwrap().as_text(), "héllo ✓");
    assert_eq!(back.header.size_class, 256);
    // Flip every header byte in turn: either the header no longer parses or
    // the envelope no longer opens. Never the same plaintext from a changed header.
    let hlen = env.header_bytes().len();
    for i in 7..7 + hlen {
        let mut w = wire.clone();
        w[i] ^= 0x01;
        if let Ok(e) = Envelope::from_bytes(&w) {
            assert!(
                e.open(&sk_r).is_err(),
                "flipped header byte {i} still opened"
            );
        }
    }
    // Ciphertext and enc flips fail too.
    for i in [7 + hlen, 7 + hlen + 40, wire.len() - 1] {
        let mut w = wire.clone();
        w[i] ^= 0x80;
        let e = Envelope::from_bytes(&w).unwrap();
        assert!(e.open(&sk_r).is_err());
    }
    // Another key cannot open.
    let (other, _) = keys::generate();
    assert!(back.open(&other).is_err());
}

#[test]
fn size_classes_hide_length() {
    let (_, pk) = keys::generate();
    let a = Envelope::seal(example_header(), &Content::text("a"), &pk, &mut rand::rng()).unwrap();
    let b = Envelope::seal(
        example_header(),
        &Content::text("a".repeat(200)),
        &pk,
        &mut rand::rng(),
    )
    .unwrap();
    assert_eq!(a.to_bytes().len(), b.to_bytes().len());
    let c = Envelope::seal(
        example_header(),
        &Content::text("a".repeat(300)),
        &pk,
        &mut rand::rng(),
    )
    .unwrap();
    assert_eq!(c.header.size_class, 512);
    assert_eq!(size_class_for(252).unwrap(), 256);
    assert_eq!(size_class_for(253).unwrap(), 512);
    assert!(size_class_for(2 << 20).is_err());
}

#[test]
fn truncated_and_garbage_inputs_are_errors() {
    let (_, pk) = keys::generate();
    let wire = Envelope::seal(example_header(), &Content::text("x"), &pk, &mut rand::rng())
        .unwrap()
        .to_bytes();
    for n in 0..wire.len() {
        assert!(
            Envelope::from_bytes(&wire[..n]).is_err(),
            "prefix of {n} bytes parsed"
        );
    }
    assert!(Envelope::from_base64("%%%").is_err());
    assert!(Envelope::from_bytes(b"GWEV\x02\x00\x00").is_err());
}

#[test]
fn debug_never_shows_text() {
    let c = Content::text("secret canary 123");
    assert!(!format!("{c:?}").contains("canary"));
}

#[test]
fn export_mode_round_trips_and_shares_one_key_agreement() {
    let (sk, pk) = keys::generate();
    let sealer = epoch::Sealer::default();
    let mut h1 = example_header();
    h1.id = "0192f3a4-0000-7000-8000-000000000001".into();
    let mut h2 = example_header();
    h2.id = "0192f3a4-0000-7000-8000-000000000002".into();
    let a = sealer.seal(h1, &Content::text("first"), &pk).unwrap();
    let b = sealer.seal(h2, &Content::text("first"), &pk).unwrap();
    assert_eq!(a.header.seal, SealMode::Export);
    assert_eq!(a.enc(), b.enc(), "one epoch, one encapsulated key");
    assert_ne!(
        a.to_bytes()[a.to_bytes().len() - 40..],
        b.to_bytes()[b.to_bytes().len() - 40..],
        "per-message keys differ"
    );
    // Plain `open` (no cache) and the caching opener both work, through the wire form.
    let a2 = Envelope::from_bytes(&a.to_bytes()).unwrap();
    assert_eq!(a2.open(&sk).unwrap().as_text(), "first");
    let opener = epoch::Opener::default();
    assert_eq!(opener.open(&b, &sk).unwrap().as_text(), "first");
    assert_eq!(opener.open(&a2, &sk).unwrap().as_text(), "first");
    // Tampering with the header (e.g. swapping the id to reuse a key) fails.
    let wire = a.to_bytes();
    let hlen = a.header_bytes().len();
    for i in 7..7 + hlen {
        let mut w = wire.clone();
        w[i] ^= 0x01;
        if let Ok(e) = Envelope::from_bytes(&w) {
            assert!(
                opener.open(&e, &sk).is_err(),
                "flipped header byte {i} still opened"
            );
        }
    }
    let (other, _) = keys::generate();
    assert!(Envelope::from_bytes(&wire).unwrap().open(&other).is_err());
}
