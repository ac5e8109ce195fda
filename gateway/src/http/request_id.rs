//! `X-Request-Id` on every answer, and in the request's log span, so an
//! integrator's report ("request 0193… got a 500") finds the gateway's log
//! lines. A client's own id is kept when it is sane (1 to 64 characters of
//! letters, digits and `-_.:`; it goes into logs, so nothing else passes),
//! else a UUIDv7 is made.
//!
//! An error body carries the id too (`request_id`), read from a task-local
//! the layer sets around the request: handlers run in the layer's task.
//!
//! The same outermost layer gives the router's own bodiless answers (405
//! from a path that takes other methods) the JSON error body every other
//! error has, keeping their `Allow` header.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::error::ApiError;

/// The header, in both directions.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    /// The id of the request being answered, for the error body.
    static CURRENT: String;
}

/// The id of the request this task is answering, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// The longest client id kept.
const MAX_LEN: usize = 64;

/// The middleware: picks the id, runs the request in a span carrying it,
/// and puts it on the answer.
pub async fn layer(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane(v))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    if let Ok(v) = HeaderValue::from_str(&id) {
        req.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    // Method and route template only: a concrete path can hold a number.
    let span = tracing::info_span!("request", request_id = %id, method = %req.method());
    let mut resp = CURRENT
        .scope(id.clone(), next.run(req).instrument(span.clone()))
        .await;
    tracing::debug!(parent: &span, status = resp.status().as_u16(), "answered");
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED && !is_json(&resp) {
        let allow = resp.headers().get(header::ALLOW).cloned();
        resp = CURRENT.sync_scope(id.clone(), || ApiError::MethodNotAllowed.into_response());
        if let Some(a) = allow {
            resp.headers_mut().insert(header::ALLOW, a);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    resp
}

fn sane(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

#[cfg(test)]
mod tests {
    use super::sane;

    #[test]
    fn only_sane_ids_are_kept() {
        assert!(sane("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"));
        assert!(sane("req_42.retry:1"));
        assert!(!sane(""));
        assert!(!sane(&"a".repeat(65)));
        assert!(!sane("has space"));
        assert!(!sane("new\nline"));
        assert!(!sane("{\"json\":1}"));
    }
}
