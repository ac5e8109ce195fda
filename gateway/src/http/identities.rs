//! `PUT /v1/identities/{address}`: internal recipients register the public
//! key inbound messages to them are sealed to.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;

use super::auth::ApiCaller;
use super::error::ApiError;
use crate::core::address::Address;
use crate::core::tenants::Scope;
use crate::envelope::keys;
use std::sync::Arc;

use super::ApiState;

/// Body of the PUT.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityBody {
    /// Base64 X25519 public key (32 bytes).
    public_key: String,
}

/// Registers or replaces an identity.
pub async fn put(
    State(state): State<Arc<ApiState>>,
    caller: ApiCaller,
    Path(address): Path<String>,
    headers: axum::http::HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Scope::Identities)?;
    let addr = Address::sender(&address, state.pipeline.region, "address")?;
    // Another tenant's recipient: its inbound messages would be sealed to
    // this caller's key.
    caller.require_address(addr.as_str())?;
    let b: IdentityBody = super::json::parse_typed(&headers, body)?;
    let pk = keys::parse_public_key(&b.public_key)
        .map_err(|e| ApiError::BadRequest(format!("invalid public_key: {e}")))?;
    let generation = state
        .pipeline
        .store
        .cache_generation(crate::store::CacheKind::Identities);
    let kid = state
        .pipeline
        .store
        .put_identity(addr.to_string(), pk.clone())
        .await?;
    state
        .pipeline
        .identities
        .remember(addr.as_str(), Some(pk), generation);
    Ok(Json(
        serde_json::json!({"address": addr.as_str(), "kid": kid}),
    ))
}

/// Shows the registered key of an address.
pub async fn get(
    State(state): State<Arc<ApiState>>,
    caller: ApiCaller,
    Path(address): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Scope::Identities)?;
    let addr = Address::sender(&address, state.pipeline.region, "address")?;
    caller.require_address(addr.as_str())?;
    let pk = state
        .pipeline
        .store
        .identity(addr.to_string())
        .await?
        .ok_or_else(|| ApiError::NotFound("no identity for this address".into()))?;
    Ok(Json(serde_json::json!({
        "address": addr.as_str(),
        "public_key": keys::public_key_b64(&pk),
        "kid": keys::kid_of(&pk),
    })))
}
