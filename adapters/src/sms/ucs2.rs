//! UCS-2 user data, read and written as UTF-16 big-endian (TS 23.038 §6.2.3).
//!
//! The standard says UCS-2, but every current handset sends and expects
//! UTF-16, so characters outside the Basic Multilingual Plane (emoji) travel
//! as surrogate pairs costing two 16-bit units. Segmentation must never
//! separate the two halves of a pair; decoding concatenated parts as a whole
//! (see the reassembler) also repairs pairs split by other senders.

/// Number of UTF-16 code units in `text` (what a UCS-2 segment limit counts).
pub fn units(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// Appends `text` as UTF-16BE.
pub fn encode(text: &str, out: &mut Vec<u8>) {
    out.reserve(text.len() * 2);
    for u in text.encode_utf16() {
        out.extend_from_slice(&u.to_be_bytes());
    }
}

/// Decodes UTF-16BE; unpaired surrogates and a dangling odd octet become
/// U+FFFD rather than an error, since the rest of the message is still
/// readable and the TPDU itself is well formed.
pub fn decode(octets: &[u8], out: &mut String) {
    let pairs = octets.chunks_exact(2);
    let odd = !pairs.remainder().is_empty();
    let units = pairs.map(|p| u16::from_be_bytes([p[0], p[1]]));
    out.extend(char::decode_utf16(units).map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER)));
    if odd {
        out.push(char::REPLACEMENT_CHARACTER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surrogate_pairs() {
        let mut b = Vec::new();
        encode("a😀", &mut b);
        assert_eq!(b, [0x00, 0x61, 0xD8, 0x3D, 0xDE, 0x00]);
        assert_eq!(units("a😀"), 3);
        let mut s = String::new();
        decode(&b, &mut s);
        assert_eq!(s, "a😀");
        let mut s = String::new();
        decode(&b[..4], &mut s);
        assert_eq!(s, "a\u{FFFD}");
        let mut s = String::new();
        decode(&b[..3], &mut s);
        assert_eq!(s, "a\u{FFFD}");
    }
}
