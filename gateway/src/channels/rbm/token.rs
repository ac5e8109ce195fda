//! The RBM API's bearer token: obtained by the gateway itself with the
//! OAuth2 JWT-bearer grant (an RS256 assertion signed with the service
//! account's key, `adapters::rcs::rbm::ServiceAccount::assertion`), cached,
//! and refreshed a minute before it expires or when RBM answers 401.
//!
//! One refresh at a time: callers wait on the same lock, so a burst of
//! sends after expiry asks the token endpoint once.

use std::time::{Duration, Instant};

use adapters::rcs::rbm::{ServiceAccount, TokenAnswer, token_request_body};
use tokio::sync::Mutex;

use crate::core::error::{Error, Result};

/// Refresh this long before the token's stated expiry.
const MARGIN: Duration = Duration::from_secs(60);

/// A cached access token.
struct Cached {
    token: String,
    until: Instant,
}

/// Gets and caches access tokens.
pub struct TokenSource {
    http: reqwest::Client,
    account: ServiceAccount,
    token_uri: String,
    cached: Mutex<Option<Cached>>,
}

impl TokenSource {
    /// A source for `account` at `token_uri`.
    pub fn new(http: reqwest::Client, account: ServiceAccount, token_uri: String) -> Self {
        Self {
            http,
            account,
            token_uri,
            cached: Mutex::new(None),
        }
    }

    /// A valid access token, from the cache or freshly obtained.
    pub async fn token(&self) -> Result<String> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            if Instant::now() + MARGIN < c.until {
                return Ok(c.token.clone());
            }
        }
        let fresh = self.fetch().await?;
        let token = fresh.access_token.clone();
        *cached = Some(Cached {
            token: fresh.access_token,
            until: Instant::now() + Duration::from_secs(fresh.expires_in),
        });
        Ok(token)
    }

    /// Forgets the cached token (RBM said 401: revoked or expired early).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn fetch(&self) -> Result<TokenAnswer> {
        let assertion = self
            .account
            .assertion(&self.token_uri, crate::core::clock::now_secs())
            .map_err(|e| Error::Permanent(e.to_string()))?;
        let resp = self
            .http
            .post(&self.token_uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(token_request_body(&assertion))
            .send()
            .await
            .map_err(|e| {
                Error::Transient(format!(
                    "RBM token endpoint: {}",
                    crate::delivery::http::describe(&e)
                ))
            })?;
        let (status, body) = crate::delivery::http::read_answer(resp).await;
        if status == 200 {
            return TokenAnswer::parse(&body).map_err(|e| Error::Transient(e.to_string()));
        }
        // `{"error": "invalid_grant", ...}`: a token, not free text, but
        // keep only a short code-like value.
        let code = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .filter(|c| c.len() <= 40 && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
            .unwrap_or_default();
        tracing::error!(status, code = %code, "the RBM token endpoint refused the service-account assertion");
        Err(Error::Transient(format!(
            "RBM token endpoint: HTTP {status} {code}"
        )))
    }
}
