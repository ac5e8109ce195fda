//! Bearer-token authentication for the API routes.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ApiState;
use super::error::ApiError;
use crate::core::error::Result;
use crate::store::Store;

/// How long a validated API token is trusted without asking the database
/// again; also how long a revocation takes to bite.
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);
const TOKEN_CACHE_MAX: usize = 10_000;

/// Token hash -> (API key name, when it was checked).
pub struct TokenCache(pub(super) Mutex<HashMap<[u8; 32], (String, Instant)>>);

impl TokenCache {
    /// Checks a bearer token, caching good answers briefly.
    pub async fn authenticate(&self, store: &Store, token: &str) -> Result<Option<String>> {
        let hash = crate::store::hash_token(token);
        if let Ok(cache) = self.0.lock() {
            if let Some((name, at)) = cache.get(&hash) {
                if at.elapsed() < TOKEN_CACHE_TTL {
                    return Ok(Some(name.clone()));
                }
            }
        }
        let found = store.check_token(token.to_string()).await?;
        if let (Some(name), Ok(mut cache)) = (&found, self.0.lock()) {
            if cache.len() >= TOKEN_CACHE_MAX {
                cache.clear();
            }
            cache.insert(hash, (name.clone(), Instant::now()));
        }
        Ok(found)
    }
}

/// The API key that made the request (its name).
#[derive(Debug, Clone)]
pub struct ApiCaller(pub String);

impl FromRequestParts<Arc<ApiState>> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
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
        match state
            .tokens
            .authenticate(&state.pipeline.store, token)
            .await?
        {
            Some(name) => Ok(Self(name)),
            None => Err(ApiError::Unauthorized("invalid API key".into())),
        }
    }
}
