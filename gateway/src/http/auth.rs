//! Bearer-token authentication for the API routes.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::state::AppState;

/// The API key that made the request (its name).
#[derive(Debug, Clone)]
pub struct ApiCaller(pub String);

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
        match state.authenticate(token).await? {
            Some(name) => Ok(Self(name)),
            None => Err(ApiError::Unauthorized("invalid API key".into())),
        }
    }
}
