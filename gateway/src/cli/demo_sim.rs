//! The far ends `gateway demo` talks to, in-process on one loopback port:
//! a simulated SMSC (the generic HTTP route's `/sms`), whose phone shows
//! what arrives, and a simulated private side (`/private`) that holds the
//! internal user's private key and opens each envelope it is given.
//!
//! Both check the gateway's signature first, as real ones must; what they
//! saw goes to the demo over a channel, so the demo prints each step in the
//! order it happened.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use tokio::sync::mpsc;

use crate::envelope::Envelope;
use crate::envelope::keys::PrivateKey;

/// What a simulated far end saw.
#[derive(Debug)]
pub enum Seen {
    /// The SMSC took an SMS and the phone shows it.
    Sms {
        /// The gateway's message id.
        id: String,
        /// Recipient (the phone).
        to: String,
        /// Sender shown on the phone.
        from: Option<String>,
        /// What the phone shows.
        text: String,
        /// Segments and encoding the gateway chose.
        segments: u32,
        /// `gsm7` or `ucs2`.
        encoding: String,
    },
    /// The private side received an envelope and opened it.
    Envelope {
        /// The gateway's message id.
        id: String,
        /// Key id the envelope was sealed to.
        kid: String,
        /// Sender in the envelope's header.
        from: String,
        /// The opened text, or why it did not open.
        opened: Result<String, String>,
    },
    /// A request whose signature did not verify (answered 401).
    BadSignature(&'static str),
}

struct Sim {
    carrier_secret: Vec<u8>,
    private_secret: Vec<u8>,
    key: PrivateKey,
    seen: mpsc::UnboundedSender<Seen>,
}

/// The running simulators.
pub struct Sims {
    /// Where they listen.
    pub addr: SocketAddr,
    /// What they saw, in order.
    pub seen: mpsc::UnboundedReceiver<Seen>,
}

/// Starts both simulators on an ephemeral loopback port; they stop with the
/// runtime.
pub async fn start(
    carrier_secret: Vec<u8>,
    private_secret: Vec<u8>,
    key: PrivateKey,
) -> std::io::Result<Sims> {
    let (tx, rx) = mpsc::unbounded_channel();
    let sim = Arc::new(Sim {
        carrier_secret,
        private_secret,
        key,
        seen: tx,
    });
    let app = Router::new()
        .route("/sms", post(sms))
        .route("/private", post(private))
        .with_state(sim);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Sims { addr, seen: rx })
}

fn verified(secret: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    let h = headers
        .get(adapters::signing::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    adapters::signing::verify(secret, h, body, crate::core::clock::now_secs(), 300).is_ok()
}

/// The SMSC: takes the SMS, answers with its own id.
async fn sms(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    if !verified(&sim.carrier_secret, &headers, &body) {
        let _ = sim.seen.send(Seen::BadSignature("/sms"));
        return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
    }
    let Ok(sms) = serde_json::from_slice::<adapters::generic::OutboundSms>(&body) else {
        return (StatusCode::BAD_REQUEST, "not an SMS").into_response();
    };
    let carrier_id = format!("demo-smsc-{}", sms.id);
    let _ = sim.seen.send(Seen::Sms {
        id: sms.id,
        to: sms.to,
        from: sms.from,
        text: sms.text,
        segments: sms.segments,
        encoding: sms.encoding,
    });
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({ "carrier_id": carrier_id })),
    )
        .into_response()
}

/// The private side: opens the envelope with the internal user's key.
async fn private(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    if !verified(&sim.private_secret, &headers, &body) {
        let _ = sim.seen.send(Seen::BadSignature("/private"));
        return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
    }
    let b64 = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("envelope").and_then(|e| e.as_str()).map(String::from));
    let Some(env) = b64.and_then(|b| Envelope::from_base64(&b).ok()) else {
        return (StatusCode::BAD_REQUEST, "no envelope").into_response();
    };
    let opened = env
        .open(&sim.key)
        .map(|c| c.as_text().to_string())
        .map_err(|e| e.to_string());
    let _ = sim.seen.send(Seen::Envelope {
        id: env.header.id.clone(),
        kid: env.header.kid.clone(),
        from: env.header.from.clone(),
        opened,
    });
    StatusCode::OK.into_response()
}
