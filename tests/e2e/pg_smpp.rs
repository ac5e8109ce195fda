//! SMPP on a cluster of two nodes on one PostgreSQL: an ESME (smpplib)
//! bound to node A's SMPP server submits, the message is delivered, and
//! the delivery receipt reaches the ESME although the status arrived at
//! node B; with binds of one client on both nodes each receipt goes out
//! once; an inbound message for a client bound to node A only, received
//! by node B, goes out from node A at its first attempt; an `[[smpp.client]]` route configured on both nodes binds to the
//! SMSC from the node holding its lease only.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::pg::Postgres;
use crate::postgres::copy_keys;
use crate::smpp::{
    FakeSmsc, PyReceiver, add_client, fixture, inbound, port_of, smpp_addr, wait_bound,
};

const WAIT: Duration = Duration::from_secs(40);

/// A node with an SMPP server (and the generic route to `sink`) on the
/// shared database.
fn server_node(dir: &Path, sink: &Sink, pg: &Postgres, url: &str) -> PathBuf {
    let extra = format!(
        "{}[delivery]\nrequest_timeout_secs = 3\ninitial_backoff_ms = 200\nmax_backoff_secs = 2\n\
         [smpp.server]\nlisten = \"127.0.0.1:0\"\nthroughput = 500.0\n",
        pg.store_section(url)
    );
    write_config(dir, Some(sink), &extra)
}

/// smpplib as an ESME: binds (transceiver) to `port` as `system_id`,
/// submits `text` with receipts asked for, and waits `timeout` seconds
/// for them.
fn esme(port: &str, system_id: &str, password: &str, text: &str, timeout: &str) -> Child {
    Command::new("python3")
        .arg(fixture("smpplib_client.py"))
        .args([
            "--port",
            port,
            "--system-id",
            system_id,
            "--password",
            password,
        ])
        .args(["--source", "+14155550142", "--dest", "+14155550101"])
        .args(["--text", text, "--timeout", timeout])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 with smpplib (pip install -r .ci/requirements.txt)")
}

/// The ESME's two JSON lines: the submitted ids, then the receipts.
fn esme_lines(out: std::process::ChildStdout) -> impl Iterator<Item = serde_json::Value> {
    BufReader::new(out)
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
}

/// The message ids the ESME script reported for its submit.
fn submitted_ids(first: &serde_json::Value) -> Vec<String> {
    first["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Sends the generic SMSC's "delivered" for the newest message the sink got.
async fn delivered_at(gw: &Gateway, sink: &Sink, n: usize) {
    let got = sink.wait_for("/sms", n, WAIT).await;
    assert_eq!(got.len(), n, "the sink did not get message {n}");
    let id = got[n - 1].json()["id"].as_str().unwrap().to_string();
    gw.report_generic_status(&id, "delivered").await;
}

const TEXT: &str = "Hello from an ESME on a cluster: a message long enough to need two SMS parts, submitted to node A and receipted back over SMPP, part by part, by whichever node claims the receipt first.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_esme_on_node_a_gets_its_receipts_once_across_the_cluster() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("smppesme");
    let sink = Sink::start(0).await;
    let (da, db) = (TempDir::new("pg-smpp-a"), TempDir::new("pg-smpp-b"));
    let acfg = server_node(&da.0, &sink, &pg, &url);
    let a = Gateway::start(&acfg);
    copy_keys(&da.0, &db.0);
    let bcfg = server_node(&db.0, &sink, &pg, &url);
    let b = Gateway::spawn(&bcfg, a.token.clone());
    // `gateway smpp client add` on PostgreSQL: one client for the cluster.
    let password = add_client(&acfg, "app1", &["--throughput", "100"]);
    let out = cli(&bcfg, &["smpp", "client", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["system_id"], "app1", "{listed}");
    let (pa, pb) = (port_of(&smpp_addr(&a).await), port_of(&smpp_addr(&b).await));

    // The ESME binds to node A and submits; the carrier's "delivered"
    // arrives at node B; node A (where the ESME is bound) sends the
    // receipts.
    let started = Instant::now();
    let mut child = esme(&pa, "app1", &password, TEXT, "40");
    let mut lines = esme_lines(child.stdout.take().unwrap());
    let first = lines.next().unwrap();
    let ids = submitted_ids(&first);
    assert_eq!(ids.len(), 2, "{first}");
    let got = sink.wait_for("/sms", 1, WAIT).await;
    assert_eq!(got[0].json()["text"], TEXT, "reassembled and delivered");
    delivered_at(&b, &sink, 1).await;
    let done = lines.next().unwrap();
    let mut rids: Vec<String> = done["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["stat"], "DELIVRD", "{done}");
            r["id"].as_str().unwrap().to_string()
        })
        .collect();
    rids.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(rids, want, "one receipt per part");
    assert!(child.wait().unwrap().success());
    eprintln!(
        "receipts reached the ESME {:?} after its submit",
        started.elapsed()
    );

    // Binds of app1 on both nodes: each receipt goes out once, to one of
    // them (the node that claimed the owed row).
    let rx_a = PyReceiver::start(&pa, "app1", &password, &["--bind", "receiver"]);
    let rx_b = PyReceiver::start(&pb, "app1", &password, &["--bind", "receiver"]);
    assert_eq!(rx_a.wait("bound", 1, WAIT).await.len(), 1);
    assert_eq!(rx_b.wait("bound", 1, WAIT).await.len(), 1);
    let mut child = esme(&pb, "app1", &password, TEXT, "15");
    let mut lines = esme_lines(child.stdout.take().unwrap());
    let first = lines.next().unwrap();
    let ids = submitted_ids(&first);
    assert_eq!(ids.len(), 2, "{first}");
    delivered_at(&a, &sink, 2).await;
    // Until the owed row is gone, then two more full passes of both nodes.
    let deadline = Instant::now() + WAIT;
    while pg.sql("smppesme", "SELECT COUNT(*) FROM smpp_receipts") != "0" {
        assert!(Instant::now() < deadline, "receipts still owed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(11)).await;
    let done = lines.next().unwrap();
    let _ = child.wait();
    let mut all: Vec<String> = done["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rx_a.of("receipt").iter())
        .chain(rx_b.of("receipt").iter())
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    all.sort();
    let mut want = ids.clone();
    want.sort();
    eprintln!(
        "receipts over three binds: ESME on B {}, receiver on A {}, receiver on B {}",
        done["receipts"].as_array().map_or(0, Vec::len),
        rx_a.of("receipt").len(),
        rx_b.of("receipt").len()
    );
    assert_eq!(
        all,
        want,
        "each part's receipt once over three binds on two nodes (ESME {}, A {}, B {})",
        done["receipts"],
        rx_a.of("receipt").len(),
        rx_b.of("receipt").len()
    );

    // Inbound to a number of a client bound to node A only, received by
    // node B: B leaves it to A (no attempt from B without a bind).
    let rx_password = add_client(&acfg, "app-rx", &["--address", "+14155550160"]);
    let rx = PyReceiver::start(&pa, "app-rx", &rx_password, &["--bind", "receiver"]);
    assert_eq!(rx.wait("bound", 1, WAIT).await.len(), 1);
    // Both nodes' directories know the new client (refreshed every 2 s; a
    // node that does not know it yet would retry, not drop, the message).
    for gw in [&a, &b] {
        let deadline = Instant::now() + WAIT;
        loop {
            let h = gw.health().await;
            if !h["smpp"]["server"]["clients"]["app-rx"].is_null() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "a node never learned of app-rx: {h}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let mo = "A reply to a number an SMS application owns, arriving at node B.";
    let id = inbound(&b, "mo-1", "+14155550100", "+14155550160", mo).await;
    let got = rx.wait("message", 1, WAIT).await;
    assert_eq!(
        got.len(),
        1,
        "the receiver on A got nothing: {} / {}",
        b.message(&id).await,
        pg.sql(
            "smppesme",
            "SELECT target, lease_owner, lease_until, attempts, next_attempt_at, dead FROM queue"
        )
    );
    assert_eq!(got[0]["text"], mo);
    let m = a.wait_status(&id, "delivered", WAIT).await;
    assert_eq!(m["status"], "delivered", "{m}");
    let retried = m["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == "retrying")
        .count();
    assert_eq!(retried, 0, "an attempt without a bind: {m}");
}

/// A node whose only route is the SMPP client bind `up` to the fake SMSC.
fn client_node(dir: &Path, pg: &Postgres, url: &str, smsc: &FakeSmsc) -> PathBuf {
    let pw = dir.join("smpp-pw");
    std::fs::write(&pw, "secret").unwrap();
    let extra = format!(
        "{}[delivery]\nrequest_timeout_secs = 3\ninitial_backoff_ms = 200\nmax_backoff_secs = 2\n\
         [[smpp.client]]\nname = \"up\"\nhost = \"127.0.0.1:{}\"\nsystem_id = \"gw\"\nsecret_file = \"{}\"\n\
         from = \"+14155550123\"\nbinds = 1\n",
        pg.store_section(url),
        smsc.port,
        pw.display()
    );
    write_config(dir, None, &extra)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smpp_client_route_on_two_nodes_binds_from_one() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("smppbind");
    let (da, db) = (TempDir::new("pg-smppc-a"), TempDir::new("pg-smppc-b"));
    let smsc = FakeSmsc::start(&da.0, &[]);
    let a = Gateway::start(&client_node(&da.0, &pg, &url, &smsc));
    wait_bound(&a).await;
    assert!(
        a.holds_channel("smpp:up").await,
        "{}",
        a.cluster_health().await
    );
    copy_keys(&da.0, &db.0);
    let b = Gateway::spawn(&client_node(&db.0, &pg, &url, &smsc), a.token.clone());
    let health = b.wait_cluster_nodes(2, WAIT).await;
    assert!(!b.holds_channel("smpp:up").await, "{health}");

    // Messages accepted by either node go out over A's bind, and the
    // SMSC's receipts (to A's bind) make them delivered.
    let mut ids = Vec::new();
    for i in 0..4 {
        let gw = if i % 2 == 0 { &a } else { &b };
        ids.push(
            gw.send_accepted(
                serde_json::json!({"to": format!("+1415555{:04}", 110 + i), "text": "over smpp"}),
            )
            .await,
        );
    }
    for id in &ids {
        let m = a.wait_status(id, "delivered", WAIT).await;
        assert_eq!(m["status"], "delivered", "{m}");
    }
    let events = smsc.events();
    let binds = events.iter().filter(|e| e["event"] == "bind").count();
    let submits = events.iter().filter(|e| e["event"] == "submit").count();
    assert_eq!(binds, 1, "one bind for the cluster: {events:#?}");
    assert_eq!(submits, 4, "each message submitted once: {events:#?}");
    let b_logs = b.logs.lock().unwrap().join("\n");
    assert!(!b_logs.contains("\"SMPP bound\""), "B never binds");
    assert!(b_logs.contains("standing by for its lease"), "B stands by");
}
