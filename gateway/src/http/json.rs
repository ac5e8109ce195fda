//! JSON request bodies, parsed with errors that name the field and the
//! position but never quote a value (see [`adapters::json::describe_error`]):
//! a client that put its message text in the wrong field must not get it
//! echoed in an error, which proxies and clients log.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;

use super::error::ApiError;

/// Parses a request body as `T`.
pub fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "invalid JSON body: {}",
            adapters::json::describe_error(&e)
        ))
    })
}

/// Parses the body of a request that must say `Content-Type: application/json`.
pub fn parse_typed<T: serde::de::DeserializeOwned>(
    headers: &axum::http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let is_json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            let m = m.trim();
            m.eq_ignore_ascii_case("application/json")
                || (m.len() > 5 && m[m.len() - 5..].eq_ignore_ascii_case("+json"))
        });
    if !is_json {
        return Err(ApiError::UnsupportedMedia(
            "expected Content-Type: application/json".into(),
        ));
    }
    parse(&body?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        to: String,
        ttl_seconds: Option<u64>,
    }

    #[test]
    fn errors_never_quote_values() {
        let secret = "the secret text";
        for raw in [
            format!(r#"{{"to":"+1","ttl_seconds":"{secret}"}}"#),
            format!(r#"{{"to":["{secret}"]}}"#),
            format!(r#"{{"to":"{secret}""#),
            format!(r#"{{"to":"+1","ttl_seconds":{{"{secret}":1}}}}"#),
        ] {
            let ApiError::BadRequest(m) = parse::<Body>(raw.as_bytes()).unwrap_err() else {
                panic!("not a bad request");
            };
            assert!(!m.contains("secret"), "{m}");
            assert!(m.contains("line 1"), "{m}");
        }
        let ApiError::BadRequest(m) = parse::<Body>(br#"{"ttl_seconds":1}"#).unwrap_err() else {
            panic!("not a bad request");
        };
        assert!(m.contains("missing field `to`"), "{m}");
    }
}
