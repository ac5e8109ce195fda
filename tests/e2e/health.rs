//! `/healthz` tells the truth, and a full disk is a clear, retryable answer.

use std::time::{Duration, Instant};

use crate::harness::*;

async fn health(gw: &Gateway) -> (u16, serde_json::Value) {
    let r = gw
        .client()
        .get(gw.admin_url("/healthz"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_answers_503_storage_full_and_loses_nothing_acknowledged() {
    let dir = TempDir::new("storage-full");
    let sink = Sink::start(0).await;
    let cfg = write_config(&dir.0, Some(&sink), "[store]\nmax_database_mb = 1\n");
    let gw = Gateway::start(&cfg);
    assert_eq!(health(&gw).await.0, 200);
    let mut accepted = Vec::new();
    let mut refused = None;
    for i in 0..3000 {
        let r = gw
            .send(serde_json::json!({"to": format!("+1415555{:04}", i % 9000), "text": "x".repeat(1200)}))
            .await;
        match r.status().as_u16() {
            202 => accepted.push(
                r.json::<serde_json::Value>().await.unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            ),
            503 => {
                let retry = r.headers().get("retry-after").cloned();
                refused = Some((retry, r.json::<serde_json::Value>().await.unwrap()));
                break;
            }
            other => panic!(
                "send {i}: {other} {}; log: {:?}",
                r.text().await.unwrap(),
                gw.logs
                    .lock()
                    .unwrap()
                    .iter()
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
            ),
        }
    }
    let (retry, body) = refused.expect("a 1 MiB store fills up");
    assert!(retry.is_some(), "503 storage_full carries Retry-After");
    assert_eq!(body["error"]["code"], "storage_full", "{body}");
    assert!(!accepted.is_empty());
    // every 202 was a promise kept: the message is stored
    for id in accepted.iter().rev().take(50) {
        let m = gw.message(id).await;
        assert_eq!(m["id"], id.as_str(), "{m}");
    }
    let (status, h) = health(&gw).await;
    assert_eq!(status, 503, "{h}");
    assert_eq!(h["status"], "degraded");
    assert!(
        h["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().contains("not writable")),
        "{h}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_degrades_when_the_private_side_refuses_every_delivery() {
    let dir = TempDir::new("health-private");
    let sink = Sink::start(0).await;
    sink.status.store(401, std::sync::atomic::Ordering::SeqCst);
    let cfg = write_config(&dir.0, Some(&sink), "");
    let gw = Gateway::start(&cfg);
    gw.register_identity("+14155550101").await;
    assert_eq!(health(&gw).await.0, 200);
    let sms = serde_json::json!({"id": "h-1", "from": "+14155550100", "to": "+14155550101", "text": canary()});
    assert_eq!(
        gw.post_signed("/webhooks/generic", &sms, GENERIC_SECRET)
            .await
            .status(),
        200
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut status, mut h) = health(&gw).await;
    while status == 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        (status, h) = health(&gw).await;
    }
    assert_eq!(status, 503, "{h}");
    let reasons = h["reasons"].to_string();
    assert!(reasons.contains("deliveries to private failing"), "{h}");
}
