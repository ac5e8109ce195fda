//! SMPP end to end: the gateway's client bound to the gateway's server (two
//! instances), smpplib (PyPI) bound to the gateway's server, and the
//! gateway's client against a fake SMSC written in Python
//! (`fixtures/smpp/fake_smsc.py`) that throttles, refuses and drops.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/smpp")
        .join(name)
}

/// The SMPP server's address, from its `smpp listening` log line.
async fn smpp_addr(gw: &Gateway) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = gw.logs.lock().unwrap().iter().find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            (v["message"] == "smpp listening").then(|| v["addr"].as_str().unwrap_or("").to_string())
        });
        if let Some(a) = found {
            return a;
        }
        assert!(Instant::now() < deadline, "no smpp listening line");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Adds a server client with the CLI; returns its password.
fn add_client(config: &Path, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["smpp", "client", "add", name];
    args.extend_from_slice(extra);
    let out = cli(config, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Waits until the log shows a bound SMPP client route.
async fn wait_bound(gw: &Gateway) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !gw
        .logs
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("\"SMPP bound\""))
    {
        assert!(Instant::now() < deadline, "client never bound");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const FAST_RETRIES: &str = "[delivery]\ninitial_backoff_ms = 200\nmax_backoff_secs = 2\n";

/// A gateway with an SMPP server that sends out through the generic sink.
fn server_gateway(dir: &TempDir, sink: &Sink, extra: &str) -> (PathBuf, Gateway) {
    let cfg = write_config(
        &dir.0,
        Some(sink),
        &format!(
            "{FAST_RETRIES}[smpp.server]\nlisten = \"127.0.0.1:0\"\nthroughput = 500.0\n{extra}"
        ),
    );
    let gw = Gateway::start(&cfg);
    (cfg, gw)
}

#[tokio::test]
async fn gateway_client_to_gateway_server_multipart_delivered_by_receipt() {
    // Gateway B: the "SMSC", an SMPP server sending out via the generic sink.
    let sink = Sink::start(0).await;
    let bdir = TempDir::new("smpp-b");
    let (bcfg, b) = server_gateway(&bdir, &sink, "");
    let password = add_client(&bcfg, "gw-a", &[]);
    let addr = smpp_addr(&b).await;
    // Gateway A: an SMPP client route to B; no generic route of its own.
    let adir = TempDir::new("smpp-a");
    let pw_file = adir.0.join("smpp-pw");
    std::fs::write(&pw_file, &password).unwrap();
    let acfg = write_config(
        &adir.0,
        None,
        &format!(
            "{FAST_RETRIES}[[smpp.client]]\nname = \"b\"\nhost = \"{addr}\"\nsystem_id = \"gw-a\"\nsecret_file = \"{}\"\nfrom = \"+14155550123\"\nbinds = 2\nwindow = 4\n",
            pw_file.display()
        ),
    );
    let a = Gateway::start(&acfg);
    wait_bound(&a).await;
    let text =
        "Long message over SMPP, split in parts and joined again at the other gateway. ".repeat(3);
    let r = a
        .send(serde_json::json!({"to": "+14155550101", "text": text}))
        .await;
    assert_eq!(r.status(), 202);
    let accepted: serde_json::Value = r.json().await.unwrap();
    assert_eq!(accepted["segments"], 2);
    let id = accepted["id"].as_str().unwrap().to_string();
    // B reassembled it and sent the whole text to its SMSC (the sink).
    let got = sink.wait_for("/sms", 1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1, "B did not send it on");
    let out = got[0].json();
    assert_eq!(out["text"], text.as_str());
    assert_eq!(out["to"], "+14155550101");
    assert_eq!(out["from"], "+14155550123");
    let b_id = out["id"].as_str().unwrap().to_string();
    let sent = a.wait_status(&id, "sent", Duration::from_secs(10)).await;
    assert_eq!(sent["status"], "sent", "{sent}");
    // B learns it was delivered; the receipts travel back to A over SMPP.
    let r = b
        .post_signed(
            "/webhooks/generic/status",
            &serde_json::json!({"id": b_id, "status": "delivered"}),
            GENERIC_SECRET,
        )
        .await;
    assert_eq!(r.status(), 200);
    let m = a
        .wait_status(&id, "delivered", Duration::from_secs(20))
        .await;
    assert_eq!(m["status"], "delivered", "{m}");
    // Both parts were mapped and both receipts applied.
    assert_eq!(
        a.count("SELECT COUNT(*) FROM smpp_parts WHERE state = 'delivered'"),
        2
    );
    // B forgets the owed receipts once A acknowledged them.
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.count("SELECT COUNT(*) FROM smpp_receipts") != 0 {
        assert!(Instant::now() < deadline, "receipts still owed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The text is in neither gateway's logs.
    for gw in [&a, &b] {
        let logs = gw.logs.lock().unwrap().join("\n");
        assert!(!logs.contains("joined again"), "message text in logs");
    }
}

#[tokio::test]
async fn smpplib_binds_sends_multipart_and_gets_receipts() {
    let sink = Sink::start(0).await;
    let dir = TempDir::new("smpp-lib");
    let (cfg, gw) = server_gateway(&dir, &sink, "");
    let password = add_client(&cfg, "app1", &["--throughput", "100"]);
    let addr = smpp_addr(&gw).await;
    let port = addr.rsplit(':').next().unwrap().to_string();
    for sar in [false, true] {
        let text = format!(
            "Hello from smpplib {}: a message long enough to need two SMS parts, sent over SMPP to the gateway's server and reassembled there, then receipted part by part back to the client.",
            if sar { "SAR" } else { "UDH" }
        );
        let mut args = vec![
            fixture("smpplib_client.py").display().to_string(),
            "--port".into(),
            port.clone(),
            "--system-id".into(),
            "app1".into(),
            "--password".into(),
            password.clone(),
            "--source".into(),
            "+14155550142".into(),
            "--dest".into(),
            "+14155550101".into(),
            "--text".into(),
            text.clone(),
        ];
        if sar {
            args.push("--sar".into());
        }
        let mut child = Command::new("python3")
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 with smpplib (pip install -r .ci/requirements.txt)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first: serde_json::Value =
            serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        let ids: Vec<String> = first["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), 2, "{first}");
        assert_ne!(ids[0], ids[1]);
        let n = if sar { 2 } else { 1 };
        let got = sink.wait_for("/sms", n, Duration::from_secs(20)).await;
        assert_eq!(got.len(), n);
        let out = got[n - 1].json();
        assert_eq!(out["text"], text.as_str(), "reassembled");
        assert_eq!(out["from"], "+14155550142");
        let gw_id = out["id"].as_str().unwrap().to_string();
        assert!(
            ids.iter().all(|i| i.starts_with(&gw_id)),
            "{ids:?} vs {gw_id}"
        );
        let r = gw
            .post_signed(
                "/webhooks/generic/status",
                &serde_json::json!({"id": gw_id, "status": "delivered"}),
                GENERIC_SECRET,
            )
            .await;
        assert_eq!(r.status(), 200);
        let done: serde_json::Value =
            serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        let receipts = done["receipts"].as_array().unwrap();
        assert_eq!(receipts.len(), 2, "{done}");
        let mut rids: Vec<String> = receipts
            .iter()
            .map(|r| {
                assert_eq!(r["stat"], "DELIVRD");
                assert_eq!(r["state"], 2);
                assert_eq!(r["esm_class"].as_u64().unwrap() & 0x04, 0x04);
                r["id"].as_str().unwrap().to_string()
            })
            .collect();
        rids.sort();
        let mut want = ids.clone();
        want.sort();
        assert_eq!(rids, want);
        assert!(child.wait().unwrap().success());
    }
    // Malformed PDUs get generic_nack; the server carries on.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let mut bad = Vec::new();
        for w in [20u32, 0x04, 0, 77] {
            bad.extend_from_slice(&w.to_be_bytes());
        }
        bad.extend_from_slice(&[0xFF; 4]); // a submit_sm body that cannot be decoded
        s.write_all(&bad).await.unwrap();
        let mut hdr = [0u8; 16];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut hdr))
            .await
            .unwrap()
            .unwrap();
        let word = |i: usize| u32::from_be_bytes(hdr[i..i + 4].try_into().unwrap());
        assert_eq!(
            (word(4), word(8), word(12)),
            (0x8000_0000, 0x02, 77),
            "generic_nack RINVCMDLEN"
        );
    }
    // A wrong password is refused.
    let out = Command::new("python3")
        .args([
            fixture("smpplib_client.py").display().to_string(),
            "--port".into(),
            port,
            "--system-id".into(),
            "app1".into(),
            "--password".into(),
            "wrong".into(),
            "--source".into(),
            "+14155550142".into(),
            "--dest".into(),
            "+14155550101".into(),
            "--text".into(),
            "x".into(),
            "--timeout".into(),
            "3".into(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

struct FakeSmsc {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl FakeSmsc {
    fn start(dir: &Path, args: &[&str]) -> Self {
        let log = dir.join("smsc.jsonl");
        let mut child = Command::new("python3")
            .arg(fixture("fake_smsc.py"))
            .arg("--log")
            .arg(&log)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().strip_prefix("PORT ").unwrap().parse().unwrap();
        Self { child, port, log }
    }

    fn events(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for FakeSmsc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn client_against_fake_smsc_throttled_refused_dropped() {
    let dir = TempDir::new("smpp-fake");
    // Two throttles first, submit no. 4 unanswered with the connection cut,
    // one destination refused for good.
    let smsc = FakeSmsc::start(
        &dir.0,
        &[
            "--throttle-first",
            "2",
            "--drop-at",
            "4",
            "--reject",
            "14155550177",
        ],
    );
    let pw_file = dir.0.join("pw");
    std::fs::write(&pw_file, "secret").unwrap();
    let cfg = write_config(
        &dir.0,
        None,
        &format!(
            "{FAST_RETRIES}[[smpp.client]]\nname = \"fake\"\nhost = \"127.0.0.1:{}\"\nsystem_id = \"gw\"\nsecret_file = \"{}\"\nfrom = \"+14155550123\"\nconcatenation = \"sar\"\nwindow = 2\n",
            smsc.port,
            pw_file.display()
        ),
    );
    let gw = Gateway::start(&cfg);
    wait_bound(&gw).await;
    let mut ok = Vec::new();
    for (to, text) in [
        ("+14155550101", "x".repeat(200)),
        ("+14155550102", "short one".to_string()),
        ("+14155550103", "another short one".to_string()),
    ] {
        let r = gw.send(serde_json::json!({"to": to, "text": text})).await;
        assert_eq!(r.status(), 202);
        let v: serde_json::Value = r.json().await.unwrap();
        ok.push(v["id"].as_str().unwrap().to_string());
    }
    let r = gw
        .send(serde_json::json!({"to": "+14155550177", "text": "refused"}))
        .await;
    let refused = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for id in &ok {
        let m = gw
            .wait_status(id, "delivered", Duration::from_secs(45))
            .await;
        assert_eq!(m["status"], "delivered", "{m}");
    }
    let m = gw
        .wait_status(&refused, "dead", Duration::from_secs(30))
        .await;
    assert_eq!(m["status"], "dead", "{m}");
    assert!(
        m["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("ESME_RINVDSTADR"),
        "{m}"
    );
    let ev = smsc.events();
    let submits: Vec<&serde_json::Value> = ev.iter().filter(|e| e["event"] == "submit").collect();
    let count = |s: i64| submits.iter().filter(|e| e["status"] == s).count();
    assert_eq!(count(0x58), 2, "throttled twice");
    assert_eq!(count(0x0B), 1, "refused once, not retried");
    assert_eq!(
        submits.iter().filter(|e| e["status"] == "dropped").count(),
        1
    );
    assert!(
        ev.iter().filter(|e| e["event"] == "bind").count() >= 2,
        "reconnected"
    );
    // Every part accepted exactly once: 2 SAR parts + 2 single messages.
    let mut accepted: Vec<String> = submits
        .iter()
        .filter(|e| e["status"] == 0)
        .map(|e| format!("{}/{}", e["dest"], e["part"]["seq"]))
        .collect();
    accepted.sort();
    let n = accepted.len();
    accepted.dedup();
    assert_eq!((n, accepted.len()), (4, 4), "{accepted:?}");
    assert!(
        submits
            .iter()
            .filter(|e| e["dest"] == "14155550101")
            .all(|e| e["part"]["total"] == 2),
        "SAR TLVs on both parts"
    );
}
