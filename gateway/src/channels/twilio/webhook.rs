//! `POST /webhooks/twilio` (inbound SMS/MMS, answered with empty TwiML) and
//! `POST /webhooks/twilio/status` (status callbacks).
//!
//! The `X-Twilio-Signature` is checked over the configured public URL plus
//! the path and query Twilio called, and the form parameters, before any of
//! them is interpreted.

use std::sync::Arc;

use adapters::twilio::{EMPTY_TWIML, Inbound, SIGNATURE_HEADER, StatusCallback};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::envelope::{Content, MediaRef};
use crate::http::error::ApiError;
use crate::pipeline::{self, InboundMessage, Pipeline};

/// What the handlers need.
pub struct Hook {
    /// The pipeline.
    pub pipeline: Arc<Pipeline>,
    /// Auth token (HMAC key).
    pub auth_token: Vec<u8>,
    /// Public base URL, without a trailing slash.
    pub public_url: String,
}

/// `POST /webhooks/twilio` and `POST /webhooks/twilio/status`.
pub fn router(hook: Arc<Hook>) -> Router {
    Router::new()
        .route("/webhooks/twilio", post(inbound))
        .route("/webhooks/twilio/status", post(status))
        .with_state(hook)
}

fn verified(
    tw: &Hook,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<(String, String)>, ApiError> {
    let sig = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    if sig.is_none() {
        return Err(ApiError::Unauthorized("missing X-Twilio-Signature".into()));
    }
    // A body that is not a form cannot carry a valid signature either; say
    // "signature" rather than describe the body to an unauthenticated caller.
    let params = adapters::twilio::parse_form(body)
        .map_err(|_| ApiError::Unauthorized("signature does not match".into()))?;
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = format!("{}{path}", tw.public_url);
    if !adapters::twilio::validate(&tw.auth_token, &url, &params, sig) {
        return Err(ApiError::Unauthorized("signature does not match".into()));
    }
    Ok(params)
}

/// Inbound message; answers empty TwiML after the durable commit.
async fn inbound(
    State(hook): State<Arc<Hook>>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    let params = verified(&hook, &uri, &headers, &body)?;
    let m = Inbound::from_params(&params).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    drop(params);
    let media = m
        .media
        .into_iter()
        .map(|x| MediaRef {
            url: x.url,
            content_type: x.content_type,
        })
        .collect();
    pipeline::accept_inbound(
        &hook.pipeline,
        InboundMessage {
            adapter: "twilio",
            carrier_id: m.message_sid,
            from: m.from,
            to: m.to,
            content: Content::Text {
                text: m.body,
                media,
            },
        },
    )
    .await?;
    Ok((
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        EMPTY_TWIML,
    )
        .into_response())
}

/// Status callback of an outbound message.
async fn status(
    State(hook): State<Arc<Hook>>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    let params = verified(&hook, &uri, &headers, &body)?;
    let cb =
        StatusCallback::from_params(&params).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if let Some(status) = cb.gateway_status() {
        let Some(id) = hook
            .pipeline
            .store
            .id_by_carrier_id(cb.message_sid.clone())
            .await?
        else {
            return Err(ApiError::NotFound("no such message".into()));
        };
        let detail = cb.error_code.map(|c| format!("twilio error {c}"));
        pipeline::status::record_reported(&hook.pipeline.status, id, status, detail).await?;
    }
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}
