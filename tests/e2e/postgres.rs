//! `gateway serve` on PostgreSQL, end to end: one node (send, delivered to
//! the sink, status visible, the CLI's key on the shared database), then
//! two nodes on one database (both accept, both deliver, a SIGKILLed
//! node's leased entries taken over after the lease with the same attempt
//! id).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::pg::Postgres;

const WAIT: Duration = Duration::from_secs(30);

/// A node's config on database `url`: sends time out after 5 s and leases
/// last 8 s, so a takeover happens within the test's patience.
fn node_config(dir: &Path, sink: &Sink, pg: &Postgres, url: &str) -> std::path::PathBuf {
    let extra = format!(
        "{}lease_secs = 8\n[delivery]\nrequest_timeout_secs = 5\n",
        pg.store_section(url).replace("lease_secs = 15\n", "")
    );
    write_config(dir, Some(sink), &extra)
}

/// Copies the edge keys (and the pseudonym key) of one node's data dir to
/// another's: key sharing across a cluster is not built yet, so the test
/// provisions the second node like an operator would have to.
fn copy_keys(from: &Path, to: &Path) {
    let (from, to) = (from.join("data"), to.join("data"));
    std::fs::create_dir_all(to.join("keys")).unwrap();
    for e in std::fs::read_dir(from.join("keys")).unwrap().flatten() {
        std::fs::copy(e.path(), to.join("keys").join(e.file_name())).unwrap();
    }
    let _ = std::fs::copy(from.join("pseudonym.key"), to.join("pseudonym.key"));
}

async fn send_ok(gw: &Gateway, to: &str) -> String {
    let resp = gw
        .send(serde_json::json!({"to": to, "text": "hi there"}))
        .await;
    assert_eq!(resp.status(), 202);
    let v: serde_json::Value = resp.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_postgres_delivers_and_shows_status() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("one");
    let dir = TempDir::new("pg-one");
    let sink = Sink::start(0).await;
    let cfg = node_config(&dir.0, &sink, &pg, &url);
    let gw = Gateway::start(&cfg);

    let id = send_ok(&gw, "+1 415 555 0101").await;
    let got = sink.wait_for("/sms", 1, WAIT).await;
    assert_eq!(got.len(), 1, "SMSC sink got nothing");
    assert_eq!(got[0].json()["id"], id.as_str());
    assert_eq!(
        got[0].headers.get("idempotency-key").unwrap(),
        &format!("{id}#1")
    );
    let sent = gw.wait_status(&id, "sent", WAIT).await;
    assert_eq!(sent["status"], "sent", "{sent}");
    assert_eq!(sent["body_stored"], false);

    // The rows are in PostgreSQL, not in a SQLite file.
    assert_eq!(pg.sql("one", "SELECT status FROM messages"), "sent");
    assert_eq!(pg.sql("one", "SELECT COUNT(*) FROM queue"), "0");
    assert!(!gw.data_dir.join("gateway.db").exists());
    let health = reqwest::get(gw.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let errors: Vec<String> = gw
        .logs
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("\"ERROR\""))
        .cloned()
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // What is not ported is said at start, not discovered later.
    assert!(
        gw.logs
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("not yet available on it")),
        "no startup warning"
    );

    // A CLI command not yet ported refuses instead of reading SQLite.
    let out = cli(&cfg, &["dead-letters", "list"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not yet available on the postgres backend"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_the_work_and_take_over_a_killed_node() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("two");
    let sink = Sink::start(0).await;
    let (da, db) = (TempDir::new("pg-a"), TempDir::new("pg-b"));
    let a = Gateway::start(&node_config(&da.0, &sink, &pg, &url));
    copy_keys(&da.0, &db.0);
    // The API key is in the shared database: the same token works on both.
    let b = Gateway::spawn(&node_config(&db.0, &sink, &pg, &url), a.token.clone());

    // Both accept, both deliver; either shows any message.
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(send_ok(&a, &format!("+1415555{:04}", 1000 + i)).await);
        ids.push(send_ok(&b, &format!("+1415555{:04}", 2000 + i)).await);
    }
    assert_eq!(sink.wait_for("/sms", 10, WAIT).await.len(), 10);
    for id in &ids {
        assert_eq!(a.wait_status(id, "sent", WAIT).await["status"], "sent");
        assert_eq!(b.wait_status(id, "sent", WAIT).await["status"], "sent");
    }

    // Node `a` is killed mid-send: the far end has the requests but `a`
    // never records an answer. Its entries stay leased to it until the
    // lease ends, then `b` sends them with the same attempt ids.
    sink.delay_ms
        .store(60_000, std::sync::atomic::Ordering::SeqCst);
    let mut stuck = Vec::new();
    for i in 0..3 {
        stuck.push(send_ok(&a, &format!("+1415555{:04}", 3000 + i)).await);
    }
    assert_eq!(sink.wait_for("/sms", 13, WAIT).await.len(), 13);
    let killed_at = Instant::now();
    a.kill();
    sink.delay_ms.store(0, std::sync::atomic::Ordering::SeqCst);
    for id in &stuck {
        let v = b.wait_status(id, "sent", WAIT).await;
        assert_eq!(v["status"], "sent", "{v}");
    }
    assert!(
        killed_at.elapsed() >= Duration::from_secs(5),
        "taken over before the lease ended"
    );
    let attempts = sink.attempted.lock().unwrap().clone();
    let mut per_key: HashMap<&str, usize> = HashMap::new();
    for k in &attempts {
        *per_key.entry(k.as_str()).or_default() += 1;
    }
    for id in &stuck {
        let key = format!("{id}#1");
        assert_eq!(per_key.get(key.as_str()), Some(&2), "{attempts:?}");
        assert!(
            !per_key.contains_key(format!("{id}#2").as_str()),
            "{attempts:?}"
        );
    }
    for id in &ids {
        assert_eq!(
            per_key.get(format!("{id}#1").as_str()),
            Some(&1),
            "{attempts:?}"
        );
    }
}
