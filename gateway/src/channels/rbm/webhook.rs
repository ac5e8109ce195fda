//! `POST /webhooks/rbm`: Google RBM's webhook. The setup handshake
//! (`{"clientToken","secret"}`, answered 200 with the bare secret as a
//! `text/plain` body when the token is ours, as the RBM webhook guide
//! specifies), then Pub/Sub push bodies verified with `X-Goog-Signature` before
//! the event inside is parsed: user messages go through the inbound
//! pipeline (sealed, spam gate, idempotent on RBM's `messageId`), DELIVERED
//! and READ update the agent message they name.
//!
//! A signed event the gateway cannot use (an unknown event type, a message
//! id it never sent) is acknowledged with 200 and `"ignored": true`: RBM
//! has one delivery queue per partner, and a webhook that keeps failing an
//! event delays every agent's events behind it (RBM webhook guide). A bad
//! or missing signature is always 401, and nothing is stored.

use std::sync::Arc;

use adapters::rcs::rbm::{EventKind, SIGNATURE_HEADER, UserEvent, Webhook, client_token_matches};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;

use super::Rcs;
use super::config::ROUTE;
use crate::envelope::Content;
use crate::http::error::ApiError;
use crate::pipeline::{self, InboundMessage, Pipeline};
use crate::store::{MessageStatus, StatusReport};

/// What the handler needs.
pub struct Hook {
    /// The pipeline.
    pub pipeline: Arc<Pipeline>,
    /// The agent (client token, `from`).
    pub rcs: Arc<Rcs>,
}

/// `POST /webhooks/rbm`.
pub fn router(hook: Arc<Hook>) -> Router {
    Router::new()
        .route("/webhooks/rbm", post(event))
        .with_state(hook)
}

/// One webhook call.
// Long on purpose: one arm per RBM webhook shape (handshake, user message,
// delivery events), each verified and answered the way RBM expects.
async fn event(
    State(hook): State<Arc<Hook>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let body = body?;
    let (rcs, p) = (&hook.rcs, &hook.pipeline);
    let hook = Webhook::parse(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    drop(body);
    let data = match hook {
        Webhook::Handshake {
            client_token,
            secret,
        } => {
            if !client_token_matches(&rcs.client_token, &client_token) {
                return Err(ApiError::Unauthorized("client token does not match".into()));
            }
            tracing::info!("RBM webhook handshake answered");
            return Ok((
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; charset=utf-8",
                )],
                secret,
            )
                .into_response());
        }
        Webhook::Push { data, .. } => data,
    };
    Ok(push(p, rcs, &headers, data).await?.into_response())
}

/// A Pub/Sub push: signature first, then the event inside.
async fn push(
    p: &Pipeline,
    rcs: &Rcs,
    headers: &HeaderMap,
    data: Vec<u8>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let sig = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    adapters::rcs::rbm::verify_signature(&rcs.client_token, sig, &data)
        .map_err(|p| ApiError::Unauthorized(p.to_string()))?;
    let ev = match UserEvent::parse(&data) {
        Ok(ev) => ev,
        Err(e) => {
            tracing::warn!(error = %e, "RBM event not understood; acknowledged and ignored");
            return Ok(Json(
                serde_json::json!({"ok": true, "ignored": true, "reason": e.to_string()}),
            ));
        }
    };
    drop(data);
    match ev {
        UserEvent::Message {
            sender,
            message_id,
            message,
            ..
        } => {
            let content = match message {
                adapters::rcs::UserMessage::Text { text } => Content::text(text),
                other => Content::RcsUser { message: other },
            };
            let outcome = pipeline::accept_inbound(
                p,
                InboundMessage {
                    adapter: ROUTE,
                    carrier_id: message_id,
                    from: sender,
                    to: rcs.config.from.clone(),
                    content,
                },
            )
            .await?;
            Ok(Json(
                serde_json::json!({"id": outcome.id, "duplicate": outcome.duplicate}),
            ))
        }
        UserEvent::Event {
            kind: EventKind::IsTyping,
            ..
        } => Ok(Json(serde_json::json!({"ok": true, "ignored": true}))),
        UserEvent::Event {
            kind,
            message_id: Some(id),
            ..
        } => {
            if id.len() > 64 {
                return Ok(Json(serde_json::json!({"ok": true, "ignored": true})));
            }
            // DELIVERED, and READ (which implies it), make the message
            // delivered through the status path (cancelling its SMS
            // fallback); READ also adds a `read` event, once.
            let word = if kind == EventKind::Read {
                "RBM READ"
            } else {
                "RBM DELIVERED"
            };
            let report = StatusReport::new(MessageStatus::Delivered, Some(word.into()));
            let found = p.status.report(id.clone(), report).await?.is_some();
            if found && kind == EventKind::Read {
                p.store.note_read(id, word).await?;
            }
            Ok(Json(serde_json::json!({"ok": true, "ignored": !found})))
        }
        UserEvent::Event { .. } => Ok(Json(serde_json::json!({"ok": true, "ignored": true}))),
    }
}
