//! `GET /healthz`: whether the gateway can keep its promises, with reasons.
//!
//! `ok` (200) or `degraded` (503) with a list of reasons an operator can act
//! on: the database unreachable or not writable (a failed commit: disk full,
//! or the size cap), free disk space under [`MIN_FREE_BYTES`], the oldest
//! waiting delivery older than [`STALE_QUEUE_SECS`], and each delivery
//! target with deliveries dead-lettered in the last ten minutes or
//! [`RETRYING_TROUBLE`] entries waiting for a retry (the private side
//! answering 401 to everything shows here). Erasures still pending a
//! checkpoint are reported too. A load balancer can route on the status; a
//! person reads the reasons.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::ApiState;

/// Free space under which the gateway says it is degraded (256 MiB): room
/// for the WAL to grow and a checkpoint to run.
pub const MIN_FREE_BYTES: u64 = 256 << 20;
/// A delivery waiting longer than this (10 minutes) is a reason.
pub const STALE_QUEUE_SECS: i64 = 600;
/// Live entries of one target waiting for a retry that make it a reason.
pub const RETRYING_TROUBLE: i64 = 10;
/// A failed commit keeps the store "not writable" this long (seconds):
/// the next small write may fit where the next message does not.
const COMMIT_FAILURE_SECS: i64 = 60;
/// Window for "dead-lettered recently" (10 minutes).
const RECENT_MS: i64 = 600_000;

/// Free bytes for an unprivileged writer on the file system of `path`.
// fsblkcnt_t and c_ulong are u64 on 64-bit Linux, narrower elsewhere
#[allow(clippy::useless_conversion)]
fn free_bytes(path: &std::path::Path) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    Some(u64::from(s.blocks_available()).saturating_mul(u64::from(s.fragment_size())))
}

/// The detailed health answer.
pub async fn healthz(state: &ApiState) -> Response {
    let (degraded, body) = report(state).await;
    let status = if degraded {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, axum::Json(body)).into_response()
}

/// Whether the gateway is degraded, and the detailed report (the JSON of
/// `/healthz`; the web console renders the same data as tables).
pub async fn report(state: &ApiState) -> (bool, serde_json::Value) {
    let mut reasons: Vec<String> = Vec::new();
    if let Err(e) = state.pipeline.store.ping().await {
        tracing::error!(error = %e, "health check: store unavailable");
        reasons.push("database unreachable".into());
    }
    let failed_at = state.metrics.store_commit_failed_at.get();
    let writable =
        failed_at == 0 || crate::core::clock::now_ms() / 1000 - failed_at > COMMIT_FAILURE_SECS;
    if !writable {
        reasons.push(format!(
            "database not writable: a commit failed in the last {COMMIT_FAILURE_SECS} s (disk full, store.max_database_mb reached, or I/O)"
        ));
    }
    let free = free_bytes(&state.data_dir);
    if let Some(f) = free.filter(|f| *f < MIN_FREE_BYTES) {
        reasons.push(format!("free disk space low: {} MiB", f >> 20));
    }
    let now = crate::core::clock::now_ms();
    let queue = state
        .pipeline
        .store
        .queue_health(now, RECENT_MS)
        .await
        .unwrap_or_default();
    if queue.oldest_age_secs > STALE_QUEUE_SECS {
        reasons.push(format!(
            "oldest queued message waiting {} s",
            queue.oldest_age_secs
        ));
    }
    for t in &queue.troubled {
        if t.dead_recently > 0 || t.retrying >= RETRYING_TROUBLE {
            reasons.push(format!(
                "deliveries to {} failing: {} dead-lettered in the last 10 minutes, {} waiting for a retry",
                t.target, t.dead_recently, t.retrying
            ));
        }
    }
    let degraded = !reasons.is_empty();
    let body = serde_json::json!({
        "status": if degraded { "degraded" } else { "ok" },
        "reasons": reasons,
        "store": {
            "writable": writable,
            "free_bytes": free,
            "erasures_pending": state.metrics.erasures_pending.get(),
        },
        "queue": queue,
    });
    let mut body = body;
    for (key, h) in &state.health {
        body[*key] = h.health_json();
    }
    (degraded, body)
}
