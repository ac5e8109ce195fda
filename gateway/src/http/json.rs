//! JSON request bodies, parsed with errors that name the field and the
//! position but never quote a value (see [`adapters::json::describe_error`]):
//! a client that put its message text in the wrong field must not get it
//! echoed in an error, which proxies and clients log.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;

use super::error::ApiError;

/// Parses a request body as `T`; an error names the field at fault (its
/// path, as `param`) and says in plain words what it should be.
pub fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| invalid(&e))?;
    // Trailing bytes after the value are as bad as a broken value.
    de.end().map_err(|e| invalid_at(&e, None))?;
    Ok(value)
}

fn invalid(e: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let path = (path != "." && !path.is_empty()).then_some(path);
    invalid_at(e.inner(), path)
}

/// Chooses the number and words for a serde error at `path`.
fn invalid_at(e: &serde_json::Error, path: Option<String>) -> ApiError {
    use serde_json::error::Category;
    let described = adapters::json::describe_error(e);
    let raw = e.to_string();
    let join = |field: &str| match &path {
        Some(p) => format!("{p}.{field}"),
        None => field.to_string(),
    };
    let (number, param, what) = match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => (40001, None, described),
        Category::Data if raw.starts_with("missing field") => {
            (40003, backticked(&raw).map(|f| join(&f)), described)
        }
        // The path already ends in the unknown key (a missing one's does not).
        Category::Data if raw.starts_with("unknown field") => {
            (40004, path.or_else(|| backticked(&raw)), described)
        }
        Category::Data if raw.starts_with("unknown variant") => (40005, path, described),
        Category::Data => {
            let plain = expected_in_words(&raw);
            let what = match (&path, plain) {
                // "ttl_seconds must be a whole number (line 1 column 51)".
                (Some(p), Some(w)) => format!("{p} must be {w}{}", position(e)),
                _ => described,
            };
            (40002, path, what)
        }
    };
    ApiError::InvalidJson {
        number,
        param,
        message: format!("invalid JSON body: {what}"),
    }
}

fn position(e: &serde_json::Error) -> String {
    if e.line() > 0 {
        format!(" (line {} column {})", e.line(), e.column())
    } else {
        String::new()
    }
}

/// The first `name` in backticks: serde puts field names there (never values).
fn backticked(msg: &str) -> Option<String> {
    let (_, rest) = msg.split_once('`')?;
    let (name, _) = rest.split_once('`')?;
    Some(name.to_string())
}

/// serde's "…, expected u64 at line 1 column 5" in plain words; `None` when
/// the expectation is not one of the common shapes. Reads only the part
/// after "expected", which is the schema, never the value.
fn expected_in_words(msg: &str) -> Option<&'static str> {
    let (_, exp) = msg.rsplit_once(", expected ")?;
    let exp = exp.split(" at line ").next().unwrap_or(exp).trim();
    let words = match exp {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)",
        "i8" | "i16" | "i32" | "i64" | "isize" | "an integer" => "a whole number",
        "f32" | "f64" | "a number" => "a number",
        "a string" | "a borrowed string" | "a character" => "a string",
        "a boolean" => "true or false",
        "a sequence" => "a list",
        e if e.starts_with("a map") || e.starts_with("struct ") => "an object",
        e if e.starts_with("a sequence") || e.starts_with("tuple") => "a list",
        _ => return None,
    };
    Some(words)
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
            let ApiError::InvalidJson { message: m, .. } =
                parse::<Body>(raw.as_bytes()).unwrap_err()
            else {
                panic!("not a bad request");
            };
            assert!(!m.contains("secret"), "{m}");
            assert!(m.contains("line 1"), "{m}");
        }
        let ApiError::InvalidJson {
            message: m,
            param,
            number,
        } = parse::<Body>(br#"{"ttl_seconds":1}"#).unwrap_err()
        else {
            panic!("not a bad request");
        };
        assert!(m.contains("missing field `to`"), "{m}");
        assert_eq!((number, param.as_deref()), (40003, Some("to")));
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        inner: Inner,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }

    #[test]
    fn nested_fields_are_named_by_their_path() {
        let param = |raw: &str| match parse::<Outer>(raw.as_bytes()).unwrap_err() {
            ApiError::InvalidJson { number, param, .. } => (number, param.unwrap_or_default()),
            other => panic!("{other:?}"),
        };
        assert_eq!(param(r#"{"inner":{}}"#), (40003, "inner.n".into()));
        assert_eq!(
            param(r#"{"inner":{"n":1,"x":2}}"#),
            (40004, "inner.x".into())
        );
        assert_eq!(param(r#"{"inner":{"n":"a"}}"#), (40002, "inner.n".into()));
    }

    #[test]
    fn a_wrong_type_names_the_field_in_plain_words() {
        let ApiError::InvalidJson {
            message,
            param,
            number,
        } = parse::<Body>(br#"{"to":"+1","ttl_seconds":"60"}"#).unwrap_err()
        else {
            panic!("not a bad request");
        };
        assert_eq!(number, 40002);
        assert_eq!(param.as_deref(), Some("ttl_seconds"));
        assert_eq!(
            message,
            "invalid JSON body: ttl_seconds must be a whole number (0 or more) (line 1 column 29)"
        );
        let ApiError::InvalidJson { number, .. } = parse::<Body>(br#"{"to":"+1"} x"#).unwrap_err()
        else {
            panic!("trailing bytes accepted");
        };
        assert_eq!(number, 40001);
    }
}
