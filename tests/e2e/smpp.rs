//! SMPP end to end: the gateway's client bound to the gateway's server (two
//! instances), smpplib (PyPI) bound to the gateway's server, and the
//! gateway's client against a fake SMSC written in Python
//! (`fixtures/smpp/fake_smsc.py`) that throttles, refuses and drops.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/smpp")
        .join(name)
}

/// The SMPP server's address, from its `smpp listening` log line.
pub(crate) async fn smpp_addr(gw: &Gateway) -> String {
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
pub(crate) fn add_client(config: &Path, name: &str, extra: &[&str]) -> String {
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
pub(crate) async fn wait_bound(gw: &Gateway) {
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

pub(crate) const FAST_RETRIES: &str =
    "[delivery]\ninitial_backoff_ms = 200\nmax_backoff_secs = 2\n";

/// A gateway with an SMPP server that sends out through the generic sink.
pub(crate) fn server_gateway(dir: &TempDir, sink: &Sink, extra: &str) -> (PathBuf, Gateway) {
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
    b.report_generic_status(&b_id, "delivered").await;
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
        gw.report_generic_status(&gw_id, "delivered").await;
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

pub(crate) struct FakeSmsc {
    child: Child,
    pub(crate) port: u16,
    log: PathBuf,
}

impl FakeSmsc {
    pub(crate) fn start(dir: &Path, args: &[&str]) -> Self {
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

    pub(crate) fn events(&self) -> Vec<serde_json::Value> {
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

/// smpplib bound to the gateway's server as a receiver
/// (`fixtures/smpp/smpplib_receiver.py`): its JSON events as they come.
pub(crate) struct PyReceiver {
    child: Child,
    events: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl PyReceiver {
    pub(crate) fn start(port: &str, system_id: &str, password: &str, extra: &[&str]) -> Self {
        let mut child = Command::new("python3")
            .arg(fixture("smpplib_receiver.py"))
            .args([
                "--port",
                port,
                "--system-id",
                system_id,
                "--password",
                password,
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 with smpplib (pip install -r .ci/requirements.txt)");
        let out = child.stdout.take().unwrap();
        let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        Self { child, events }
    }

    pub(crate) fn of(&self, event: &str) -> Vec<serde_json::Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == event)
            .cloned()
            .collect()
    }

    /// Waits until `n` events of this kind arrived (or the time is up).
    pub(crate) async fn wait(
        &self,
        event: &str,
        n: usize,
        within: Duration,
    ) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.of(event);
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The received message with exactly this text.
    fn message(&self, text: &str) -> Option<serde_json::Value> {
        self.of("message").into_iter().find(|m| m["text"] == text)
    }
}

impl Drop for PyReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn health(gw: &Gateway) -> serde_json::Value {
    gw.client()
        .get(gw.admin_url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until `/healthz` satisfies `ok`.
async fn wait_health(
    gw: &Gateway,
    within: Duration,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let h = health(gw).await;
        if ok(&h) || Instant::now() > deadline {
            return h;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Posts an inbound SMS to the generic webhook; returns the message id.
pub(crate) async fn inbound(
    gw: &Gateway,
    carrier_id: &str,
    from: &str,
    to: &str,
    text: &str,
) -> String {
    let sms = serde_json::json!({"id": carrier_id, "from": from, "to": to, "text": text});
    let r = gw
        .post_signed("/webhooks/generic", &sms, GENERIC_SECRET)
        .await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

pub(crate) fn port_of(addr: &str) -> String {
    addr.rsplit(':').next().unwrap().to_string()
}

#[tokio::test]
async fn inbound_to_a_server_clients_numbers_arrives_as_deliver_sm() {
    let sink = Sink::start(0).await;
    let dir = TempDir::new("smpp-mo");
    let (cfg, gw) = server_gateway(&dir, &sink, "");
    // One exact number and a prefix.
    let password = add_client(
        &cfg,
        "app-rx",
        &["--address", "+14155550160", "--address", "+1415555017*"],
    );
    // Private-side identities: the control message, and the owned number
    // once it is nobody's (an owner comes before a registered identity).
    gw.register_identity("+14155550101").await;
    gw.register_identity("+14155550160").await;
    let port = port_of(&smpp_addr(&gw).await);
    let rx = PyReceiver::start(&port, "app-rx", &password, &["--bind", "receiver"]);
    assert_eq!(rx.wait("bound", 1, Duration::from_secs(20)).await.len(), 1);
    let h = wait_health(&gw, Duration::from_secs(5), |h| {
        h["smpp"]["server"]["clients"]["app-rx"]["bound"] == true
    })
    .await;
    assert_eq!(
        h["smpp"]["server"]["clients"]["app-rx"]["receivers"], 1,
        "{h}"
    );
    assert!(
        gw.metrics_text()
            .await
            .contains("gateway_smpp_server_binds{system_id=\"app-rx\"} 1")
    );

    let secret = canary();
    // GSM-7 with extension characters (two septets each), one part.
    let short = format!("Hi @home, 5€ {{ok}} [{secret}]");
    // GSM-7, two parts; UCS-2 (a surrogate pair too), two parts.
    let long = "Inbound over SMPP: the quick brown fox jumps over the lazy dog; ".repeat(4);
    let ucs2 =
        "Привет! Это сообщение длиннее семидесяти символов, поэтому оно придёт в двух частях 👋";
    let from = "+14155550100";
    let ids = [
        inbound(&gw, "mo-1", from, "+14155550160", &short).await,
        inbound(&gw, "mo-2", from, "+14155550171", &long).await,
        inbound(&gw, "mo-3", from, "+14155550160", ucs2).await,
        // A compliance keyword is recorded and still reaches the client.
        inbound(&gw, "mo-4", from, "+14155550160", "STOP").await,
    ];
    // A number nobody owns goes to the private side as before.
    inbound(&gw, "mo-5", from, "+14155550101", "for the private side").await;
    let got = rx.wait("message", 4, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 4, "{got:?}");
    let m = rx.message(&short).expect("short message, exact text");
    assert_eq!(
        (
            &m["from"],
            &m["to"],
            &m["parts"],
            &m["udh"],
            &m["data_coding"]
        ),
        (
            &serde_json::json!("14155550100"),
            &serde_json::json!("14155550160"),
            &serde_json::json!(1),
            &serde_json::json!(false),
            &serde_json::json!(0)
        ),
        "{m}"
    );
    let m = rx.message(&long).expect("GSM-7 multipart, exact text");
    assert_eq!(
        (&m["parts"], &m["udh"], &m["data_coding"]),
        (&2.into(), &true.into(), &0.into()),
        "{m}"
    );
    assert_eq!(m["to"], "14155550171", "prefix owner");
    let m = rx.message(ucs2).expect("UCS-2 multipart, exact text");
    assert_eq!(
        (&m["parts"], &m["udh"], &m["data_coding"]),
        (&2.into(), &true.into(), &8.into()),
        "{m}"
    );
    assert!(rx.message("STOP").is_some());
    // Multipart parts carry esm_class UDHI; single ones the default.
    let pdus = rx.of("pdu");
    assert_eq!(pdus.len(), 1 + 2 + 2 + 1, "each part once");
    assert!(
        pdus.iter()
            .all(|p| p["esm_class"] == 0 || p["esm_class"] == 0x40)
    );
    for id in &ids {
        let m = gw
            .wait_status(id, "delivered", Duration::from_secs(10))
            .await;
        assert_eq!(m["status"], "delivered", "{m}");
        assert_eq!(m["direction"], "inbound");
    }
    assert_eq!(
        gw.count("SELECT COUNT(*) FROM opt_outs WHERE local_address = '+14155550160' AND remote_address = '+14155550100'"),
        1,
        "STOP recorded"
    );
    assert_eq!(
        gw.count("SELECT COUNT(*) FROM messages WHERE deliver_to = 'smpp:app-rx'"),
        4
    );
    // The private side got only the message for the number nobody owns.
    let private = sink.wait_for("/private", 1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let private = if private.len() == 1 {
        sink.on("/private")
    } else {
        private
    };
    assert_eq!(private.len(), 1);
    let env =
        gateway::envelope::Envelope::from_base64(private[0].json()["envelope"].as_str().unwrap())
            .unwrap();
    assert_eq!(env.header.to, "+14155550101");
    // The text was sealed in the store and is in no log line.
    let logs = gw.logs.lock().unwrap().join("\n");
    assert!(!logs.contains(&secret), "message text in logs");
    for f in ["gateway.db", "gateway.db-wal"] {
        assert!(
            !file_contains(&gw.data_dir.join(f), &secret),
            "clear text in {f}"
        );
    }

    // Removing the client closes its bind within seconds; its numbers are
    // nobody's any more.
    let out = cli(&cfg, &["smpp", "client", "remove", "app-rx"]);
    assert!(out.status.success());
    let closed = rx.wait("closed", 1, Duration::from_secs(8)).await;
    assert_eq!(closed.len(), 1, "bind of a removed client still open");
    let h = wait_health(&gw, Duration::from_secs(5), |h| {
        h["smpp"]["server"]["clients"].get("app-rx").is_none()
    })
    .await;
    assert!(
        h["smpp"]["server"]["clients"].get("app-rx").is_none(),
        "{h}"
    );
    assert!(
        gw.metrics_text()
            .await
            .contains("gateway_smpp_server_binds{system_id=\"app-rx\"} 0")
    );
    inbound(&gw, "mo-6", from, "+14155550160", "after removal").await;
    assert_eq!(
        sink.wait_for("/private", 2, Duration::from_secs(10))
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn inbound_for_an_unbound_client_waits_survives_sigkill_and_arrives_on_bind() {
    let sink = Sink::start(0).await;
    let dir = TempDir::new("smpp-mo-late");
    // A long backoff: after the restart, only the bind can make the waiting
    // message due soon.
    let cfg = write_config(
        &dir.0,
        Some(&sink),
        "[delivery]\ninitial_backoff_ms = 30000\nmax_backoff_secs = 60\n[smpp.server]\nlisten = \"127.0.0.1:0\"\n",
    );
    let password = add_client(&cfg, "app-late", &["--address", "+14155550180"]);
    let gw = Gateway::start(&cfg);
    let text = "Waiting for the application to bind, then delivered in two parts over SMPP, after a crash in between. ".repeat(2);
    let id = inbound(&gw, "late-1", "+14155550100", "+14155550180", &text).await;
    // The first attempt finds no bind and is rescheduled.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = gw.message(&id).await;
        let retried = m["history"].as_array().unwrap().iter().any(|e| {
            e["status"] == "retrying" && e["detail"].as_str().unwrap_or("").contains("no receiver")
        });
        if retried {
            assert_eq!(m["status"], "queued", "{m}");
            break;
        }
        assert!(Instant::now() < deadline, "no retry recorded: {m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let h = health(&gw).await;
    assert_eq!(
        h["smpp"]["server"]["clients"]["app-late"]["bound"], false,
        "{h}"
    );
    assert_eq!(
        gw.count("SELECT COUNT(*) FROM queue WHERE target = 'smpp:app-late' AND dead = 0"),
        1
    );
    gw.kill();

    let gw = Gateway::start(&cfg);
    let port = port_of(&smpp_addr(&gw).await);
    let rx = PyReceiver::start(&port, "app-late", &password, &["--bind", "transceiver"]);
    assert_eq!(rx.wait("bound", 1, Duration::from_secs(20)).await.len(), 1);
    let bound_at = Instant::now();
    let got = rx.wait("message", 1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1);
    assert!(
        bound_at.elapsed() < Duration::from_secs(10),
        "arrived {:?} after the bind: the bind did not wake the queue",
        bound_at.elapsed()
    );
    assert_eq!(got[0]["text"], text.as_str());
    assert_eq!(got[0]["parts"], 2);
    let m = gw
        .wait_status(&id, "delivered", Duration::from_secs(10))
        .await;
    assert_eq!(m["status"], "delivered", "{m}");
    assert!(sink.on("/private").is_empty(), "the private side got it");
    assert_eq!(gw.count("SELECT COUNT(*) FROM queue"), 0);
}

fn review(cfg: &Path, args: &[&str]) {
    let out = Command::new(bin())
        .arg("--config")
        .arg(cfg)
        .arg("review")
        .args(args)
        .env("GATEWAY_OPERATOR", "e2e")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "review {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn client_statuses_are_retried_or_dead_lettered_and_the_spam_gate_runs_first() {
    let sink = Sink::start(0).await;
    let dir = TempDir::new("smpp-mo-status");
    // Senders outside the allow list may send one message, then are held.
    let policy = r#"
[classifier]
allow = ["+1415555*"]
[classifier.rate_limits]
long_code = { per_second = 0.001, burst = 1 }
recipient = { per_second = 1000.0, burst = 10000 }
pair = { per_second = 1000.0, burst = 10000 }
route = { per_second = 1000.0, burst = 10000 }
"#;
    let cfg = write_config_with_policy(
        &dir.0,
        Some(&sink),
        &format!("{FAST_RETRIES}[smpp.server]\nlisten = \"127.0.0.1:0\"\n"),
        policy,
    );
    let password = add_client(&cfg, "app-st", &["--address", "+1415555019*"]);
    let gw = Gateway::start(&cfg);
    let port = port_of(&smpp_addr(&gw).await);
    // First deliver_sm: ESME_RX_T_APPN (retry), second ROK, third ESME_RX_P_APPN.
    let rx = PyReceiver::start(
        &port,
        "app-st",
        &password,
        &["--bind", "transceiver", "--answers", "0x64,0,0x65"],
    );
    assert_eq!(rx.wait("bound", 1, Duration::from_secs(20)).await.len(), 1);
    let a = inbound(
        &gw,
        "st-a",
        "+14155550100",
        "+14155550190",
        "temporary trouble first",
    )
    .await;
    let m = gw
        .wait_status(&a, "delivered", Duration::from_secs(15))
        .await;
    assert_eq!(m["status"], "delivered", "{m}");
    assert!(
        m["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["status"] == "retrying"
                && e["detail"]
                    .as_str()
                    .unwrap_or("")
                    .contains("ESME_RX_T_APPN")),
        "{m}"
    );
    let b = inbound(
        &gw,
        "st-b",
        "+14155550102",
        "+14155550191",
        "refused for good",
    )
    .await;
    let m = gw.wait_status(&b, "dead", Duration::from_secs(15)).await;
    assert_eq!(m["status"], "dead", "{m}");
    assert!(
        m["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("ESME_RX_P_APPN"),
        "{m}"
    );
    let to_b = |p: &serde_json::Value| p["dest"] == "14155550191";
    assert_eq!(
        rx.of("pdu").iter().filter(|p| to_b(p)).count(),
        1,
        "not retried"
    );

    // The spam gate still decides first: the second message of a new
    // sender is held, and goes to the client only when an operator releases it.
    let spammy = "+12125550188";
    let c1 = inbound(
        &gw,
        "st-c1",
        spammy,
        "+14155550192",
        "first from a new sender",
    )
    .await;
    let c2 = inbound(
        &gw,
        "st-c2",
        spammy,
        "+14155550192",
        "second, held for review",
    )
    .await;
    assert_eq!(
        gw.wait_status(&c1, "delivered", Duration::from_secs(15))
            .await["status"],
        "delivered"
    );
    assert_eq!(gw.message(&c2).await["status"], "held");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        rx.message("second, held for review").is_none(),
        "held message delivered"
    );
    review(&cfg, &["mark", spammy, "ham", "--note", "known sender"]);
    let m = gw
        .wait_status(&c2, "delivered", Duration::from_secs(20))
        .await;
    assert_eq!(m["status"], "delivered", "{m}");
    assert!(rx.message("second, held for review").is_some());
    assert!(sink.on("/private").is_empty(), "the private side got one");
}

#[tokio::test]
async fn gateway_client_binds_over_tls_to_the_gateway_server_and_health_shows_binds() {
    let sink = Sink::start(0).await;
    let bdir = TempDir::new("smpp-tls-b");
    // A self-signed certificate for localhost, made here.
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (bdir.0.join("cert.pem"), bdir.0.join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let (bcfg, b) = server_gateway(
        &bdir,
        &sink,
        &format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert.display(),
            key.display()
        ),
    );
    let password = add_client(&bcfg, "gw-tls", &[]);
    let addr = smpp_addr(&b).await;
    let adir = TempDir::new("smpp-tls-a");
    let pw_file = adir.0.join("smpp-pw");
    std::fs::write(&pw_file, &password).unwrap();
    // Route "b" trusts the certificate (tls_ca); route "untrusted" checks
    // it against the web PKI roots and must fail; route "plain" speaks TCP
    // to a TLS listener and must fail too. The first route is the default.
    let mut routes = String::new();
    for (name, tls) in [
        (
            "b",
            format!(
                "tls = true\ntls_ca = \"{}\"\ntls_server_name = \"localhost\"\n",
                cert.display()
            ),
        ),
        (
            "untrusted",
            "tls = true\ntls_server_name = \"localhost\"\n".to_string(),
        ),
        ("plain", String::new()),
    ] {
        routes.push_str(&format!(
            "[[smpp.client]]\nname = \"{name}\"\nhost = \"{addr}\"\nsystem_id = \"gw-tls\"\nsecret_file = \"{}\"\nfrom = \"+14155550123\"\nreconnect_max_secs = 1\n{tls}",
            pw_file.display()
        ));
    }
    let acfg = write_config(&adir.0, None, &format!("{FAST_RETRIES}{routes}"));
    let a = Gateway::start(&acfg);
    wait_bound(&a).await;
    let text = "Over TLS: a message long enough for two SMPP parts, from one gateway to the other one and on to its SMSC. ".repeat(2);
    let r = a
        .send(serde_json::json!({"to": "+14155550101", "text": text}))
        .await;
    assert_eq!(r.status(), 202);
    let got = sink.wait_for("/sms", 1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1, "B did not get it over TLS");
    assert_eq!(got[0].json()["text"], text.as_str());

    // A's health: the trusted bind is up; the others are down with why.
    let h = wait_health(&a, Duration::from_secs(15), |h| {
        let c = &h["smpp"]["clients"];
        c["smpp:untrusted"]["binds"][0]["last_error"].is_string()
            && c["smpp:plain"]["binds"][0]["last_error"].is_string()
    })
    .await;
    let c = &h["smpp"]["clients"];
    assert_eq!(c["smpp:b"]["up"], 1, "{h}");
    assert_eq!(c["smpp:b"]["tls"], true);
    assert_eq!(c["smpp:b"]["binds"][0]["up"], true);
    assert_eq!(c["smpp:untrusted"]["up"], 0, "{h}");
    let why = c["smpp:untrusted"]["binds"][0]["last_error"]
        .as_str()
        .unwrap();
    assert!(
        why.contains("certificate") || why.contains("UnknownIssuer"),
        "{why}"
    );
    assert_eq!(c["smpp:plain"]["up"], 0, "{h}");
    let m = a.metrics_text().await;
    assert!(
        m.contains("gateway_smpp_bind_up{route=\"smpp:b\",bind=\"0\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("gateway_smpp_bind_up{route=\"smpp:untrusted\",bind=\"0\"} 0"),
        "{m}"
    );
    // B's health: listening with TLS, the client bound (once: only "b" got
    // in). Waited for: under load the bind can be between enquire_links.
    let h = wait_health(&b, Duration::from_secs(15), |h| {
        h["smpp"]["server"]["clients"]["gw-tls"]["bound"] == true
    })
    .await;
    assert_eq!(h["smpp"]["server"]["tls"], true, "{h}");
    assert_eq!(
        h["smpp"]["server"]["clients"]["gw-tls"]["bound"], true,
        "{h}"
    );
    assert_eq!(h["smpp"]["server"]["clients"]["gw-tls"]["binds"], 1, "{h}");
    assert_eq!(h["smpp"]["server"]["listening"], addr.as_str());
}
