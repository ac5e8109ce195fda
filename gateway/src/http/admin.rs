//! The admin plane: a router of its own, served on `[admin] listen`
//! (loopback by default), apart from the public listener that carriers and
//! applications reach.
//!
//! `/metrics` and the detailed `/healthz` need no key: whoever reaches the
//! admin listener is inside the operator's network, which is why it binds
//! to loopback unless told otherwise. Operator endpoints, which see every
//! tenant's messages, need an admin-scope key without a tenant.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::ApiState;
use super::auth::AdminCaller;
use super::error::ApiError;
use super::messages;
use crate::store::MessageView;

/// The admin plane's routes.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/admin/dead-letters", get(dead_letters))
        .route("/admin/messages/{id}", get(message))
        .route("/admin/messages/{id}/retry", post(retry))
        .route("/admin/tenants", get(tenants))
        .with_state(state.clone())
        .merge(super::console::router(state))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
}

async fn healthz(State(state): State<Arc<ApiState>>) -> Response {
    super::health::healthz(&state).await
}

async fn metrics(State(state): State<Arc<ApiState>>) -> Response {
    super::scrape::refresh_gauges(&state).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// Every tenant's dead letters, newest first.
async fn dead_letters(
    State(state): State<Arc<ApiState>>,
    _op: AdminCaller,
) -> Result<Json<Vec<MessageView>>, ApiError> {
    Ok(Json(state.pipeline.store.dead_letters(1000, None).await?))
}

/// Any message's metadata (with its tenant).
async fn message(
    State(state): State<Arc<ApiState>>,
    _op: AdminCaller,
    Path(id): Path<String>,
) -> Result<Json<MessageView>, ApiError> {
    Ok(Json(messages::visible(&state, None, &id).await?))
}

/// Puts any dead letter back in the queue.
async fn retry(
    State(state): State<Arc<ApiState>>,
    _op: AdminCaller,
    Path(id): Path<String>,
) -> Result<Json<MessageView>, ApiError> {
    messages::retry_visible(&state, None, id).await
}

/// The configured tenants and what they accepted today.
async fn tenants(
    State(state): State<Arc<ApiState>>,
    _op: AdminCaller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let now = crate::core::clock::now_ms();
    let today = now - now.rem_euclid(86_400_000);
    let mut out = Vec::new();
    for t in state.pipeline.tenants.all() {
        let accepted = state
            .pipeline
            .store
            .accepted_since(t.name.clone(), today)
            .await?;
        out.push(serde_json::json!({
            "name": t.name,
            "webhook": t.webhook_url.is_some(),
            "max_messages_per_day": t.max_messages_per_day,
            "accepted_today": accepted,
        }));
    }
    Ok(Json(serde_json::json!({ "tenants": out })))
}
