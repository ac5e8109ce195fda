//! Status callbacks: a client that gives a `status_callback` URL (or whose
//! API key has a default) hears of sent, delivered and failed, signed, in
//! order per message, retried while its receiver answers 500, and across a
//! restart.

use std::time::Duration;

use crate::harness::*;

const CALLBACK_SECRET: &str = "callback-test-secret";
const WAIT: Duration = Duration::from_secs(20);

/// A config with callbacks on (secret in a file) and short retries.
fn config(dir: &TempDir, sink: &Sink) -> std::path::PathBuf {
    let secret = dir.0.join("callback.secret");
    std::fs::write(&secret, format!("{CALLBACK_SECRET}\n")).unwrap();
    write_config(
        &dir.0,
        Some(sink),
        &format!(
            "[delivery]\ninitial_backoff_ms = 50\nmax_backoff_secs = 1\n\n[review]\nundo_window_secs = 1\n\n[callbacks]\nsecret_file = \"{}\"\n",
            secret.display()
        ),
    )
}

/// Sends one message with a callback URL and waits until it is `sent`.
async fn send_sent(gw: &Gateway, to: &str, callback: Option<&str>) -> String {
    let mut body = serde_json::json!({"to": to, "text": "status please"});
    if let Some(cb) = callback {
        body["status_callback"] = cb.into();
    }
    let r = gw.send(body).await;
    assert_eq!(r.status(), 202);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(gw.wait_status(&id, "sent", WAIT).await["status"], "sent");
    id
}

/// The SMSC reports `status` (with `error`) for message `id`.
async fn report(gw: &Gateway, id: &str, status: &str, error: Option<&str>) {
    let mut body = serde_json::json!({"id": id, "status": status});
    if let Some(e) = error {
        body["error"] = e.into();
    }
    let r = gw
        .post_signed("/webhooks/generic/status", &body, GENERIC_SECRET)
        .await;
    assert_eq!(r.status(), 200);
}

/// The callbacks received for message `id`, each checked for its signature.
fn callbacks_of(sink: &Sink, path: &str, id: &str) -> Vec<serde_json::Value> {
    sink.on(path)
        .into_iter()
        .filter(|r| r.json()["id"] == id)
        .map(|r| {
            let sig = r
                .headers
                .get("x-gateway-signature")
                .expect("signed")
                .to_str()
                .unwrap();
            adapters::signing::verify(
                CALLBACK_SECRET.as_bytes(),
                Some(sig),
                &r.body,
                now_secs(),
                60,
            )
            .expect("valid signature");
            r.json()
        })
        .collect()
}

async fn wait_callbacks(sink: &Sink, path: &str, id: &str, n: usize) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let got = callbacks_of(sink, path, id);
        if got.len() >= n || std::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn statuses(cbs: &[serde_json::Value]) -> Vec<&str> {
    cbs.iter().map(|c| c["status"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_are_signed_in_order_retried_and_survive_a_restart() {
    let dir = TempDir::new("callbacks");
    let sink = Sink::start(0).await;
    let receiver = Sink::start(0).await;
    let cfg = config(&dir, &sink);
    let gw = Gateway::start(&cfg);
    let cb_url = receiver.url("/cb");

    // sent, then delivered: signed, in order, with RFC 3339 times.
    let id = send_sent(&gw, "+14155550101", Some(&cb_url)).await;
    report(&gw, &id, "delivered", None).await;
    let cbs = wait_callbacks(&receiver, "/cb", &id, 2).await;
    assert_eq!(statuses(&cbs), ["sent", "delivered"], "{cbs:?}");
    assert!(cbs[0]["at"].as_str().unwrap().ends_with('Z'));
    assert!(cbs.iter().all(|c| c.get("error").is_none()));
    assert!(cbs.iter().all(|c| c.get("text").is_none()), "metadata only");
    let keys: Vec<String> = receiver.attempted.lock().unwrap().clone();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1], "each callback its own idempotency key");

    // failed, with the SMSC's code.
    let id = send_sent(&gw, "+14155550102", Some(&cb_url)).await;
    report(&gw, &id, "failed", Some("E30003")).await;
    let cbs = wait_callbacks(&receiver, "/cb", &id, 2).await;
    assert_eq!(statuses(&cbs), ["sent", "failed"], "{cbs:?}");
    assert_eq!(cbs[1]["error"], "E30003");

    // The receiver answers 500: the callbacks are retried, and `delivered`
    // is never tried before `sent` got through.
    receiver
        .status
        .store(500, std::sync::atomic::Ordering::SeqCst);
    let before = receiver.attempted.lock().unwrap().len();
    let id = send_sent(&gw, "+14155550103", Some(&cb_url)).await;
    report(&gw, &id, "delivered", None).await;
    let deadline = std::time::Instant::now() + WAIT;
    while receiver.attempted.lock().unwrap().len() < before + 4
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    receiver
        .status
        .store(200, std::sync::atomic::Ordering::SeqCst);
    let cbs = wait_callbacks(&receiver, "/cb", &id, 2).await;
    assert_eq!(statuses(&cbs), ["sent", "delivered"], "{cbs:?}");
    let tried = receiver.attempted.lock().unwrap()[before..].to_vec();
    let refused: Vec<&String> = tried.iter().take(4).collect();
    assert!(
        refused.windows(2).all(|w| w[0] == w[1]),
        "the same callback (one key) retried while refused: {tried:?}"
    );
    let first_key = refused[0].clone();
    let last_sent = tried.iter().rposition(|k| *k == first_key).unwrap();
    let first_other = tried.iter().position(|k| *k != first_key).unwrap();
    assert!(last_sent < first_other, "in order: {tried:?}");

    let metrics = gw.metrics_text().await;
    for outcome in ["ok", "retry"] {
        assert!(
            metrics.contains(&format!(
                "gateway_status_callbacks_total{{outcome=\"{outcome}\"}}"
            )),
            "{outcome} counted"
        );
    }

    // A key's default callback; owed callbacks survive a restart.
    let out = cli(
        &cfg,
        &[
            "keys",
            "api",
            "create",
            "with-cb",
            "--status-callback",
            &receiver.url("/default"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    receiver
        .status
        .store(500, std::sync::atomic::Ordering::SeqCst);
    gw.kill();
    let gw = Gateway::spawn(&cfg, token);
    let id = send_sent(&gw, "+14155550104", None).await;
    report(&gw, &id, "delivered", None).await;
    // Both owed (the receiver is down), then the gateway restarts.
    let deadline = std::time::Instant::now() + WAIT;
    while gw.count("SELECT COUNT(*) FROM status_callbacks") < 2
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let token = gw.token.clone();
    gw.kill();
    receiver
        .status
        .store(200, std::sync::atomic::Ordering::SeqCst);
    let gw = Gateway::spawn(&cfg, token);
    let cbs = wait_callbacks(&receiver, "/default", &id, 2).await;
    assert_eq!(statuses(&cbs), ["sent", "delivered"], "{cbs:?}");

    // A bad URL is a 400 naming the field.
    let r = gw
        .send(serde_json::json!({"to": "+14155550105", "text": "x", "status_callback": "ftp://x/"}))
        .await;
    assert_eq!(r.status(), 400);
    let e: serde_json::Value = r.json().await.unwrap();
    assert!(e.to_string().contains("status_callback"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_without_the_secret_is_refused() {
    let dir = TempDir::new("callbacks-off");
    let sink = Sink::start(0).await;
    let cfg = write_config(&dir.0, Some(&sink), "");
    let gw = Gateway::start(&cfg);
    let r = gw
        .send(serde_json::json!({"to": "+14155550101", "text": "x",
                                 "status_callback": sink.url("/cb")}))
        .await;
    assert_eq!(r.status(), 400);
    let e: serde_json::Value = r.json().await.unwrap();
    assert!(e.to_string().contains("status_callback"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_dead_are_called_back_too() {
    let dir = TempDir::new("callbacks-final");
    let sink = Sink::start(0).await;
    let receiver = Sink::start(0).await;
    // The SMSC refuses everything: one message expires in the queue, the
    // other runs out of attempts.
    sink.status.store(500, std::sync::atomic::Ordering::SeqCst);
    let secret = dir.0.join("callback.secret");
    std::fs::write(&secret, CALLBACK_SECRET).unwrap();
    let cfg = write_config(
        &dir.0,
        Some(&sink),
        &format!(
            "[delivery]\nmax_attempts = 4\ninitial_backoff_ms = 1500\nmax_backoff_secs = 5\n\n[callbacks]\nsecret_file = \"{}\"\n",
            secret.display()
        ),
    );
    let gw = Gateway::start(&cfg);
    let cb = receiver.url("/cb");
    let send = |body: serde_json::Value| {
        let gw = &gw;
        async move {
            let r = gw.send(body).await;
            assert_eq!(r.status(), 202);
            r.json::<serde_json::Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let expiring = send(
        serde_json::json!({"to": "+14155550101", "text": "soon gone",
                                           "ttl_seconds": 1, "status_callback": cb}),
    )
    .await;
    let dying = send(
        serde_json::json!({"to": "+14155550102", "text": "never sent",
                                        "status_callback": cb}),
    )
    .await;
    let cbs = wait_callbacks(&receiver, "/cb", &expiring, 1).await;
    assert_eq!(statuses(&cbs), ["expired"], "{cbs:?}");
    let cbs = wait_callbacks(&receiver, "/cb", &dying, 1).await;
    assert_eq!(statuses(&cbs), ["dead"], "{cbs:?}");
    assert_eq!(cbs[0]["error"], "HTTP 500");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_drop_is_called_back() {
    let dir = TempDir::new("callbacks-drop");
    let sink = Sink::start(0).await;
    let receiver = Sink::start(0).await;
    let cfg = config(&dir, &sink);
    let gw = Gateway::start(&cfg);
    // A message the spam gate held (written as the gate would have).
    let db = rusqlite::Connection::open(gw.data_dir.join("gateway.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    db.execute(
        "INSERT INTO messages (id, direction, channel, adapter, sender, recipient, segments, encoding, size_class, status, \
         created_at, updated_at, kid, header, sealed, verdict, score, status_callback) VALUES ('held-1', 'outbound', 'sms', \
         'generic', '+14155550199', '+14155550101', 1, 'gsm7', 256, 'held', ?2, ?2, 'k', x'00', x'00', 'suspect', 0.7, ?1)",
        // Accepted now: the retention sweep must not take it first.
        rusqlite::params![receiver.url("/cb"), now_ms()],
    )
    .unwrap();
    drop(db);
    let out = cli(&cfg, &["review", "drop", "held-1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The running gateway finds the callback the CLI's drop owed, once
    // the drop is final (its undo window, 1 s here, has passed).
    let cbs = wait_callbacks(&receiver, "/cb", "held-1", 1).await;
    assert_eq!(statuses(&cbs), ["dropped"], "{cbs:?}");
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
