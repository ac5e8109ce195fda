//! The data-directory commands on PostgreSQL: `export-trace` and `model …
//! --from-store` read the shared database, `backup` / `restore` make and
//! load a logical snapshot, and a full disk on the server is answered as on
//! SQLite.

use std::path::Path;

use crate::harness::*;
use crate::pg::Postgres;
use crate::postgres::node_config;

const WAIT: std::time::Duration = std::time::Duration::from_secs(30);

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Posts one inbound SMS to `gw` from `from`; returns its id.
async fn inbound(gw: &Gateway, n: usize, from: &str) -> String {
    crate::smpp::inbound(
        gw,
        &format!("pgdata-{n}"),
        from,
        "+14155550100",
        "hello there",
    )
    .await
}

/// A synthetic labelled world (metadata only) for training beside the
/// store's own traffic: quiet senders to a few contacts, and floods to
/// many numbers that mostly fail.
fn synthetic_world(trace: &Path, labels: &Path) {
    use classifier::*;
    let t0 = time::OffsetDateTime::now_utc() - time::Duration::days(2);
    let at = |ms: i64| Timestamp::from(t0 + time::Duration::milliseconds(ms));
    let mut events = Vec::new();
    let mut records = Vec::new();
    for s in 0..30i64 {
        let ham = format!("+1212555{:04}", s);
        let spam = format!("+1646555{:04}", s);
        for m in 0..4i64 {
            events.push((
                s * 1000 + m * 3_600_000,
                ham.clone(),
                format!("+1917555{:04}", s * 2 + m % 2),
                true,
            ));
        }
        for m in 0..60i64 {
            events.push((
                s * 1000 + m * 700,
                spam.clone(),
                format!("+1718{:03}{:04}", s, m),
                m % 3 == 0,
            ));
        }
        records.push(LabelRecord {
            sender: ham,
            label: Label::Ham,
            category: "person".into(),
            spam_from: None,
        });
        records.push(LabelRecord {
            sender: spam,
            label: Label::Spam,
            category: "flood".into(),
            spam_from: None,
        });
    }
    events.sort_by_key(|e| e.0);
    let mut w = trace::TraceWriter::new(std::io::BufWriter::new(
        std::fs::File::create(trace).unwrap(),
    ));
    for (i, (ms, from, to, delivered)) in events.into_iter().enumerate() {
        let id = format!("syn-{i}");
        w.write(&MetadataEvent::Message(MessageMeta {
            at: at(ms),
            id: id.clone(),
            from,
            to,
            channel: Channel::Sms,
            segments: 1,
            encoding: Encoding::Gsm7,
            bytes: 64,
            sender_type: None,
            route: None,
        }))
        .unwrap();
        w.write(&MetadataEvent::Status(StatusMeta {
            at: at(ms + 5_000),
            id,
            status: if delivered {
                DeliveryStatus::Delivered
            } else {
                DeliveryStatus::Failed
            },
        }))
        .unwrap();
    }
    w.finish().unwrap();
    let f = std::fs::File::create(labels).unwrap();
    labels::write_labels(std::io::BufWriter::new(f), &records).unwrap();
}

/// Messages accepted by a node on PostgreSQL are in `export-trace`; review
/// decisions made on PostgreSQL are labels for `model eval --from-store`
/// and `model train --from-store`; `replay` and `model promote` run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_and_decisions_come_from_postgres() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("pgtrace");
    let dir = TempDir::new("pg-trace");
    let sink = Sink::start(0).await;
    let cfg = node_config(&dir.0, &sink, &pg, &url);
    let gw = Gateway::start(&cfg);
    let secret = canary();
    let mut ids = Vec::new();
    for i in 0..2 {
        let r = gw
            .send(serde_json::json!({"to": format!("+1415555{:04}", 3000 + i), "text": secret}))
            .await;
        assert_eq!(r.status(), 202);
        let v: serde_json::Value = r.json().await.unwrap();
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    let (ham, spam) = ("+14155557001", "+14155557002");
    for n in 0..3 {
        ids.push(inbound(&gw, n, ham).await);
        ids.push(inbound(&gw, 10 + n, spam).await);
    }
    sink.wait_for("/sms", 2, WAIT).await;
    sink.wait_for("/private", 6, WAIT).await;
    ok(&cli(&cfg, &["review", "mark", ham, "ham"]));
    ok(&cli(&cfg, &["review", "mark", spam, "spam"]));

    let trace = dir.0.join("trace.jsonl");
    ok(&cli(
        &cfg,
        &["export-trace", "--out", trace.to_str().unwrap()],
    ));
    let text = std::fs::read_to_string(&trace).unwrap();
    for id in &ids {
        assert!(
            text.lines()
                .any(|l| l.contains("\"event\":\"message\"") && l.contains(id.as_str())),
            "{id} not in the trace:\n{text}"
        );
    }
    assert!(!text.contains(&secret));
    // Counterparties are pseudonymised unless asked otherwise.
    assert!(!text.contains(ham));
    let clear = ok(&cli(&cfg, &["export-trace", "--clear-numbers"]));
    assert!(clear.contains(ham));

    // `replay` reads the trace file (no store).
    let out = ok(&cli(&cfg, &["replay", trace.to_str().unwrap()]));
    assert!(out.contains("+14155550199"), "{out}");

    // The decisions on PostgreSQL label the store's senders.
    let out = ok(&cli(&cfg, &["model", "eval", "--from-store", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["running"]["senders"], 2, "{v}");
    assert_eq!(v["running"]["legit_senders"], 1, "{v}");

    let (t, l) = (dir.0.join("world.jsonl"), dir.0.join("world-labels.jsonl"));
    synthetic_world(&t, &l);
    let model = dir.0.join("model.json");
    let out = cli(
        &cfg,
        &[
            "model",
            "train",
            "--trace",
            t.to_str().unwrap(),
            "--labels",
            l.to_str().unwrap(),
            "--from-store",
            "--json",
            "--out",
            model.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("using 2 operator decisions as labels"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let senders = |k: &str| report[k][0].as_u64().unwrap() + report[k][1].as_u64().unwrap();
    assert_eq!(
        senders("train_senders") + senders("holdout_senders"),
        62,
        "the world's 60 senders and the store's 2: {report}"
    );
    let out = ok(&cli(&cfg, &["model", "promote", model.to_str().unwrap()]));
    assert!(out.contains("promoted"), "{out}");
    assert!(dir.0.join("data/model/active.json").exists());
}

/// `backup` of a running node on PostgreSQL, `restore` into a new database
/// and data directory: a node on the restored database accepts the old API
/// key, shows the old messages and delivers the ones still queued. A
/// non-empty database or data directory is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_restore_round_trip_on_postgres() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("bksrc");
    let (da, db) = (TempDir::new("pg-bk-a"), TempDir::new("pg-bk-b"));
    let sink = Sink::start(0).await;
    // Node A's SMSC refuses connections: its messages stay queued, retried
    // every second.
    let cfg_a = node_config(&da.0, &sink, &pg, &url);
    let text = std::fs::read_to_string(&cfg_a)
        .unwrap()
        .replace(&sink.url("/sms"), "http://127.0.0.1:9/sms")
        .replace(
            "request_timeout_secs = 3\n",
            "request_timeout_secs = 3\ninitial_backoff_ms = 200\nmax_backoff_secs = 1\nmax_attempts = 1000\n",
        );
    std::fs::write(&cfg_a, text).unwrap();
    let a = Gateway::start(&cfg_a);
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = a
            .send(serde_json::json!({"to": format!("+1415555{:04}", 4000 + i), "text": "kept in the backup"}))
            .await;
        assert_eq!(r.status(), 202);
        let v: serde_json::Value = r.json().await.unwrap();
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    ids.push(inbound(&a, 0, "+14155557003").await);
    sink.wait_for("/private", 1, WAIT).await;

    let bk = da.0.join("backup");
    let out = ok(&cli(&cfg_a, &["backup", bk.to_str().unwrap(), "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["messages"], 4, "{v}");
    let files: Vec<String> = serde_json::from_value(v["files"].clone()).unwrap();
    assert!(
        files.contains(&"postgres/messages.copy".to_string()),
        "{files:?}"
    );
    assert!(files.contains(&"keys/current".to_string()), "{files:?}");
    assert!(
        !files
            .iter()
            .any(|f| f.contains("channel_leases") || f.contains("spam_events"))
    );
    let manifest = std::fs::read_to_string(bk.join("backup.json")).unwrap();
    assert!(manifest.contains("\"backend\": \"postgres\""), "{manifest}");
    drop(a);

    // Into a database a node already migrated: refused, nothing written.
    let cfg_used = node_config(&db.0, &sink, &pg, &url);
    let out = cli(&cfg_used, &["restore", bk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not empty"), "{err}");
    assert!(!db.0.join("data/keys").exists());

    let url2 = pg.create_db("bkdst");
    let cfg_b = node_config(&db.0, &sink, &pg, &url2);
    let out = ok(&cli(&cfg_b, &["restore", bk.to_str().unwrap(), "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["messages"], 4, "{v}");
    // Again: the database and the data directory hold it now.
    let out = cli(&cfg_b, &["restore", bk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already holds"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A backup of an older schema is loaded at its version and migrated:
    // the same backup made to look like version 6 (before migration 7
    // added the SMPP receipts' lease columns; the table is empty here).
    let old = da.0.join("backup-v6");
    std::fs::create_dir_all(&old).unwrap();
    for e in walk_files(&bk) {
        let to = old.join(e.strip_prefix(&bk).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&e, &to).unwrap();
    }
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(old.join("backup.json")).unwrap()).unwrap();
    m["schema_version"] = 6.into();
    for t in m["tables"].as_array_mut().unwrap() {
        if t["name"] == "smpp_receipts" {
            t["columns"]
                .as_array_mut()
                .unwrap()
                .retain(|c| c != "lease_owner" && c != "lease_until");
        }
    }
    std::fs::write(old.join("backup.json"), m.to_string()).unwrap();
    let url3 = pg.create_db("bkold");
    let dd = TempDir::new("pg-bk-d");
    let cfg_d = node_config(&dd.0, &sink, &pg, &url3);
    let out = ok(&cli(&cfg_d, &["restore", old.to_str().unwrap()]));
    assert!(out.contains("schema migrated 6 -> "), "{out}");
    assert_eq!(pg.sql("bkold", "SELECT COUNT(*) FROM messages"), "4");

    // A SQLite configuration refuses a PostgreSQL backup.
    let dc = TempDir::new("pg-bk-c");
    let cfg_c = write_config(&dc.0, None, "");
    let out = cli(&cfg_c, &["restore", bk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PostgreSQL store"));

    // A node on the restored database: A's key, A's messages, and the
    // queued ones delivered (sealed to A's keys, restored with them).
    let b = Gateway::spawn(&cfg_b, a_token(&cfg_b));
    let got = sink.wait_for("/sms", 3, WAIT).await;
    if got.len() < 3 {
        eprintln!("queue: {}", pg.sql("bkdst", "SELECT * FROM queue"));
        for l in b.logs.lock().unwrap().iter() {
            eprintln!("{l}");
        }
    }
    let mut sent: Vec<String> = got
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap().to_string())
        .collect();
    sent.sort();
    let mut want = ids[..3].to_vec();
    want.sort();
    assert_eq!(sent, want);
    assert_eq!(got[0].json()["text"], "kept in the backup");
    for id in &ids {
        let m = b.message(id).await;
        assert_eq!(m["id"], id.as_str(), "{m}");
    }
    // New rows get new ids (identity counters moved past the restored ones).
    let r = b
        .send(serde_json::json!({"to": "+14155554100", "text": "after the restore"}))
        .await;
    assert_eq!(r.status(), 202);
    sink.wait_for("/sms", 4, WAIT).await;
    let out = ok(&cli(&cfg_b, &["messages", "show", &ids[3], "--json"]));
    assert!(out.contains(&ids[3]), "{out}");
}

/// The token of the API key `e2e` on a restored database: the test knows
/// no token, so it makes one the way an operator would (`keys api create`
/// on the restored store), after checking the old key is listed.
fn a_token(cfg: &Path) -> String {
    let list = ok(&cli(cfg, &["keys", "api", "list", "--json"]));
    assert!(list.contains("\"e2e\""), "{list}");
    ok(&cli(cfg, &["keys", "api", "create", "after-restore"]))
        .trim()
        .to_string()
}

/// `max_database_mb` is refused on PostgreSQL with what to do instead; a
/// full disk on the server (SQLSTATE 53100, raised here by a trigger) is
/// answered 503 `storage_full`, as a full SQLite file is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_disk_is_storage_full() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("pgfull");
    let dir = TempDir::new("pg-full");
    let sink = Sink::start(0).await;
    let cfg = node_config(&dir.0, &sink, &pg, &url);
    let capped = dir.0.join("capped.toml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("[store]\n", "[store]\nmax_database_mb = 100\n");
    std::fs::write(&capped, text).unwrap();
    let out = cli(&cfg, &["config", "check", capped.to_str().unwrap()]);
    assert!(!out.status.success());
    let err =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("store.max_database_mb") && err.contains("tablespace"),
        "{err}"
    );

    let gw = Gateway::start(&cfg);
    pg.sql(
        "pgfull",
        "CREATE FUNCTION gw_full() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'could not extend file' USING ERRCODE = 'disk_full'; END $$; \
         CREATE TRIGGER gw_full BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION gw_full();",
    );
    let r = gw
        .send(serde_json::json!({"to": "+14155554200", "text": "no room"}))
        .await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "storage_full", "{v}");
    pg.sql("pgfull", "DROP TRIGGER gw_full ON messages");
    let r = gw
        .send(serde_json::json!({"to": "+14155554200", "text": "room again"}))
        .await;
    assert_eq!(r.status(), 202);
}

/// Every file below `dir`.
fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}
