//! `POST /v1/messages`, `GET /v1/messages/{id}`, `POST /v1/messages/{id}/retry`,
//! `GET /v1/dead-letters`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::auth::ApiCaller;
use super::error::ApiError;
use crate::core::tenants::Scope;
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
    status_callback: Option<String>,
}

/// Accepts an outbound message; answers 202 only after the durable commit.
pub async fn create(
    State(state): State<Arc<ApiState>>,
    caller: ApiCaller,
    headers: axum::http::HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<pipeline::Accepted>), ApiError> {
    caller.require(Scope::Send)?;
    let idempotency = idempotency(&caller, &headers, body.as_ref().ok())?;
    let b: SendBody = super::json::parse_typed(&headers, body)?;
    // The key's default applies only when callbacks are on: a gateway
    // without the secret refuses a callback the request names, but not one
    // an operator set on the key.
    let status_callback = match b.status_callback {
        Some(url) => Some(url),
        None if state.pipeline.status_callbacks => {
            state
                .pipeline
                .store
                .key_callback(caller.name.clone())
                .await?
        }
        None => None,
    };
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
            idempotency,
            status_callback,
            tenant: caller.tenant.clone(),
        },
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// Longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The request's `Idempotency-Key` (1-255 visible ASCII characters), scoped
/// to the calling API key, with a hash of the body: the same key and body
/// within 24 hours answer with the first message and send nothing again;
/// the same key with another body is a 422 `idempotency_conflict`.
fn idempotency(
    caller: &ApiCaller,
    headers: &axum::http::HeaderMap,
    body: Option<&axum::body::Bytes>,
) -> Result<Option<crate::store::Idempotency>, ApiError> {
    use sha2::Digest;
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v
        .to_str()
        .ok()
        .filter(|k| {
            !k.is_empty()
                && k.len() <= MAX_IDEMPOTENCY_KEY
                && k.bytes().all(|b| b.is_ascii_graphic())
        })
        .ok_or_else(|| {
            ApiError::BadRequest(
                "invalid Idempotency-Key: 1 to 255 visible ASCII characters".into(),
            )
        })?;
    let hash = sha2::Sha256::digest(body.map(|b| b.as_ref()).unwrap_or_default());
    Ok(Some(crate::store::Idempotency {
        scope: caller.name.clone(),
        key: key.to_string(),
        body_hash: hex::encode(hash),
    }))
}

/// The message `id` if `caller` may see it; another tenant's message is
/// "no such message", exactly like one that does not exist.
pub async fn visible(
    state: &ApiState,
    filter: Option<&str>,
    id: &str,
) -> Result<MessageView, ApiError> {
    let none = || ApiError::NotFound("no such message".into());
    if id.len() > 64 {
        return Err(none());
    }
    let view = state.pipeline.store.message(id.to_string()).await?;
    view.filter(|v| crate::core::tenants::may_see(filter, v.tenant.as_deref()))
        .ok_or_else(none)
}

/// Metadata and history of one message.
pub async fn get(
    State(state): State<Arc<ApiState>>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<MessageView>, ApiError> {
    caller.require(Scope::Read)?;
    Ok(Json(visible(&state, caller.filter(), &id).await?))
}

/// Puts a dead-lettered message back in the queue.
pub async fn retry(
    State(state): State<Arc<ApiState>>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<MessageView>, ApiError> {
    caller.require(Scope::Send)?;
    retry_visible(&state, caller.filter(), id).await
}

/// Retries the dead letter `id` if the tenant `filter` may see it.
pub async fn retry_visible(
    state: &ApiState,
    filter: Option<&str>,
    id: String,
) -> Result<Json<MessageView>, ApiError> {
    visible(state, filter, &id).await?;
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

/// The caller's tenant's dead-lettered messages, newest first.
pub async fn dead_letters(
    State(state): State<Arc<ApiState>>,
    caller: ApiCaller,
) -> Result<Json<Vec<MessageView>>, ApiError> {
    caller.require(Scope::Read)?;
    let tenant = caller.filter().map(str::to_string);
    Ok(Json(state.pipeline.store.dead_letters(500, tenant).await?))
}
