//! Hostile load cannot starve real traffic: while 4,400 connections each
//! dribble 1 byte of a 60 kB `POST /webhooks/generic` (and come back
//! whenever the gateway closes them), signed webhooks from 127.0.0.1 are
//! still answered 200, quickly; and a slow body is cut off at the body
//! deadline instead of the request timeout.
//!
//! The flood comes from two sides: 4,000 clients spread over 80 loopback
//! addresses (127.0.1.x, 50 each: under the per-peer cap of 64, so the
//! gateway holds every one of them until its body deadline: 4,000 slow
//! bodies open at once), and 400 from 127.0.0.1 itself, the real carrier's
//! address, where the per-peer cap turns them away with 503 while the
//! carrier's complete requests pass.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::*;

/// Slow-body clients spread over other loopback addresses.
const SPREAD: usize = 4000;
/// Addresses they are spread over (50 each).
const ADDRESSES: usize = 80;
/// Slow-body clients from the real carrier's own address.
const SAME_PEER: usize = 400;
/// Real webhooks sent during the flood.
const REAL: usize = 60;

/// What the flood's requests were answered.
#[derive(Default)]
struct Tally {
    open: AtomicUsize,
    connects: AtomicUsize,
    refused_503: AtomicUsize,
    timed_out_408: AtomicUsize,
    other: AtomicUsize,
}

const SLOW_HEAD: &[u8] = b"POST /webhooks/generic HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{";

/// One slow client: sends a header and 1 byte of its body, waits for the
/// gateway to answer or close, comes back after a pause; until `stop`.
async fn slow_client(
    from: std::net::Ipv4Addr,
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let connect = async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind((from, 0).into())?;
            socket.connect(addr).await
        };
        let Ok(mut s) = connect.await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        tally.connects.fetch_add(1, Ordering::Relaxed);
        if s.write_all(SLOW_HEAD).await.is_err() {
            continue;
        }
        tally.open.fetch_add(1, Ordering::Relaxed);
        let mut buf = [0u8; 512];
        let answer = tokio::select! {
            r = s.read(&mut buf) => r.unwrap_or(0),
            () = async { while !stop.load(Ordering::Relaxed) { tokio::time::sleep(Duration::from_millis(100)).await } } => 0,
        };
        tally.open.fetch_sub(1, Ordering::Relaxed);
        let head = String::from_utf8_lossy(&buf[..answer.min(12)]).to_string();
        if head.starts_with("HTTP/1.1 503") {
            tally.refused_503.fetch_add(1, Ordering::Relaxed);
        } else if head.starts_with("HTTP/1.1 408") {
            tally.timed_out_408.fetch_add(1, Ordering::Relaxed);
        } else if answer > 0 {
            tally.other.fetch_add(1, Ordering::Relaxed);
        }
        drop(s);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// This process's open-file limit (the gateway inherits it): the flood
/// needs a descriptor per connection on each side, so it is lowered to fit
/// (`ulimit -n` 20000 on the machine it was measured on).
fn nofile_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

/// Sends one signed inbound webhook; its status and how long it took.
async fn real_webhook(gw: &Gateway, client: &reqwest::Client, i: usize) -> (u16, Duration) {
    let body = serde_json::json!({"id": format!("real-{i}"), "from": "+14155550100",
                                  "to": "+14155550101", "text": "real"});
    let raw = serde_json::to_vec(&body).unwrap();
    let sig = adapters::signing::sign(GENERIC_SECRET.as_bytes(), now_secs(), &raw);
    let started = Instant::now();
    let r = client
        .post(gw.url("/webhooks/generic"))
        .header("content-type", "application/json")
        .header(adapters::signing::SIGNATURE_HEADER, sig)
        .body(raw)
        .send()
        .await;
    let code = r.map(|r| r.status().as_u16()).unwrap_or(0);
    (code, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_are_answered_during_a_slow_body_flood() {
    let nofile = nofile_limit();
    let spread = SPREAD.min((nofile as usize).saturating_sub(1000) / 2);
    let flood = spread + SAME_PEER;
    let dir = TempDir::new("flood");
    let sink = Sink::start(0).await;
    let cfg = write_config(&dir.0, Some(&sink), "");
    let gw = Gateway::start(&cfg);
    gw.register_identity("+14155550101").await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();

    // One slow body alone is cut off at the body deadline (5 s), not the
    // request timeout (15 s).
    let mut one = TcpStream::connect(gw.addr).await.unwrap();
    one.write_all(SLOW_HEAD).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(12), one.read(&mut buf))
        .await
        .expect("answered before the request timeout")
        .unwrap();
    let cut = started.elapsed();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert!(
        // 80-100 % of the 5 s deadline.
        cut >= Duration::from_millis(3900) && cut < Duration::from_secs(8),
        "{cut:?}"
    );
    drop(one);

    // A body announced over the limit is refused at once, without waiting
    // for it.
    let mut big = TcpStream::connect(gw.addr).await.unwrap();
    big.write_all(
        b"POST /webhooks/generic HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n",
    )
    .await
    .unwrap();
    let n = tokio::time::timeout(Duration::from_secs(1), big.read(&mut buf))
        .await
        .expect("answered at once")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 413"));
    drop(big);

    // The flood.
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..spread {
        let from = std::net::Ipv4Addr::new(127, 0, 1, 1 + (i % ADDRESSES) as u8);
        tasks.spawn(slow_client(from, gw.addr, stop.clone(), tally.clone()));
    }
    for _ in 0..SAME_PEER {
        let from = std::net::Ipv4Addr::LOCALHOST;
        tasks.spawn(slow_client(from, gw.addr, stop.clone(), tally.clone()));
    }
    // Until most are open at once.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut peak_open = 0;
    while Instant::now() < deadline {
        peak_open = peak_open.max(tally.open.load(Ordering::Relaxed));
        if peak_open >= spread {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Real signed webhooks from the same address, during the flood.
    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    for i in 0..REAL {
        let (code, took) = real_webhook(&gw, &client, i).await;
        peak_open = peak_open.max(tally.open.load(Ordering::Relaxed));
        if code != 200 {
            failures.push((i, code));
        }
        latencies.push(took);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let open_at_end = tally.open.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let drained = tokio::time::timeout(Duration::from_secs(30), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    assert!(drained.is_ok(), "flood clients stopped");

    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let max = *latencies.last().unwrap();
    eprintln!(
        "flood: {flood} slow clients, peak open {peak_open}, open at the end {open_at_end}, \
         connects {}, answered 503 {}, 408 {}, other {}; real webhooks {REAL}: failures {failures:?}, \
         p50 {p50:?}, max {max:?}",
        tally.connects.load(Ordering::Relaxed),
        tally.refused_503.load(Ordering::Relaxed),
        tally.timed_out_408.load(Ordering::Relaxed),
        tally.other.load(Ordering::Relaxed),
    );
    assert!(
        peak_open >= spread,
        "the flood held {peak_open} of {flood} open"
    );
    assert!(
        tally.refused_503.load(Ordering::Relaxed) > 0
            && tally.timed_out_408.load(Ordering::Relaxed) >= spread / 2,
        "the same-address flood is turned away, the spread one cut off at the deadline"
    );
    assert!(failures.is_empty(), "real webhooks refused: {failures:?}");
    // A debug build on 2 shared cores, beside the rest of the suite: the
    // bounds are loose; the numbers printed above are the measurement. Nine
    // in ten within 5 s, and none near the 15 s request timeout the flood
    // used to hold every slot for (webhooks then got 503 for ~12 s).
    let p90 = latencies[latencies.len() * 9 / 10];
    assert!(
        p90 < Duration::from_secs(5),
        "90th percentile real webhook {p90:?}"
    );
    assert!(
        max < Duration::from_secs(12),
        "slowest real webhook {max:?}"
    );
    assert!(
        p50 < Duration::from_millis(500),
        "median real webhook {p50:?}"
    );
    assert_eq!(
        tally.other.load(Ordering::Relaxed),
        0,
        "slow bodies get 503 or 408"
    );
    // Every real webhook was stored once.
    assert_eq!(
        gw.count("SELECT COUNT(*) FROM messages WHERE direction = 'inbound'"),
        REAL as i64
    );
    // The refusals are counted.
    let metrics = gw.metrics_text().await;
    for reason in ["slow_body_peer", "body_timeout"] {
        assert!(
            metrics.contains(&format!(
                "gateway_http_refused_total{{outcome=\"{reason}\"}}"
            )),
            "{reason} counted"
        );
    }
    // And the gateway answers normally afterwards.
    let (code, _) = real_webhook(&gw, &client, REAL).await;
    assert_eq!(code, 200);
}

/// Connects from `from` (a loopback address) to `to`.
async fn connect_from(from: std::net::Ipv4Addr, to: std::net::SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((from, 0).into()).unwrap();
    socket.connect(to).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_connection() {
    let dir = TempDir::new("per-peer-conns");
    let cfg = write_config(&dir.0, None, "[http]\nmax_connections_per_peer = 5\n");
    let gw = Gateway::start(&cfg);
    let hog = std::net::Ipv4Addr::new(127, 0, 2, 1);
    let mut idle = Vec::new();
    for _ in 0..5 {
        idle.push(connect_from(hog, gw.addr).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The sixth from the same address is closed at once, unanswered.
    let mut sixth = connect_from(hog, gw.addr).await;
    let _ = sixth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(2), sixth.read(&mut buf))
        .await
        .expect("closed at once")
        .unwrap_or(0);
    assert_eq!(n, 0, "{:?}", String::from_utf8_lossy(&buf[..n]));
    // Another address is served.
    let r = gw.client().get(gw.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Once one of the five goes, the address is served again.
    idle.pop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = connect_from(hog, gw.addr).await;
    again
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let n = tokio::time::timeout(Duration::from_secs(2), again.read(&mut buf))
        .await
        .expect("served")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}
