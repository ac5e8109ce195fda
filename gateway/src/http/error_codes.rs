//! The stable numbers of API errors, documented one by one in
//! `docs/errors.md` (each with its cause and fix); an answer links its entry
//! as `more_info`.
//!
//! A number is `<HTTP status><two digits>`, so it reads as its status and
//! stays unique when a status gets more causes. Numbers are never reused or
//! renumbered: clients switch on them. Free ranges are kept for what is
//! coming (the tenants' scopes, sender ids and quotas: 40310–40319 and
//! 42910–42919).
//!
//! Which number an error gets is decided here and only here, from the
//! variant and, for the variants whose callers pass a fixed sentence
//! (credentials, signatures, "no such route"), from that sentence; the unit
//! test below pins every sentence that has its own number.

use super::error::ApiError;

/// Every number with a one-line title, in the order of `docs/errors.md`.
pub const CODES: &[(u32, &str)] = &[
    (40000, "bad request"),
    (40001, "not valid JSON"),
    (40002, "a field has the wrong type"),
    (40003, "a required field is missing"),
    (40004, "an unknown field"),
    (40005, "an unknown value for a field"),
    (40010, "a field's value is invalid"),
    (40100, "unauthorized"),
    (40101, "missing bearer token"),
    (40102, "invalid API key"),
    (40110, "webhook signature missing or malformed"),
    (40111, "webhook signature does not match"),
    (40112, "webhook signature too old or in the future"),
    (40300, "refused by policy"),
    (40310, "sender not allowed for this tenant"),
    (40311, "API key lacks the scope"),
    (40312, "address not owned by this tenant"),
    (40313, "operator key needed"),
    (40400, "no such resource"),
    (40401, "no such path"),
    (40500, "method not allowed"),
    (40800, "request body too slow"),
    (41300, "request body too large"),
    (41500, "unsupported media type"),
    (42200, "Idempotency-Key reused"),
    (42900, "rate limited"),
    (42910, "tenant's daily quota exceeded"),
    (50000, "internal error"),
    (50300, "overloaded"),
    (50301, "storage full"),
    (50302, "no route configured"),
    (50303, "content not retained"),
];

/// Where an error's number is explained.
pub fn more_info(number: u32) -> String {
    format!("docs/errors.md#{number}")
}

/// The error's stable number and, where one field is at fault, its name.
pub fn number_and_param(e: &ApiError) -> (u32, Option<String>) {
    match e {
        ApiError::BadRequest(m) => match field_of(m) {
            Some(f) => (40010, Some(f)),
            None => (40000, None),
        },
        ApiError::InvalidJson { number, param, .. } => (*number, param.clone()),
        ApiError::Unauthorized(m) => (unauthorized(m), None),
        ApiError::Forbidden(m) => (forbidden(m), None),
        ApiError::SenderNotAllowed => (40310, Some("from".into())),
        ApiError::QuotaExceeded(_) => (42910, None),
        ApiError::NotFound(m) if m == "no such route" => (40401, None),
        ApiError::NotFound(_) => (40400, None),
        ApiError::MethodNotAllowed => (40500, None),
        ApiError::TooLarge => (41300, None),
        ApiError::UnsupportedMedia(_) => (41500, None),
        ApiError::IdempotencyConflict => (42200, Some("Idempotency-Key".into())),
        ApiError::RateLimited(..) => (42900, None),
        ApiError::Internal => (50000, None),
        ApiError::Unavailable(_) => (50300, None),
        ApiError::StorageFull(_) => (50301, None),
        ApiError::NoRoute(_) => (50302, None),
        ApiError::NotRetained(_) => (50303, None),
        ApiError::BodyTimeout => (40800, None),
    }
}

/// `invalid <field>: <why>` (the shape of every field check, from
/// `Error::Invalid` and the handlers) names the field.
fn field_of(message: &str) -> Option<String> {
    let (field, _) = message.strip_prefix("invalid ")?.split_once(": ")?;
    let plain = !field.is_empty()
        && field
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'));
    plain.then(|| field.to_string())
}

fn forbidden(message: &str) -> u32 {
    if message.starts_with("this API key lacks the ") {
        40311
    } else if message.starts_with("this address is not one of") {
        40312
    } else if message.starts_with("operator endpoints need") {
        40313
    } else {
        40300
    }
}

fn unauthorized(message: &str) -> u32 {
    match message {
        "missing bearer token" => 40101,
        "invalid API key" => 40102,
        "signature does not match" | "client token does not match" => 40111,
        "signature timestamp outside the allowed window" => 40112,
        m if m.starts_with("signature header missing") || m.starts_with("missing X-") => 40110,
        _ => 40100,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fixed_sentences_have_their_numbers() {
        let n = |e: ApiError| number_and_param(&e);
        assert_eq!(
            n(ApiError::Unauthorized("missing bearer token".into())).0,
            40101
        );
        assert_eq!(n(ApiError::Unauthorized("invalid API key".into())).0, 40102);
        for p in [
            adapters::signing::SignatureProblem::Malformed,
            adapters::signing::SignatureProblem::Mismatch,
            adapters::signing::SignatureProblem::Stale,
        ] {
            assert_ne!(n(ApiError::Unauthorized(p.to_string())).0, 40100, "{p}");
        }
        assert_eq!(n(ApiError::NotFound("no such route".into())).0, 40401);
        assert_eq!(
            n(ApiError::BadRequest(
                "invalid ttl_seconds: must be at least 1".into()
            )),
            (40010, Some("ttl_seconds".into()))
        );
        assert_eq!(
            n(ApiError::BadRequest("invalid JSON body: x".into())),
            (40000, None)
        );
    }

    #[test]
    fn numbers_are_unique_and_documented() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/errors.md"))
                .unwrap();
        let mut seen = std::collections::HashSet::new();
        for (number, _) in CODES {
            assert!(seen.insert(number), "{number} twice");
            assert!(
                doc.contains(&format!("<a id=\"{number}\"></a>")),
                "docs/errors.md has no entry for {number}"
            );
        }
    }
}
