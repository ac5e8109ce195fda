//! JSON errors that are safe to show: serde_json's own messages quote the
//! offending value ("invalid type: string \"…\", expected u64"), and a
//! value in a request body may be message text, which must never appear in
//! an error. Every JSON body from outside is described through here.

/// Describes a serde error without quoting the input (serde_json's
/// "invalid type" messages quote string values, which may be content).
pub fn describe_error(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let safe = msg.starts_with("unknown field")
        || msg.starts_with("missing field")
        || msg.starts_with("unknown variant")
        || msg.starts_with("invalid RCS")
        || msg.starts_with("duplicate field");
    let head = if msg.starts_with("unknown variant") {
        // "unknown variant `x`, expected one of …": `x` is a value; keep the list.
        match msg.split_once(", ") {
            Some((_, rest)) => format!(
                "unknown variant, {}",
                rest.split(" at line ").next().unwrap_or("")
            ),
            None => "unknown variant".to_string(),
        }
    } else if safe {
        // These quote only schema names (and, for unknown variants and
        // fields, the caller's key, which is not content).
        msg.split(" at line ").next().unwrap_or("").to_string()
    } else {
        match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "not valid JSON".to_string()
            }
            _ => "a value has the wrong type or shape".to_string(),
        }
    };
    if e.line() > 0 {
        format!("{head} (line {} column {})", e.line(), e.column())
    } else {
        head
    }
}

/// Why a carrier's JSON webhook body was refused (Telnyx, the Android
/// relay). Never quotes values: a body may carry message text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookError {
    /// Not the expected JSON; where it went wrong, by position only.
    Json(String),
    /// A field is missing or has an impossible value; names it.
    Invalid(&'static str),
}

impl WebhookError {
    /// A serde error by its position alone (serde_json's messages may
    /// quote a string value).
    pub fn json(e: &serde_json::Error) -> Self {
        Self::Json(format!("line {} column {}", e.line(), e.column()))
    }
}

impl std::fmt::Display for WebhookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Json(e) => write!(f, "invalid JSON body: {e}"),
            Self::Invalid(n) => write!(f, "invalid field {n}"),
        }
    }
}

impl std::error::Error for WebhookError {}
