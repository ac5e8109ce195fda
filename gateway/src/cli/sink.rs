//! `gateway sink`: a tiny HTTP receiver that verifies the gateway's
//! signatures and prints one JSON line per request. It stands in for an SMSC
//! or the private side in the walk-through and in benchmarks, and speaks
//! the batch form too (`{"messages":[…]}` answered with one result per
//! message).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;

use super::CliError;
use crate::envelope::Envelope;
use crate::envelope::keys::{self, PrivateKey};

/// Options of `gateway sink`.
#[derive(Debug, clap::Args)]
pub struct SinkArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: std::net::SocketAddr,
    /// Environment variable holding the HMAC secret to verify signatures with.
    #[arg(long)]
    secret_env: Option<String>,
    /// Private key file (hex or base64): open delivered envelopes and print their text.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Print nothing per request (for benchmarks); counts are printed at exit.
    #[arg(long)]
    quiet: bool,
}

struct Sink {
    secret: Option<Vec<u8>>,
    key: Option<PrivateKey>,
    quiet: bool,
    received: AtomicU64,
    /// Messages received in batch requests.
    batched: AtomicU64,
}

/// Runs the sink until Ctrl-C.
pub async fn run(args: &SinkArgs) -> Result<(), CliError> {
    let secret = match &args.secret_env {
        Some(v) => Some(
            std::env::var(v)
                .map_err(|_| CliError::input(format!("environment variable {v} is not set")))?
                .into_bytes(),
        ),
        None => None,
    };
    let key = match &args.key {
        Some(p) => {
            let t = std::fs::read_to_string(p)
                .map_err(|e| CliError::input(format!("{}: {e}", p.display())))?;
            Some(keys::parse_private_key(&t)?)
        }
        None => None,
    };
    let sink = Arc::new(Sink {
        secret,
        key,
        quiet: args.quiet,
        received: AtomicU64::new(0),
        batched: AtomicU64::new(0),
    });
    let app = axum::Router::new()
        .fallback(receive)
        .with_state(sink.clone());
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| CliError {
            code: 1,
            message: format!("bind {}: {e}", args.listen),
        })?;
    eprintln!("sink listening on http://{}", args.listen);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| CliError {
            code: 1,
            message: e.to_string(),
        })?;
    eprintln!(
        "sink received {} requests ({} messages in batches)",
        sink.received.load(Ordering::Relaxed),
        sink.batched.load(Ordering::Relaxed)
    );
    Ok(())
}

async fn receive(
    State(sink): State<Arc<Sink>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let n = sink.received.fetch_add(1, Ordering::Relaxed) + 1;
    let verified = sink.secret.as_deref().map(|s| {
        let h = headers
            .get(adapters::signing::SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok());
        adapters::signing::verify(s, h, &body, crate::core::clock::now_secs(), 300).is_ok()
    });
    if verified == Some(false) {
        eprintln!("rejected request {n} to {}: bad signature", uri.path());
        return (StatusCode::UNAUTHORIZED, "bad signature\n").into_response();
    }
    if let Some(ids) = batch_ids(&body) {
        sink.batched.fetch_add(ids.len() as u64, Ordering::Relaxed);
        if !sink.quiet {
            let line =
                serde_json::json!({"n": n, "path": uri.path(), "verified": verified, "batch": ids});
            println!("{line}");
        }
        let results: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| serde_json::json!({"id": id, "carrier_id": format!("sink-{n}-{i}")}))
            .collect();
        return (
            StatusCode::OK,
            axum::Json(serde_json::json!({"results": results})),
        )
            .into_response();
    }
    if !sink.quiet {
        let mut line = serde_json::json!({"n": n, "path": uri.path(), "verified": verified});
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
            if let (Some(k), Some(e)) = (&sink.key, v.get("envelope").and_then(|e| e.as_str())) {
                match Envelope::from_base64(e).and_then(|env| env.open(k).map(|c| (env, c))) {
                    Ok((env, c)) => {
                        line["header"] = serde_json::to_value(&env.header).unwrap_or_default();
                        line["opened"] = serde_json::to_value(&c).unwrap_or_default();
                    }
                    Err(err) => line["open_error"] = err.to_string().into(),
                }
            }
            line["body"] = v;
        }
        println!("{line}");
    }
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({"carrier_id": format!("sink-{n}")})),
    )
        .into_response()
}

/// The message ids of a batch request (`{"messages":[{"id",…},…]}`), or
/// `None` for a single message.
fn batch_ids(body: &[u8]) -> Option<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Batch {
        messages: Vec<Id>,
    }
    #[derive(serde::Deserialize)]
    struct Id {
        id: String,
    }
    // Cheap look first: a single message's body is never parsed twice.
    let head = &body[..body.len().min(32)];
    if !head.windows(10).any(|w| w == b"\"messages\"") {
        return None;
    }
    let batch: Batch = serde_json::from_slice(body).ok()?;
    Some(batch.messages.into_iter().map(|m| m.id).collect())
}
