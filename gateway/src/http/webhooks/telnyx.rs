//! `POST /webhooks/telnyx`: every Telnyx messaging event (inbound messages
//! and delivery status), verified with Ed25519 over `"<timestamp>|<body>"`
//! before the body is parsed.

use adapters::telnyx::{SIGNATURE_HEADER, TIMESTAMP_HEADER, Webhook};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;

use crate::envelope::{Content, MediaRef};
use crate::http::error::ApiError;
use crate::pipeline::{self, InboundMessage};
use crate::state::AppState;

/// One event.
pub async fn event(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body = body?;
    let Some(tx) = state.carriers.telnyx.as_ref() else {
        return Err(ApiError::NotFound(
            "the telnyx adapter is not configured".into(),
        ));
    };
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    adapters::telnyx::verify(
        &tx.key,
        h(SIGNATURE_HEADER),
        h(TIMESTAMP_HEADER),
        &body,
        crate::core::clock::now_secs(),
        state.config.delivery.signature_window_secs,
    )
    .map_err(|p| ApiError::Unauthorized(p.to_string()))?;
    let w = Webhook::parse(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    drop(body);
    match w.data.event_type.as_str() {
        "message.received" => {
            let p = w.data.payload;
            let to =
                p.to.first()
                    .map(|t| t.phone_number.clone())
                    .ok_or_else(|| ApiError::BadRequest("invalid field data.payload.to".into()))?;
            let media = p
                .media
                .into_iter()
                .map(|m| MediaRef {
                    url: m.url,
                    content_type: m.content_type,
                })
                .collect();
            let outcome = pipeline::accept_inbound(
                &state,
                InboundMessage {
                    adapter: "telnyx",
                    carrier_id: p.id,
                    from: p.from.phone_number,
                    to,
                    content: Content::Text {
                        text: p.text.unwrap_or_default(),
                        media,
                    },
                },
            )
            .await?;
            Ok(Json(
                serde_json::json!({"id": outcome.id, "duplicate": outcome.duplicate}),
            ))
        }
        "message.sent" | "message.finalized" => {
            if let Some(status) = w.gateway_status() {
                let Some(id) = state
                    .store
                    .id_by_carrier_id(w.data.payload.id.clone())
                    .await?
                else {
                    return Err(ApiError::NotFound("no such message".into()));
                };
                let detail = w
                    .data
                    .payload
                    .errors
                    .iter()
                    .filter_map(|e| e.code.as_deref())
                    .find(|c| c.len() <= 8 && c.bytes().all(|b| b.is_ascii_digit()))
                    .map(|c| format!("telnyx error {c}"));
                pipeline::status::record_reported(&state.status, id, status, detail).await?;
            }
            Ok(Json(serde_json::json!({"ok": true})))
        }
        // Other events (message.queued, …) change nothing; acknowledge them
        // so Telnyx stops retrying.
        _ => Ok(Json(serde_json::json!({"ok": true, "ignored": true}))),
    }
}
