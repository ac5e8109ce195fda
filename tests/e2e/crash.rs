//! Crash safety: bounded load in both directions, SIGKILL at random moments,
//! restarts; every acknowledged message is stored exactly once and reaches its
//! sink, and duplicates a sink sees carry the same attempt id (so the
//! idempotency key absorbs them).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_random_sigkills_exactly_once() {
    let dir = TempDir::new("crash");
    let sink = Sink::start(0).await;
    let cfg = write_config(&dir.0, Some(&sink), "");
    let seed: u64 = rand::rng().random();
    println!("crash test seed {seed}");
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);

    let mut gw = Gateway::start(&cfg);
    gw.register_identity("+14155550101").await;
    let token = gw.token.clone();
    let acked_out: Arc<Mutex<HashSet<String>>> = Arc::default();
    let acked_in: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let mut seq = 0u64;
    for round in 0..4 {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut tasks = Vec::new();
        for worker in 0..4u64 {
            let (client, base, token, stop) =
                (gw.client(), gw.url(""), token.clone(), stop.clone());
            let (acked_out, acked_in) = (acked_out.clone(), acked_in.clone());
            let start = seq + worker * 10_000;
            tasks.push(tokio::spawn(async move {
                for n in start.. {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) || n >= start + 400 {
                        break;
                    }
                    if n % 2 == 0 {
                        let r = client
                            .post(format!("{base}/v1/messages"))
                            .bearer_auth(&token)
                            .json(&serde_json::json!({"to": format!("+1415555{:04}", n % 9000 + 1000), "text": format!("out {n}")}))
                            .send()
                            .await;
                        if let Ok(r) = r {
                            if r.status() == 202 {
                                if let Ok(v) = r.json::<serde_json::Value>().await {
                                    acked_out.lock().unwrap().insert(v["id"].as_str().unwrap_or_default().to_string());
                                }
                            }
                        }
                    } else {
                        let carrier = format!("c-{n}");
                        let body = serde_json::json!({"id": carrier, "from": "+14155550100", "to": "+14155550101", "text": format!("in {n}")});
                        let raw = serde_json::to_vec(&body).unwrap();
                        let sig = adapters::signing::sign(GENERIC_SECRET.as_bytes(), now_secs(), &raw);
                        let r = client
                            .post(format!("{base}/webhooks/generic"))
                            .header(adapters::signing::SIGNATURE_HEADER, sig)
                            .header("content-type", "application/json")
                            .body(raw)
                            .send()
                            .await;
                        if let Ok(r) = r {
                            if r.status() == 200 {
                                if let Ok(v) = r.json::<serde_json::Value>().await {
                                    acked_in.lock().unwrap().insert(carrier, v["id"].as_str().unwrap_or_default().to_string());
                                }
                            }
                        }
                    }
                }
            }));
        }
        seq += 100_000;
        tokio::time::sleep(Duration::from_millis(rng.random_range(400..1200))).await;
        drop(gw.kill());
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for t in tasks {
            let _ = t.await;
        }
        println!(
            "round {round}: {} out, {} in acknowledged so far",
            acked_out.lock().unwrap().len(),
            acked_in.lock().unwrap().len()
        );
        gw = Gateway::spawn(&cfg, token.clone());
    }

    let out: HashSet<String> = acked_out.lock().unwrap().clone();
    let inb: HashMap<String, String> = acked_in.lock().unwrap().clone();
    assert!(
        out.len() > 20 && inb.len() > 20,
        "the load reached the gateway: {} / {}",
        out.len(),
        inb.len()
    );
    // Everything acknowledged reaches its sink after the last restart.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let sms: HashSet<String> = sink
            .on("/sms")
            .iter()
            .map(|r| r.json()["id"].as_str().unwrap().to_string())
            .collect();
        let private: HashSet<String> = sink
            .on("/private")
            .iter()
            .map(|r| r.json()["id"].as_str().unwrap().to_string())
            .collect();
        let missing_out = out.iter().filter(|id| !sms.contains(*id)).count();
        let missing_in = inb.values().filter(|id| !private.contains(*id)).count();
        if missing_out == 0 && missing_in == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{missing_out} outbound and {missing_in} inbound acknowledged messages never arrived"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Stored exactly once: one row per acknowledged id, one per carrier id.
    for (carrier, id) in &inb {
        assert_eq!(
            gw.count(&format!(
                "SELECT COUNT(*) FROM carrier_ids WHERE carrier_id = '{carrier}'"
            )),
            1
        );
        assert_eq!(
            gw.count(&format!("SELECT COUNT(*) FROM messages WHERE id = '{id}'")),
            1
        );
    }
    // The sink never failed, so every delivery of a message is its first
    // attempt: a repeat after a crash carries the same idempotency key.
    for path in ["/sms", "/private"] {
        for r in sink.on(path) {
            let id = r.json()["id"].as_str().unwrap().to_string();
            assert_eq!(
                r.headers.get("idempotency-key").unwrap().to_str().unwrap(),
                format!("{id}#1")
            );
        }
    }
}
