//! Two nodes on one PostgreSQL: a change made through node A (an identity,
//! an API key revocation, a block list entry) takes effect on node B well
//! within a second, by LISTEN/NOTIFY, although B's caches would otherwise
//! hold the old answer for up to 5 s (identities) or 2 s (lists). Prints
//! the measured lags.

use std::time::{Duration, Instant};

use crate::harness::*;
use crate::pg::Postgres;
use crate::postgres::{copy_keys, node_config};
use gateway::envelope::keys;

/// How long a change may take to reach the other node.
const WITHIN: Duration = Duration::from_secs(1);

/// Posts one inbound SMS to `gw`; returns the HTTP status and the id.
async fn inbound(gw: &Gateway, n: usize, from: &str, to: &str) -> (u16, Option<String>) {
    let sms =
        serde_json::json!({"id": format!("coh-{n}"), "from": from, "to": to, "text": "hello"});
    let r = gw
        .post_signed("/webhooks/generic", &sms, GENERIC_SECRET)
        .await;
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().await.unwrap_or_default();
    (status, v["id"].as_str().map(str::to_string))
}

async fn put_identity(gw: &Gateway, address: &str, pk: &keys::PublicKey) {
    let r = gw
        .client()
        .put(gw.url(&format!("/v1/identities/{address}")))
        .bearer_auth(&gw.token)
        .json(&serde_json::json!({"public_key": keys::public_key_b64(pk)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_on_one_node_reach_the_other_within_a_second() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("coherence");
    let sink = Sink::start(0).await;
    let (da, db) = (TempDir::new("coh-a"), TempDir::new("coh-b"));
    let cfg_a = node_config(&da.0, &sink, &pg, &url);
    let a = Gateway::start(&cfg_a);
    copy_keys(&da.0, &db.0);
    let b = Gateway::spawn(&node_config(&db.0, &sink, &pg, &url), a.token.clone());
    let mut n = 0;

    // Identity: B seals to key 1 (and caches it), A registers key 2.
    let to = "+14155550101";
    let (_, pk1) = keys::generate();
    let (_, pk2) = keys::generate();
    put_identity(&a, to, &pk1).await;
    let (status, id) = inbound(&b, n, "+14155556001", to).await;
    n += 1;
    assert_eq!(status, 200);
    let kid_of = |id: &str| {
        pg.sql(
            "coherence",
            &format!("SELECT kid FROM messages WHERE id = '{id}'"),
        )
    };
    assert_eq!(kid_of(&id.unwrap()), keys::kid_of(&pk1));
    put_identity(&a, to, &pk2).await;
    let changed = Instant::now();
    let mut sent = Vec::new();
    while changed.elapsed() < Duration::from_millis(1500) {
        let at = changed.elapsed();
        let (status, id) = inbound(&b, n, "+14155556001", to).await;
        n += 1;
        assert_eq!(status, 200);
        sent.push((at, id.unwrap()));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let kid2 = keys::kid_of(&pk2);
    let first_new = sent
        .iter()
        .position(|(_, id)| kid_of(id) == kid2)
        .expect("B never sealed to the new key");
    assert!(
        sent[first_new..].iter().all(|(_, id)| kid_of(id) == kid2),
        "B went back to the old key"
    );
    let identity_lag = sent[first_new].0;
    assert!(identity_lag < WITHIN, "identity took {identity_lag:?}");

    // Block list: B accepts the sender (and caches its lists), the CLI on
    // A's config blocks it.
    let spammer = "+14155556002";
    assert_eq!(inbound(&b, n, spammer, to).await.0, 200);
    n += 1;
    let out = cli(&cfg_a, &["review", "block", spammer]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let changed = Instant::now();
    let block_lag = loop {
        let at = changed.elapsed();
        let (status, _) = inbound(&b, n, spammer, to).await;
        n += 1;
        if status != 200 {
            assert_eq!(status, 403);
            break at;
        }
        assert!(at < Duration::from_secs(5), "block never reached B");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(block_lag < WITHIN, "block list took {block_lag:?}");
    // The rest of `gateway review` reads the shared database too.
    for args in [["list", "--json"], ["stats", "--json"], ["log", "--json"]] {
        let out = cli(&cfg_a, &[&["review"][..], &args[..]].concat());
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = cli(&cfg_a, &["review", "log", "--json"]);
    let log: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(log[0]["action"], "block");
    assert_eq!(log[0]["target"], spammer);

    // API key: B has the key cached, the CLI on A's config revokes it.
    assert_eq!(
        b.send(serde_json::json!({"to": "+14155550102", "text": "x"}))
            .await
            .status(),
        202
    );
    let out = cli(&cfg_a, &["keys", "api", "revoke", "e2e"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let changed = Instant::now();
    let key_lag = loop {
        let at = changed.elapsed();
        let r = b
            .send(serde_json::json!({"to": "+14155550102", "text": "x"}))
            .await;
        if r.status() == 401 {
            break at;
        }
        assert!(at < Duration::from_secs(5), "revocation never reached B");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(key_lag < WITHIN, "revocation took {key_lag:?}");
    eprintln!(
        "coherence on node B: the first probe seeing the change was sent this long after the change returned on A: identity {identity_lag:?} (probe {}), block list {block_lag:?}, key revocation {key_lag:?}",
        first_new + 1
    );
}
