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

/// Waits until no file of `dir` holds any of `chunks`; returns how long it
/// took. Three clean scans in a row: one scan reads the files one after
/// the other, and a checkpoint moving pages from the WAL into the database
/// between two reads could hide them from a single scan.
pub async fn wait_gone(dir: &Path, chunks: &[Vec<u8>], within: Duration) -> Duration {
    let start = Instant::now();
    let mut clean = 0;
    let mut first_clean = start.elapsed();
    loop {
        let left = holders(dir, chunks);
        if left.is_empty() {
            if clean == 0 {
                first_clean = start.elapsed();
            }
            clean += 1;
            if clean == 3 {
                return first_clean;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
            continue;
        }
        clean = 0;
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
    let b64 = presealed(&cfg, "+14155550102");
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

/// Senders of both regions allow-listed: these tests are about storage.
const TRANSIT_POLICY: &str = r#"
[classifier]
allow = ["+1415555*", "+336*"]
[classifier.rate_limits]
long_code = { per_second = 1000.0, burst = 10000 }
recipient = { per_second = 1000.0, burst = 10000 }
pair = { per_second = 1000.0, burst = 10000 }
route = { per_second = 1000.0, burst = 10000 }
"#;

/// A number of the listed region (France).
const LISTED: &str = "+33612345678";

fn transit_config(dir: &Path, sink: &Sink, extra: &str) -> PathBuf {
    write_config_with_policy(
        dir,
        Some(sink),
        &format!("[privacy]\nno_content_at_rest = [\"FR\"]\n{extra}"),
        TRANSIT_POLICY,
    )
}

/// Seals a text to the gateway's edge key, as the private side would.
fn presealed(cfg: &Path, to: &str) -> String {
    let out = cli(
        cfg,
        &[
            "envelope",
            "seal",
            "--to",
            to,
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
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Scans the data dir until message `id` reaches `status` (the far end
/// answered); panics on a find. Returns how many scans ran.
async fn never_found_until(gw: &Gateway, id: &str, status: &str, chunks: &[Vec<u8>]) -> usize {
    let deadline = Instant::now() + WAIT;
    let mut scans = 0;
    loop {
        let found = holders(&gw.data_dir, chunks);
        assert!(found.is_empty(), "a transit body reached {found:?}");
        scans += 1;
        if gw.message(id).await["status"] == status || Instant::now() > deadline {
            return scans;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_to_a_listed_region_never_touches_disk_and_fails_when_not_handed_over() {
    let dir = TempDir::new("transit-out");
    let sink = Sink::start(0).await;
    sink.delay_ms.store(600, Ordering::SeqCst);
    let cfg = transit_config(&dir.0, &sink, "transit_deadline_secs = 2\n");
    let gw = Gateway::start(&cfg);

    let b64 = presealed(&cfg, LISTED);
    let chunks = ciphertext_chunks(&b64);
    let r = gw.send(serde_json::json!({"envelope": b64})).await;
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Scanned all the while it is in flight (the SMSC answers slowly).
    let data = gw.data_dir.clone();
    let scans = never_found_until(&gw, &id, "sent", &chunks).await;
    println!("{scans} scans while in flight found nothing");
    let m = gw.message(&id).await;
    assert_eq!(m["status"], "sent", "{m}");
    assert_eq!(m["body_stored"], false);
    assert!(holders(&data, &chunks).is_empty());

    // An SMSC slower than the deadline: failed, content_not_retained.
    sink.delay_ms.store(5_000, Ordering::SeqCst);
    let b64 = presealed(&cfg, LISTED);
    let chunks = ciphertext_chunks(&b64);
    let r = gw.send(serde_json::json!({"envelope": b64})).await;
    assert_eq!(r.status(), 202);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let started = Instant::now();
    let gw_ref = &gw;
    let mut last = serde_json::Value::Null;
    while started.elapsed() < WAIT {
        last = gw_ref.message(&id).await;
        assert!(holders(&data, &chunks).is_empty(), "transit body on disk");
        if last["status"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(last["status"], "failed", "{last}");
    assert_eq!(last["last_error"], "content_not_retained", "{last}");
    println!(
        "failed content_not_retained {:?} after acceptance",
        started.elapsed()
    );
    // Not a listed region: stored as usual (kept until accepted).
    sink.delay_ms.store(0, Ordering::SeqCst);
    let r = gw
        .send(serde_json::json!({"to": "+14155550102", "text": canary()}))
        .await;
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        gw.count(&format!("SELECT transit FROM messages WHERE id = '{id}'")),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_from_a_listed_region_is_answered_only_once_the_private_side_has_it() {
    let dir = TempDir::new("transit-in");
    let sink = Sink::start(0).await;
    let cfg = transit_config(&dir.0, &sink, "transit_deadline_secs = 2\n");
    let gw = Gateway::start(&cfg);
    gw.register_identity("+14155550101").await;
    let sms = |n: &str| serde_json::json!({"id": n, "from": LISTED, "to": "+14155550101", "text": canary()});
    let first = sms("t-1");
    let r = gw
        .post_signed("/webhooks/generic", &first, GENERIC_SECRET)
        .await;
    assert_eq!(r.status(), 200);
    // Answered after the private side took it, not before.
    let got = sink.on("/private");
    assert_eq!(got.len(), 1, "the private side had it before the 2xx");
    let chunks = ciphertext_chunks(got[0].json()["envelope"].as_str().unwrap());
    assert!(holders(&gw.data_dir, &chunks).is_empty());
    // A retry of a message the private side has is a duplicate: 200, not resent.
    let r = gw
        .post_signed("/webhooks/generic", &first, GENERIC_SECRET)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(sink.on("/private").len(), 1);

    // The private side is too slow: the carrier gets a retryable 503.
    sink.delay_ms.store(5_000, Ordering::SeqCst);
    let body = sms("t-2");
    let r = gw
        .post_signed("/webhooks/generic", &body, GENERIC_SECRET)
        .await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    let err: serde_json::Value = r.json().await.unwrap();
    assert_eq!(err["error"]["code"], "content_not_retained", "{err}");
    let got = sink.on("/private");
    assert_eq!(got.len(), 2);
    let chunks = ciphertext_chunks(got[1].json()["envelope"].as_str().unwrap());
    assert!(holders(&gw.data_dir, &chunks).is_empty());
    // The carrier's retry is a new attempt, not a duplicate answered 200.
    sink.delay_ms.store(0, Ordering::SeqCst);
    let r = gw
        .post_signed("/webhooks/generic", &body, GENERIC_SECRET)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(sink.on("/private").len(), 3);
    assert_eq!(
        gw.count("SELECT COUNT(*) FROM messages WHERE last_error = 'content_not_retained'"),
        1
    );
    assert_eq!(
        gw.count("SELECT COUNT(*) FROM messages WHERE transit = 1 AND sealed IS NOT NULL"),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transit_bodies_stay_off_disk_across_a_sigkill_and_lost_ones_fail_after_restart() {
    let dir = TempDir::new("transit-kill");
    let sink = Sink::start(0).await;
    sink.delay_ms.store(20_000, Ordering::SeqCst);
    let cfg = transit_config(
        &dir.0,
        &sink,
        "transit_deadline_secs = 3\n[delivery]\nrequest_timeout_secs = 2\n",
    );
    let gw = Gateway::start(&cfg);
    gw.register_identity("+14155550101").await;
    let b64 = presealed(&cfg, LISTED);
    let out_chunks = ciphertext_chunks(&b64);
    let r = gw.send(serde_json::json!({"envelope": b64})).await;
    assert_eq!(r.status(), 202);
    let out_id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (client, url) = (gw.client(), gw.url("/webhooks/generic"));
    let body =
        serde_json::json!({"id": "k-1", "from": LISTED, "to": "+14155550101", "text": canary()});
    let inbound = tokio::spawn(async move {
        let raw = serde_json::to_vec(&body).unwrap();
        let sig = adapters::signing::sign(GENERIC_SECRET.as_bytes(), now_secs(), &raw);
        client
            .post(url)
            .header(adapters::signing::SIGNATURE_HEADER, sig)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
    });
    // Both are in flight at their far ends when the process dies.
    assert_eq!(sink.wait_for("/private", 1, WAIT).await.len(), 1);
    assert_eq!(sink.wait_for("/sms", 1, WAIT).await.len(), 1);
    let in_chunks = ciphertext_chunks(sink.on("/private")[0].json()["envelope"].as_str().unwrap());
    let data = gw.data_dir.clone();
    let token = gw.token.clone();
    drop(gw.kill());
    let r = inbound.await.unwrap();
    assert!(
        r.map(|r| r.status() != 200).unwrap_or(true),
        "no 2xx for a message the private side never acknowledged"
    );
    let mut chunks = out_chunks;
    chunks.extend(in_chunks);
    let found = holders(&data, &chunks);
    assert!(
        found.is_empty(),
        "transit body on disk after SIGKILL: {found:?}"
    );

    // After a restart the lost outbound message fails; it cannot be sent.
    let gw = Gateway::spawn(&cfg, token);
    let m = gw.wait_status(&out_id, "failed", WAIT).await;
    assert_eq!(m["status"], "failed", "{m}");
    assert_eq!(m["last_error"], "content_not_retained", "{m}");
    assert!(holders(&data, &chunks).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counterparty_numbers_leave_the_files_after_pseudonymise_after_secs() {
    let dir = TempDir::new("pseudonyms");
    let sink = Sink::start(0).await;
    let cfg = write_config_with_policy(
        &dir.0,
        Some(&sink),
        "[privacy]\npseudonymise_after_secs = 2\n",
        TRANSIT_POLICY,
    );
    let gw = Gateway::start(&cfg);
    gw.register_identity("+14155550101").await;
    let sms =
        serde_json::json!({"id": "p-1", "from": LISTED, "to": "+14155550101", "text": canary()});
    let r = gw
        .post_signed("/webhooks/generic", &sms, GENERIC_SECRET)
        .await;
    assert_eq!(r.status(), 200);
    let inbound = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = gw
        .send(serde_json::json!({"to": "+14155550177", "text": canary()}))
        .await;
    let outbound = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    gw.wait_status(&inbound, "delivered", WAIT).await;
    gw.wait_status(&outbound, "sent", WAIT).await;

    // export-trace writes pseudonyms unless an administrator opts out.
    let trace = cli(&cfg, &["export-trace"]);
    assert!(
        trace.status.success(),
        "{}",
        String::from_utf8_lossy(&trace.stderr)
    );
    let trace = String::from_utf8(trace.stdout).unwrap();
    assert!(trace.contains("\"p:"), "{trace}");
    assert!(
        !trace.contains("33612345678") && !trace.contains("4155550177"),
        "{trace}"
    );
    let clear = cli(&cfg, &["export-trace", "--clear-numbers"]);
    assert!(String::from_utf8(clear.stdout).unwrap().contains(LISTED));

    // The counterparties' digits leave every file; the gateway's own stay.
    let needles = ["33612345678", "4155550177"];
    let chunks: Vec<Vec<u8>> = needles.iter().map(|n| n.as_bytes().to_vec()).collect();
    assert!(
        !holders(&gw.data_dir, &chunks).is_empty(),
        "sanity: stored in the clear at first"
    );
    let took = wait_gone(&gw.data_dir, &chunks, Duration::from_secs(15)).await;
    println!("counterparty numbers gone from the files {took:?} after acceptance (threshold 2 s)");
    let m = gw.message(&inbound).await;
    assert!(m["from"].as_str().unwrap().starts_with("p:"), "{m}");
    assert_eq!(m["to"], "+14155550101", "registered identity kept");
    let m = gw.message(&outbound).await;
    assert!(m["to"].as_str().unwrap().starts_with("p:"), "{m}");
    assert_eq!(m["from"], "+14155550199", "the gateway's own number kept");
    // Consistent: the export's pseudonym is the store's.
    let trace = String::from_utf8(cli(&cfg, &["export-trace"]).stdout).unwrap();
    assert!(trace.contains(m["to"].as_str().unwrap()), "{trace}");
}
