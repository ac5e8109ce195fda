//! Key sharing for several nodes on one PostgreSQL: node B is provisioned
//! with `gateway keys import` of node A's `gateway keys export`, and
//! delivers what A sealed after A is SIGKILLed mid-send; a node holding
//! other keys refuses to start (the cluster recorded A's key fingerprint).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::pg::Postgres;
use crate::postgres::node_config;

const WAIT: Duration = Duration::from_secs(40);

/// Runs `gateway serve` expecting it to refuse; returns its stderr.
fn serve_refuses(cfg: &std::path::Path) -> String {
    let mut child = Command::new(bin())
        .arg("--config")
        .arg(cfg)
        .arg("serve")
        .env("GATEWAY_GENERIC_SECRET", GENERIC_SECRET)
        .env("GATEWAY_PRIVATE_SECRET", PRIVATE_SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success(), "a node with other keys started");
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("a node with other keys kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_provisioned_by_import_delivers_what_the_other_sealed() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("keys");
    let sink = Sink::start(0).await;
    let (da, db, dc) = (
        TempDir::new("keys-a"),
        TempDir::new("keys-b"),
        TempDir::new("keys-c"),
    );
    let cfg_a = node_config(&da.0, &sink, &pg, &url);
    let a = Gateway::start(&cfg_a);

    // A node with keys of its own is refused: it would seal what no other
    // node opens.
    let cfg_c = node_config(&dc.0, &sink, &pg, &url);
    assert!(cli(&cfg_c, &["keys", "create"]).status.success());
    let err = serve_refuses(&cfg_c);
    assert!(err.contains("is not the cluster's"), "{err}");
    assert!(err.contains("gateway keys import"), "{err}");

    // Provision B from A's export (one owner-only file).
    let file = da.0.join("cluster.keys");
    let out = cli(
        &cfg_a,
        &["keys", "export", "--out", file.to_str().unwrap(), "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the export is owner-only");
    }
    let cfg_b = node_config(&db.0, &sink, &pg, &url);
    let out = cli(
        &cfg_b,
        &["keys", "import", file.to_str().unwrap(), "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let imported: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(imported["added"].as_array().unwrap().len(), 1);
    assert_eq!(
        std::fs::read(da.0.join("data/pseudonym.key")).unwrap(),
        std::fs::read(db.0.join("data/pseudonym.key")).unwrap()
    );
    let b = Gateway::spawn(&cfg_b, a.token.clone());

    // A accepts (and seals) and is killed mid-send; B opens and delivers.
    sink.delay_ms
        .store(60_000, std::sync::atomic::Ordering::SeqCst);
    let mut ids = Vec::new();
    for i in 0..2 {
        let r = a
            .send(serde_json::json!({"to": format!("+1415555{:04}", 4000 + i), "text": format!("sealed on a {i}")}))
            .await;
        assert_eq!(r.status(), 202);
        ids.push(
            r.json::<serde_json::Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(sink.wait_for("/sms", 2, WAIT).await.len(), 2);
    a.kill();
    sink.delay_ms.store(0, std::sync::atomic::Ordering::SeqCst);
    for id in &ids {
        let v = b.wait_status(id, "sent", WAIT).await;
        assert_eq!(v["status"], "sent", "{v}");
    }
    let got = sink.on("/sms");
    for (i, id) in ids.iter().enumerate() {
        let texts: Vec<String> = got
            .iter()
            .filter(|r| r.json()["id"] == id.as_str())
            .map(|r| r.json()["text"].as_str().unwrap_or_default().to_string())
            .collect();
        // Sent by A (killed before its answer) and again by B: both opened
        // the same sealed body.
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert!(
            texts.iter().all(|t| *t == format!("sealed on a {i}")),
            "{texts:?}"
        );
    }
}
