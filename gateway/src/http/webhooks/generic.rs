//! `POST /webhooks/generic` (inbound SMS) and `POST /webhooks/generic/status`
//! (delivery status), both signed with the generic adapter's secret.
//!
//! The signature is checked over the raw body before any parsing, so a forged
//! request never reaches the JSON parser or the store.

use adapters::generic::{InboundSms, StatusCallback};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;

use crate::envelope::Content;
use crate::http::error::ApiError;
use crate::pipeline::{self, InboundMessage};
use crate::state::AppState;

fn verify(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    let Some(secret) = state.secrets.generic.as_deref() else {
        return Err(ApiError::NotFound(
            "the generic adapter is not configured".into(),
        ));
    };
    let header = headers
        .get(adapters::signing::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    adapters::signing::verify(
        secret,
        header,
        body,
        crate::core::clock::now_secs(),
        state.config.delivery.signature_window_secs,
    )
    .map_err(|p| ApiError::Unauthorized(p.to_string()))
}

use crate::http::json::parse;

/// Inbound SMS; answers 200 `{id, duplicate, status}` after the durable
/// commit (`status` says `held` when the spam gate kept it for review).
pub async fn inbound(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body = body?;
    verify(&state, &headers, &body)?;
    let sms: InboundSms = parse(&body)?;
    if sms.text.chars().count() > adapters::generic::MAX_TEXT_CHARS {
        return Err(ApiError::BadRequest(
            "invalid text: longer than 10000 characters".into(),
        ));
    }
    let outcome = pipeline::accept_inbound(
        &state,
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
pub async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body = body?;
    verify(&state, &headers, &body)?;
    let cb: StatusCallback = parse(&body)?;
    if cb.id.len() > 64 {
        return Err(ApiError::NotFound("no such message".into()));
    }
    let detail = cb.error.map(|e| e.chars().take(64).collect::<String>());
    if !pipeline::status::record_reported(&state.status, cb.id, &cb.status, detail).await? {
        return Err(ApiError::NotFound("no such message".into()));
    }
    Ok(Json(serde_json::json!({"ok": true})))
}
