//! HMAC-SHA256 webhook signatures shared by the generic HTTP adapter and the
//! private-side webhook.
//!
//! The scheme is Stripe-like: the signed bytes are `"<unix seconds>.<raw body>"`
//! and the header value is `t=<unix seconds>,v1=<lowercase hex>`. Binding the
//! timestamp into the MAC lets a receiver reject replays outside a window
//! without trusting an unsigned clock field, and signing the raw body (never a
//! re-serialisation) keeps verification independent of JSON formatting.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Header that carries the signature on every request the gateway signs or checks.
pub const SIGNATURE_HEADER: &str = "x-gateway-signature";

/// Why a signature was refused. Deliberately coarse: callers answer 401 and
/// must not tell an attacker which part was wrong beyond this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureProblem {
    /// The header is absent or not of the form `t=..,v1=..`.
    Malformed,
    /// The timestamp is further from `now` than the allowed window.
    Stale,
    /// The MAC does not match.
    Mismatch,
}

impl std::fmt::Display for SignatureProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Malformed => "signature header missing or malformed",
            Self::Stale => "signature timestamp outside the allowed window",
            Self::Mismatch => "signature does not match",
        })
    }
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Signs `body` at `timestamp` (Unix seconds) and returns the header value.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(tag))
}

/// Verifies a header value produced by [`sign`] in constant time, accepting
/// timestamps within `window_secs` of `now` in either direction.
pub fn verify(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: i64,
    window_secs: i64,
) -> Result<(), SignatureProblem> {
    let header = header.ok_or(SignatureProblem::Malformed)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => timestamp = v.parse::<i64>().ok(),
            Some(("v1", v)) => {
                if let Ok(bytes) = hex::decode(v) {
                    candidates.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureProblem::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureProblem::Malformed);
    }
    if (now - timestamp).abs() > window_secs {
        return Err(SignatureProblem::Stale);
    }
    let expected = mac(secret, timestamp, body).finalize().into_bytes();
    // Several v1 values are allowed so a sender can sign with an old and a new
    // secret during rotation.
    let mut ok = subtle::Choice::from(0);
    for c in &candidates {
        ok |= expected.as_slice().ct_eq(c.as_slice());
    }
    if bool::from(ok) {
        Ok(())
    } else {
        Err(SignatureProblem::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let h = sign(b"k", 1_700_000_000, b"{\"a\":1}");
        assert!(h.starts_with("t=1700000000,v1="));
        assert_eq!(
            verify(b"k", Some(&h), b"{\"a\":1}", 1_700_000_010, 300),
            Ok(())
        );
        assert_eq!(
            verify(b"k", Some(&h), b"{\"a\":2}", 1_700_000_010, 300),
            Err(SignatureProblem::Mismatch)
        );
        assert_eq!(
            verify(b"other", Some(&h), b"{\"a\":1}", 1_700_000_010, 300),
            Err(SignatureProblem::Mismatch)
        );
        assert_eq!(
            verify(b"k", Some(&h), b"{\"a\":1}", 1_700_001_000, 300),
            Err(SignatureProblem::Stale)
        );
        assert_eq!(
            verify(b"k", None, b"", 0, 300),
            Err(SignatureProblem::Malformed)
        );
        assert_eq!(
            verify(b"k", Some("v1=00"), b"", 0, 300),
            Err(SignatureProblem::Malformed)
        );
    }

    #[test]
    fn known_vector() {
        // HMAC-SHA256(key="secret", "1700000000.hello"), computed independently
        // with `printf '1700000000.hello' | openssl dgst -sha256 -hmac secret`.
        let h = sign(b"secret", 1_700_000_000, b"hello");
        assert_eq!(h, format!("t=1700000000,v1={}", KNOWN));
    }
    const KNOWN: &str = "47b1df0ab12338b2685470b0d2b37033add7c3b2bc8172f313e77413f1bb78c8";
}
