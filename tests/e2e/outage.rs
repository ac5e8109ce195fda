//! Outages of the far end: refused connections, 500s, answers slower than
//! the request timeout. Messages wait and retry with backoff, nothing is
//! lost, exhausted ones are dead-lettered where the API and the CLI show
//! them, an operator can retry them, and the queue grows in SQLite, not in
//! the gateway's memory.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(30);

/// Policy that lets these tests' volumes through the spam gate: they are
/// about transport, not spam.
const ROOMY_POLICY: &str = r#"
[classifier]
allow = ["+1415*"]
[classifier.rate_limits]
long_code = { per_second = 1000000.0, burst = 10000000 }
recipient = { per_second = 1000000.0, burst = 10000000 }
pair = { per_second = 1000000.0, burst = 10000000 }
route = { per_second = 1000000.0, burst = 10000000 }
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A config whose SMSC is `http://127.0.0.1:<port>/sms` (maybe nobody there yet).
fn config_for_port(dir: &TempDir, port: u16, delivery: &str) -> std::path::PathBuf {
    let extra = format!(
        "[delivery]\n{delivery}\n\n[generic]\nurl = \"http://127.0.0.1:{port}/sms\"\nfrom = \"+14155550199\"\n"
    );
    write_config_with_policy(&dir.0, None, &extra, ROOMY_POLICY)
}

fn vm_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_500_and_slow_far_ends_are_ridden_out_and_nothing_is_lost() {
    let dir = TempDir::new("outage");
    let port = free_port();
    let cfg = config_for_port(
        &dir,
        port,
        "initial_backoff_ms = 100\nmax_backoff_secs = 1\nrequest_timeout_secs = 1\nmax_attempts = 1000",
    );
    let gw = Gateway::start(&cfg);
    // 1. Nobody listens: connection refused.
    let mut ids = Vec::new();
    for i in 0..20 {
        let r = gw
            .send(serde_json::json!({"to": format!("+1415555{:04}", 2000 + i), "text": format!("outage {i}")}))
            .await;
        assert_eq!(r.status(), 202);
        ids.push(
            r.json::<serde_json::Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    // 2. The SMSC comes up answering 500.
    let sink = Sink::start(port).await;
    sink.status.store(500, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // 3. It answers 200, but slower than the gateway waits (1 s).
    sink.status.store(200, Ordering::SeqCst);
    sink.delay_ms.store(1500, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // 4. It recovers.
    sink.delay_ms.store(0, Ordering::SeqCst);
    for id in &ids {
        let m = gw.wait_status(id, "sent", WAIT).await;
        assert_eq!(m["status"], "sent", "{m}");
    }
    // Every message arrived; a repeat (after a timed-out answer) always
    // carries a new attempt id, so the SMSC can drop it.
    let got = sink.on("/sms");
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut per_message: HashMap<String, usize> = HashMap::new();
    for r in &got {
        let j = r.json();
        let (id, attempt) = (
            j["id"].as_str().unwrap().to_string(),
            j["attempt_id"].as_str().unwrap().to_string(),
        );
        assert!(
            seen.insert((id.clone(), attempt)),
            "an attempt id was sent twice"
        );
        *per_message.entry(id).or_default() += 1;
    }
    for id in &ids {
        assert!(
            per_message.contains_key(id),
            "message {id} never reached the SMSC"
        );
    }
    // The history shows the failures and growing waits between attempts.
    let m = gw.message(&ids[0]).await;
    let retries: Vec<&serde_json::Value> = m["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == "retrying")
        .collect();
    assert!(retries.len() >= 3, "{m}");
    let details: Vec<&str> = retries
        .iter()
        .filter_map(|e| e["detail"].as_str())
        .collect();
    assert!(details.iter().any(|d| d.contains("refused")), "{details:?}");
    assert!(
        details.iter().any(|d| d.contains("HTTP 500")),
        "{details:?}"
    );
    assert!(details.iter().any(|d| d.contains("timeout")), "{details:?}");
    assert_eq!(
        gw.count("SELECT COUNT(*) FROM queue"),
        0,
        "the queue drained"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_messages_are_dead_lettered_shown_and_retried_by_the_operator() {
    let dir = TempDir::new("dead");
    let sink = Sink::start(0).await;
    sink.status.store(503, Ordering::SeqCst);
    let cfg = config_for_port(
        &dir,
        sink.addr.port(),
        "initial_backoff_ms = 50\nmax_backoff_secs = 1\nmax_attempts = 3",
    );
    let gw = Gateway::start(&cfg);
    let mut ids = Vec::new();
    for i in 0..2 {
        let r = gw
            .send(serde_json::json!({"to": format!("+1415555{:04}", 2100 + i), "text": "doomed"}))
            .await;
        ids.push(
            r.json::<serde_json::Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    for id in &ids {
        let m = gw.wait_status(id, "dead", WAIT).await;
        assert_eq!(m["status"], "dead", "{m}");
        assert!(
            m["last_error"].as_str().unwrap().contains("HTTP 503"),
            "{m}"
        );
    }
    // The API and the CLI both show them.
    let listed: serde_json::Value = gw
        .client()
        .get(gw.url("/v1/dead-letters"))
        .bearer_auth(&gw.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    let out = cli(&cfg, &["dead-letters", "list", "--json"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for id in &ids {
        assert!(text.contains(id.as_str()), "CLI list lacks {id}: {text}");
    }
    assert!(!text.contains("doomed"), "the CLI shows no text");
    // The SMSC is back; the operator retries one with the CLI (while the
    // service runs) and the other through the API.
    sink.status.store(200, Ordering::SeqCst);
    let out = cli(&cfg, &["dead-letters", "retry", &ids[0]]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = gw
        .client()
        .post(gw.url(&format!("/v1/messages/{}/retry", ids[1])))
        .bearer_auth(&gw.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for id in &ids {
        let m = gw.wait_status(id, "sent", WAIT).await;
        assert_eq!(m["status"], "sent", "{m}");
    }
    assert_eq!(sink.on("/sms").len(), 2);
    // Retrying what is not dead is refused.
    let r = gw
        .client()
        .post(gw.url(&format!("/v1/messages/{}/retry", ids[0])))
        .bearer_auth(&gw.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_growing_queue_lives_in_the_database_not_in_memory() {
    let dir = TempDir::new("queue-memory");
    // Nobody listens for the whole test, and the first retry is ten minutes
    // away, so what grows is the queue alone.
    let cfg = config_for_port(
        &dir,
        free_port(),
        "initial_backoff_ms = 600000\nmax_backoff_secs = 600\nmax_attempts = 1000",
    );
    let gw = Gateway::start(&cfg);
    let pid = gw.child.id();
    // 20 kB bodies: were the queue held in memory, the 1 000 after the
    // baseline would take 20 MB; in SQLite they cost page cache only
    // (a few MB: SQLite's default cache is 2 MB per connection).
    let text = "é".repeat(10_000);
    let send = |n: usize, offset: usize| {
        let (client, url, token, text) = (
            gw.client(),
            gw.url("/v1/messages"),
            gw.token.clone(),
            text.clone(),
        );
        async move {
            let mut tasks = tokio::task::JoinSet::new();
            for w in 0..4 {
                let (client, url, token, text) =
                    (client.clone(), url.clone(), token.clone(), text.clone());
                tasks.spawn(async move {
                    for i in (w..n).step_by(4) {
                        let body = serde_json::json!({"to": format!("+1415{:07}", 2_000_000 + offset + i), "text": text});
                        let r = client.post(&url).bearer_auth(&token).json(&body).send().await.unwrap();
                        assert_eq!(r.status(), 202);
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
        }
    };
    send(100, 0).await;
    let before = vm_rss_kb(pid);
    send(1000, 100).await;
    let after = vm_rss_kb(pid);
    assert_eq!(gw.count("SELECT COUNT(*) FROM queue WHERE dead = 0"), 1100);
    let grown_mb = (after.saturating_sub(before)) as f64 / 1024.0;
    eprintln!("RSS grew {grown_mb:.1} MB while 1 000 messages (20 MB) queued");
    assert!(
        grown_mb < 12.0,
        "RSS grew {grown_mb:.1} MB for 1 000 queued 20 kB messages ({before} -> {after} kB)"
    );
}
