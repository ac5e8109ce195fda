//! `POST /webhooks/generic` (inbound SMS) and `POST /webhooks/generic/status`
//! (delivery status), both signed with the generic adapter's secret.
//!
//! The signature is checked over the raw body before any parsing, so a forged
//! request never reaches the JSON parser or the store.

use std::sync::Arc;

use adapters::generic::{InboundSms, StatusCallback};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;

use crate::envelope::Content;
use crate::http::error::ApiError;
use crate::http::json::parse;
use crate::pipeline::{self, InboundMessage, Pipeline};

/// What the handlers need.
pub struct Hook {
    /// The pipeline.
    pub pipeline: Arc<Pipeline>,
    /// HMAC secret of both directions.
    pub secret: Vec<u8>,
    /// Accepted clock skew of signatures, in seconds.
    pub window: i64,
}

/// `POST /webhooks/generic` and `POST /webhooks/generic/status`.
pub fn router(hook: Arc<Hook>) -> Router {
    Router::new()
        .route("/webhooks/generic", post(inbound))
        .route("/webhooks/generic/status", post(status))
        .with_state(hook)
}

fn verify(hook: &Hook, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    let header = headers
        .get(adapters::signing::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    adapters::signing::verify(
        &hook.secret,
        header,
        body,
        crate::core::clock::now_secs(),
        hook.window,
    )
    .map_err(|p| ApiError::Unauthorized(p.to_string()))
}

/// Inbound SMS; answers 200 `{id, duplicate, status}` after the durable
/// commit (`status` says `held` when the spam gate kept it for review).
async fn inbound(
    State(hook): State<Arc<Hook>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body = body?;
    verify(&hook, &headers, &body)?;
    let sms: InboundSms = parse(&body)?;
    if sms.text.chars().count() > adapters::generic::MAX_TEXT_CHARS {
        return Err(ApiError::BadRequest(
            "invalid text: longer than 10000 characters".into(),
        ));
    }
    let outcome = pipeline::accept_inbound(
        &hook.pipeline,
        InboundMessage {
            adapter: "generic",
            carrier_id: sms.id,
            from: sms.from,
            to: sms.to,
            content: Content::text(sms.text),
        },
    )
    .await?;
    Ok(Json(
        serde_json::json!({"id": outcome.id, "duplicate": outcome.duplicate, "status": outcome.status}),
    ))
}

/// Delivery status of an outbound message.
async fn status(
    State(hook): State<Arc<Hook>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body = body?;
    verify(&hook, &headers, &body)?;
    let cb: StatusCallback = parse(&body)?;
    if cb.id.len() > 64 {
        return Err(ApiError::NotFound("no such message".into()));
    }
    let detail = cb.error.map(|e| e.chars().take(64).collect::<String>());
    if !pipeline::status::record_reported(&hook.pipeline.status, cb.id, &cb.status, detail).await? {
        return Err(ApiError::NotFound("no such message".into()));
    }
    Ok(Json(serde_json::json!({"ok": true})))
}
