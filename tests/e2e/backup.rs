//! `gateway backup` while traffic flows, `gateway restore` into a new data
//! directory, and `gateway config check` (issue 20).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::harness::*;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(bin()).args(args).output().unwrap()
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_serving_then_restore_elsewhere() {
    let dir = TempDir::new("backup");
    let sink = Sink::start(0).await;
    let cfg = write_config(&dir.0, Some(&sink), "");
    let gw = Gateway::start(&cfg);
    let alice = gw.register_identity("+14155550101").await;
    let _ = alice;
    let mut before = Vec::new();
    for i in 0..30 {
        let r = gw
            .send(serde_json::json!({"to": "+14155550102", "text": format!("before {i}")}))
            .await;
        assert_eq!(r.status(), 202);
        before.push(
            r.json::<serde_json::Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }

    // Traffic keeps flowing while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let stop = stop.clone();
        let url = gw.url("/v1/messages");
        let token = gw.token.clone();
        tokio::spawn(async move {
            let c = reqwest::Client::new();
            let mut ids = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                let r = c
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&serde_json::json!({"to": "+14155550103", "text": "during"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 202, "the API kept answering during the backup");
                ids.push(
                    r.json::<serde_json::Value>().await.unwrap()["id"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
            }
            ids
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let backup_dir = dir.0.join("backup");
    let (b, cfg_s) = (backup_dir.display().to_string(), cfg.display().to_string());
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || run(&["--config", &cfg_s, "backup", &b]))
        .await
        .unwrap();
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let during = traffic.await.unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!(
        "backup took {took:?} with {} messages sent meanwhile: {said}",
        during.len()
    );
    assert!(said.starts_with("backed up "), "{said}");
    assert!(!during.is_empty(), "no traffic during the backup");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup_dir.join("backup.json")).unwrap()).unwrap();
    let copied = manifest["messages"].as_i64().unwrap();
    let total = (before.len() + during.len()) as i64;
    assert!(
        copied >= before.len() as i64 && copied <= total,
        "{copied} of {total}"
    );
    let files: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        files.contains(&"gateway.db") && files.contains(&"keys/current"),
        "{files:?}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&backup_dir), 0o700);
        assert_eq!(mode(&backup_dir.join("gateway.db")), 0o600);
    }
    let edge_before = run(&["--config", &cfg.display().to_string(), "keys", "public"]);
    let token = gw.token.clone();
    drop(gw.kill());

    // Restore into a new data directory and serve from it.
    let dir2 = TempDir::new("restore");
    let cfg2 = write_config(&dir2.0, Some(&sink), "");
    let cfg2_s = cfg2.display().to_string();
    let out = run(&[
        "--config",
        &cfg2_s,
        "restore",
        &backup_dir.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("({copied} messages")));
    // The same edge key, and the old API key works.
    let edge_after = run(&["--config", &cfg2_s, "keys", "public"]);
    assert_eq!(edge_before.stdout, edge_after.stdout);
    let gw2 = Gateway::spawn(&cfg2, token);
    for id in &before {
        let m = gw2.message(id).await;
        assert_eq!(m["id"], id.as_str(), "{m}");
    }
    let ident: serde_json::Value = gw2
        .client()
        .get(gw2.url("/v1/identities/+14155550101"))
        .bearer_auth(&gw2.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(ident["kid"].is_string(), "{ident}");
    assert_eq!(gw2.count("SELECT COUNT(*) FROM messages"), copied);
    // Restoring over a database is refused.
    let again = run(&[
        "--config",
        &cfg2_s,
        "restore",
        &backup_dir.display().to_string(),
    ]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(text(&again).contains("already holds a database"));
    drop(gw2.kill());

    // A damaged backup restores nothing.
    let key = backup_dir.join("keys/current");
    let mut bytes = std::fs::read(&key).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&key, bytes).unwrap();
    let dir3 = TempDir::new("restore-damaged");
    let cfg3 = write_config(&dir3.0, None, "");
    let out = run(&[
        "--config",
        &cfg3.display().to_string(),
        "restore",
        &backup_dir.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("does not match"), "{}", text(&out));
    assert!(!dir3.0.join("data").join("gateway.db").exists());
    // So does a directory that is no backup.
    let out = run(&[
        "--config",
        &cfg3.display().to_string(),
        "restore",
        &dir3.0.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("no backup.json"));
}

#[test]
fn config_check_names_the_problem() {
    let dir = TempDir::new("config-check");
    let good = dir.0.join("good.toml");
    std::fs::write(
        &good,
        "listen = \"127.0.0.1:9999\"\n[generic]\nurl = \"http://127.0.0.1:1/sms\"\n",
    )
    .unwrap();
    let out = run(&["config", "check", &good.display().to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("ok (listen 127.0.0.1:9999"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("routes: generic"));
    let out = run(&["config", "check", &good.display().to_string(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);

    let typo = dir.0.join("typo.toml");
    std::fs::write(&typo, "[delivery]\nmax_atempts = 3\n").unwrap();
    let out = run(&["config", "check", &typo.display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("max_atempts") && text(&out).contains("line 2"),
        "{}",
        text(&out)
    );

    let bad = dir.0.join("bad.toml");
    std::fs::write(
        &bad,
        "default_region = \"XX\"\n[generic]\nurl = \"ftp://x\"\n",
    )
    .unwrap();
    let out = run(&["config", "check", &bad.display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    // Every problem at once.
    assert!(
        text(&out).contains("default_region") && text(&out).contains("generic.url"),
        "{}",
        text(&out)
    );

    let out = run(&[
        "config",
        "check",
        &dir.0.join("missing.toml").display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(2));

    // `-` reads standard input.
    use std::io::Write;
    let mut child = Command::new(bin())
        .args(["config", "check", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"data_dir = \"/tmp/x\"\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("routes: none"));
}
