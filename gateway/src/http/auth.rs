//! Bearer-token authentication and authorisation for the API routes: who
//! the key is (its tenant) and what it may do (its scopes).
//!
//! Handlers take an [`ApiCaller`] and ask it for a scope
//! ([`ApiCaller::require`]); the public API's callers must belong to a
//! configured tenant once `[[tenants]]` exist (a key without one is an
//! operator's, for the admin plane only), and the admin plane's operator
//! endpoints take an [`AdminCaller`].

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ApiState;
use super::error::ApiError;
use crate::core::error::Result;
use crate::core::tenants::{Scope, Scopes, Tenant};
use crate::store::{ApiKey, CacheKind, Store};

/// How long a validated API token is trusted without asking the database
/// again; also the longest a revocation (by the CLI, another process)
/// takes to bite. Under a second, as promised; one indexed read per key
/// and half second costs nothing measurable. On PostgreSQL a change made
/// on any node empties this cache on every node by notification (the
/// store's cache generation); the expiry stays as the fallback.
const TOKEN_CACHE_TTL: Duration = Duration::from_millis(500);
const TOKEN_CACHE_MAX: usize = 10_000;

/// Token hash -> (the key, when it was checked, under which generation).
#[derive(Default)]
pub struct TokenCache(Mutex<HashMap<[u8; 32], (ApiKey, Instant, u64)>>);

impl TokenCache {
    /// Checks a bearer token, caching good answers briefly.
    pub async fn authenticate(&self, store: &Store, token: &str) -> Result<Option<ApiKey>> {
        let hash = crate::store::hash_token(token);
        // Taken before the read: a change noticed meanwhile makes the
        // answer stale at once.
        let generation = store.cache_generation(CacheKind::ApiKeys);
        if let Ok(cache) = self.0.lock() {
            if let Some((key, at, read_under)) = cache.get(&hash) {
                if at.elapsed() < TOKEN_CACHE_TTL && *read_under == generation {
                    return Ok(Some(key.clone()));
                }
            }
        }
        let found = store.check_token(token.to_string()).await?;
        if let Ok(mut cache) = self.0.lock() {
            match &found {
                Some(key) => {
                    if cache.len() >= TOKEN_CACHE_MAX {
                        cache.clear();
                    }
                    cache.insert(hash, (key.clone(), Instant::now(), generation));
                }
                None => {
                    cache.remove(&hash);
                }
            }
        }
        Ok(found)
    }
}

/// The API key that made a public-API request.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    /// The key's name (idempotency keys are scoped to it).
    pub name: String,
    /// Its tenant; `None` only when no `[[tenants]]` are configured (the
    /// implicit tenant, which sees everything).
    pub tenant: Option<Tenant>,
    scopes: Scopes,
}

impl ApiCaller {
    /// Refuses (403 `forbidden`) unless the key has `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.has(scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this API key lacks the {} scope",
                scope.as_str()
            )))
        }
    }

    /// The tenant whose messages it sees (`None`: all, the implicit tenant).
    pub fn filter(&self) -> Option<&str> {
        self.tenant.as_ref().map(|t| t.name.as_str())
    }

    /// Whether it may see a message owned by `owner` (the one rule,
    /// [`crate::core::tenants::may_see`]).
    pub fn may_see(&self, owner: Option<&str>) -> bool {
        crate::core::tenants::may_see(self.filter(), owner)
    }

    /// Refuses (403 `forbidden`) an identity outside its tenant's addresses.
    pub fn require_address(&self, address: &str) -> Result<(), ApiError> {
        match &self.tenant {
            Some(t) if !t.owns(address) => Err(ApiError::Forbidden(
                "this address is not one of this API key's tenant's addresses".into(),
            )),
            _ => Ok(()),
        }
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 256)
        .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))
}

async fn key_of(parts: &Parts, state: &ApiState) -> Result<ApiKey, ApiError> {
    let token = bearer(parts)?;
    state
        .tokens
        .authenticate(&state.pipeline.store, token)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("invalid API key".into()))
}

impl FromRequestParts<Arc<ApiState>> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        let key = key_of(parts, state).await?;
        let tenants = &state.pipeline.tenants;
        let tenant = match (&key.tenant, tenants.configured()) {
            (Some(name), _) => Some(tenants.get(name).cloned().ok_or_else(|| {
                ApiError::Forbidden("this API key's tenant is not configured".into())
            })?),
            // With tenants, a key of none is an operator's: admin plane only.
            (None, true) => {
                return Err(ApiError::Forbidden(
                    "this API key belongs to no tenant; create one with --tenant".into(),
                ));
            }
            (None, false) => None,
        };
        Ok(Self {
            name: key.name,
            tenant,
            scopes: key.scopes,
        })
    }
}

/// An operator on the admin plane: a key with the `admin` scope.
#[derive(Debug, Clone)]
pub struct AdminCaller(pub String);

impl FromRequestParts<Arc<ApiState>> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        let key = key_of(parts, state).await?;
        if key.scopes.has(Scope::Admin) && key.tenant.is_none() {
            Ok(Self(key.name))
        } else {
            Err(ApiError::Forbidden(
                "operator endpoints need an admin-scope key without a tenant".into(),
            ))
        }
    }
}
