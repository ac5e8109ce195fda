//! Erasure and overload: what DESIGN.md's "rules that keep it honest" promise
//! about ephemeral bodies and shedding load, checked on the real binary.

use std::time::{Duration, Instant};

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(20);

fn sealed_chunk(gw: &Gateway, id: &str) -> Vec<u8> {
    let c = rusqlite::Connection::open(gw.data_dir.join("gateway.db")).unwrap();
    let sealed: Vec<u8> = c
        .query_row("SELECT sealed FROM messages WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap();
    // Skip the 32-byte encapsulated key (shared by an epoch); take ciphertext.
    sealed[40..72].to_vec()
}

fn file_has(path: &std::path::Path, needle: &[u8]) -> bool {
    std::fs::read(path)
        .map(|b| b.windows(needle.len()).any(|w| w == needle))
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_retained_bodies_are_unrecoverable_from_the_files() {
    let dir = TempDir::new("erasure");
    let sink = Sink::start(0).await;
    // The SMSC is down so the ephemeral message is still queued when it expires.
    sink.status.store(503, std::sync::atomic::Ordering::SeqCst);
    let cfg = write_config(
        &dir.0,
        Some(&sink),
        "[store]\nbody_retention_secs = 4\nmetadata_retention_secs = 3600\n[delivery]\ninitial_backoff_ms = 60000\n",
    );
    let gw = Gateway::start(&cfg);
    let r = gw
        .send(serde_json::json!({"to": "+14155550101", "text": canary(), "ttl_seconds": 1}))
        .await;
    assert_eq!(r.status(), 202);
    let ephemeral = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let chunk = sealed_chunk(&gw, &ephemeral);
    // A second message, no TTL: its body goes when the retention period ends.
    let r = gw
        .send(serde_json::json!({"to": "+14155550102", "text": canary()}))
        .await;
    let retained = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let chunk2 = sealed_chunk(&gw, &retained);

    let m = gw.wait_status(&ephemeral, "expired", WAIT).await;
    assert_eq!(m["status"], "expired", "{m}");
    assert_eq!(m["body_stored"], false);
    let deadline = Instant::now() + WAIT;
    while gw.message(&retained).await["body_stored"] != false && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        gw.message(&retained).await["body_stored"],
        false,
        "retention erased the body"
    );
    // Metadata stays (its own, longer retention).
    assert_eq!(gw.message(&retained).await["to"], "+14155550102");

    // After the next checkpoint the old pages are gone from the WAL too.
    let data = gw.data_dir.clone();
    let deadline = Instant::now() + WAIT;
    let found = || {
        ["gateway.db", "gateway.db-wal", "gateway.db-shm"]
            .iter()
            .any(|f| file_has(&data.join(f), &chunk) || file_has(&data.join(f), &chunk2))
    };
    while found() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        !found(),
        "erased ciphertext still recoverable from the database files"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_shed_with_retry_after_and_health_keeps_answering() {
    let dir = TempDir::new("overload");
    let sink = Sink::start(0).await;
    // Two requests at a time at most: the rest of a burst must be shed.
    let cfg = write_config(&dir.0, Some(&sink), "[http]\nmax_in_flight = 2\n");
    let gw = Gateway::start(&cfg);
    let mut tasks = Vec::new();
    for i in 0..64 {
        let (client, url, token) = (gw.client(), gw.url("/v1/messages"), gw.token.clone());
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(
                    &serde_json::json!({"to": format!("+1415555{:04}", 3000 + i), "text": "load"}),
                )
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.headers().get("retry-after").is_some(),
            )
        }));
    }
    let health = gw
        .client()
        .get(gw.url("/healthz"))
        .send()
        .await
        .unwrap()
        .status();
    let mut accepted = 0;
    let mut shed = 0;
    for t in tasks {
        match t.await.unwrap() {
            (202, _) => accepted += 1,
            (503, true) => shed += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(health, 200, "health answers during the burst");
    assert!(
        accepted >= 2 && shed > 0,
        "accepted {accepted}, shed {shed}"
    );
    // Everything accepted is stored; nothing shed is.
    assert_eq!(gw.count("SELECT COUNT(*) FROM messages"), accepted);
    // It recovers when the load stops.
    let r = gw
        .send(serde_json::json!({"to": "+14155550101", "text": "after"}))
        .await;
    assert_eq!(r.status(), 202);
}

/// Reads from a raw connection until `deadline`: the bytes read, and whether
/// the server closed it.
async fn read_until(stream: &mut tokio::net::TcpStream, within: Duration) -> (Vec<u8>, bool) {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let end = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(end, stream.read(&mut buf)).await {
            Ok(Ok(0)) => return (got, true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => return (got, true),
            Err(_) => return (got, false),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_huge_headers_and_connection_floods_are_bounded() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let dir = TempDir::new("conn-bounds");
    let cfg = write_config(
        &dir.0,
        None,
        "[http]\nmax_connections = 3\nheader_read_timeout_secs = 2\nmax_header_bytes = 8192\n",
    );
    let gw = Gateway::start(&cfg);

    // A header larger than the cap is refused with 431 and the connection closes.
    let mut big = TcpStream::connect(gw.addr).await.unwrap();
    let filler = "a".repeat(12_000);
    big.write_all(
        format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Fill: {filler}\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let (answer, closed) = read_until(&mut big, Duration::from_secs(5)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "answer: {answer:?}");
    assert!(closed, "the connection closes after an oversized header");
    // hyper answers before any handler runs: no body, no request id, as
    // docs/errors.md ("Answers before the API") tells clients.
    let lower = answer.to_ascii_lowercase();
    assert!(
        lower.contains("content-length: 0") && !lower.contains("x-request-id"),
        "answer: {answer:?}"
    );

    // A client that never finishes its header is cut off after the deadline.
    let mut slow = TcpStream::connect(gw.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let (said, closed) = read_until(&mut slow, Duration::from_secs(6)).await;
    assert!(closed, "a slow-header connection is closed");
    assert!(said.is_empty(), "closed without an answer (docs/errors.md)");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "not before the deadline"
    );

    // Three idle connections use up the cap: a fourth client is not served
    // until one of them goes away; then it is.
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(TcpStream::connect(gw.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fourth = TcpStream::connect(gw.addr).await.unwrap();
    fourth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (early, _) = read_until(&mut fourth, Duration::from_millis(700)).await;
    assert!(
        early.is_empty(),
        "served beyond the connection cap: {:?}",
        String::from_utf8_lossy(&early)
    );
    idle.pop();
    let (late, _) = read_until(&mut fourth, Duration::from_secs(5)).await;
    assert!(
        String::from_utf8_lossy(&late).starts_with("HTTP/1.1 200"),
        "served once a connection freed: {:?}",
        String::from_utf8_lossy(&late)
    );
    drop(idle);
    // And it keeps answering normally afterwards.
    let r = gw.client().get(gw.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_completes_after_a_reader_held_the_wal_across_an_expiry() {
    let dir = TempDir::new("erasure-reader");
    let sink = Sink::start(0).await;
    sink.status.store(503, std::sync::atomic::Ordering::SeqCst);
    let cfg = write_config(
        &dir.0,
        Some(&sink),
        "[delivery]\ninitial_backoff_ms = 60000\n",
    );
    let gw = Gateway::start(&cfg);
    let r = gw
        .send(serde_json::json!({"to": "+14155550101", "text": canary(), "ttl_seconds": 2}))
        .await;
    assert_eq!(r.status(), 202);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let chunk = sealed_chunk(&gw, &id);
    // A reader (a backup, `gateway review`) holds a snapshot while the
    // message expires: every checkpoint in that time comes back busy.
    let reader = rusqlite::Connection::open(gw.data_dir.join("gateway.db")).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    let m = gw.wait_status(&id, "expired", WAIT).await;
    assert_eq!(m["status"], "expired", "{m}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let pending = |text: &str| -> i64 {
        text.lines()
            .find(|l| l.starts_with("gateway_erasures_pending "))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1)
    };
    assert!(
        pending(&gw.metrics_text().await) >= 1,
        "the busy checkpoint leaves the erasure pending"
    );
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);
    // Once the reader has left, a retried checkpoint truncates the WAL.
    let data = gw.data_dir.clone();
    let found = || {
        ["gateway.db", "gateway.db-wal", "gateway.db-shm"]
            .iter()
            .any(|f| file_has(&data.join(f), &chunk))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while found() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        !found(),
        "the expired ciphertext outlived the reader in the database files"
    );
    assert_eq!(pending(&gw.metrics_text().await), 0, "nothing left pending");
}
