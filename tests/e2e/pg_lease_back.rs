//! A node that lost a channel's lease while running (it stalled past the
//! lease and another node took the channel) stops the channel, stands by,
//! and takes it back when the other node dies, without a restart.

use std::time::{Duration, Instant};

use crate::carriers::{Mock, free_port};
use crate::cluster::{cluster_health, copy_keys, holds, phone_node, send};
use crate::harness::*;
use crate::pg::Postgres;

const WAIT: Duration = Duration::from_secs(30);
const PHONE: &str = "android:phone1";

/// Waits until `gw` holds the phone (or `within` passes); returns how long.
async fn until_held(gw: &Gateway, within: Duration) -> Duration {
    let start = Instant::now();
    while !holds(gw, PHONE).await && start.elapsed() < within {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(holds(gw, PHONE).await, "{}", cluster_health(gw).await);
    start.elapsed()
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
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!holds(&a, PHONE).await, "{}", cluster_health(&a).await);
    assert!(holds(&b, PHONE).await, "{}", cluster_health(&b).await);
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
