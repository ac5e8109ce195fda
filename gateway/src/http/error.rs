//! `ApiError`: every error an HTTP client can see, as a status code and the
//! JSON body `{"error":{"code","number","message","param"?,"more_info","request_id"}}`:
//! `code` is the class (kept for compatibility), `number` the stable number
//! a client can switch on (see `error_codes`), `param` the field at fault
//! when there is one, `more_info` the number's entry in `docs/errors.md`.
//! Internal details are logged once and replaced by a generic message.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::core::error::Error;

/// An error answered to an HTTP client.
#[derive(Debug)]
pub enum ApiError {
    /// 400: the request is malformed or a field is invalid.
    BadRequest(String),
    /// 400: a JSON body that does not parse or does not fit the request's
    /// shape; `param` is the field at fault when known.
    InvalidJson {
        /// Its number (`error_codes`).
        number: u32,
        /// The field at fault, as a path (`ttl_seconds`, `rcs.suggestions[0]`).
        param: Option<String>,
        /// What is wrong, never quoting a value.
        message: String,
    },
    /// 401: missing or wrong credentials or signature.
    Unauthorized(String),
    /// 403: refused by policy (block list, opt-out).
    Forbidden(String),
    /// 422: an idempotency key reused for another request.
    IdempotencyConflict,
    /// 404.
    NotFound(String),
    /// 405: the path exists, the method does not.
    MethodNotAllowed,
    /// 413: the body is over the limit.
    TooLarge,
    /// 415: the body is not in the expected media type.
    UnsupportedMedia(String),
    /// 429: over a rate limit (named); retry after this many seconds.
    RateLimited(u64, &'static str),
    /// 403 `sender_not_allowed`: `from` is not one of the tenant's senders.
    SenderNotAllowed,
    /// 429 `quota_exceeded`: the tenant's daily quota is used up; retry
    /// after this many seconds (the next UTC day).
    QuotaExceeded(u64),
    /// 503: overloaded or shutting down; retry after this many seconds.
    Unavailable(u64),
    /// 503: the disk is full; nothing was stored; retry after this many seconds.
    StorageFull(u64),
    /// 503: a message without content at rest could not be handed over in
    /// time; nothing was kept, the carrier should retry after this many seconds.
    NotRetained(u64),
    /// 408: the request body did not arrive within the body deadline
    /// (`http.body_read_timeout_secs`); the connection is closed.
    BodyTimeout,
    /// 500: something broke inside; details are in the log only.
    Internal,
    /// 503: the gateway has no route for the message (its configuration,
    /// not the request, is at fault).
    NoRoute(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            Self::BadRequest(m) | Self::InvalidJson { message: m, .. } => {
                (StatusCode::BAD_REQUEST, "bad_request", m.clone())
            }
            Self::Unauthorized(m) => (StatusCode::UNAUTHORIZED, "unauthorized", m.clone()),
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m.clone()),
            Self::IdempotencyConflict => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_conflict",
                "this Idempotency-Key was used in the last 24 hours for a different request body; \
                 use a new key for a new message"
                    .into(),
            ),
            Self::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m.clone()),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this path does not take this method; the Allow header lists those it takes".into(),
            ),
            Self::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "request body is too large".into(),
            ),
            Self::UnsupportedMedia(m) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                m.clone(),
            ),
            Self::RateLimited(_, limit) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("the {limit} rate limit was exceeded; retry after the Retry-After seconds"),
            ),
            Self::SenderNotAllowed => (
                StatusCode::FORBIDDEN,
                "sender_not_allowed",
                "this API key's tenant may not send from this sender".into(),
            ),
            Self::QuotaExceeded(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "quota_exceeded",
                "the tenant's daily message quota is used up; it renews at 00:00 UTC".into(),
            ),
            Self::StorageFull(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_full",
                "the gateway's disk is full and nothing was stored; retry later".into(),
            ),
            Self::BodyTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "the request body did not arrive in time".into(),
            ),
            Self::NotRetained(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "content_not_retained",
                "the message could not be handed over in time and is not kept; retry later".into(),
            ),
            Self::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "overloaded; retry later".into(),
            ),
            Self::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error".into(),
            ),
            Self::NoRoute(m) => (StatusCode::SERVICE_UNAVAILABLE, "no_route", m.clone()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        let (number, param) = super::error_codes::number_and_param(&self);
        let mut body = serde_json::json!({
            "code": code,
            "number": number,
            "message": message,
            "more_info": super::error_codes::more_info(number),
        });
        if let Some(p) = param {
            body["param"] = p.into();
        }
        if let Some(id) = super::request_id::current() {
            body["request_id"] = id.into();
        }
        let mut resp = (status, Json(serde_json::json!({ "error": body }))).into_response();
        if let Self::RateLimited(s, _)
        | Self::Unavailable(s)
        | Self::StorageFull(s)
        | Self::NotRetained(s)
        | Self::QuotaExceeded(s) = self
        {
            if let Ok(v) = HeaderValue::from_str(&s.max(1).to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid { .. } => Self::BadRequest(e.to_string()),
            Error::NotFound(m) => Self::NotFound(m),
            Error::Refused(m) => Self::Forbidden(m),
            Error::IdempotencyConflict => Self::IdempotencyConflict,
            Error::RateLimited {
                retry_after_secs,
                limit,
            } => Self::RateLimited(retry_after_secs, limit),
            Error::SenderNotAllowed => Self::SenderNotAllowed,
            Error::QuotaExceeded { retry_after_secs } => Self::QuotaExceeded(retry_after_secs),
            Error::StoreClosed => Self::Unavailable(5),
            Error::NoRoute(m) => Self::NoRoute(m),
            Error::NotRetained => Self::NotRetained(5),
            Error::StorageFull => {
                tracing::error!("request refused: the disk is full");
                Self::StorageFull(30)
            }
            other => {
                // Logged once here; the client sees only "internal error".
                tracing::error!(error = %other, "request failed");
                Self::Internal
            }
        }
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(r: axum::extract::rejection::BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::TooLarge
        } else {
            Self::BadRequest(r.body_text())
        }
    }
}
