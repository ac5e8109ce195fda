//! `GET /v1/messages?status=&direction=&to=&from=&since=&until=&limit=&cursor=`:
//! metadata of messages, newest first, a page at a time, with an opaque
//! cursor for the next page.
//!
//! Every parameter is checked and a bad one is a 400 naming it (never
//! quoting the value); an unknown parameter is a 400 too, so a typo does
//! not silently widen the list.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use super::ApiState;
use super::auth::ApiCaller;
use super::error::ApiError;
use crate::core::address::Address;
use crate::core::tenants::Scope;
use crate::store::MessageStatus;
use crate::store::listing::{MessageFilter, MessageSummary, PageEnd};

/// Messages per page unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 50;
/// Most messages per page.
const MAX_LIMIT: usize = 500;

/// The answer.
#[derive(Debug, Serialize)]
pub struct MessageList {
    /// The page, newest first.
    pub messages: Vec<MessageSummary>,
    /// Pass as `cursor` for the next page; `null` after the last.
    pub next_cursor: Option<String>,
}

fn bad(param: &str, why: &str) -> ApiError {
    ApiError::BadRequest(format!("invalid {param}: {why}"))
}

/// A cursor is the page end, `<created_at>.<id>` in unpadded base64url:
/// opaque to clients, and checked like any input.
fn encode_cursor(end: &PageEnd) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{}", end.created_at, end.id))
}

fn decode_cursor(s: &str) -> Result<PageEnd, ApiError> {
    let invalid = || bad("cursor", "not a cursor this gateway gave out");
    if s.len() > 200 {
        return Err(invalid());
    }
    let raw = URL_SAFE_NO_PAD.decode(s).map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    let (at, id) = text.split_once('.').ok_or_else(invalid)?;
    let created_at = at.parse::<i64>().map_err(|_| invalid())?;
    if id.is_empty() || id.len() > 64 {
        return Err(invalid());
    }
    Ok(PageEnd {
        created_at,
        id: id.to_string(),
    })
}

/// An RFC 3339 time as Unix ms.
fn time_param(param: &str, v: &str) -> Result<i64, ApiError> {
    let t = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            bad(
                param,
                "must be an RFC 3339 time such as 2026-01-31T12:00:00Z",
            )
        })?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|_| bad(param, "out of range"))
}

/// The filter the query asks for.
fn filter(state: &ApiState, query: Vec<(String, String)>) -> Result<MessageFilter, ApiError> {
    let region = state.pipeline.region;
    let mut f = MessageFilter {
        limit: DEFAULT_LIMIT,
        ..MessageFilter::default()
    };
    for (k, v) in query {
        // A `+` left unencoded in a number arrives as a space.
        let v = v.trim();
        match k.as_str() {
            "status" => {
                f.status =
                    Some(MessageStatus::parse(v).ok_or_else(|| bad("status", "not a status"))?)
            }
            "direction" => {
                f.direction = Some(match v {
                    "inbound" => "inbound",
                    "outbound" => "outbound",
                    _ => return Err(bad("direction", "must be inbound or outbound")),
                })
            }
            "to" => f.to = Some(address(v, region, "to")?),
            "from" => f.from = Some(address(v, region, "from")?),
            "since" => f.since = Some(time_param("since", v)?),
            "until" => f.until = Some(time_param("until", v)?),
            "limit" => {
                f.limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| bad("limit", "must be 1 to 500"))?
            }
            "cursor" => f.after = Some(decode_cursor(v)?),
            other => {
                let name: String = other.chars().take(32).collect();
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {name:?}"
                )));
            }
        }
    }
    Ok(f)
}

/// An address as the store keeps it: a phone number in E.164, else a
/// short code or sender id.
fn address(
    v: &str,
    region: phonenumber::country::Id,
    param: &'static str,
) -> Result<String, ApiError> {
    Address::sender(v, region, param)
        .map(|a| a.to_string())
        .map_err(|_| bad(param, "not a phone number, short code or sender id"))
}

/// Lists messages (metadata only), newest first.
pub async fn list(
    State(state): State<Arc<ApiState>>,
    caller: ApiCaller,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<MessageList>, ApiError> {
    let Query(query) = query.map_err(|_| ApiError::BadRequest("invalid query string".into()))?;
    caller.require(Scope::Read)?;
    let mut f = filter(&state, query)?;
    // A tenant's key lists its tenant's messages only (the rule of
    // `may_see`, in SQL).
    f.tenant = caller.filter().map(str::to_string);
    let (messages, end) = state.pipeline.store.list_messages(f).await?;
    Ok(Json(MessageList {
        messages,
        next_cursor: end.as_ref().map(encode_cursor),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let end = PageEnd {
            created_at: 1_700_000_000_123,
            id: "0193-abc".into(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&end)).unwrap(), end);
        for bad in ["", "!!", "bm9wZQ", &"A".repeat(300)] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }
}
