//! The HTTP API: the router of the public API itself (messages,
//! identities, liveness), merged with the channels' webhook routers into one
//! `app(..)` that tests can call without a socket and `serve` binds to a
//! listener; the admin plane (`/metrics`, detailed health, operator
//! endpoints) is [`admin::router`], bound to a listener of its own.
//! Channels import this module's errors and JSON helpers; it imports no
//! channel.
//!
//! Bounded by construction: a body size limit, a body-read deadline and a
//! per-peer cap on slow bodies, one global cap on requests in flight (beyond
//! it, 503 with Retry-After instead of an unbounded queue; see [`guard`])
//! and a per-request timeout. `/healthz` sits outside the cap so health
//! checks keep answering while the API sheds load.

pub mod admin;
pub mod auth;
pub mod config;
pub mod console;
pub mod error;
pub mod error_codes;
pub mod guard;
pub mod health;
pub mod identities;
pub mod json;
pub mod list;
pub mod messages;
pub mod request_id;
pub mod scrape;
pub mod server;

use std::time::{Duration, Instant};

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use tower::{BoxError, ServiceBuilder};

use std::sync::Arc;

use crate::core::metrics::Metrics;
use crate::pipeline::Pipeline;
use error::ApiError;

/// Something `/healthz` shows (a channel's binds, its modems).
pub trait Health: Send + Sync {
    /// The current health, as JSON (never content).
    fn health_json(&self) -> serde_json::Value;
}

/// A section of `/healthz`, by key.
pub type HealthSection = (&'static str, Arc<dyn Health>);

/// What the API's handlers need.
pub struct ApiState {
    /// The pipeline (acceptance, the store, identities).
    pub pipeline: Arc<Pipeline>,
    /// Validated API tokens, briefly.
    pub tokens: auth::TokenCache,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// What `/healthz` shows besides the store.
    pub health: Vec<HealthSection>,
    /// The data directory (`/healthz` checks the free space under it).
    pub data_dir: std::path::PathBuf,
    /// `[review] undo_window_secs`: how long the console's drops can be undone.
    pub undo_window_secs: u64,
}

impl ApiState {
    /// The API's state over `pipeline`.
    pub fn new(
        pipeline: Arc<Pipeline>,
        health: Vec<HealthSection>,
        data_dir: std::path::PathBuf,
    ) -> Self {
        Self {
            metrics: pipeline.metrics.clone(),
            tokens: auth::TokenCache::default(),
            pipeline,
            health,
            data_dir,
            undo_window_secs: crate::store::undo::ReviewConfig::default().undo_window_secs,
        }
    }

    /// With the configured undo window of review drops.
    pub fn with_undo_window(mut self, secs: u64) -> Self {
        self.undo_window_secs = secs;
        self
    }
}

/// Builds the router: the API's routes, the channels' webhook `routers`,
/// and every limit.
pub fn app(state: Arc<ApiState>, routers: Vec<Router>, http: &config::HttpConfig) -> Router {
    let mut webhooks = Router::new();
    for r in routers {
        webhooks = webhooks.merge(r);
    }
    let api = Router::new()
        .route("/v1/messages", post(messages::create).get(list::list))
        .route("/v1/messages/{id}", get(messages::get))
        .route("/v1/messages/{id}/retry", post(messages::retry))
        .route("/v1/dead-letters", get(messages::dead_letters))
        .route(
            "/v1/identities/{address}",
            put(identities::put).get(identities::get),
        )
        .with_state(state.clone())
        .merge(webhooks)
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .timeout(Duration::from_secs(http.request_timeout_secs)),
        )
        // Outside the timeout: the body has its own deadline. One guard
        // (one `Arc`) for every route, so its in-flight limit is global.
        .layer(middleware::from_fn_with_state(
            Arc::new(guard::Guard::new(http, state.metrics.clone())),
            guard::guard,
        ))
        .layer(DefaultBodyLimit::max(http.max_body_bytes));
    Router::new()
        .route("/healthz", get(healthz))
        .merge(api)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            observe,
        ))
        .layer(middleware::from_fn(request_id::layer))
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
async fn observe(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    metrics
        .http_seconds
        .get_or_create(&crate::core::metrics::RouteLabels { route, status })
        .observe(started.elapsed().as_secs_f64());
    resp
}

/// The public listener's liveness answer: the process serves requests.
/// The reasons behind a degraded gateway (queue depth, failing targets,
/// free disk) are the admin plane's detailed `/healthz`, not the
/// internet's to read.
async fn healthz() -> Response {
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}
