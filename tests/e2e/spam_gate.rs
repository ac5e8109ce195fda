//! The spam gate as an operator meets it, against the real binary with the
//! default policy (bundled model, default limits): the walk-through's
//! numbers pass, the operator's own test burst passes, a new deployment
//! shadows, and a campaign walking the private side's numbers is still
//! stopped in enforce mode.

use std::time::Duration;

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(20);

/// The default policy except the mode (a fresh data dir is in shadow mode).
fn config(dir: &TempDir, sink: &Sink, mode: Option<&str>) -> std::path::PathBuf {
    let policy = match mode {
        Some(m) => format!("[classifier]\nmode = \"{m}\"\n"),
        None => String::new(),
    };
    write_config_with_policy(&dir.0, Some(sink), "", &policy)
}

async fn inbound(gw: &Gateway, id: &str, from: &str, to: &str) -> reqwest::StatusCode {
    let sms = serde_json::json!({"id": id, "from": from, "to": to, "text": canary()});
    gw.post_signed("/webhooks/generic", &sms, GENERIC_SECRET)
        .await
        .status()
}

fn stats(cfg: &std::path::Path) -> serde_json::Value {
    let out = cli(cfg, &["review", "stats", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walk_through_numbers_and_an_operator_test_burst_are_not_held() {
    let dir = TempDir::new("spam-own");
    let sink = Sink::start(0).await;
    let cfg = config(&dir, &sink, Some("enforce"));
    let gw = Gateway::start(&cfg);
    gw.register_identity("+14155550199").await;

    // The README's inbound step: a neighbour of the gateway's own number
    // writes to it (same 100-number block).
    assert_eq!(
        inbound(&gw, "walk-1", "+14155550100", "+14155550199").await,
        200
    );
    sink.wait_for("/private", 1, WAIT).await;
    assert_eq!(
        gw.count("SELECT COUNT(*) FROM messages WHERE status IN ('held', 'blocked')"),
        0
    );

    // 50 quick sends from the API key to neighbouring numbers.
    for i in 0..50 {
        let r = gw
            .send(serde_json::json!({"to": format!("+1415555{:04}", 2000 + i), "text": canary()}))
            .await;
        assert_eq!(r.status(), 202, "send {i}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_ne!(body["status"], "held", "send {i} held");
    }
    sink.wait_for("/sms", 50, WAIT).await;
    assert_eq!(
        gw.count("SELECT COUNT(*) FROM messages WHERE status IN ('held', 'blocked')"),
        0,
        "the operator's own sender is never held"
    );
}

/// Eight senders from one consecutive range, each walking the private
/// side's numbers: adjacent recipients, nobody they know, nobody answers.
async fn sim_farm_burst(gw: &Gateway) -> usize {
    let mut accepted = 0;
    for s in 0..8 {
        let from = format!("+1312555{:04}", 7000 + s);
        for i in 0..15 {
            let to = format!("+1415555{:04}", 3000 + s * 15 + i);
            if inbound(gw, &format!("farm-{s}-{i}"), &from, &to).await == 200 {
                accepted += 1;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }
    accepted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforce_mode_stops_a_sim_farm_walking_numbers() {
    let dir = TempDir::new("spam-farm");
    let sink = Sink::start(0).await;
    let cfg = config(&dir, &sink, Some("enforce"));
    with_service_key(&cfg);
    let gw = Gateway::start(&cfg);
    assert_eq!(
        sim_farm_burst(&gw).await,
        120,
        "inbound is held, never refused"
    );
    let stopped = gw.count(
        "SELECT COUNT(*) FROM messages WHERE sender LIKE '+13125557%' AND status IN ('held', 'blocked')",
    );
    let judged = gw.count(
        "SELECT COUNT(*) FROM messages WHERE sender LIKE '+13125557%' AND verdict IN ('suspect', 'spam')",
    );
    assert!(stopped >= 60, "{stopped} of 120 stopped");
    assert!(
        judged >= 30,
        "{judged} stopped by the model, not only by limits"
    );
    // each hold is visible in the log and the metrics
    let logs = gw.logs.lock().unwrap().join("\n");
    assert!(logs.contains("spam gate verdict"), "no log line for holds");
    assert!(
        !logs.contains("+13125557000"),
        "full sender numbers in the log"
    );
    let metrics = gw.metrics_text().await;
    assert!(
        metrics.contains("gateway_spam_verdicts_total{verdict=\"spam\",direction=\"inbound\"}")
            || metrics
                .contains("gateway_spam_verdicts_total{verdict=\"suspect\",direction=\"inbound\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("gateway_review_queue_depth"));
    // The review queue names the rule in words before the model's
    // features, and keeps the model's block though later messages of the
    // same numbers only hit a rate limit (held at score 0).
    let out = cli(&cfg, &["review", "list", "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let farm: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| r["sender"].as_str().unwrap().starts_with("+13125557"))
        .collect();
    assert!(!farm.is_empty(), "{rows:?}");
    for r in farm {
        assert_eq!(
            r["reasons"][0],
            classifier::RuleTag::SequentialRecipients.words(),
            "{r}"
        );
        assert!(r["score"].as_f64().unwrap() > 0.5, "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_deployment_shadows_holds_nothing_and_records_what_it_would_have() {
    let dir = TempDir::new("spam-shadow");
    let sink = Sink::start(0).await;
    // no mode: a fresh data dir starts in shadow mode
    let cfg = config(&dir, &sink, None);
    with_service_key(&cfg);
    // generous limits: what shadow mode records is the model's judgement
    let text = std::fs::read_to_string(&cfg).unwrap()
        + "\n[classifier.rate_limits]\nlong_code = { per_second = 1000.0, burst = 10000 }\n\
         pair = { per_second = 1000.0, burst = 10000 }\n\
         recipient = { per_second = 1000.0, burst = 10000 }\n";
    std::fs::write(&cfg, text).unwrap();
    let gw = Gateway::start(&cfg);
    assert_eq!(sim_farm_burst(&gw).await, 120);
    sink.wait_for("/private", 120, WAIT).await;
    assert_eq!(
        gw.count("SELECT COUNT(*) FROM messages WHERE status IN ('held', 'blocked')"),
        0,
        "shadow mode holds nothing"
    );
    let s = stats(&cfg);
    let would =
        s["shadow_would_hold"][0].as_u64().unwrap() + s["shadow_would_block"][0].as_u64().unwrap();
    assert!(
        would >= 30,
        "shadow mode records what it would have held: {s}"
    );
    assert!(
        gw.logs
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("shadow mode")),
        "the log says the gate is in shadow mode"
    );
}

#[test]
fn promote_checks_the_model_and_keeps_the_previous_one() {
    let dir = TempDir::new("spam-promote");
    let cfg = write_config(&dir.0, None, "");
    let bad = dir.0.join("bad.json");
    std::fs::write(&bad, "{\"format\": \"not a model\"}").unwrap();
    let out = cli(&cfg, &["model", "promote", bad.to_str().unwrap()]);
    assert!(!out.status.success(), "a broken model file is refused");
    let active = dir.0.join("data/model/active.json");
    assert!(!active.exists());
    let good =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../classifier/model/default.json");
    for _ in 0..2 {
        let out = cli(&cfg, &["model", "promote", good.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(active.exists());
    assert!(dir.0.join("data/model/previous.json").exists());
    // the deployment's own traffic needs both kinds of decisions to judge on
    let out = cli(&cfg, &["model", "eval", "--from-store"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs both"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
