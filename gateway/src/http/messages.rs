//! `POST /v1/messages`, `GET /v1/messages/{id}`, `POST /v1/messages/{id}/retry`,
//! `GET /v1/dead-letters`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::auth::ApiCaller;
use super::error::ApiError;
use crate::pipeline::{self, OutboundRequest};
use std::sync::Arc;

use super::ApiState;
use crate::store::MessageView;

/// Body of `POST /v1/messages`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendBody {
    to: Option<String>,
    from: Option<String>,
    text: Option<String>,
    rcs: Option<serde_json::Value>,
    envelope: Option<String>,
    channel: Option<String>,
    ttl_seconds: Option<u64>,
}

/// Accepts an outbound message; answers 202 only after the durable commit.
pub async fn create(
    State(state): State<Arc<ApiState>>,
    _caller: ApiCaller,
    headers: axum::http::HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<pipeline::Accepted>), ApiError> {
    let b: SendBody = super::json::parse_typed(&headers, body)?;
    let accepted = pipeline::accept_outbound(
        &state.pipeline,
        OutboundRequest {
            to: b.to,
            from: b.from,
            text: b.text,
            rcs: b.rcs,
            envelope: b.envelope,
            channel: b.channel,
            ttl_seconds: b.ttl_seconds,
        },
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// Metadata and history of one message.
pub async fn get(
    State(state): State<Arc<ApiState>>,
    _caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<MessageView>, ApiError> {
    if id.len() > 64 {
        return Err(ApiError::NotFound("no such message".into()));
    }
    state
        .pipeline
        .store
        .message(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("no such message".into()))
}

/// Puts a dead-lettered message back in the queue.
pub async fn retry(
    State(state): State<Arc<ApiState>>,
    _caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<MessageView>, ApiError> {
    let found = state.pipeline.store.retry_dead(id.clone()).await?;
    if !found {
        return Err(ApiError::NotFound(
            "no dead-lettered message with this id".into(),
        ));
    }
    state.pipeline.handoff.wake();
    state
        .pipeline
        .store
        .message(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("no such message".into()))
}

/// Dead-lettered messages, newest first.
pub async fn dead_letters(
    State(state): State<Arc<ApiState>>,
    _caller: ApiCaller,
) -> Result<Json<Vec<MessageView>>, ApiError> {
    Ok(Json(state.pipeline.store.dead_letters(500).await?))
}
