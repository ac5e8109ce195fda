//! The HTTP API: one `app(state)` that tests call without a socket and
//! `serve` binds to a listener.
//!
//! Bounded by construction: a body size limit, a cap on requests in flight
//! (beyond it, 503 with Retry-After instead of an unbounded queue) and a
//! per-request timeout. `/healthz` sits outside the cap so health checks keep
//! answering while the API sheds load.

pub mod auth;
pub mod config;
pub mod error;
pub mod health;
pub mod identities;
pub mod json;
pub mod messages;
pub mod server;
pub mod webhooks;

use std::time::{Duration, Instant};

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use tower::{BoxError, ServiceBuilder};

use crate::state::AppState;
use error::ApiError;

/// Builds the router with every route and limit.
pub fn app(state: AppState) -> Router {
    let http = &state.config.http;
    let api = Router::new()
        .route("/v1/messages", post(messages::create))
        .route("/v1/messages/{id}", get(messages::get))
        .route("/v1/messages/{id}/retry", post(messages::retry))
        .route("/v1/dead-letters", get(messages::dead_letters))
        .route(
            "/v1/identities/{address}",
            put(identities::put).get(identities::get),
        )
        .route("/webhooks/generic", post(webhooks::generic::inbound))
        .route("/webhooks/generic/status", post(webhooks::generic::status))
        .route("/webhooks/twilio", post(webhooks::twilio::inbound))
        .route("/webhooks/twilio/status", post(webhooks::twilio::status))
        .route("/webhooks/telnyx", post(webhooks::telnyx::event))
        .route("/webhooks/android/{name}", post(webhooks::android::event))
        .route("/webhooks/rbm", post(webhooks::rbm::event))
        .route("/metrics", get(metrics))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .concurrency_limit(http.max_in_flight)
                .timeout(Duration::from_secs(http.request_timeout_secs)),
        )
        .layer(DefaultBodyLimit::max(http.max_body_bytes));
    Router::new()
        .route("/healthz", get(healthz))
        .merge(api)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn overloaded(err: BoxError) -> ApiError {
    if err.is::<tower::load_shed::error::Overloaded>() || err.is::<tower::timeout::error::Elapsed>()
    {
        ApiError::Unavailable(1)
    } else {
        tracing::error!(error = %err, "middleware failure");
        ApiError::Internal
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

/// Records latency per route template (never the concrete path, which can
/// hold a phone number).
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let resp = next.run(req).await;
    state
        .metrics
        .http_seconds
        .get_or_create(&crate::core::metrics::RouteLabels { route })
        .observe(started.elapsed().as_secs_f64());
    resp
}

async fn healthz(State(state): State<AppState>) -> Response {
    health::healthz(&state).await
}

async fn metrics(State(state): State<AppState>) -> Response {
    if let Ok((live, dead)) = state.store.queue_depth().await {
        state.metrics.queue_live.set(live);
        state.metrics.queue_dead.set(dead);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
