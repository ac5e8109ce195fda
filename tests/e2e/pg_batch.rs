//! Group commit on PostgreSQL (`store/postgres/batcher.rs`), end to end:
//! concurrent sends share transactions; a send whose insert fails (a
//! trigger poisons one recipient) fails alone while the neighbours of its
//! batch are accepted and delivered; concurrent requests with one
//! Idempotency-Key stand for one message; two carrier reports for one
//! message at once are applied once each, in turn.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::future::join_all;

use crate::harness::*;
use crate::pg::Postgres;
use crate::postgres::node_config;

const WAIT: Duration = Duration::from_secs(60);
const POISONED: &str = "+14155550666";

/// The largest group commit the node logged (debug level).
fn largest_batch(gw: &Gateway) -> usize {
    gw.logs
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("postgres group commit"))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["jobs"].as_u64())
        .max()
        .unwrap_or(0) as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_commits_and_a_failing_one_fails_alone() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("batch");
    let dir = TempDir::new("pg-batch");
    let sink = Sink::start(0).await;
    let cfg = node_config(&dir.0, &sink, &pg, &url);
    let gw = Gateway::start(&cfg);
    // One recipient's insert fails inside the database, as a constraint
    // or a lost connection would fail one job of a batch.
    pg.sql(
        "batch",
        &format!(
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'poisoned'; END $$; \
             CREATE TRIGGER poison BEFORE INSERT ON messages FOR EACH ROW \
             WHEN (NEW.recipient = '{POISONED}') EXECUTE FUNCTION poison();"
        ),
    );

    // Three rounds of 40 sends at once, the poisoned one in the middle.
    let mut accepted = Vec::new();
    for round in 0..3 {
        let sends = (0..40).map(|i| {
            let to = if i == 20 {
                POISONED.to_string()
            } else {
                format!("+1415555{:04}", round * 100 + i)
            };
            let gw = &gw;
            async move {
                let r = gw
                    .send(serde_json::json!({"to": to, "text": "batch"}))
                    .await;
                let status = r.status().as_u16();
                let v: serde_json::Value = r.json().await.unwrap_or_default();
                (to, status, v["id"].as_str().map(String::from))
            }
        });
        for (to, status, id) in join_all(sends).await {
            if to == POISONED {
                assert!(status >= 500, "the poisoned send was answered {status}");
            } else {
                assert_eq!(status, 202, "a neighbour of the poisoned send failed");
                accepted.push(id.unwrap());
            }
        }
    }
    assert_eq!(accepted.len(), 117);
    let got = sink.wait_for("/sms", accepted.len(), WAIT).await;
    let delivered: HashSet<String> = got
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(delivered.len(), accepted.len());
    assert_eq!(got.len(), accepted.len(), "a message was sent twice");
    assert!(accepted.iter().all(|id| delivered.contains(id)));
    assert_eq!(pg.sql("batch", "SELECT COUNT(*) FROM messages"), "117");
    assert_eq!(
        pg.sql(
            "batch",
            &format!("SELECT COUNT(*) FROM messages WHERE recipient = '{POISONED}'")
        ),
        "0"
    );
    // Every outcome recorded (through the batcher too), the queue empty.
    for id in &accepted {
        gw.wait_status(id, "sent", WAIT).await;
    }
    assert_eq!(pg.sql("batch", "SELECT COUNT(*) FROM queue"), "0");
    // Each body erased in the commit that recorded its acknowledgement.
    assert_eq!(
        pg.sql(
            "batch",
            "SELECT COUNT(*) FROM messages WHERE sealed IS NOT NULL"
        ),
        "0"
    );
    assert!(
        largest_batch(&gw) > 1,
        "no two writes shared a commit: {}",
        largest_batch(&gw)
    );

    // Ten requests at once with one Idempotency-Key: one message; the
    // same key with another body at the same time: a conflict.
    let body = serde_json::json!({"to": "+14155550777", "text": "once"});
    let mut keyed: Vec<_> = (0..10)
        .map(|_| gw.send_keyed("order-7", body.clone()))
        .collect();
    keyed.push(gw.send_keyed(
        "order-7",
        serde_json::json!({"to": "+14155550777", "text": "other"}),
    ));
    let mut ids = HashSet::new();
    let mut conflicts = 0;
    for r in join_all(keyed).await {
        match r.status().as_u16() {
            202 => {
                let v: serde_json::Value = r.json().await.unwrap();
                ids.insert(v["id"].as_str().unwrap().to_string());
            }
            422 => conflicts += 1,
            other => panic!("keyed send answered {other}"),
        }
    }
    assert_eq!(ids.len(), 1, "one key, several messages: {ids:?}");
    // Whichever body claimed the key first, every other request agrees.
    assert!(conflicts == 1 || conflicts == 10, "{conflicts}");
    assert_eq!(
        pg.sql(
            "batch",
            "SELECT COUNT(*) FROM messages WHERE recipient = '+14155550777'"
        ),
        "1"
    );

    // Each accepted message reported delivered twice at once by the
    // carrier: one status change and one history entry each.
    let reports = accepted.iter().flat_map(|id| {
        let body = serde_json::json!({"id": id, "status": "delivered"});
        [body.clone(), body].map(|b| {
            let gw = &gw;
            async move {
                gw.post_signed("/webhooks/generic/status", &b, GENERIC_SECRET)
                    .await
                    .status()
                    .as_u16()
            }
        })
    });
    let answers = join_all(reports).await;
    assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
    assert_eq!(
        pg.sql(
            "batch",
            "SELECT COUNT(*) FROM messages WHERE status = 'delivered'"
        ),
        "117"
    );
    assert_eq!(
        pg.sql(
            "batch",
            "SELECT COUNT(*) FROM message_events WHERE status = 'delivered'"
        ),
        "117"
    );
    let (status, logs) = gw.terminate();
    assert!(status.success(), "{:?}", logs.lock().unwrap());
}

/// With `keep_after_delivery_secs`, the acknowledgement's commit (the
/// status UPDATE that settles the body) schedules the erasure instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_body_is_scheduled_for_erasure_with_its_status() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("keep");
    let dir = TempDir::new("pg-keep");
    let sink = Sink::start(0).await;
    let cfg = node_config(&dir.0, &sink, &pg, &url);
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[privacy]\nkeep_after_delivery_secs = 3600\n");
    std::fs::write(&cfg, text).unwrap();
    let gw = Gateway::start(&cfg);
    let id = gw
        .send_accepted(serde_json::json!({"to": "+14155550101", "text": "keep"}))
        .await;
    gw.wait_status(&id, "sent", WAIT).await;
    let row = pg.sql(
        "keep",
        "SELECT sealed IS NOT NULL, erase_at - updated_at FROM messages",
    );
    assert_eq!(row, "t|3600000");
}
