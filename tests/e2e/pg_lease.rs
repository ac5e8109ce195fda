//! Lease renewal end to end: node A accepts more than it can send within
//! one lease (one send slot, a slow far end), node B idles beside it. A
//! renews the leases of the entries still waiting, so B takes none over
//! and the far end sees each attempt id once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::pg::Postgres;
use crate::postgres::copy_keys;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_longer_than_the_lease_is_not_taken_over() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("renewal");
    let sink = Sink::start(0).await;
    let extra = format!(
        "{}lease_secs = 11\n[delivery]\nrequest_timeout_secs = 3\nconcurrency = 1\n",
        pg.store_section(&url).replace("lease_secs = 15\n", "")
    );
    let (da, db) = (TempDir::new("renew-a"), TempDir::new("renew-b"));
    let a = Gateway::start(&write_config(&da.0, Some(&sink), &extra));
    copy_keys(&da.0, &db.0);
    let b = Gateway::spawn(&write_config(&db.0, Some(&sink), &extra), a.token.clone());

    // Six sends of 2.5 s each through one slot: the last starts ~12.5 s
    // after acceptance, past the 11 s lease every entry got at insert.
    sink.delay_ms
        .store(2_500, std::sync::atomic::Ordering::SeqCst);
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..6 {
        let r = a
            .send(serde_json::json!({"to": format!("+1415555{:04}", 5000 + i), "text": "slow"}))
            .await;
        assert_eq!(r.status(), 202);
        ids.push(
            r.json::<serde_json::Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    for id in &ids {
        let v = b.wait_status(id, "sent", Duration::from_secs(40)).await;
        assert_eq!(v["status"], "sent", "{v}");
    }
    let took = started.elapsed();
    assert!(
        took > Duration::from_secs(12),
        "the backlog outlived the lease: {took:?}"
    );
    let attempts = sink.attempted.lock().unwrap().clone();
    let mut per_key: HashMap<&str, usize> = HashMap::new();
    for k in &attempts {
        *per_key.entry(k.as_str()).or_default() += 1;
    }
    for id in &ids {
        assert_eq!(
            per_key.get(format!("{id}#1").as_str()),
            Some(&1),
            "sent twice under one attempt id: {attempts:?}"
        );
    }
    assert_eq!(attempts.len(), 6, "{attempts:?}");
    eprintln!("6 sends of 2.5 s through one slot took {took:?}; none taken over");
}
