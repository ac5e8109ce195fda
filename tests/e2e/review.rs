//! Spam review end to end: a burst is held, the operator looks and decides,
//! decisions take effect in the running gateway, and no text leaks.

use std::process::Command;
use std::time::Duration;

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(20);

fn review(cfg: &std::path::Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(bin())
        .arg("--config")
        .arg(cfg)
        .arg("review")
        .args(args)
        .env("GATEWAY_OPERATOR", "alice")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "review {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

async fn burst(gw: &Gateway, from: &str, n: usize, canaries: &mut Vec<String>) -> usize {
    let mut ok = 0;
    for i in 0..n {
        let text = canary();
        canaries.push(text.clone());
        let sms = serde_json::json!({
            "id": format!("{from}-{i}"), "from": from,
            "to": format!("+1415555{:04}", 1000 + i), "text": text,
        });
        let r = gw
            .post_signed("/webhooks/generic", &sms, GENERIC_SECRET)
            .await;
        if r.status() == 200 {
            ok += 1;
        }
    }
    ok
}

/// The default spam policy (no allow list, default rate limits) in enforce
/// mode (a fresh data dir would start in shadow mode), `extra` added, and a
/// service key so inbound messages for anyone can be sealed.
fn enforcing(dir: &TempDir, sink: &Sink, extra: &str) -> std::path::PathBuf {
    let cfg = write_config_with_policy(
        &dir.0,
        Some(sink),
        "",
        &format!("{extra}[classifier]\nmode = \"enforce\"\n"),
    );
    with_service_key(&cfg);
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_is_held_reviewed_released_or_blocked_and_nothing_leaks() {
    let dir = TempDir::new("review");
    let sink = Sink::start(0).await;
    let cfg = enforcing(&dir, &sink, "[review]\nundo_window_secs = 2\n");
    let gw = Gateway::start(&cfg);
    let mut canaries = Vec::new();

    // Two senders each fire a burst at 30 fresh recipients.
    let ham_sender = "+12125550100";
    let spam_sender = "+12125550177";
    assert_eq!(
        burst(&gw, ham_sender, 30, &mut canaries).await,
        30,
        "inbound is held, never refused"
    );
    assert_eq!(burst(&gw, spam_sender, 30, &mut canaries).await, 30);
    // held (suspect, rate limits) or blocked (spam): `mark ham` releases both
    let held_ham = gw.count(
        "SELECT COUNT(*) FROM messages WHERE sender = '+12125550100' AND status IN ('held', 'blocked')",
    );
    let held_spam = gw.count("SELECT COUNT(*) FROM messages WHERE sender = '+12125550177' AND status IN ('held', 'blocked')");
    assert!(
        held_ham >= 10,
        "a burst from one number is held ({held_ham})"
    );
    assert!(held_spam >= 10);
    let delivered_before = sink
        .wait_for("/private", 60 - (held_ham + held_spam) as usize, WAIT)
        .await
        .len();

    // The queue shows both, with reasons.
    let out = review(&cfg, &["list", "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let row = rows
        .iter()
        .find(|r| r["sender"] == ham_sender)
        .expect("held sender listed");
    assert!(row["held"].as_i64().unwrap() >= 10);
    assert!(!row["reasons"].as_array().unwrap().is_empty(), "{row}");
    assert!(rows.iter().any(|r| r["sender"] == spam_sender));
    let table = review(&cfg, &["list"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains(ham_sender));
    let shown = review(&cfg, &["show", ham_sender, "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["messages"], 30);

    // ham: its held messages are delivered by the running gateway.
    review(
        &cfg,
        &["mark", ham_sender, "ham", "--note", "school newsletter"],
    );
    let got = sink
        .wait_for("/private", delivered_before + held_ham as usize, WAIT)
        .await;
    assert_eq!(
        got.len(),
        delivered_before + held_ham as usize,
        "released messages delivered"
    );

    // spam: held messages dropped (bodies erased once the undo window,
    // 2 s here, has passed), the next message refused.
    let dropped_sql = "SELECT COUNT(*) FROM messages WHERE sender = '+12125550177' AND status = 'dropped' AND sealed IS NULL";
    let out = review(&cfg, &["mark", spam_sender, "spam"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("gateway review undo +12125550177"),
        "the answer says how to undo"
    );
    // Within the window: out of the queue, nothing erased, undoable.
    let pending = review(&cfg, &["undo", "--json"]);
    let pending: Vec<serde_json::Value> = serde_json::from_slice(&pending.stdout).unwrap();
    assert_eq!(pending.len() as i64, held_spam);
    assert_eq!(gw.count(dropped_sql), 0);
    let undone = review(&cfg, &["undo", spam_sender, "--json"]);
    let undone: serde_json::Value = serde_json::from_slice(&undone.stdout).unwrap();
    assert_eq!(undone["held_again"], held_spam);
    let queue = review(&cfg, &["list", "--json"]);
    let queue: Vec<serde_json::Value> = serde_json::from_slice(&queue.stdout).unwrap();
    assert!(
        queue
            .iter()
            .any(|r| r["sender"] == spam_sender && r["held"] == held_spam),
        "back in the queue: {queue:?}"
    );
    // Marked again, the drop becomes final when the window has passed.
    review(&cfg, &["mark", spam_sender, "spam"]);
    let deadline = std::time::Instant::now() + WAIT;
    while gw.count(dropped_sql) != held_spam && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(gw.count(dropped_sql), held_spam);
    let late = cli(&cfg, &["review", "undo", spam_sender]);
    assert_eq!(late.status.code(), Some(2), "too late to undo");
    tokio::time::sleep(gateway::pipeline::spam::LIST_REFRESH + Duration::from_millis(500)).await;
    let next = serde_json::json!({"id": "after-block", "from": spam_sender, "to": "+14155559999", "text": "x"});
    assert_eq!(
        gw.post_signed("/webhooks/generic", &next, GENERIC_SECRET)
            .await
            .status(),
        403
    );

    // The audit log has both decisions, with who and why.
    let log = review(&cfg, &["log", "--json"]);
    let log: Vec<serde_json::Value> = serde_json::from_slice(&log.stdout).unwrap();
    assert!(log.iter().any(|e| e["action"] == "mark_ham"
        && e["target"] == ham_sender
        && e["actor"] == "alice"
        && e["note"] == "school newsletter"));
    assert!(
        log.iter()
            .any(|e| e["action"] == "mark_spam" && e["target"] == spam_sender)
    );
    let stats = review(&cfg, &["stats", "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(stats["decisions"], 3, "ham, spam, spam again");

    // Decisions are labels for training.
    let labels = gateway::store::review::decisions_as_labels(&gw.data_dir).unwrap();
    assert!(labels.contains(&(spam_sender.to_string(), classifier::Label::Spam)));

    // Privacy canary over every output, the logs and the database files.
    let mut outputs = String::new();
    for args in [
        vec!["list", "--json"],
        vec!["log"],
        vec!["stats"],
        vec!["show", ham_sender],
    ] {
        outputs.push_str(&String::from_utf8_lossy(&review(&cfg, &args).stdout));
    }
    let data_dir = gw.data_dir.clone();
    let (_, logs) = gw.terminate();
    let logs = logs.lock().unwrap().join("\n");
    for c in &canaries {
        assert!(!outputs.contains(c.as_str()) && !logs.contains(c.as_str()));
        for f in ["gateway.db", "gateway.db-wal", "gateway.db-shm"] {
            assert!(!file_contains(&data_dir.join(f), c), "canary in {f}");
        }
    }
}

/// A pool of numbers held at once (a passcode provider's consecutive long
/// codes look like a campaign): one `review allow PREFIX*` releases every
/// held message of the pool (held by the model or over the sender rate
/// limit, which an allow entry does not lift), they are delivered by the
/// running gateway, and the senders leave the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_listing_a_prefix_releases_the_pool_it_covers() {
    let dir = TempDir::new("review-allow");
    let sink = Sink::start(0).await;
    let cfg = enforcing(&dir, &sink, "");
    let gw = Gateway::start(&cfg);
    let mut canaries = Vec::new();
    let pool = ["+12125550300", "+12125550301", "+12125550302"];
    for from in pool {
        assert_eq!(burst(&gw, from, 30, &mut canaries).await, 30);
    }
    let held_sql = "SELECT COUNT(*) FROM messages WHERE sender LIKE '+121255503%' AND status IN ('held', 'blocked')";
    let held = gw.count(held_sql);
    assert!(held >= 10, "the pool's bursts are held ({held})");
    let delivered_before = sink
        .wait_for("/private", 90 - held as usize, WAIT)
        .await
        .len();

    // The queue folded by block shows the pool as one line, with the
    // pattern to decide it by.
    let out = review(&cfg, &["list", "--by-block", "--json"]);
    let blocks: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let pool_row = blocks
        .iter()
        .find(|b| b["pattern"] == "+121255503*")
        .unwrap_or_else(|| panic!("{blocks:?}"));
    assert_eq!(pool_row["senders"], 3);
    assert_eq!(pool_row["held"], held);
    let table = review(&cfg, &["list", "--by-block"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("+121255503*"));

    let out = review(&cfg, &["allow", "+121255503*", "--json"]);
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["released"], held, "{answer}");
    assert_eq!(answer["dropped"], 0);
    assert_eq!(gw.count(held_sql), 0);
    let got = sink.wait_for("/private", 90, WAIT).await;
    assert_eq!(got.len(), 90, "every released message delivered");
    assert!(delivered_before < 90);
    let queue = review(&cfg, &["list", "--json"]);
    let queue: Vec<serde_json::Value> = serde_json::from_slice(&queue.stdout).unwrap();
    assert!(
        queue
            .iter()
            .all(|r| !r["sender"].as_str().unwrap().starts_with("+121255503")),
        "the pool left the queue: {queue:?}"
    );
    // Allow-listing is not a training label (`mark ham` is, one sender each).
    let labels = gateway::store::review::decisions_as_labels(&gw.data_dir).unwrap();
    assert!(labels.iter().all(|(s, _)| !s.starts_with("+121255503")));

    let (_, logs) = gw.terminate();
    let logs = logs.lock().unwrap().join("\n");
    for c in &canaries {
        assert!(!logs.contains(c.as_str()));
    }
}

#[test]
fn interactive_review_falls_back_to_plain_output_without_a_terminal() {
    let dir = TempDir::new("review-plain");
    let cfg = write_config(&dir.0, None, "");
    let out = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .arg("review")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("SENDER"));
}

/// Drives the interactive review in a real pseudo-terminal (tmux): the screen
/// shows the flagged sender; `s` marks it spam and the audit log says so.
#[test]
fn interactive_review_in_a_terminal_takes_single_keys() {
    let dir = TempDir::new("review-tui");
    let cfg = write_config(&dir.0, None, "");
    // Create the database and one flagged sender with a held message.
    let out = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .args(["review", "log"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let db = rusqlite::Connection::open(dir.0.join("data").join("gateway.db")).unwrap();
    db.execute_batch(
        "INSERT INTO messages (id, direction, channel, adapter, sender, recipient, segments, encoding, size_class, status, \
         created_at, updated_at, kid, header, sealed, verdict, score) VALUES ('m-1', 'inbound', 'sms', 'generic', \
         '+12125550177', '+14155550101', 1, 'gsm7', 256, 'held', 0, 0, 'k', x'00', x'00', 'suspect', 0.7); \
         INSERT INTO flagged_senders (sender, verdict, score, reasons, adapter, first_flagged_at, last_seen) VALUES \
         ('+12125550177', 'suspect', 0.7, '[{\"words\":\"distinct recipients (log)\",\"value\":3.2}]', 'generic', 0, 0);",
    )
    .unwrap();
    drop(db);
    let session = format!("gwreview{}", std::process::id());
    let cmd = format!("{} --config {} review; sleep 5", bin(), cfg.display());
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .args(args)
            .output()
            .expect("tmux is installed by .ci/run")
    };
    assert!(
        tmux(&[
            "new-session",
            "-d",
            "-s",
            &session,
            "-x",
            "120",
            "-y",
            "30",
            &cmd
        ])
        .status
        .success()
    );
    let screen = || {
        String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", &session]).stdout).to_string()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !screen().contains("+12125550177") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let shown = screen();
    assert!(
        shown.contains("+12125550177") && shown.contains("suspect"),
        "{shown}"
    );
    assert!(shown.contains("distinct recipients"), "{shown}");
    // `s` drops and blocks: it asks first, and any key but `y` cancels.
    let wait_for = |needle: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !screen().contains(needle) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        screen()
    };
    tmux(&["send-keys", "-t", &session, "s"]);
    let asked = wait_for("y = yes");
    assert!(asked.contains("drop its 1 held message(s)"), "{asked}");
    tmux(&["send-keys", "-t", &session, "x"]);
    let cancelled = wait_for("cancelled: nothing dropped");
    assert!(cancelled.contains("+12125550177"), "{cancelled}");
    let held = || {
        rusqlite::Connection::open(dir.0.join("data").join("gateway.db"))
            .unwrap()
            .query_row("SELECT status FROM messages WHERE id = 'm-1'", [], |r| {
                r.get::<_, String>(0)
            })
            .unwrap()
    };
    assert_eq!(held(), "held", "a cancelled `s` drops nothing");
    // A `y` with nothing to confirm does nothing either.
    tmux(&["send-keys", "-t", &session, "y"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(held(), "held");
    tmux(&["send-keys", "-t", &session, "s"]);
    wait_for("y = yes");
    tmux(&["send-keys", "-t", &session, "y"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !screen().contains("review done") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let after = screen();
    let _ = tmux(&["kill-session", "-t", &session]);
    assert!(after.contains("review done: 1 spam"), "{after}");
    let log = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .args(["review", "log", "--json"])
        .output()
        .unwrap();
    let log: Vec<serde_json::Value> = serde_json::from_slice(&log.stdout).unwrap();
    assert!(
        log.iter()
            .any(|e| e["action"] == "mark_spam" && e["target"] == "+12125550177")
    );
}

/// The classifier sees metadata only: the same metadata with different text
/// gives the same score through the whole gateway (two fresh instances, one
/// message each, texts of the same size class and encoding).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_metadata_different_text_identical_scores() {
    let mut scores = Vec::new();
    for text in [
        "Meet at noon by the fountain",
        "Wire 500 USD now to claim it",
    ] {
        let dir = TempDir::new("same-meta");
        let sink = Sink::start(0).await;
        let cfg = write_config_with_policy(&dir.0, Some(&sink), "", "");
        let gw = Gateway::start(&cfg);
        let sms = serde_json::json!({"id": "x-1", "from": "+12125550142", "to": "+14155550101", "text": text});
        assert_eq!(
            gw.post_signed("/webhooks/generic", &sms, GENERIC_SECRET)
                .await
                .status(),
            200
        );
        let c = rusqlite::Connection::open(gw.data_dir.join("gateway.db")).unwrap();
        let (verdict, score): (String, f64) = c
            .query_row("SELECT verdict, score FROM messages", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        scores.push((verdict, score));
    }
    assert_eq!(scores[0], scores[1]);
}

/// `export-trace` writes the gateway's traffic as a metadata trace that
/// `replay` reads back, with no text in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_trace_replays() {
    let dir = TempDir::new("export");
    let sink = Sink::start(0).await;
    let cfg = write_config(&dir.0, Some(&sink), "");
    let gw = Gateway::start(&cfg);
    let secret = canary();
    for i in 0..3 {
        let r = gw
            .send(serde_json::json!({"to": format!("+1415555{:04}", 2000 + i), "text": secret}))
            .await;
        assert_eq!(r.status(), 202);
    }
    sink.wait_for("/sms", 3, WAIT).await;
    let trace = dir.0.join("trace.jsonl");
    let out = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .args(["export-trace", "--out"])
        .arg(&trace)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&trace).unwrap();
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("\"event\":\"message\""))
            .count(),
        3,
        "{text}"
    );
    assert!(!text.contains(&secret));
    let verdicts = dir.0.join("v.jsonl");
    let out = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .arg("replay")
        .arg(&trace)
        .arg("--out")
        .arg(&verdicts)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&verdicts)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(v["sender"], "+14155550199");
    assert_eq!(v["messages"], 3);

    // `replay -` reads the trace from standard input: same verdicts.
    let mut child = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .args(["replay", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
    }
    let piped = child.wait_with_output().unwrap();
    assert!(piped.status.success());
    assert_eq!(
        String::from_utf8_lossy(&piped.stdout),
        std::fs::read_to_string(&verdicts).unwrap()
    );
}
