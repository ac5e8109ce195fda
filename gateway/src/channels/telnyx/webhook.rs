//! `POST /webhooks/telnyx`: every Telnyx messaging event (inbound messages
//! and delivery status), verified with Ed25519 over `"<timestamp>|<body>"`
//! before the body is parsed.

use std::sync::Arc;

use adapters::telnyx::{SIGNATURE_HEADER, TIMESTAMP_HEADER, Webhook};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;

use crate::envelope::{Content, MediaRef};
use crate::http::error::ApiError;
use crate::pipeline::{self, InboundMessage, Pipeline};

/// What the handler needs.
pub struct Hook {
    /// The pipeline.
    pub pipeline: Arc<Pipeline>,
    /// The account's webhook verification key.
    pub key: adapters::telnyx::VerifyingKey,
    /// Accepted clock skew of signatures, in seconds.
    pub window: i64,
}

/// `POST /webhooks/telnyx`.
pub fn router(hook: Arc<Hook>) -> Router {
    Router::new()
        .route("/webhooks/telnyx", post(event))
        .with_state(hook)
}

/// One event.
async fn event(
    State(hook): State<Arc<Hook>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body = body?;
    let tx = &*hook;
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    adapters::telnyx::verify(
        &tx.key,
        h(SIGNATURE_HEADER),
        h(TIMESTAMP_HEADER),
        &body,
        crate::core::clock::now_secs(),
        hook.window,
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
                &hook.pipeline,
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
                let Some(id) = hook
                    .pipeline
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
                pipeline::status::record_reported(&hook.pipeline.status, id, status, detail)
                    .await?;
            }
            Ok(Json(serde_json::json!({"ok": true})))
        }
        // Other events (message.queued, …) change nothing; acknowledge them
        // so Telnyx stops retrying.
        _ => Ok(Json(serde_json::json!({"ok": true, "ignored": true}))),
    }
}
