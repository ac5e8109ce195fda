//! The console's sessions: an admin-scope key logs in once, the browser
//! keeps only a random session id (never the API token) in an HttpOnly,
//! SameSite=Strict cookie, and every form carries the session's CSRF token.
//!
//! Sessions live in memory: a restart logs everyone out, which for an
//! operator's console on the admin listener is a fair price for having no
//! session table to migrate or leak.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::RngCore;

use super::Console;
use crate::core::tenants::Scope;

/// The cookie's name.
pub const COOKIE_NAME: &str = "gw_console";
/// How long a session lasts after login (a working day).
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Most live sessions; a flood of logins cannot grow the map without bound.
const MAX_SESSIONS: usize = 1000;

/// One logged-in operator.
#[derive(Debug, Clone)]
pub struct Session {
    /// The API key's name (the audit log's actor is `console:<name>`).
    pub key_name: String,
    /// The token every POST form must carry.
    pub csrf: String,
    /// The API token's hash (in memory only): every request checks that
    /// the key is still valid, so revoking it ends its sessions.
    token_hash: [u8; 32],
    expires: Instant,
    /// What the last action did, shown once by the page it redirects to
    /// (redirect-after-post: a reload repeats the GET, never the action).
    flash: Option<String>,
}

/// Session id -> session.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

impl Sessions {
    /// Opens a session for `key_name` (whose token hashes to
    /// `token_hash`); returns its id.
    pub fn open(&self, key_name: String, token_hash: [u8; 32]) -> String {
        let id = random_hex();
        let s = Session {
            key_name,
            csrf: random_hex(),
            token_hash,
            expires: Instant::now() + SESSION_TTL,
            flash: None,
        };
        if let Ok(mut m) = self.0.lock() {
            let now = Instant::now();
            m.retain(|_, s| s.expires > now);
            if m.len() >= MAX_SESSIONS {
                // The oldest goes: the one expiring first.
                if let Some(k) = m
                    .iter()
                    .min_by_key(|(_, s)| s.expires)
                    .map(|(k, _)| k.clone())
                {
                    m.remove(&k);
                }
            }
            m.insert(id.clone(), s);
        }
        id
    }

    /// The live session with this id.
    pub fn get(&self, id: &str) -> Option<Session> {
        let m = self.0.lock().ok()?;
        m.get(id).filter(|s| s.expires > Instant::now()).cloned()
    }

    /// Keeps `msg` for the session's next page.
    pub fn set_flash(&self, id: &str, msg: String) {
        if let Ok(mut m) = self.0.lock() {
            if let Some(s) = m.get_mut(id) {
                s.flash = Some(msg);
            }
        }
    }

    /// The message kept for this page, once.
    pub fn take_flash(&self, id: &str) -> Option<String> {
        self.0.lock().ok()?.get_mut(id)?.flash.take()
    }

    /// Ends a session.
    pub fn close(&self, id: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(id);
        }
    }
}

/// The session id from the request's cookies.
fn session_id(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.to_string())
        .filter(|v| v.len() == 64)
}

/// The cookie that carries session `id` (empty with max-age 0 to clear).
pub fn cookie(id: &str, max_age: u64) -> HeaderValue {
    let v =
        format!("{COOKIE_NAME}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}");
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A 303 to `to`, optionally setting a cookie.
pub fn see_other(to: &str, cookie: Option<HeaderValue>) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(LOCATION, v);
    }
    if let Some(c) = cookie {
        r.headers_mut().insert(SET_COOKIE, c);
    }
    r
}

/// A logged-in operator's request: without a live session of a key that
/// is still an admin's, every console page answers with a redirect to the
/// login page. Holds the session and its id.
pub struct Operator(pub Session, pub String);

impl FromRequestParts<Arc<Console>> for Operator {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<Console>,
    ) -> Result<Self, Self::Rejection> {
        let to_login = || see_other("/console/login", None);
        let id = session_id(parts).ok_or_else(to_login)?;
        let session = state.sessions.get(&id).ok_or_else(to_login)?;
        let key = state
            .api
            .pipeline
            .store
            .check_token_hash(session.token_hash)
            .await
            .ok()
            .flatten();
        if !key.is_some_and(|k| is_admin(&k)) {
            // Revoked, expired, or no longer an admin key: the session ends.
            state.sessions.close(&id);
            return Err(to_login());
        }
        Ok(Operator(session, id))
    }
}

/// The rule of [`crate::http::auth::AdminCaller`]: admin scope, no tenant.
fn is_admin(key: &crate::store::ApiKey) -> bool {
    key.scopes.has(Scope::Admin) && key.tenant.is_none()
}

impl Operator {
    /// Refuses (403) a form whose `csrf` field is not this session's token.
    pub fn check_csrf(&self, form: &HashMap<String, String>) -> Result<(), Response> {
        use subtle::ConstantTimeEq;
        let given = form.get("csrf").map(String::as_bytes).unwrap_or_default();
        if bool::from(given.ct_eq(self.0.csrf.as_bytes())) {
            Ok(())
        } else {
            Err((
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token: reload the page and try again",
            )
                .into_response())
        }
    }

    /// Who the audit log names.
    pub fn actor(&self) -> String {
        format!("console:{}", self.0.key_name)
    }
}

/// Whether `token` is an admin-scope key without a tenant (the rule of
/// [`crate::http::auth::AdminCaller`]); returns its name and token hash.
pub async fn check_admin_key(state: &Console, token: &str) -> Option<(String, [u8; 32])> {
    let token = token.trim();
    if token.is_empty() || token.len() > 256 {
        return None;
    }
    let key = state
        .api
        .tokens
        .authenticate(&state.api.pipeline.store, token)
        .await
        .ok()??;
    is_admin(&key).then(|| (key.name, crate::store::hash_token(token)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sessions_open_get_close() {
        let s = Sessions::default();
        let id = s.open("ops".into(), [0; 32]);
        assert_eq!(id.len(), 64);
        let got = s.get(&id).unwrap();
        assert_eq!(got.key_name, "ops");
        assert_eq!(got.csrf.len(), 64);
        assert_ne!(got.csrf, id);
        assert!(s.get("nope").is_none());
        s.set_flash(&id, "done".into());
        assert_eq!(s.take_flash(&id).as_deref(), Some("done"));
        assert_eq!(s.take_flash(&id), None, "shown once");
        s.close(&id);
        assert!(s.get(&id).is_none());
    }

    #[test]
    fn cookie_is_http_only_and_strict() {
        let c = cookie("abc", 10);
        let c = c.to_str().unwrap();
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict"),
            "{c}"
        );
    }
}
