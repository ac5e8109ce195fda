//! Two nodes on one PostgreSQL as one gateway: a flood sender spread over
//! both nodes meets one rate-limit budget, not two (the spam gates share
//! their observations), and so does the gateway's own traffic on a route; an Android phone configured on both nodes is
//! driven by one node at a time (its lease), and moves to the other when
//! that node is SIGKILLed.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::carriers::{Mock, android_section, free_port};
use crate::harness::*;
use crate::pg::Postgres;

const WAIT: Duration = Duration::from_secs(30);

/// Copies the edge keys and the pseudonym key of one node to another.
pub(crate) fn copy_keys(from: &Path, to: &Path) {
    let (from, to) = (from.join("data"), to.join("data"));
    std::fs::create_dir_all(to.join("keys")).unwrap();
    for e in std::fs::read_dir(from.join("keys")).unwrap().flatten() {
        std::fs::copy(e.path(), to.join("keys").join(e.file_name())).unwrap();
    }
    let _ = std::fs::copy(from.join("pseudonym.key"), to.join("pseudonym.key"));
}

/// The flood's budget: burst 10, then one segment every 2 s.
const FLOOD_POLICY: &str = "[classifier]\nmode = \"enforce\"\n\
    [classifier.rate_limits]\nlong_code = { per_second = 0.5, burst = 10 }\n\
    recipient = { per_second = 1000.0, burst = 10000 }\n\
    pair = { per_second = 1000.0, burst = 10000 }\n\
    route = { per_second = 1000.0, burst = 10000 }\n";

fn flood_node(dir: &Path, sink: &Sink, pg: &Postgres, url: &str) -> std::path::PathBuf {
    let store = format!(
        "{}[delivery]\nrequest_timeout_secs = 3\n",
        pg.store_section(url)
            .replace("lease_secs = 15\n", "lease_secs = 11\n")
    );
    let cfg = write_config_with_policy(dir, Some(sink), &store, FLOOD_POLICY);
    with_service_key(&cfg);
    cfg
}

/// `gateway_rate_limited_total{limit="sender"}` of a node.
async fn sender_limited(gw: &Gateway) -> u64 {
    gw.metrics_text()
        .await
        .lines()
        .find(|l| l.starts_with("gateway_rate_limited_total{limit=\"sender\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_spread_over_two_nodes_meets_one_budget() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("flood");
    let (da, db) = (TempDir::new("pg-flood-a"), TempDir::new("pg-flood-b"));
    let sink = Sink::start(0).await;
    let a = Gateway::start(&flood_node(&da.0, &sink, &pg, &url));
    copy_keys(&da.0, &db.0);
    let b = Gateway::spawn(&flood_node(&db.0, &sink, &pg, &url), a.token.clone());

    // One sender, 60 messages 100 ms apart, alternating between the nodes,
    // each to a new recipient: one budget lets about 10 + 6 s × 0.5 through.
    let text = canary();
    let started = Instant::now();
    for i in 0..60 {
        let gw = if i % 2 == 0 { &a } else { &b };
        let sms = serde_json::json!({
            "id": format!("flood-{i}"), "from": "+13125559000",
            "to": format!("+1415555{:04}", 4000 + i), "text": text,
        });
        let r = gw
            .post_signed("/webhooks/generic", &sms, GENERIC_SECRET)
            .await;
        assert_eq!(r.status(), 200, "inbound {i} is held, never refused");
        let next = started + Duration::from_millis(100 * (i + 1));
        tokio::time::sleep(next.saturating_duration_since(Instant::now())).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let limited = sender_limited(&a).await + sender_limited(&b).await;
    let passed = 60 - limited;
    // One node alone passes the burst and what refills meanwhile; two
    // nodes that share nothing twice that. The exchange lags 150-300 ms:
    // what each node passes in that window before it hears of the other's
    // messages (a message every 100 ms: a few) goes through twice, and is
    // owed (paid from later refills), so the excess stays that small
    // however long the flood lasts.
    let one_budget = 10.0 + 0.5 * elapsed;
    eprintln!(
        "{passed} of 60 passed the sender limit over two nodes in {elapsed:.1} s \
         (one budget {one_budget:.1}, two {:.1})",
        2.0 * one_budget
    );
    assert!(
        (passed as f64) <= one_budget + 5.0 && (passed as f64) < 2.0 * one_budget - 5.0,
        "{passed} of 60 passed over two nodes; one budget is {one_budget:.1}"
    );
    assert!(passed >= 10, "{passed}: the burst itself must pass");
    assert!(
        sender_limited(&a).await > 0 && sender_limited(&b).await > 0,
        "both nodes limit the sender"
    );

    // The shared rows carry metadata, never the text (the last round is
    // published within one exchange).
    let deadline = Instant::now() + Duration::from_secs(5);
    let rows = loop {
        let rows: u64 = pg
            .sql("flood", "SELECT COUNT(*) FROM spam_events")
            .parse()
            .unwrap();
        if rows >= 60 || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(rows >= 60, "{rows} shared observations");
    assert_eq!(
        pg.sql(
            "flood",
            &format!("SELECT COUNT(*) FROM spam_events WHERE event LIKE '%{text}%'")
        ),
        "0"
    );
    assert_eq!(
        pg.sql(
            "flood",
            "SELECT COUNT(DISTINCT node) FROM spam_events WHERE event LIKE '%+13125559000%'"
        ),
        "2"
    );
}

/// A route's ceiling (the only limit on the gateway's own traffic): burst
/// 10, then one segment every 2 s.
const ROUTE_POLICY: &str = "[classifier]\nmode = \"enforce\"\n\
    [classifier.rate_limits]\nroute = { per_second = 0.5, burst = 10 }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_limit_is_one_limit_over_two_nodes() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("routelimit");
    let (da, db) = (TempDir::new("pg-route-a"), TempDir::new("pg-route-b"));
    let sink = Sink::start(0).await;
    let node = |dir: &Path| {
        let store = format!(
            "{}[delivery]\nrequest_timeout_secs = 3\n",
            pg.store_section(&url)
        );
        write_config_with_policy(dir, Some(&sink), &store, ROUTE_POLICY)
    };
    let a = Gateway::start(&node(&da.0));
    copy_keys(&da.0, &db.0);
    let b = Gateway::spawn(&node(&db.0), a.token.clone());

    // API sends (own traffic: the route's own number), 60 of them 100 ms
    // apart, alternating between the nodes.
    let started = Instant::now();
    let mut passed = 0;
    for i in 0..60 {
        let gw = if i % 2 == 0 { &a } else { &b };
        let r = gw
            .send(serde_json::json!({"to": format!("+1415555{:04}", 5000 + i), "text": "own"}))
            .await;
        match r.status().as_u16() {
            202 => passed += 1,
            429 => {
                let body: serde_json::Value = r.json().await.unwrap();
                assert!(
                    body.to_string().contains("route"),
                    "names the route: {body}"
                );
            }
            s => panic!("send {i}: {s}"),
        }
        let next = started + Duration::from_millis(100 * (i + 1));
        tokio::time::sleep(next.saturating_duration_since(Instant::now())).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let one_budget = 10.0 + 0.5 * elapsed;
    eprintln!(
        "{passed} of 60 own sends passed the route limit over two nodes in {elapsed:.1} s \
         (one budget {one_budget:.1}, two {:.1})",
        2.0 * one_budget
    );
    // As for the flood above: the exchange's lag lets a few through twice.
    assert!(
        (passed as f64) <= one_budget + 5.0 && (passed as f64) < 2.0 * one_budget - 5.0,
        "{passed} of 60 passed over two nodes; one route budget is {one_budget:.1}"
    );
    assert!(passed >= 10, "{passed}: the burst itself must pass");
}

/// A node with the phone as its only route, on the shared database.
pub(crate) fn phone_node(
    dir: &Path,
    sink: &Sink,
    pg: &Postgres,
    url: &str,
    phone: &str,
) -> std::path::PathBuf {
    let store = pg
        .store_section(url)
        .replace("lease_secs = 15\n", "lease_secs = 11\n");
    let extra = format!(
        "{store}[delivery]\nrequest_timeout_secs = 3\ninitial_backoff_ms = 100\nmax_backoff_secs = 1\n\n\
         [private_side]\nwebhook_url = \"{}\"\n\n{}",
        sink.url("/private"),
        android_section(dir, phone, "http://127.0.0.1:9/webhooks/android/phone1")
    );
    write_config(dir, None, &extra)
}

pub(crate) async fn send(gw: &Gateway, to: &str) -> String {
    gw.send_accepted(serde_json::json!({"to": to, "text": "hi phone"}))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_android_phone_runs_on_one_node_and_moves_when_it_dies() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("phone");
    let mock = Mock::start(free_port());
    let (da, db) = (TempDir::new("pg-phone-a"), TempDir::new("pg-phone-b"));
    let sink = Sink::start(0).await;
    let a = Gateway::start(&phone_node(&da.0, &sink, &pg, &url, &mock.url()));
    // A holds the phone before B starts.
    a.wait_holds_channel("android:phone1", WAIT).await;
    copy_keys(&da.0, &db.0);
    let b = Gateway::spawn(
        &phone_node(&db.0, &sink, &pg, &url, &mock.url()),
        a.token.clone(),
    );
    let health = b.wait_cluster_nodes(2, WAIT).await;
    assert!(!b.holds_channel("android:phone1").await, "{health}");

    // Messages accepted by either node go out through the phone once each,
    // all by A: B queues them for the owner.
    let mut ids = Vec::new();
    for i in 0..6 {
        let gw = if i % 2 == 0 { &a } else { &b };
        ids.push(send(gw, &format!("+1415555{:04}", 100 + i)).await);
    }
    for id in &ids {
        assert_eq!(a.wait_status(id, "sent", WAIT).await["status"], "sent");
    }
    let sent = mock.wait_requests("android", "/message", 6).await;
    let posts: Vec<_> = sent.iter().filter(|r| r["method"] == "POST").collect();
    assert_eq!(posts.len(), 6, "each message sent once");
    // Only the owner registered the webhooks (one listing, not two).
    let hooks = mock.wait_requests("android", "/webhooks", 1).await;
    let listings = hooks.iter().filter(|r| r["method"] == "GET").count();
    assert_eq!(listings, 1, "{hooks:#?}");
    let b_logs = b.logs.lock().unwrap().join("\n");
    assert!(b_logs.contains("standing by for its lease"), "B stands by");

    // A dies: B takes the phone over within the lease (11 s) and a heartbeat.
    let killed = Instant::now();
    drop(a.kill());
    b.wait_holds_channel("android:phone1", Duration::from_secs(25))
        .await;
    let took = killed.elapsed();
    assert!(took <= Duration::from_secs(16), "took over after {took:?}");
    let id = send(&b, "+14155550199").await;
    assert_eq!(b.wait_status(&id, "sent", WAIT).await["status"], "sent");
    let deadline = Instant::now() + WAIT;
    let listings = loop {
        let hooks = mock.wait_requests("android", "/webhooks", 1).await;
        let n = hooks.iter().filter(|r| r["method"] == "GET").count();
        if n >= 2 || Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        listings, 2,
        "B registered the webhooks once it held the phone"
    );
    eprintln!("phone moved to the other node {took:?} after the SIGKILL");
}

/// The store's side of a cluster: channel leases taken, renewed, taken
/// over once run out; a held channel's queue entries only for its holder;
/// shared observations tailed by id, without the node's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_and_shared_observations_in_the_store() {
    use gateway::store::{Store, Target};
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("leases");
    let cfg = pg.store_config(&url, 15);
    let (a, b) = tokio::join!(Store::open_postgres(&cfg), Store::open_postgres(&cfg));
    let (a, b) = (a.unwrap().0, b.unwrap().0);
    for s in [&a, &b] {
        s.set_physical(vec!["android:p".into()]);
    }
    let t = gateway::core::clock::now_ms();
    assert_eq!(a.heartbeat(t, t, 60_000).await.unwrap(), ["android:p"]);
    assert!(b.heartbeat(t, t, 60_000).await.unwrap().is_empty());
    assert!(a.owns_route("android:p") && !b.owns_route("android:p"));
    assert!(
        b.owns_route("generic"),
        "a route that is not physical is everyone's"
    );

    // Accepted by the node without the phone: queued unleased, for the holder.
    let mut m = crate::store_backends::message("lease-1", t);
    m.queue = Some(Target::Route("android:p".into()));
    b.insert_message(m).await.unwrap();
    let now = gateway::core::clock::now_ms();
    assert!(b.due(now, 10, Default::default()).await.unwrap().is_empty());
    assert_eq!(a.due(now, 10, Default::default()).await.unwrap().len(), 1);

    // A's lease runs out (no beat for a minute): B takes the phone; A,
    // beating again, holds nothing.
    let later = t + 61_000;
    assert_eq!(b.heartbeat(later, t, 60_000).await.unwrap(), ["android:p"]);
    assert!(a.heartbeat(later + 1, t, 60_000).await.unwrap().is_empty());
    assert!(!a.owns_route("android:p") && b.owns_route("android:p"));
    // A graceful stop hands the lease back at once.
    assert_eq!(b.release_channels().await.unwrap(), 1);
    assert_eq!(
        a.heartbeat(later + 2, t, 60_000).await.unwrap(),
        ["android:p"]
    );
    let (nodes, leases) = a.cluster_view().await.unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(leases.len(), 1);
    assert_eq!(Some(leases[0].node.clone()), a.node_name());

    // Observations: each node reads the other's, in order, never its own.
    let start = a.last_spam_event().await.unwrap();
    a.append_spam_events(&[(t, true, "a1".into()), (t, false, "a2".into())])
        .await
        .unwrap();
    b.append_spam_events(&[(t, true, "b1".into())])
        .await
        .unwrap();
    let seen_by_b: Vec<_> = b
        .spam_events_after(start, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, ok, e)| (ok, e))
        .collect();
    assert_eq!(
        seen_by_b,
        [(true, "a1".to_string()), (false, "a2".to_string())]
    );
    let seen_by_a = a.spam_events_after(start, 100).await.unwrap();
    assert_eq!(seen_by_a.len(), 1);
    assert_eq!(seen_by_a[0].2, "b1");
    assert_eq!(a.prune_spam_events(t + 1).await.unwrap(), 3);
}
