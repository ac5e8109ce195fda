//! Batched delivery (`[generic] batch_max`, `[private_side] batch_max`):
//! many messages per signed request, one result per message; a message the
//! far end refuses is retried alone, and a batch that times out is retried
//! message by message under the single-send attempt-id rule.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::IntoResponse;

use crate::harness::*;

/// A far end speaking the batch form: records every request, answers one
/// result per message; recipients in `refuse_once` get `code` 503 the first
/// time; the first `stall` requests wait past the gateway's timeout.
#[derive(Clone, Default)]
struct Far {
    requests: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
    refuse_once: Arc<Mutex<HashSet<String>>>,
    stall: Arc<AtomicUsize>,
}

async fn answer(
    State(far): State<Far>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let secret = if uri.path() == "/sms" {
        GENERIC_SECRET
    } else {
        PRIVATE_SECRET
    };
    let sig = headers
        .get(adapters::signing::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    assert!(
        adapters::signing::verify(secret.as_bytes(), sig, &body, now_secs(), 300).is_ok(),
        "every batch is signed"
    );
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    far.requests
        .lock()
        .unwrap()
        .push((uri.path().to_string(), v.clone()));
    let stalled = far
        .stall
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if stalled {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let results: Vec<_> = v["messages"]
        .as_array()
        .expect("the batch form")
        .iter()
        .map(|m| {
            let to = m["to"].as_str().unwrap_or_default().to_string();
            let id = m["id"].clone();
            if far.refuse_once.lock().unwrap().remove(&to) {
                serde_json::json!({"id": id, "code": 503})
            } else {
                serde_json::json!({"id": id, "carrier_id": format!("b-{}", m["attempt_id"].as_str().unwrap())})
            }
        })
        .collect();
    axum::Json(serde_json::json!({"results": results}))
}

impl Far {
    async fn start(&self) -> SocketAddr {
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        addr
    }

    /// The batches that reached `path`: each a list of (id, attempt_id).
    fn batches(&self, path: &str) -> Vec<Vec<(String, String)>> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, v)| {
                v["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| {
                        (
                            m["id"].as_str().unwrap().to_string(),
                            m["attempt_id"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect()
            })
            .collect()
    }

    /// Every attempt id each message was sent with, in order.
    fn attempts(&self, path: &str) -> HashMap<String, Vec<String>> {
        let mut by_id: HashMap<String, Vec<String>> = HashMap::new();
        for (id, attempt) in self.batches(path).into_iter().flatten() {
            by_id.entry(id).or_default().push(attempt);
        }
        by_id
    }
}

/// A gateway whose generic route and private side both send batches.
fn start_gateway(dir: &TempDir, far: SocketAddr, delivery: &str) -> Gateway {
    let routes = format!(
        "\n[generic]\nurl = \"http://{far}/sms\"\nfrom = \"+14155550199\"\nbatch_max = 50\nbatch_linger_ms = 100\n\
         \n[private_side]\nwebhook_url = \"http://{far}/private\"\nbatch_max = 50\nbatch_linger_ms = 100\n"
    );
    let cfg = write_config_with_policy(
        &dir.0,
        None,
        delivery,
        &format!("{BACKBONE_POLICY}{routes}"),
    );
    Gateway::start(&cfg)
}

async fn send_many(gw: &Gateway, n: usize, to: impl Fn(usize) -> String) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let r = gw
            .send(serde_json::json!({"to": to(i), "text": format!("batch {i}")}))
            .await;
        assert_eq!(r.status(), 202);
        ids.push(
            r.json::<serde_json::Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    ids
}

async fn wait_until(within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !done() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_is_delivered_each_way_with_a_result_per_message() {
    let dir = TempDir::new("batch-delivered");
    let far = Far::default();
    let addr = far.start().await;
    let gw = start_gateway(&dir, addr, "");
    gw.register_identity("+14155550101").await;
    // Sent concurrently, so entries wait together and batches fill.
    let gw = Arc::new(gw);
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..8usize {
        let gw = gw.clone();
        tasks.spawn(async move {
            let mut ids = Vec::new();
            for i in (w..120).step_by(8) {
                ids.extend(send_many(&gw, 1, |_| format!("+1415555{:04}", 2000 + i)).await);
                let sms = serde_json::json!({"id": format!("mo-{i}"), "from": "+14155550100",
                                             "to": "+14155550101", "text": "in"});
                assert_eq!(
                    gw.post_signed("/webhooks/generic", &sms, GENERIC_SECRET)
                        .await
                        .status(),
                    200
                );
            }
            ids
        });
    }
    let mut ids = Vec::new();
    while let Some(r) = tasks.join_next().await {
        ids.extend(r.unwrap());
    }
    wait_until(Duration::from_secs(30), || {
        far.attempts("/sms").len() >= 120 && far.attempts("/private").len() >= 120
    })
    .await;
    for path in ["/sms", "/private"] {
        let batches = far.batches(path);
        let attempts = far.attempts(path);
        assert_eq!(attempts.len(), 120, "{path}: every message arrived");
        assert!(
            attempts
                .values()
                .all(|a| a.len() == 1 && a[0].ends_with("#1")),
            "{path}: each message sent once, as attempt 1"
        );
        assert!(
            batches.len() < 120 && batches.iter().any(|b| b.len() > 1),
            "{path}: messages shared requests ({} requests)",
            batches.len()
        );
        assert!(
            batches.iter().all(|b| b.len() <= 50),
            "{path}: batch_max holds"
        );
    }
    // Each message's own result is recorded: status and carrier id.
    for id in &ids {
        let m = gw.wait_status(id, "sent", Duration::from_secs(10)).await;
        assert_eq!(m["status"], "sent", "{m}");
        assert_eq!(m["carrier_id"], format!("b-{id}#1"), "{m}");
    }
    let m = gw.metrics_text().await;
    assert!(!m.contains("outcome=\"retry\""), "no retries: {m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_the_far_end_refuses_in_a_batch_is_retried_alone() {
    let dir = TempDir::new("batch-refused");
    let far = Far::default();
    far.refuse_once
        .lock()
        .unwrap()
        .insert("+14155553007".into());
    let addr = far.start().await;
    let gw = start_gateway(&dir, addr, "[delivery]\ninitial_backoff_ms = 200\n");
    // Sent in one go through a slow first batch, so they share requests.
    let ids = send_many(&gw, 20, |i| format!("+1415555{:04}", 3000 + i)).await;
    let refused = &ids[7];
    let m = gw
        .wait_status(refused, "sent", Duration::from_secs(20))
        .await;
    assert_eq!(m["status"], "sent", "{m}");
    let attempts = far.attempts("/sms");
    assert_eq!(
        attempts[refused],
        [format!("{refused}#1"), format!("{refused}#2")],
        "refused once, then retried under the next attempt id"
    );
    for id in ids.iter().filter(|id| *id != refused) {
        assert_eq!(attempts[id], [format!("{id}#1")], "the others went once");
        assert_eq!(
            gw.wait_status(id, "sent", Duration::from_secs(5)).await["status"],
            "sent"
        );
    }
    // The retry went alone: nothing else was due with it.
    let retry = far
        .batches("/sms")
        .into_iter()
        .find(|b| b.iter().any(|(_, a)| *a == format!("{refused}#2")))
        .unwrap();
    assert_eq!(retry.len(), 1, "{retry:?}");
    let history = m["history"].to_string();
    assert!(history.contains("HTTP 503"), "{history}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_that_times_out_is_retried_message_by_message() {
    let dir = TempDir::new("batch-timeout");
    let far = Far::default();
    far.stall.store(1, Ordering::SeqCst);
    let addr = far.start().await;
    let gw = start_gateway(
        &dir,
        addr,
        "[delivery]\nrequest_timeout_secs = 1\ninitial_backoff_ms = 200\n",
    );
    let ids = send_many(&gw, 10, |i| format!("+1415555{:04}", 4000 + i)).await;
    for id in &ids {
        let m = gw.wait_status(id, "sent", Duration::from_secs(30)).await;
        assert_eq!(m["status"], "sent", "{m}");
    }
    let batches = far.batches("/sms");
    let first: HashSet<String> = batches[0].iter().map(|(id, _)| id.clone()).collect();
    assert!(!first.is_empty());
    let attempts = far.attempts("/sms");
    for id in &ids {
        let want: Vec<String> = if first.contains(id) {
            // The stalled batch timed out: its messages came again, each
            // under its next attempt id, exactly as a single send's would.
            vec![format!("{id}#1"), format!("{id}#2")]
        } else {
            vec![format!("{id}#1")]
        };
        assert_eq!(attempts[id], want, "{id}");
        let m = gw.message(id).await;
        if first.contains(id) {
            assert_eq!(m["carrier_id"], format!("b-{id}#2"), "{m}");
            assert!(m["history"].to_string().contains("timeout"), "{m}");
        }
    }
}
