//! The store's message path, written once and run against both backends:
//! SQLite in a temporary directory and a real PostgreSQL started by the
//! test. Then what only several nodes on PostgreSQL have: queue claims and
//! a lease that another node takes over with the same attempt id.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use gateway::core::metrics::Metrics;
use gateway::core::pseudonym::Pseudonyms;
use gateway::store::config::Synchronous;
use gateway::store::fallback::FallbackTimer;
use gateway::store::listing::MessageFilter;
use gateway::store::parts::NewPart;
use gateway::store::{
    Idempotency, InsertOutcome, MessageStatus, NewMessage, StatusReport, Store, Target,
    WriterThread,
};

use super::harness::TempDir;
use super::pg::Postgres;

pub(crate) fn message(id: &str, at: i64) -> NewMessage {
    NewMessage {
        id: id.into(),
        direction: "outbound",
        channel: "sms",
        adapter: Some("generic".into()),
        sender: "+14155550100".into(),
        recipient: "+14155550101".into(),
        segments: 1,
        encoding: "gsm7".into(),
        size_class: 64,
        status: MessageStatus::Queued,
        created_at: at,
        expires_at: Some(at + 3_600_000),
        kid: "k1".into(),
        header: vec![1, 2, 3],
        sealed: vec![9; 32],
        carrier_id: None,
        queue: Some(Target::Route("generic".into())),
        deliver_to: None,
        verdict: None,
        flag_reasons: None,
        idempotency: None,
        transit: false,
        status_callback: None,
        tenant: None,
    }
}

fn now() -> i64 {
    gateway::core::clock::now_ms()
}

/// The operations every backend must answer alike.
async fn message_path(store: &Store) {
    let t = now();
    store.ping().await.unwrap();
    // Idempotent insert: carrier id and API idempotency key.
    let mut m = message("m1", t);
    m.carrier_id = Some(("generic".into(), "c-1".into()));
    m.idempotency = Some(Idempotency {
        scope: "key-a".into(),
        key: "idem-1".into(),
        body_hash: "h1".into(),
    });
    assert_eq!(
        store.insert_message(m.clone()).await.unwrap(),
        InsertOutcome::Inserted
    );
    let mut again = message("m1b", t);
    again.carrier_id = Some(("generic".into(), "c-1".into()));
    assert_eq!(
        store.insert_message(again).await.unwrap(),
        InsertOutcome::Duplicate { id: "m1".into() }
    );
    let mut same_key = message("m1c", t);
    same_key.idempotency = m.idempotency.clone();
    assert_eq!(
        store.insert_message(same_key.clone()).await.unwrap(),
        InsertOutcome::Duplicate { id: "m1".into() }
    );
    same_key.idempotency.as_mut().unwrap().body_hash = "other".into();
    assert_eq!(
        store.insert_message(same_key).await.unwrap(),
        InsertOutcome::IdempotencyConflict
    );
    assert_eq!(
        store
            .idempotent(m.idempotency.clone().unwrap(), t)
            .await
            .unwrap(),
        Some(InsertOutcome::Duplicate { id: "m1".into() })
    );
    assert_eq!(store.queue_depth().await.unwrap(), (1, 0));

    // Due, excluded while in flight, rescheduled, due again with its count.
    let due = store.due(now(), 10, HashSet::new()).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].message_id.as_str(), due[0].attempts), ("m1", 0));
    assert_eq!(due[0].header, vec![1, 2, 3]);
    assert_eq!(due[0].sealed.as_deref(), Some(&[9u8; 32][..]));
    let in_flight = HashSet::from(["m1".to_string()]);
    assert!(store.due(now(), 10, in_flight).await.unwrap().is_empty());
    store
        .reschedule("m1".into(), 1, now() + 60_000, "http_503".into())
        .await
        .unwrap();
    assert!(
        store
            .due(now(), 10, HashSet::new())
            .await
            .unwrap()
            .is_empty()
    );
    let next = store.next_due_after(now()).await.unwrap().unwrap();
    assert!(next > now() + 50_000, "{next}");
    assert_eq!(
        store
            .make_due(Target::Route("generic".into()))
            .await
            .unwrap(),
        1
    );
    let due = store.due(now() + 1, 10, HashSet::new()).await.unwrap();
    assert_eq!(due[0].attempts, 1, "the retry's attempt id is m1#2");

    // The worker's success: sent, the queue entry gone, the body erased.
    let mut sent = StatusReport::new(MessageStatus::Sent, None);
    sent.finish_queue = true;
    sent.carrier_id = Some("far-1".into());
    let applied = store
        .report_status("m1".into(), sent)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (applied.before, applied.after),
        (MessageStatus::Queued, MessageStatus::Sent)
    );
    assert_eq!(store.queue_depth().await.unwrap(), (0, 0));
    assert_eq!(
        store
            .id_by_carrier_id("far-1".into())
            .await
            .unwrap()
            .as_deref(),
        Some("m1")
    );
    // Forward only: delivered moves, a late `sent` is kept but changes nothing.
    let d = store
        .report_status(
            "m1".into(),
            StatusReport::new(MessageStatus::Delivered, None),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.moved(), Some(MessageStatus::Delivered));
    let late = store
        .report_status(
            "m1".into(),
            StatusReport::new(MessageStatus::Sent, Some("retry".into())),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(late.moved(), None);
    let view = store.message("m1".into()).await.unwrap().unwrap();
    assert_eq!(view.status, MessageStatus::Delivered);
    assert!(
        !view.body_stored,
        "acknowledged bodies are erased in the same commit"
    );
    let history: Vec<(&str, bool)> = view
        .history
        .iter()
        .map(|e| (e.status.as_str(), e.late))
        .collect();
    assert_eq!(
        history,
        [
            ("queued", false),
            ("retrying", false),
            ("sent", false),
            ("delivered", false),
            ("sent", true)
        ]
    );
    assert!(
        store
            .report_status("nope".into(), StatusReport::new(MessageStatus::Sent, None))
            .await
            .unwrap()
            .is_none()
    );

    // Dead letters and the operator's retry.
    store.insert_message(message("m2", now())).await.unwrap();
    let dead = store
        .dead_letter("m2".into(), 5, "http_500".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dead.after, MessageStatus::Dead);
    assert_eq!(store.queue_depth().await.unwrap(), (0, 1));
    let listed = store.dead_letters(10, None).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].attempts, Some(5));
    assert!(store.retry_dead("m2".into()).await.unwrap());
    assert!(!store.retry_dead("m2".into()).await.unwrap());
    assert_eq!(store.queue_depth().await.unwrap(), (1, 0));
    assert_eq!(
        store.message("m2".into()).await.unwrap().unwrap().status,
        MessageStatus::Queued
    );

    // Listing, newest first, a page at a time; the queue as health sees it.
    let first = MessageFilter {
        limit: 1,
        ..MessageFilter::default()
    };
    let (page, end) = store.list_messages(first.clone()).await.unwrap();
    assert_eq!(
        page.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["m2"]
    );
    let next = MessageFilter {
        after: end,
        ..first.clone()
    };
    let (page, end) = store.list_messages(next).await.unwrap();
    assert_eq!(
        (page[0].id.as_str(), page[0].status),
        ("m1", MessageStatus::Delivered)
    );
    assert!(end.is_none(), "the last page");
    let queued = MessageFilter {
        status: Some(MessageStatus::Queued),
        limit: 10,
        ..MessageFilter::default()
    };
    assert_eq!(store.list_messages(queued).await.unwrap().0.len(), 1);
    let chart = store.activity(now(), 60_000, 3).await.unwrap();
    assert_eq!(chart.queued, 1);
    assert_eq!(
        chart.buckets[2],
        [1, 0, 0, 1],
        "m1 delivered, m2 on the way"
    );
    let health = store.queue_health(now(), 60_000).await.unwrap();
    assert!(health.troubled.is_empty(), "{health:?}");

    // Parts waiting for their siblings; a tenant's accepted count.
    let part = |n: u8| NewPart {
        adapter: "modem:a".into(),
        sender: "+14155550100".into(),
        arrived_at: t + i64::from(n),
        kid: "k1".into(),
        header: vec![n],
        sealed: vec![n; 8],
    };
    let p1 = store.insert_part(part(1)).await.unwrap();
    let p2 = store.insert_part(part(2)).await.unwrap();
    let kept = store.parts_of("modem:a".into()).await.unwrap();
    assert_eq!(kept.iter().map(|p| p.id).collect::<Vec<_>>(), [p1, p2]);
    assert_eq!(kept[1].sealed, vec![2; 8]);
    store.delete_parts(vec![p1, p2]).await.unwrap();
    assert!(store.parts_of("modem:a".into()).await.unwrap().is_empty());
    let mut owned = message("m3", now());
    owned.tenant = Some("acme".into());
    owned.queue = None;
    store.insert_message(owned).await.unwrap();
    assert_eq!(store.accepted_since("acme".into(), t).await.unwrap(), 1);
    assert_eq!(store.accepted_since("other".into(), t).await.unwrap(), 0);

    // Pseudonymisation: the delivered message's recipient (its body gone,
    // so its header too); the queued one waits; the same pseudonym
    // whichever backend (or node) ran the pass.
    let keys = Arc::new(Pseudonyms::new([7; 32]));
    let done = store.pseudonymise(now() + 1, keys.clone()).await.unwrap();
    assert_eq!((done.messages, done.headers), (2, 1), "{done:?}");
    let m1 = store.message("m1".into()).await.unwrap().unwrap();
    assert_eq!(m1.to, keys.address("+14155550101"));
    assert!(m1.to.starts_with("p:"));
    let m2 = store.message("m2".into()).await.unwrap().unwrap();
    assert_eq!(m2.to, "+14155550101", "a queued message keeps its number");

    // Status callbacks: owed in the status change's commit, the oldest of
    // a message first, retried later, then the next.
    let mut cb = message("m4", now());
    cb.queue = None;
    cb.status_callback = Some("http://127.0.0.1:9/cb".into());
    store.insert_message(cb).await.unwrap();
    for st in [MessageStatus::Sent, MessageStatus::Delivered] {
        store
            .report_status("m4".into(), StatusReport::new(st, None))
            .await
            .unwrap();
    }
    let owed = store.due_callbacks(now(), 10).await.unwrap();
    assert_eq!(
        owed.iter().map(|c| c.status.as_str()).collect::<Vec<_>>(),
        ["sent"]
    );
    store
        .callback_retry(owed[0].id, 1, now() + 60_000)
        .await
        .unwrap();
    assert!(store.due_callbacks(now(), 10).await.unwrap().is_empty());
    assert!(store.next_callback_after(now()).await.unwrap().unwrap() > now() + 50_000);
    store.callback_done(owed[0].id).await.unwrap();
    let owed = store.due_callbacks(now(), 10).await.unwrap();
    assert_eq!(
        (owed[0].status.as_str(), owed[0].attempts),
        ("delivered", 0)
    );
    store.callback_done(owed[0].id).await.unwrap();
    assert!(store.due_callbacks(now(), 10).await.unwrap().is_empty());

    // RCS fallback timers: written with the message, claimed when due,
    // retried, and turned into the SMS once.
    let mut rcs = message("m5", now());
    rcs.channel = "rcs";
    rcs.queue = Some(Target::Route("rbm".into()));
    let timer = FallbackTimer {
        sms_route: "generic".into(),
        due_at: now() - 1,
    };
    assert_eq!(
        store.insert_with_fallback(rcs, Some(timer)).await.unwrap(),
        InsertOutcome::Inserted
    );
    let due = store.due_fallbacks(now(), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].id.as_str(), due[0].revoking, due[0].accepted),
        ("m5", false, false)
    );
    store.fallback_revoking("m5".into()).await.unwrap();
    store
        .fallback_retry("m5".into(), 1, now() + 60_000, "rbm_503".into())
        .await
        .unwrap();
    assert!(store.due_fallbacks(now(), 10).await.unwrap().is_empty());
    assert_eq!(
        store.note_read("m5".into(), "rbm").await.unwrap(),
        Some(true)
    );
    assert_eq!(
        store.note_read("m5".into(), "rbm").await.unwrap(),
        Some(false)
    );
    assert_eq!(store.note_read("nope".into(), "rbm").await.unwrap(), None);
    let why = "no RCS delivery in time".to_string();
    assert!(
        store
            .queue_fallback_sms("m5".into(), "generic".into(), why.clone())
            .await
            .unwrap()
    );
    assert!(
        !store
            .queue_fallback_sms("m5".into(), "generic".into(), why)
            .await
            .unwrap()
    );
    let m5 = store.message("m5".into()).await.unwrap().unwrap();
    assert_eq!(
        (m5.channel.as_str(), m5.status),
        ("sms", MessageStatus::Queued)
    );
    assert!(m5.history.iter().any(|e| e.status == "fallback"));
    let mut done = StatusReport::new(MessageStatus::Sent, None);
    done.finish_queue = true;
    store.report_status("m5".into(), done).await.unwrap();

    // Transit (no content at rest): never written; one not handed over in
    // time fails `content_not_retained` (from any node) and its carrier id
    // is forgotten.
    let mut tr = message("m6", t);
    tr.transit = true;
    tr.queue = None;
    tr.carrier_id = Some(("generic".into(), "c-6".into()));
    store.insert_message(tr).await.unwrap();
    assert!(
        !store
            .message("m6".into())
            .await
            .unwrap()
            .unwrap()
            .body_stored
    );
    let failed = store.fail_stale_transit(now() + 1, now()).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].0.as_str(), failed[0].1.after),
        ("m6", MessageStatus::Failed)
    );
    store.not_retained("m6".into()).await.unwrap();
    let m6 = store.message("m6".into()).await.unwrap().unwrap();
    assert_eq!(m6.last_error.as_deref(), Some("content_not_retained"));
    let mut again = message("m6b", now());
    again.carrier_id = Some(("generic".into(), "c-6".into()));
    again.queue = None;
    assert_eq!(
        store.insert_message(again).await.unwrap(),
        InsertOutcome::Inserted
    );

    // The retention sweep: a queued body past retention expires the
    // message; metadata past retention goes entirely.
    let swept = store.sweep(now(), now() + 1, 0).await.unwrap();
    assert_eq!(swept.expired.len(), 1, "m2 was queued");
    assert_eq!(swept.expired[0].1.after, MessageStatus::Expired);
    let swept = store.sweep(now(), 0, now() + 1).await.unwrap();
    assert!(swept.touched >= 3);
    assert!(store.message("m1".into()).await.unwrap().is_none());
    assert_eq!(store.queue_depth().await.unwrap(), (0, 0));
}

async fn sqlite(dir: &TempDir) -> (Store, WriterThread) {
    Store::open(&dir.0, Synchronous::Normal, 64, 2, Arc::new(Metrics::new())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_path_sqlite() {
    let dir = TempDir::new("store-sqlite");
    let (store, writer) = sqlite(&dir).await;
    message_path(&store).await;
    store.close();
    writer.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_path_postgres() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("path");
    let (store, _) = Store::open_postgres(&pg.store_config(&url, 15))
        .await
        .unwrap();
    message_path(&store).await;
    // Not yet ported: a clear error naming the operation, never SQLite.
    let e = store.limit_size(64).await.unwrap_err().to_string();
    assert_eq!(
        e,
        "store: store operation `limit_size` is not yet available on the postgres backend"
    );
    // No server there: a clear error, at once.
    let nowhere = pg.store_config("postgres://gw@127.0.0.1:1/none", 15);
    let started = std::time::Instant::now();
    let e = Store::open_postgres(&nowhere)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("postgres"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // Opening again (a second node, a restart) finds the schema in place.
    let (again, _) = Store::open_postgres(&pg.store_config(&url, 15))
        .await
        .unwrap();
    again.ping().await.unwrap();
    assert_eq!(pg.sql("path", "SELECT version FROM schema_version"), "7");
}

/// Two nodes on one database: a claim is one node's; a dead node's lease
/// runs out and the other node takes the entry over with the same attempt
/// count (the same attempt id); migrations of nodes starting together do
/// not race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_claim_and_take_over() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("nodes");
    let cfg = pg.store_config(&url, 1);
    let (a, b, c) = tokio::join!(
        Store::open_postgres(&cfg),
        Store::open_postgres(&cfg),
        Store::open_postgres(&cfg)
    );
    let (a, b, c) = (a.unwrap().0, b.unwrap().0, c.unwrap().0);
    for i in 0..20 {
        let mut m = message(&format!("n{i}"), now());
        // Not on the fast path: any node may claim it.
        m.queue = Some(Target::Route("generic".into()));
        b.insert_message(m).await.unwrap();
    }
    // Entries inserted by `b` are leased to it (its fast path sends them).
    assert!(a.due(now(), 50, HashSet::new()).await.unwrap().is_empty());
    let mine = b.due(now(), 50, HashSet::new()).await.unwrap();
    assert_eq!(mine.len(), 20);
    // A node shutting down hands its claims back at once.
    assert!(a.due(now(), 50, HashSet::new()).await.unwrap().is_empty());
    assert_eq!(b.release_leases().await.unwrap(), 20);
    let back = c.due(now(), 50, HashSet::new()).await.unwrap();
    assert_eq!(back.len(), 20);
    assert_eq!(c.release_leases().await.unwrap(), 20);
    assert_eq!(b.due(now(), 50, HashSet::new()).await.unwrap().len(), 20);
    // `b` dies mid-send: nothing reports. After the lease, the others
    // take over, each entry once however their polls interleave.
    drop(b);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let (x, y) = tokio::join!(
        a.due(now(), 15, HashSet::new()),
        c.due(now(), 15, HashSet::new())
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    let ids: HashSet<String> = x.iter().chain(&y).map(|i| i.message_id.clone()).collect();
    assert_eq!(
        x.len() + y.len(),
        20,
        "each entry claimed once by concurrent polls"
    );
    assert_eq!(ids.len(), 20);
    assert!(
        x.iter().chain(&y).all(|i| i.attempts == 0),
        "same attempt id after takeover"
    );
}

/// Lease renewal: an entry whose node renews its lease (the delivery
/// worker's heartbeat for sends still in flight) is not claimable by
/// another node after the first lease would have ended; an unrenewed one
/// is; and a renewal never takes back an entry another node took over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_lease_is_not_taken_over() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("renew");
    let cfg = pg.store_config(&url, 1);
    let (a, _) = Store::open_postgres(&cfg).await.unwrap();
    let (b, _) = Store::open_postgres(&cfg).await.unwrap();
    assert_eq!(a.lease_renewal(), Some(Duration::from_millis(333)));
    let t = now();
    // Both leased to `a` (it accepted them) until t + 1 s.
    a.insert_message(message("slow", t)).await.unwrap();
    a.insert_message(message("dead", t)).await.unwrap();
    // `a` still sends "slow" at t + 0.9 s: it renews that lease only.
    assert_eq!(
        a.renew_leases(vec!["slow".into(), "gone".into()], t + 900)
            .await
            .unwrap(),
        1
    );
    let taken = b.due(t + 1_200, 50, HashSet::new()).await.unwrap();
    let ids: Vec<&str> = taken.iter().map(|i| i.message_id.as_str()).collect();
    assert_eq!(ids, ["dead"], "the renewed entry stays with its node");
    // Unrenewed, it runs out in turn and is taken over, same attempt.
    let taken = b.due(t + 2_000, 50, HashSet::new()).await.unwrap();
    let slow = taken.iter().find(|i| i.message_id == "slow").unwrap();
    assert_eq!(slow.attempts, 0);
    // `a`'s late heartbeat does not take it back from `b`.
    assert_eq!(
        a.renew_leases(vec!["slow".into()], t + 2_100)
            .await
            .unwrap(),
        0
    );
    // SQLite has no leases: nothing to renew.
    let dir = TempDir::new("renew-sqlite");
    let (lite, writer) = sqlite(&dir).await;
    assert_eq!(lite.lease_renewal(), None);
    assert_eq!(lite.renew_leases(vec!["x".into()], t).await.unwrap(), 0);
    lite.close();
    writer.join();
}

/// Cache notices: a change committed by one node bumps that kind's cache
/// generation on a listening node (and only that kind); prints the lag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_node_is_noticed_by_the_other() {
    use gateway::store::CacheKind;
    use gateway::store::postgres::PgStore;
    use gateway::store::review::ListKind;
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("notices");
    let cfg = pg.store_config(&url, 15);
    let (a, _) = Store::open_postgres(&cfg).await.unwrap();
    let (b, _) = Store::open_postgres_listening(&cfg).await.unwrap();
    let cli = PgStore::connect(&cfg).await.unwrap();

    async fn lag(b: &Store, kind: CacheKind, before: u64, started: std::time::Instant) -> Duration {
        for _ in 0..2_000 {
            if b.cache_generation(kind) != before {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("{kind:?} never noticed");
    }

    let mut lags = Vec::new();
    let before = b.cache_generation(CacheKind::Identities);
    let keys_before = b.cache_generation(CacheKind::ApiKeys);
    let started = std::time::Instant::now();
    let (_, pk) = gateway::envelope::keys::generate();
    a.put_identity("+14155550101".into(), pk).await.unwrap();
    lags.push((
        "identity",
        lag(&b, CacheKind::Identities, before, started).await,
    ));
    assert_eq!(
        b.cache_generation(CacheKind::ApiKeys),
        keys_before,
        "only its kind"
    );

    let before = b.cache_generation(CacheKind::Lists);
    let started = std::time::Instant::now();
    cli.list_add("op", ListKind::Block, "+1900*", None, None, 0)
        .await
        .unwrap();
    lags.push((
        "block list",
        lag(&b, CacheKind::Lists, before, started).await,
    ));

    let before = b.cache_generation(CacheKind::ApiKeys);
    let key = gateway::store::NewApiKey {
        name: "k",
        tenant: None,
        scopes: gateway::core::tenants::Scopes::APPLICATION,
        expires_at: None,
    };
    let started = std::time::Instant::now();
    cli.create_api_key(&key, now()).await.unwrap();
    lags.push((
        "api key",
        lag(&b, CacheKind::ApiKeys, before, started).await,
    ));
    for change in ["rotate", "revoke"] {
        let before = b.cache_generation(CacheKind::ApiKeys);
        if change == "rotate" {
            let token = cli.rotate_api_key("k", now() + 1_000, now()).await.unwrap();
            assert!(token.is_some());
        } else {
            assert!(cli.revoke_api_key("k", now()).await.unwrap());
        }
        lag(&b, CacheKind::ApiKeys, before, std::time::Instant::now()).await;
    }

    let before = b.cache_generation(CacheKind::Reviews);
    let started = std::time::Instant::now();
    cli.mark("op", "+14155550999", false, None, 0)
        .await
        .unwrap();
    lags.push((
        "review decision",
        lag(&b, CacheKind::Reviews, before, started).await,
    ));

    eprintln!("notice lag (commit to the other node's cache generation): {lags:?}");
    b.close();
}

/// A held message from `sender` (flagged `suspect`, not queued).
fn held(id: &str, sender: &str, at: i64) -> NewMessage {
    let mut m = message(id, at);
    m.sender = sender.into();
    m.status = MessageStatus::Held;
    m.queue = None;
    m.verdict = Some((gateway::store::Verdict::Suspect, 0.8));
    m.flag_reasons = Some(r#"[{"words":"many recipients","value":3.0}]"#.into());
    m
}

/// The review queue's operations, written once against `ReviewOps`:
/// list, release, drop with the undo window, undo, mark spam/ham, block
/// and unlist, the audit log, stats, a sender's activity. Runs on a
/// blocking thread (the PostgreSQL handle runs its futures to completion).
fn review_path(ops: &mut dyn gateway::store::review_ops::ReviewOps) {
    use gateway::store::review::{ListKind, QueueFilter};
    let q = ops.queue(&QueueFilter::default()).unwrap();
    let mut senders: Vec<(&str, i64)> = q.iter().map(|r| (r.sender.as_str(), r.held)).collect();
    senders.sort();
    assert_eq!(
        senders,
        [
            ("+15550001", 2),
            ("+15550002", 1),
            ("+15550003", 1),
            ("+16660001", 1),
            ("+16660002", 1)
        ]
    );
    assert_eq!(q[0].verdict, "suspect");
    assert_eq!(q[0].reasons, ["many recipients (3.00)"]);
    assert_eq!(ops.held_of("+15550001").unwrap().len(), 2);
    let a = ops.sender_activity("r1").unwrap();
    assert_eq!((a.sender.as_str(), a.messages, a.held), ("+15550001", 2, 2));

    // Release one, drop the other (undoable), undo it.
    assert!(ops.decide("op", "r1", true, Some("fine")).unwrap());
    assert!(
        !ops.decide("op", "r1", true, None).unwrap(),
        "not held any more"
    );
    assert!(ops.decide("op", "r2", false, None).unwrap());
    assert_eq!(ops.pending(None).unwrap().len(), 1);
    assert!(
        ops.held_of("+15550001").unwrap().is_empty(),
        "a pending drop is not held"
    );
    assert_eq!(ops.undo("op", "+15550001").unwrap(), 1);
    assert_eq!(ops.held_of("+15550001").unwrap().len(), 1);
    assert_eq!(ops.sender_of("r2").unwrap().as_deref(), Some("+15550001"));

    // Mark spam drops (pending) and blocks; mark ham releases and allows.
    assert_eq!(ops.mark("op", "+15550002", true, None).unwrap(), 1);
    assert_eq!(ops.mark("op", "+15550003", false, None).unwrap(), 1);
    // A block on a prefix drops the held messages it covers.
    assert_eq!(
        ops.list_add("op", ListKind::Block, "+1555000*", None, None)
            .unwrap(),
        1
    );
    assert!(ops.list_remove("op", ListKind::Block, "+1555000*").unwrap());
    assert!(!ops.list_remove("op", ListKind::Block, "+1555000*").unwrap());
    let q = ops.queue(&QueueFilter::default()).unwrap();
    assert!(
        q.iter()
            .all(|r| ["+15550001", "+16660001", "+16660002"].contains(&r.sender.as_str())),
        "{q:?}"
    );
    // An allow on a prefix releases the held messages it covers (a pool of
    // numbers the campaign rule blocked) and takes them out of the queue.
    assert_eq!(
        ops.list_add("op", ListKind::Allow, "+1666*", None, None)
            .unwrap(),
        2
    );
    assert!(ops.held_of("+16660002").unwrap().is_empty());
    let q = ops.queue(&QueueFilter::default()).unwrap();
    assert!(q.iter().all(|r| r.sender == "+15550001"), "{q:?}");

    let actions: Vec<String> = ops
        .log(100)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            "release",
            "drop",
            "undo_drop",
            "mark_spam",
            "mark_ham",
            "block",
            "unblock",
            "allow"
        ]
    );
    let log = ops.log(100).unwrap();
    assert_eq!(log[3].model_verdict.as_deref(), Some("suspect"));
    let s = ops.stats().unwrap();
    assert_eq!(
        (s.decisions, s.holds_confirmed_spam, s.holds_overturned),
        (2, 1, 1)
    );
    // by the rule the flag named first (none recorded for +15550002's)
    let by_rule: Vec<(&str, usize, usize)> = s
        .by_rule
        .iter()
        .map(|r| (r.rule.as_str(), r.spam, r.ham))
        .collect();
    assert_eq!(by_rule, [("-", 1, 0), ("ONE_WAY_BROADCAST", 0, 1)]);
}

/// A flag from `sender` with `verdict`, `score` and reasons `words`.
fn flag(
    id: &str,
    sender: &str,
    at: i64,
    verdict: gateway::store::Verdict,
    score: f32,
    words: &str,
) -> NewMessage {
    let mut m = held(id, sender, at);
    m.verdict = Some((verdict, score));
    m.flag_reasons = Some(format!(r#"[{{"words":"{words}"}}]"#));
    m
}

/// A sender's review entry keeps the strongest judgement until it is
/// decided: the model's block is not overwritten by a later rate-limit
/// hold (score 0), a stronger flag replaces a weaker one, and a decided
/// entry opens again with whatever comes next.
async fn strongest_flag_path(
    store: &Store,
    ops: impl FnOnce() -> Box<dyn gateway::store::review_ops::ReviewOps> + Send + Clone + 'static,
) {
    use gateway::store::Verdict::{Spam, Suspect};
    use gateway::store::review::{ListKind, QueueFilter};
    let t = now();
    for m in [
        flag("s1", "+15559001", t, Spam, 0.93, "broadcast"),
        flag("s2", "+15559001", t + 1, Suspect, 0.0, "over a rate limit"),
        flag("s3", "+15559002", t, Suspect, 0.6, "fan-out"),
        flag("s4", "+15559002", t + 1, Spam, 0.9, "failures"),
    ] {
        store.insert_message(m).await.unwrap();
    }
    let open = ops.clone();
    let rows = tokio::task::spawn_blocking(move || {
        let mut ops = open();
        let q = ops.queue(&QueueFilter::default()).unwrap();
        // decided: the entry closes (blocked), and is taken off the list again
        ops.list_add("op", ListKind::Block, "+15559002", None, None)
            .unwrap();
        ops.list_remove("op", ListKind::Block, "+15559002").unwrap();
        q
    })
    .await
    .unwrap();
    let entry = |q: &[gateway::store::review::QueueRow], s: &str| {
        q.iter().find(|r| r.sender == s).map(|r| {
            (
                r.verdict.clone(),
                (r.score * 100.0).round() / 100.0,
                r.reasons.clone(),
            )
        })
    };
    assert_eq!(
        entry(&rows, "+15559001"),
        Some(("spam".into(), 0.93, vec!["broadcast".to_string()]))
    );
    assert_eq!(
        entry(&rows, "+15559002"),
        Some(("spam".into(), 0.9, vec!["failures".to_string()]))
    );
    store
        .insert_message(flag("s5", "+15559002", t + 2, Suspect, 0.55, "fan-out"))
        .await
        .unwrap();
    let rows = tokio::task::spawn_blocking(move || ops().queue(&QueueFilter::default()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        entry(&rows, "+15559002"),
        Some(("suspect".into(), 0.55, vec!["fan-out".to_string()])),
        "a decided entry opens again with the new flag"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strongest_flag_sqlite() {
    let dir = TempDir::new("flag-sqlite");
    let (store, writer) = sqlite(&dir).await;
    let path = dir.0.clone();
    strongest_flag_path(&store, move || {
        Box::new(gateway::store::open_for_cli(&path).unwrap())
    })
    .await;
    store.close();
    writer.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strongest_flag_postgres() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("flags");
    let (store, _) = Store::open_postgres(&pg.store_config(&url, 15))
        .await
        .unwrap();
    let handle = tokio::runtime::Handle::current();
    let s2 = store.clone();
    strongest_flag_path(&store, move || Box::new(s2.pg_review(handle, 30).unwrap())).await;
}

async fn seed_held(store: &Store) {
    let t = now();
    for (id, sender) in [
        ("r1", "+15550001"),
        ("r2", "+15550001"),
        ("r3", "+15550002"),
        ("r4", "+15550003"),
        ("r5", "+16660001"),
        ("r6", "+16660002"),
    ] {
        let mut m = held(id, sender, t);
        if sender == "+15550003" {
            // a flag that names its rule first, as the spam gate stores it
            m.flag_reasons = Some(
                r#"[{"tag":"ONE_WAY_BROADCAST","words":"only strangers"},{"tag":"FAN_OUT","words":"many recipients","value":3.0}]"#
                    .into(),
            );
        }
        store.insert_message(m).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_path_sqlite() {
    let dir = TempDir::new("review-sqlite");
    let (store, writer) = sqlite(&dir).await;
    seed_held(&store).await;
    let path = dir.0.clone();
    tokio::task::spawn_blocking(move || {
        let mut db = gateway::store::open_for_cli(&path).unwrap();
        db.set_undo_window(30);
        review_path(&mut db);
    })
    .await
    .unwrap();
    store.close();
    writer.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_path_postgres() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("review");
    let (store, _) = Store::open_postgres(&pg.store_config(&url, 15))
        .await
        .unwrap();
    seed_held(&store).await;
    let mut ops = store
        .pg_review(tokio::runtime::Handle::current(), 30)
        .unwrap();
    tokio::task::spawn_blocking(move || review_path(&mut ops))
        .await
        .unwrap();
    // Released messages are queue rows any node claims; pending drops
    // are made final by any node's sweep once their window passed.
    assert_eq!(pg.sql("review", "SELECT COUNT(*) FROM queue"), "4");
    assert_eq!(store.finalize_drops(now() + 31_000).await.unwrap(), 2);
    assert_eq!(
        pg.sql(
            "review",
            "SELECT COUNT(*) FROM messages WHERE status = 'dropped' AND sealed IS NULL"
        ),
        "2"
    );
}

/// The listening connection dropped (here: terminated by the server):
/// every cache is dropped once (notices may have been lost), the node
/// reconnects, and later notices arrive again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listener_drops_every_cache_and_reconnects() {
    use gateway::store::CacheKind;
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("relisten");
    let cfg = pg.store_config(&url, 15);
    let (a, _) = Store::open_postgres(&cfg).await.unwrap();
    let (b, _) = Store::open_postgres_listening(&cfg).await.unwrap();
    let before = b.cache_generation(CacheKind::Reviews);
    let killed = pg.sql(
        "relisten",
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query = 'LISTEN gateway_cache'",
    );
    assert_eq!(killed, "1");
    let mut waited = 0;
    while b.cache_generation(CacheKind::Reviews) == before {
        assert!(waited < 5_000, "the loss was not noticed");
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 10;
    }
    // Reconnected (within the first backoff): a change is noticed again.
    let mut waited = 0;
    loop {
        let listening = pg.sql(
            "relisten",
            "SELECT COUNT(*) FROM pg_stat_activity WHERE query = 'LISTEN gateway_cache'",
        );
        if listening == "1" {
            break;
        }
        assert!(waited < 5_000, "no reconnect");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 50;
    }
    let before = b.cache_generation(CacheKind::Identities);
    let (_, pk) = gateway::envelope::keys::generate();
    a.put_identity("+14155550101".into(), pk).await.unwrap();
    let mut waited = 0;
    while b.cache_generation(CacheKind::Identities) == before {
        assert!(waited < 2_000, "no notice after the reconnect");
        tokio::time::sleep(Duration::from_millis(5)).await;
        waited += 5;
    }
    b.close();
}

/// SMPP's store operations, written once for both backends: server
/// clients through the CLI's `ClientOps` (hashed passwords, checked by the
/// service's `verify_smpp_client`), part maps and their receipts adding up
/// to the message's status, and owed receipts read, then forgotten.
/// A CLI operation (blocking, on its own runtime on PostgreSQL) called
/// from the test's async code.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}

async fn smpp_path(store: &Store, cli: &dyn gateway::store::smpp::ClientOps) {
    use gateway::store::PartReport;
    let pw =
        blocking(|| cli.add_smpp_client("app1", Some(5.0), &["+14155550100".into()], 1)).unwrap();
    assert_eq!(pw.len(), 8);
    let dup = blocking(|| cli.add_smpp_client("app1", None, &[], 2)).unwrap_err();
    assert!(dup.to_string().contains("system_id"), "{dup}");
    blocking(|| cli.add_smpp_client("app2", None, &[], 3)).unwrap();
    let ok = store
        .verify_smpp_client("app1".into(), pw.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ok.throughput, Some(5.0));
    assert_eq!(ok.addresses, vec!["+14155550100".to_string()]);
    assert!(
        blocking(|| cli.verify_smpp_client("app1", &pw))
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .verify_smpp_client("app1".into(), "wrong".into())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .verify_smpp_client("nobody".into(), pw.clone())
            .await
            .unwrap()
            .is_none()
    );
    assert!(blocking(|| cli.set_smpp_addresses("app2", &["+1628*".into()])).unwrap());
    assert!(!blocking(|| cli.set_smpp_addresses("nobody", &[])).unwrap());
    let all = store.smpp_clients().await.unwrap();
    let names: Vec<_> = all.iter().map(|c| c.system_id.as_str()).collect();
    assert_eq!(names, ["app1", "app2"]);
    assert_eq!(all[1].addresses, vec!["+1628*".to_string()]);
    assert_eq!(blocking(|| cli.smpp_clients()).unwrap().len(), 2);

    // A message sent in two parts through a client bind: the SMSC's ids
    // map to it, and two part receipts make it delivered.
    let t = now();
    let mut m = message("s1", t);
    m.queue = None;
    store.insert_message(m).await.unwrap();
    store
        .map_smpp_parts(
            "smpp:acme".into(),
            "s1".into(),
            vec!["A1".into(), "a2".into()],
        )
        .await
        .unwrap();
    let found = store
        .smpp_part("smpp:acme".into(), vec!["0xA1".into(), "A1".into()])
        .await
        .unwrap();
    assert_eq!(found, Some(("A1".into(), "s1".into())));
    assert_eq!(
        store
            .smpp_part("smpp:other".into(), vec!["A1".into()])
            .await
            .unwrap(),
        None
    );
    let part = |sid: &str| StatusReport {
        part: Some(PartReport::Smpp {
            route: "smpp:acme".into(),
            smsc_id: sid.into(),
        }),
        ..StatusReport::new(MessageStatus::Delivered, Some("DELIVRD".into()))
    };
    let first = store
        .report_status("s1".into(), part("A1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.after, MessageStatus::Queued, "one of two parts");
    let again = store
        .report_status("s1".into(), part("A1"))
        .await
        .unwrap()
        .unwrap();
    assert!(again.repeated, "a repeated receipt");
    let second = store
        .report_status("s1".into(), part("a2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.after, MessageStatus::Delivered);

    // Receipts owed to app1: s1 is final (owed now), s2 is not yet.
    let mut m2 = message("s2", t);
    m2.queue = None;
    store.insert_message(m2).await.unwrap();
    for id in ["s1", "s2"] {
        store
            .owe_smpp_receipt(id.into(), "app1".into(), 2, false)
            .await
            .unwrap();
    }
    // Owed twice: recorded once.
    store
        .owe_smpp_receipt("s1".into(), "app1".into(), 2, false)
        .await
        .unwrap();
    let bound = vec!["app1".to_string()];
    let owed = store
        .owed_smpp_receipts(
            vec!["s1".into(), "s2".into()],
            Vec::new(),
            bound.clone(),
            10,
        )
        .await
        .unwrap();
    assert_eq!(owed.len(), 1, "only the final message's receipt is due");
    assert_eq!(
        (owed[0].message_id.as_str(), owed[0].parts, owed[0].status),
        ("s1", 2, MessageStatus::Delivered)
    );
    let by_client = store
        .owed_smpp_receipts(Vec::new(), bound.clone(), bound.clone(), 10)
        .await
        .unwrap();
    assert_eq!(by_client.len(), 1);
    store.forget_smpp_receipt("s1".into()).await.unwrap();
    assert!(
        store
            .owed_smpp_receipts(vec!["s1".into()], bound.clone(), bound.clone(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Removing a client removes what it is owed.
    assert!(blocking(|| cli.remove_smpp_client("app1")).unwrap());
    assert!(!blocking(|| cli.remove_smpp_client("app1")).unwrap());
    store
        .report_status("s2".into(), StatusReport::new(MessageStatus::Failed, None))
        .await
        .unwrap();
    assert!(
        store
            .owed_smpp_receipts(vec!["s2".into()], bound.clone(), bound, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .verify_smpp_client("app1".into(), pw)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smpp_path_sqlite() {
    let dir = TempDir::new("store-smpp-sqlite");
    let (store, writer) = sqlite(&dir).await;
    let db = gateway::store::open_for_cli(&dir.0).unwrap();
    smpp_path(&store, &db).await;
    store.close();
    writer.join();
}

#[test]
fn smpp_path_postgres() {
    use gateway::store::smpp::ClientOps;
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("smpp");
    let cfg = pg.store_config(&url, 2);
    // The CLI's operations block on their own runtime, as `gateway smpp`
    // does; the service's run on another.
    let cli_rt = tokio::runtime::Runtime::new().unwrap();
    let cli_pg = Arc::new(
        cli_rt
            .block_on(gateway::store::postgres::PgStore::connect(&cfg))
            .unwrap(),
    );
    let cli = gateway::store::postgres::PgSmppClients::new(cli_pg, cli_rt.handle().clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (store, _) = Store::open_postgres(&cfg).await.unwrap();
        smpp_path(&store, &cli).await;
        // Two nodes where one client is bound to both: a receipt is
        // claimed by one; the other gets it only after the lease (2 s).
        let (b, _) = Store::open_postgres(&cfg).await.unwrap();
        blocking(|| cli.add_smpp_client("app3", None, &[], 1)).unwrap();
        let mut m = message("s3", now());
        m.queue = None;
        store.insert_message(m).await.unwrap();
        store
            .report_status(
                "s3".into(),
                StatusReport::new(MessageStatus::Delivered, None),
            )
            .await
            .unwrap();
        store
            .owe_smpp_receipt("s3".into(), "app3".into(), 1, false)
            .await
            .unwrap();
        async fn read(s: &Store) -> Vec<gateway::store::smpp::OwedReceipt> {
            let bound = vec!["app3".to_string()];
            s.owed_smpp_receipts(vec!["s3".into()], bound.clone(), bound, 10)
                .await
                .unwrap()
        }
        assert!(
            b.owed_smpp_receipts(vec!["s3".into()], Vec::new(), vec!["other".into()], 10)
                .await
                .unwrap()
                .is_empty(),
            "a node without a bind of the client claims nothing"
        );
        assert_eq!(read(&store).await.len(), 1, "node A claims it");
        assert!(read(&b).await.is_empty(), "node B skips A's claim");
        assert_eq!(read(&store).await.len(), 1, "A may read its own again");
        tokio::time::sleep(Duration::from_millis(2_300)).await;
        assert_eq!(read(&b).await.len(), 1, "after A's lease, B's");
        assert!(read(&store).await.is_empty(), "now B holds it");
        // A node stopping gracefully hands its claims back at once.
        b.release_leases().await.unwrap();
        assert_eq!(read(&store).await.len(), 1);
        store.forget_smpp_receipt("s3".into()).await.unwrap();
        assert!(read(&b).await.is_empty());
    });
}
