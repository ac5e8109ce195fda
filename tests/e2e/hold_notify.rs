//! The operator's hold webhook (`[review] notify_url`): a SIM-farm burst
//! held in enforce mode reaches the operator's endpoint as signed notices,
//! one per held sender, with the sender and reason codes and never text.

use std::time::Duration;

use crate::harness::*;

const SECRET: &str = "hold-notify-test-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_reach_the_operator_webhook_signed_and_without_text() {
    let dir = TempDir::new("hold-notify");
    let sink = Sink::start(0).await;
    let secret_file = dir.0.join("notify.secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let policy = format!(
        "[classifier]\nmode = \"enforce\"\n\n[review]\nnotify_url = \"{}\"\nnotify_secret_file = \"{}\"\n",
        sink.url("/holds"),
        secret_file.display()
    );
    let cfg = write_config_with_policy(&dir.0, Some(&sink), "", &policy);
    let gw = Gateway::start(&cfg);

    let mut canaries = Vec::new();
    for s in 0..8 {
        let from = format!("+1312555{:04}", 7000 + s);
        for i in 0..15 {
            let text = canary();
            canaries.push(text.clone());
            let sms = serde_json::json!({
                "id": format!("farm-{s}-{i}"),
                "from": from,
                "to": format!("+1415555{:04}", 3000 + s * 15 + i),
                "text": text,
            });
            let r = gw
                .post_signed("/webhooks/generic", &sms, GENERIC_SECRET)
                .await;
            assert_eq!(r.status(), 200);
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }
    let held_senders = gw.count(
        "SELECT COUNT(DISTINCT sender) FROM messages WHERE sender LIKE '+13125557%' AND status IN ('held', 'blocked')",
    );
    assert!(
        held_senders >= 2,
        "the burst is held ({held_senders} senders)"
    );
    sink.wait_for("/holds", held_senders as usize, Duration::from_secs(20))
        .await;
    // a moment more: a repeat sent by mistake would arrive now
    tokio::time::sleep(Duration::from_millis(500)).await;
    let notices = sink.on("/holds");
    assert_eq!(
        notices.len() as i64,
        held_senders,
        "one notice per held sender, not per message"
    );
    let mut senders: Vec<String> = notices
        .iter()
        .map(|n| n.json()["sender"].as_str().unwrap().to_string())
        .collect();
    senders.sort();
    senders.dedup();
    assert_eq!(senders.len(), notices.len());
    for n in &notices {
        let sig = n
            .headers
            .get(adapters::signing::SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .expect("signed");
        assert!(
            adapters::signing::verify(SECRET.as_bytes(), Some(sig), &n.body, now_secs(), 300)
                .is_ok(),
            "signature verifies with the notify secret"
        );
        let body = n.json();
        assert_eq!(body["event"], "hold");
        assert!(["suspect", "spam"].contains(&body["verdict"].as_str().unwrap()));
        assert!(body["sender"].as_str().unwrap().starts_with("+13125557"));
        assert!(body["reasons"].is_array());
        let key = n.headers.get("idempotency-key").unwrap().to_str().unwrap();
        assert_eq!(
            key,
            format!("hold-{}", body["message_id"].as_str().unwrap())
        );
        let raw = String::from_utf8_lossy(&n.body);
        for c in &canaries {
            assert!(!raw.contains(c.as_str()), "message text in a notice");
        }
    }
    let metrics = gw.metrics_text().await;
    assert!(
        metrics.contains(&format!(
            "gateway_review_notify_total{{outcome=\"sent\"}} {held_senders}"
        )),
        "{metrics}"
    );
}
