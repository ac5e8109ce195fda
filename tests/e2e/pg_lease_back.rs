//! A node that lost a channel's lease while running (it stalled past the
//! lease and another node took the channel) stops the channel, stands by,
//! and takes it back when the other node dies, without a restart.

use std::time::{Duration, Instant};

use crate::carriers::{Mock, free_port};
use crate::cluster::{copy_keys, phone_node, send};
use crate::harness::*;
use crate::pg::Postgres;

const WAIT: Duration = Duration::from_secs(30);
const PHONE: &str = "android:phone1";

/// Waits until `gw` holds the phone (or `within` passes); returns how long.
async fn until_held(gw: &Gateway, within: Duration) -> Duration {
    gw.wait_holds_channel(PHONE, within).await
}

/// The mock phone's webhook listings: one per start of the channel.
async fn listings(mock: &Mock, at_least: usize) -> usize {
    let deadline = Instant::now() + WAIT;
    loop {
        let hooks = mock.wait_requests("android", "/webhooks", 1).await;
        let n = hooks.iter().filter(|r| r["method"] == "GET").count();
        if n >= at_least || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `gw`'s health (its next heartbeat's view) no longer says it
/// holds `channel`.
async fn given_up(gw: &Gateway, channel: &str) {
    let deadline = Instant::now() + WAIT;
    while gw.holds_channel(channel).await && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !gw.holds_channel(channel).await,
        "{}",
        gw.cluster_health().await
    );
}

fn signal(gw: &Gateway, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &gw.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_node_gives_the_channel_up_and_takes_it_back_later() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("leaseback");
    let mock = Mock::start(free_port());
    let (da, db) = (TempDir::new("pg-back-a"), TempDir::new("pg-back-b"));
    let sink = Sink::start(0).await;
    let a = Gateway::start(&phone_node(&da.0, &sink, &pg, &url, &mock.url()));
    until_held(&a, WAIT).await;
    copy_keys(&da.0, &db.0);
    let b = Gateway::spawn(
        &phone_node(&db.0, &sink, &pg, &url, &mock.url()),
        a.token.clone(),
    );
    assert_eq!(listings(&mock, 1).await, 1);

    // A stalls past the lease (11 s): B takes the phone.
    signal(&a, "-STOP");
    let took = until_held(&b, Duration::from_secs(30)).await;
    assert_eq!(listings(&mock, 2).await, 2, "B started the phone");
    // A wakes up: it must see the lease gone and not drive the phone too.
    signal(&a, "-CONT");
    let deadline = Instant::now() + WAIT;
    let lost = loop {
        let logs = a.logs.lock().unwrap().join("\n");
        if logs.contains("channel lease lost") || Instant::now() > deadline {
            break logs.contains("channel lease lost");
        }
        drop(logs);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(lost, "A noticed the lost lease");
    given_up(&a, PHONE).await;
    assert!(b.holds_channel(PHONE).await, "{}", b.cluster_health().await);
    assert_eq!(
        pg.sql("leaseback", "SELECT COUNT(*) FROM channel_leases WHERE until > (extract(epoch from now()) * 1000)::BIGINT"),
        "1"
    );
    assert_eq!(
        listings(&mock, 2).await,
        2,
        "A did not start the phone again"
    );
    // Messages accepted by A meanwhile go out through B, once.
    let id = send(&a, "+14155550177").await;
    assert_eq!(b.wait_status(&id, "sent", WAIT).await["status"], "sent");

    // B dies: A, never restarted, takes the phone back and starts it.
    drop(b.kill());
    let back = until_held(&a, Duration::from_secs(30)).await;
    assert_eq!(listings(&mock, 3).await, 3, "A started the phone again");
    let id = send(&a, "+14155550178").await;
    assert_eq!(a.wait_status(&id, "sent", WAIT).await["status"], "sent");
    let posts = mock
        .wait_requests("android", "/message", 2)
        .await
        .iter()
        .filter(|r| r["method"] == "POST")
        .count();
    assert_eq!(posts, 2, "each message sent once");
    eprintln!("B took the phone {took:?} after A stalled; A took it back {back:?} after B died");
}

/// A node with the simulated modem `sim1` (over TCP) as its only route.
fn modem_node(
    dir: &std::path::Path,
    sink: &Sink,
    pg: &Postgres,
    url: &str,
    tcp: u16,
) -> std::path::PathBuf {
    let store = pg
        .store_section(url)
        .replace("lease_secs = 15\n", "lease_secs = 11\n");
    let extra = format!(
        "{store}[delivery]\nrequest_timeout_secs = 3\ninitial_backoff_ms = 200\nmax_backoff_secs = 1\n\n\
         [routing]\ndefault = \"sim1\"\n\n[[modems]]\nname = \"sim1\"\nnumber = \"+14155550101\"\n\
         tcp = \"127.0.0.1:{tcp}\"\npace_per_minute = 0\ncommand_timeout_ms = 1000\nsend_timeout_secs = 3\n\
         health_check_secs = 1\nreconnect_max_secs = 1\n"
    );
    write_config(dir, Some(sink), &extra)
}

/// Waits until the modem simulator has sent `n` messages.
async fn sent_by_modem(sim: &crate::modem::Sim, n: usize) {
    let deadline = Instant::now() + WAIT;
    while sim.sent().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sim.sent().len(), n, "{:?}", sim.sent());
}

/// The same with a modem: the stalled node's modem stops, and it opens the
/// modem again (and sends) once it takes the lease back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_node_opens_its_modem_again_when_the_lease_comes_back() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("modemback");
    let sim = crate::modem::Sim::start(None);
    let (da, db) = (TempDir::new("pg-mback-a"), TempDir::new("pg-mback-b"));
    let sink = Sink::start(0).await;
    let a = Gateway::start(&modem_node(&da.0, &sink, &pg, &url, sim.tcp));
    a.wait_holds_channel("sim1", WAIT).await;
    send(&a, "+14155550123").await;
    sent_by_modem(&sim, 1).await;
    copy_keys(&da.0, &db.0);
    let b = Gateway::spawn(
        &modem_node(&db.0, &sink, &pg, &url, sim.tcp),
        a.token.clone(),
    );

    signal(&a, "-STOP");
    b.wait_holds_channel("sim1", WAIT).await;
    signal(&a, "-CONT");
    let deadline = Instant::now() + WAIT;
    while !a
        .logs
        .lock()
        .unwrap()
        .join("\n")
        .contains("channel lease lost")
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    given_up(&a, "sim1").await;
    // Accepted by A, sent by B's modem.
    let id = send(&a, "+14155550124").await;
    sent_by_modem(&sim, 2).await;
    assert_eq!(b.wait_status(&id, "sent", WAIT).await["status"], "sent");

    drop(b.kill());
    a.wait_holds_channel("sim1", WAIT).await;
    let id = send(&a, "+14155550125").await;
    sent_by_modem(&sim, 3).await;
    assert_eq!(a.wait_status(&id, "sent", WAIT).await["status"], "sent");
}
