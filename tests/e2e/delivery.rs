//! Each attempt is sent once: thousands of messages each way with no crash
//! reach the far end exactly once per attempt id, and a far end that fails
//! everything sees exactly `max_attempts` attempts per message.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::harness::*;

/// Transport tests: no spam policy in the way, limits far above the load.
const OPEN_POLICY: &str = r#"
[classifier]
allow = ["+1415555*"]
mode = "enforce"
[classifier.rate_limits]
long_code = { per_second = 1000000.0, burst = 10000000 }
recipient = { per_second = 1000000.0, burst = 10000000 }
pair = { per_second = 1000000.0, burst = 10000000 }
route = { per_second = 1000000.0, burst = 10000000 }
"#;

/// Idempotency keys (attempt ids) of every request the sink saw, answered
/// or refused, each checked to have come once.
fn attempts_seen_once(sink: &Sink) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for k in sink.attempted.lock().unwrap().iter() {
        *seen.entry(k.clone()).or_insert(0) += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "{} attempts sent more than once: {:?}",
        twice.len(),
        twice.iter().take(5).collect::<Vec<_>>()
    );
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_thousand_each_way_every_attempt_sent_once() {
    const N: usize = 20_000;
    let dir = TempDir::new("once-each");
    let sink = Sink::start(0).await;
    let cfg = write_config_with_policy(&dir.0, Some(&sink), "", OPEN_POLICY);
    let gw = Arc::new(Gateway::start(&cfg));
    gw.register_identity("+14155550101").await;
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..32 {
        let gw = gw.clone();
        tasks.spawn(async move {
            for i in (worker..N).step_by(32) {
                let r = gw
                    .send(serde_json::json!({"to": format!("+1415555{:04}", i % 10_000), "text": "x"}))
                    .await;
                assert_eq!(r.status(), 202, "send {i}");
                let sms = serde_json::json!({"id": format!("mo-{i}"), "from": "+14155550100",
                                             "to": "+14155550101", "text": "y"});
                let r = gw.post_signed("/webhooks/generic", &sms, GENERIC_SECRET).await;
                assert_eq!(r.status(), 200, "inbound {i}");
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    sink.wait_for("/sms", N, Duration::from_secs(180)).await;
    sink.wait_for("/private", N, Duration::from_secs(180)).await;
    // late duplicates would come within a poll or two
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = attempts_seen_once(&sink);
    assert_eq!(seen.len(), 2 * N, "every message delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_far_end_failing_everything_sees_max_attempts_per_message_once_each() {
    const N: usize = 2_000;
    const MAX_ATTEMPTS: usize = 3;
    let dir = TempDir::new("once-failing");
    let sink = Sink::start(0).await;
    sink.status.store(500, std::sync::atomic::Ordering::SeqCst);
    let cfg = write_config_with_policy(
        &dir.0,
        Some(&sink),
        &format!(
            "[delivery]\nmax_attempts = {MAX_ATTEMPTS}\ninitial_backoff_ms = 20\nmax_backoff_secs = 1\n"
        ),
        OPEN_POLICY,
    );
    let gw = Arc::new(Gateway::start(&cfg));
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let gw = gw.clone();
        tasks.spawn(async move {
            for i in (worker..N).step_by(16) {
                let r = gw
                    .send(serde_json::json!({"to": format!("+1415555{:04}", i), "text": "x"}))
                    .await;
                assert_eq!(r.status(), 202);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while gw.count("SELECT COUNT(*) FROM queue WHERE dead = 1") < N as i64
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        gw.count("SELECT COUNT(*) FROM queue WHERE dead = 1"),
        N as i64
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = attempts_seen_once(&sink);
    let mut per_message: HashMap<&str, usize> = HashMap::new();
    for key in seen.keys() {
        let (id, attempt) = key.rsplit_once('#').unwrap();
        let attempt: usize = attempt.parse().unwrap();
        assert!(
            (1..=MAX_ATTEMPTS).contains(&attempt),
            "attempt {attempt} of {id}"
        );
        *per_message.entry(id).or_insert(0) += 1;
    }
    assert_eq!(per_message.len(), N);
    assert!(
        per_message.values().all(|n| *n == MAX_ATTEMPTS),
        "max_attempts is the total number of attempts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_answers_with_the_first_message_even_across_a_crash() {
    let dir = TempDir::new("idempotent");
    let sink = Sink::start(0).await;
    let cfg = write_config_with_policy(&dir.0, Some(&sink), "", OPEN_POLICY);
    let gw = Gateway::start(&cfg);
    let body = serde_json::json!({"to": "+14155550101", "text": "once"});
    let r = gw.send_keyed("order-42", body.clone()).await;
    assert_eq!(r.status(), 202);
    let first: serde_json::Value = r.json().await.unwrap();
    // the client's retry: same key, same body
    let r = gw.send_keyed("order-42", body.clone()).await;
    assert_eq!(r.status(), 202);
    let again: serde_json::Value = r.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    // same key, another body: a conflict, nothing stored
    let r = gw
        .send_keyed(
            "order-42",
            serde_json::json!({"to": "+14155550102", "text": "other"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "idempotency_conflict");
    // a malformed key is a 400
    let r = gw.send_keyed(&"k".repeat(300), body.clone()).await;
    assert_eq!(r.status(), 400);
    // a crash after the 202: the retry still finds the first message
    let r = gw.send_keyed("order-43", body.clone()).await;
    assert_eq!(r.status(), 202);
    let before_crash: serde_json::Value = r.json().await.unwrap();
    let token = gw.token.clone();
    gw.kill();
    let gw = Gateway::spawn(&cfg, token);
    let r = gw.send_keyed("order-43", body.clone()).await;
    assert_eq!(r.status(), 202);
    let after: serde_json::Value = r.json().await.unwrap();
    assert_eq!(after["id"], before_crash["id"]);
    sink.wait_for("/sms", 2, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // two keys, two messages: the kill may come between a send and its
    // outcome's commit, and then the same attempt goes again after the
    // restart (same attempt id), which is the crash case, not a new message
    let messages: std::collections::HashSet<String> = sink
        .attempted
        .lock()
        .unwrap()
        .iter()
        .map(|k| k.split('#').next().unwrap().to_string())
        .collect();
    assert_eq!(messages.len(), 2, "two keys, two messages sent");
    assert_eq!(gw.count("SELECT COUNT(*) FROM messages"), 2);
}
