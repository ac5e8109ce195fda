//! The web console: server-rendered pages on the admin listener under
//! `/console` for operators: message search and timelines, dead letters
//! with retry, the spam review queue with every decision, and connector
//! health. Metadata only, like the rest of the admin plane: no page shows
//! (or could show) message text.
//!
//! Login takes an admin-scope key without a tenant (the rule of
//! [`super::auth::AdminCaller`]) once; the browser then holds a session
//! cookie ([`auth`]). Every action reuses the path the admin API or the
//! CLI takes, so the console cannot drift from them.

// Handlers fail with a ready page (`Response`, 128 bytes): the error path
// is a person's click, not a hot loop, and boxing would only add noise.
#![allow(clippy::result_large_err)]

mod auth;
mod pages;
mod review;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::Markup;

use super::ApiState;
use crate::store::MessageStatus;
use crate::store::listing::{MessageFilter, MessageSummary};
use auth::{Operator, Sessions, see_other};

/// The console's state: the API's, and the sessions.
pub struct Console {
    api: Arc<ApiState>,
    sessions: Sessions,
}

/// The console's routes (merged into the admin plane's router).
pub fn router(api: Arc<ApiState>) -> Router {
    let state = Arc::new(Console {
        api,
        sessions: Sessions::default(),
    });
    Router::new()
        .route(
            "/console",
            get(|| async { see_other("/console/messages", None) }),
        )
        .route(
            "/console/",
            get(|| async { see_other("/console/messages", None) }),
        )
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/messages", get(messages))
        .route("/console/messages/{id}", get(message))
        .route("/console/dead-letters", get(dead_letters))
        .route("/console/dead-letters/{id}/retry", post(retry))
        .route("/console/review", get(review::queue))
        .route(
            "/console/review/{sender}",
            get(review::sender).post(review::decide),
        )
        .route("/console/health", get(health))
        .with_state(state)
        .layer(axum::middleware::map_response(strict_headers))
}

/// Pages are never cached (a shared browser's back button shows nothing
/// after logout), never framed (no clickjacking of the decision buttons),
/// and may load nothing from anywhere: the console has no scripts, and its
/// only style is inline.
async fn strict_headers(mut r: Response) -> Response {
    use axum::http::HeaderValue;
    use axum::http::header::{
        CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_FRAME_OPTIONS,
    };
    let h = r.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    r
}

/// A page, or an error page with the status of the failure (the store's
/// errors are logged; the page says only that something failed).
type Page = Result<Markup, Response>;

fn failed(what: &str, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "console: {what}");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("{what} failed; see the gateway's log"),
    )
        .into_response()
}

async fn login_page() -> Markup {
    pages::login(None)
}

async fn login(
    State(c): State<Arc<Console>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let key = form.get("key").map(String::as_str).unwrap_or_default();
    match auth::check_admin_key(&c, key).await {
        Some((name, hash)) => {
            tracing::info!(key = %name, "console login");
            let id = c.sessions.open(name, hash);
            see_other(
                "/console/messages",
                Some(auth::cookie(&id, auth::SESSION_TTL.as_secs())),
            )
        }
        None => (
            StatusCode::UNAUTHORIZED,
            pages::login(Some("not an admin-scope API key without a tenant")),
        )
            .into_response(),
    }
}

async fn logout(
    State(c): State<Arc<Console>>,
    op: Operator,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = op.check_csrf(&form) {
        return r;
    }
    c.sessions.close(&op.1);
    see_other("/console/login", Some(auth::cookie("", 0)))
}

/// `YYYY-MM-DDTHH:MM[:SS]` (the browser's datetime-local, read as UTC) or
/// RFC 3339, as Unix ms; empty is none.
fn parse_time(s: &str) -> Result<Option<i64>, String> {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let full = match s.len() {
        16 => format!("{s}:00Z"),
        19 => format!("{s}Z"),
        _ => s.to_string(),
    };
    time::OffsetDateTime::parse(&full, &Rfc3339)
        .map(|t| Some((t.unix_timestamp_nanos() / 1_000_000) as i64))
        .map_err(|_| format!("{s:?} is not a time (use YYYY-MM-DDTHH:MM, UTC)"))
}

const LIST_LIMIT: usize = 100;

/// The search's filter (without the number), or why it is not one.
fn filter_of(q: &pages::Search) -> Result<MessageFilter, String> {
    let status = match q.status.trim() {
        "" => None,
        s => Some(MessageStatus::parse(s).ok_or_else(|| format!("{s:?} is not a status"))?),
    };
    Ok(MessageFilter {
        status,
        since: parse_time(&q.since)?,
        until: parse_time(&q.until)?,
        limit: LIST_LIMIT,
        ..MessageFilter::default()
    })
}

/// Messages to or from `number` (two indexed listings, merged newest first).
async fn search(
    c: &Console,
    q: &pages::Search,
) -> Result<Vec<MessageSummary>, Result<String, Response>> {
    let f = filter_of(q).map_err(Ok)?;
    let store = &c.api.pipeline.store;
    let number = q.number.trim();
    let mut rows = if number.is_empty() {
        store
            .list_messages(f)
            .await
            .map_err(|e| Err(failed("message search", e)))?
            .0
    } else {
        let to = MessageFilter {
            to: Some(number.to_string()),
            ..f.clone()
        };
        let from = MessageFilter {
            from: Some(number.to_string()),
            ..f
        };
        let mut a = store
            .list_messages(to)
            .await
            .map_err(|e| Err(failed("message search", e)))?
            .0;
        let b = store
            .list_messages(from)
            .await
            .map_err(|e| Err(failed("message search", e)))?
            .0;
        for m in b {
            if !a.iter().any(|x| x.id == m.id) {
                a.push(m);
            }
        }
        a
    };
    // RFC 3339 with trimmed milliseconds does not sort as text: by time.
    let at = |m: &MessageSummary| parse_time(&m.created_at).ok().flatten().unwrap_or(0);
    rows.sort_by(|x, y| at(y).cmp(&at(x)).then(y.id.cmp(&x.id)));
    rows.truncate(LIST_LIMIT);
    Ok(rows)
}

async fn messages(
    State(c): State<Arc<Console>>,
    op: Operator,
    Query(q): Query<pages::Search>,
) -> Result<Response, Response> {
    let id = q.id.trim();
    if !id.is_empty() {
        let href: String = id
            .chars()
            .filter(|ch| ch.is_ascii_alphanumeric() || *ch == '-')
            .collect();
        return Ok(see_other(&format!("/console/messages/{href}"), None));
    }
    let (rows, error) = match search(&c, &q).await {
        Ok(rows) => (rows, None),
        Err(Ok(why)) => (Vec::new(), Some(why)),
        Err(Err(r)) => return Err(r),
    };
    let body = pages::messages(&q, &rows, error.as_deref());
    Ok(pages::layout("Messages", &op.0.csrf, body).into_response())
}

async fn message(State(c): State<Arc<Console>>, op: Operator, Path(id): Path<String>) -> Page {
    match super::messages::visible(&c.api, None, &id).await {
        Ok(v) => {
            let flash = c.sessions.take_flash(&op.1);
            let body = maud::html! {
                @if let Some(f) = &flash { p #flash { (f) } }
                (pages::message(&v, &op.0.csrf))
            };
            Ok(pages::layout("Message", &op.0.csrf, body))
        }
        Err(super::error::ApiError::NotFound(_)) => {
            Err((StatusCode::NOT_FOUND, pages::layout("No such message", &op.0.csrf, maud::html! {
                p { "No message with this id." } a href="/console/messages" { "Back to the search" }
            }))
                .into_response())
        }
        Err(e) => Err(e.into_response()),
    }
}

async fn dead_letters(State(c): State<Arc<Console>>, op: Operator) -> Page {
    let rows = c
        .api
        .pipeline
        .store
        .dead_letters(1000, None)
        .await
        .map_err(|e| failed("dead letters", e))?;
    Ok(pages::layout(
        "Dead letters",
        &op.0.csrf,
        pages::dead_letters(&rows, &op.0.csrf),
    ))
}

/// Retry through the admin API's path; back to the message's page.
async fn retry(
    State(c): State<Arc<Console>>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = op.check_csrf(&form) {
        return r;
    }
    match super::messages::retry_visible(&c.api, None, id.clone()).await {
        Ok(_) => {
            tracing::info!(id = %id, actor = %op.actor(), "console: dead letter retried");
            c.sessions
                .set_flash(&op.1, "retried: queued for delivery again".into());
            see_other(&format!("/console/messages/{}", id), None)
        }
        Err(e) => e.into_response(),
    }
}

/// The health page's chart: six hours in bars of ten minutes.
const CHART_BUCKET_MS: i64 = 600_000;
const CHART_BUCKETS: usize = 36;

async fn health(State(c): State<Arc<Console>>, op: Operator) -> Page {
    let (degraded, report) = super::health::report(&c.api).await;
    let now = crate::core::clock::now_ms();
    let activity = c
        .api
        .pipeline
        .store
        .activity(now, CHART_BUCKET_MS, CHART_BUCKETS)
        .await
        .map_err(|e| failed("activity", e))?;
    let body = pages::health(degraded, &report, pages::activity_chart(&activity));
    Ok(pages::layout_refreshing("Health", &op.0.csrf, body, 15))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn times_from_the_browser_or_rfc3339() {
        assert_eq!(parse_time("").unwrap(), None);
        assert_eq!(parse_time("1970-01-01T00:01").unwrap(), Some(60_000));
        assert_eq!(parse_time("1970-01-01T00:00:02Z").unwrap(), Some(2_000));
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn sender_links_are_percent_encoded() {
        assert_eq!(pages::sender_href("+1 a/b"), "/console/review/%2B1%20a%2Fb");
    }
}
