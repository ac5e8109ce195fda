//! `POST /webhooks/android/{name}`: events from one phone running SMS
//! Gateway for Android. `X-Signature` (HMAC-SHA256 over body + `X-Timestamp`)
//! is checked on the raw body with a replay window before parsing; encrypted
//! fields are decrypted with the phone's passphrase.
//!
//! `sms:received` becomes an inbound message; `sms:sent` / `sms:delivered` /
//! `sms:failed` update the outbound message whose id the gateway gave the
//! phone. `sms:delivered` arrives once per part: each is recorded (once per
//! webhook delivery id) and the message only becomes delivered when every
//! part `sms:sent` announced has been delivered.

use std::collections::BTreeMap;
use std::sync::Arc;

use adapters::android_relay::{Event, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;

use super::AndroidSide;
use crate::envelope::Content;
use crate::http::error::ApiError;
use crate::pipeline::status::android_report;
use crate::pipeline::{self, InboundMessage, Pipeline};

/// What the handler needs.
pub struct Hook {
    /// The pipeline.
    pub pipeline: Arc<Pipeline>,
    /// Phones by name.
    pub phones: Arc<BTreeMap<String, Arc<AndroidSide>>>,
    /// Accepted clock skew of signatures, in seconds.
    pub window: i64,
}

/// `POST /webhooks/android/{name}`.
pub fn router(hook: Arc<Hook>) -> Router {
    Router::new()
        .route("/webhooks/android/{name}", post(event))
        .with_state(hook)
}

fn field(
    side: &AndroidSide,
    v: Option<String>,
    name: &'static str,
) -> Result<Option<String>, ApiError> {
    match (v, &side.passphrase) {
        (Some(v), Some(p)) if adapters::android_relay::is_encrypted(&v) => {
            adapters::android_relay::decrypt(p, &v)
                .map(Some)
                .map_err(|e| ApiError::BadRequest(format!("{name}: {e}")))
        }
        (v, _) => Ok(v),
    }
}

/// One event from phone `name`.
async fn event(
    State(hook): State<Arc<Hook>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body = body?;
    let Some(side) = hook.phones.get(&name).cloned() else {
        return Err(ApiError::NotFound("no such relay".into()));
    };
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    adapters::android_relay::verify(
        &side.signing_key,
        h(SIGNATURE_HEADER),
        h(TIMESTAMP_HEADER),
        &body,
        crate::core::clock::now_secs(),
        hook.window,
    )
    .map_err(|p| ApiError::Unauthorized(p.to_string()))?;
    let ev = Event::parse(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    drop(body);
    match ev.event.as_str() {
        "sms:received" => received(&hook.pipeline, &side, ev).await,
        "sms:sent" | "sms:delivered" | "sms:failed" => outbound(&hook.pipeline, ev).await,
        _ => Ok(Json(serde_json::json!({"ok": true, "ignored": true}))),
    }
}

async fn received(
    pipe: &Pipeline,
    side: &AndroidSide,
    ev: Event,
) -> Result<Json<serde_json::Value>, ApiError> {
    let p = ev.payload;
    let text = field(side, p.message, "payload.message")?.unwrap_or_default();
    if text.chars().count() > adapters::android_relay::MAX_TEXT_CHARS {
        return Err(ApiError::BadRequest("invalid field payload.message".into()));
    }
    let from = field(side, p.sender.or(p.phone_number), "payload.sender")?
        .ok_or_else(|| ApiError::BadRequest("missing field payload.sender".into()))?;
    let to = field(side, p.recipient, "payload.recipient")?
        .filter(|r| !r.is_empty())
        .or_else(|| side.config.from.clone())
        .ok_or_else(|| {
            ApiError::BadRequest(
                "the phone did not report its number; set `from` for this relay".into(),
            )
        })?;
    // The delivery id is the same on every retry of this webhook.
    let carrier_id = format!("{}:{}", side.config.name, p.message_id.unwrap_or(ev.id));
    let outcome = pipeline::accept_inbound(
        pipe,
        InboundMessage {
            adapter: "android",
            carrier_id,
            from,
            to,
            content: Content::text(text),
        },
    )
    .await?;
    Ok(Json(
        serde_json::json!({"id": outcome.id, "duplicate": outcome.duplicate}),
    ))
}

async fn outbound(p: &Pipeline, ev: Event) -> Result<Json<serde_json::Value>, ApiError> {
    let Some(mid) = ev.payload.message_id.clone() else {
        return Err(ApiError::BadRequest(
            "missing field payload.messageId".into(),
        ));
    };
    let Some(id) = p.store.id_by_carrier_id(mid).await? else {
        return Err(ApiError::NotFound("no such message".into()));
    };
    let reason: Option<String> = ev.payload.reason.map(|r| {
        r.chars()
            .filter(|c| c.is_ascii_alphanumeric() || " _-:.".contains(*c))
            .take(64)
            .collect()
    });
    // `sms:delivered` comes once per part (each recorded once per webhook
    // delivery id); the status path counts them against `sms:sent`'s
    // `partsCount` in whichever order they arrive.
    if let Some(report) = android_report(&ev.event, ev.payload.parts_count, &ev.id, reason) {
        p.status.report(id, report).await?;
    }
    Ok(Json(serde_json::json!({"ok": true})))
}
