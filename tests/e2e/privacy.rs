//! Content that does not stick around (issue 18), checked in the files:
//! a sealed body is gone from the database, its WAL and every other file in
//! the data directory within seconds of the next hop's acknowledgement.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gateway::envelope::Envelope;

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(20);
/// How long erased bytes may linger in the files after the acknowledgement.
const ERASED_WITHIN: Duration = Duration::from_secs(10);

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Recognisable pieces of a sealed body: 16-byte windows of its ciphertext
/// (the encapsulated key is skipped: one is shared by a whole epoch).
pub fn ciphertext_chunks(envelope_b64: &str) -> Vec<Vec<u8>> {
    let env = Envelope::from_base64(envelope_b64).unwrap();
    let sealed = env.sealed_bytes();
    let ct = &sealed[40..];
    assert!(ct.len() >= 32, "a body worth looking for");
    ct.chunks_exact(16).map(<[u8]>::to_vec).collect()
}

/// The files of `dir` that hold any of `chunks`.
pub fn holders(dir: &Path, chunks: &[Vec<u8>]) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|f| {
            std::fs::read(f)
                .map(|b| {
                    chunks
                        .iter()
                        .any(|c| b.windows(c.len()).any(|w| w == c.as_slice()))
                })
                .unwrap_or(false)
        })
        .collect()
}

/// Waits until no file of `dir` holds any of `chunks`; returns how long it took.
pub async fn wait_gone(dir: &Path, chunks: &[Vec<u8>], within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let left = holders(dir, chunks);
        if left.is_empty() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "sealed body still in {left:?} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_body_leaves_every_file_once_the_private_side_has_it() {
    let dir = TempDir::new("erase-inbound");
    let sink = Sink::start(0).await;
    let cfg = write_config(&dir.0, Some(&sink), "");
    let gw = Gateway::start(&cfg);
    gw.register_identity("+14155550101").await;
    let sms = serde_json::json!({"id": "erase-1", "from": "+14155550100", "to": "+14155550101", "text": canary()});
    let r = gw
        .post_signed("/webhooks/generic", &sms, GENERIC_SECRET)
        .await;
    assert_eq!(r.status(), 200);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The private side receives exactly the envelope that was stored.
    let got = sink.wait_for("/private", 1, WAIT).await;
    assert_eq!(got.len(), 1);
    let chunks = ciphertext_chunks(got[0].json()["envelope"].as_str().unwrap());
    let took = wait_gone(&gw.data_dir, &chunks, ERASED_WITHIN).await;
    println!("inbound body gone from the files {took:?} after delivery");
    let m = gw.wait_status(&id, "delivered", WAIT).await;
    assert_eq!(m["body_stored"], false, "{m}");
    // What remains is the metadata.
    assert_eq!(m["from"], "+14155550100");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_body_is_kept_through_retries_and_erased_once_the_smsc_accepts() {
    let dir = TempDir::new("erase-outbound");
    let sink = Sink::start(0).await;
    sink.status.store(503, Ordering::SeqCst);
    let cfg = write_config(
        &dir.0,
        Some(&sink),
        "[delivery]\ninitial_backoff_ms = 200\nmax_backoff_secs = 1\n",
    );
    let gw = Gateway::start(&cfg);
    // Sealed here, to the edge key: the exact bytes the store keeps.
    let out = cli(
        &cfg,
        &[
            "envelope",
            "seal",
            "--to",
            "+14155550102",
            "--from",
            "+14155550199",
            "--text",
            &canary(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b64 = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let chunks = ciphertext_chunks(&b64);
    let r = gw.send(serde_json::json!({"envelope": b64})).await;
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Refused twice: the body must still be there for the next attempt.
    let deadline = Instant::now() + WAIT;
    while sink.attempted.lock().unwrap().len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sink.attempted.lock().unwrap().len() >= 2);
    assert_eq!(gw.message(&id).await["body_stored"], true);
    assert!(
        !holders(&gw.data_dir, &chunks).is_empty(),
        "the scan finds the stored body (so finding nothing later means something)"
    );
    sink.status.store(200, Ordering::SeqCst);
    assert_eq!(sink.wait_for("/sms", 1, WAIT).await.len(), 1);
    let took = wait_gone(&gw.data_dir, &chunks, ERASED_WITHIN).await;
    println!("outbound body gone from the files {took:?} after the SMSC accepted");
    let m = gw.wait_status(&id, "sent", WAIT).await;
    assert_eq!(m["body_stored"], false, "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_after_delivery_keeps_the_body_that_long() {
    let dir = TempDir::new("erase-kept");
    let sink = Sink::start(0).await;
    let cfg = write_config(
        &dir.0,
        Some(&sink),
        "[privacy]\nkeep_after_delivery_secs = 3\n",
    );
    let gw = Gateway::start(&cfg);
    let r = gw
        .send(serde_json::json!({"to": "+14155550102", "text": canary()}))
        .await;
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    gw.wait_status(&id, "sent", WAIT).await;
    assert_eq!(gw.message(&id).await["body_stored"], true, "kept a while");
    let deadline = Instant::now() + WAIT;
    while gw.message(&id).await["body_stored"] != false && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(gw.message(&id).await["body_stored"], false);
}
