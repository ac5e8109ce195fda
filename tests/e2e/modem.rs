//! The GSM modem adapter end to end: the real binary against the modem
//! simulator (`fixtures/modem_sim.py`) over TCP and a pseudo-terminal.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use adapters::sms::{
    Address, Dcs, Deliver, ModemPdu, SmsOptions, Status, StatusReport, Timestamp, Tpdu,
    decode_modem_hex, encode_text,
};
use gateway::envelope::Envelope;
use gateway::envelope::keys;
use time::OffsetDateTime;

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(30);
const OWN_NUMBER: &str = "+14155550101";
const PEER: &str = "+14155550123";

pub(crate) struct Sim {
    child: Child,
    pub(crate) tcp: u16,
    control: u16,
}

impl Sim {
    pub(crate) fn start(pty: Option<&std::path::Path>) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/modem_sim.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script);
        if let Some(p) = pty {
            cmd.arg("--pty").arg(p);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        Self {
            child,
            tcp: v["tcp"].as_u64().unwrap() as u16,
            control: v["control"].as_u64().unwrap() as u16,
        }
    }

    fn ctl(&self, req: serde_json::Value) -> serde_json::Value {
        let mut s = TcpStream::connect(("127.0.0.1", self.control)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(format!("{req}\n").as_bytes()).unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap()
    }

    fn state(&self) -> serde_json::Value {
        self.ctl(serde_json::json!({"op": "state"}))
    }

    pub(crate) fn sent(&self) -> Vec<String> {
        self.state()["sent"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    async fn wait_until(
        &self,
        what: &str,
        f: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let s = self.state();
            if f(&s) {
                return s;
            }
            assert!(start.elapsed() < WAIT, "timed out waiting for {what}: {s}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn modem_config(dir: &std::path::Path, sink: &Sink, transport: &str) -> std::path::PathBuf {
    let extra = format!(
        r#"
[delivery]
initial_backoff_ms = 200
max_backoff_secs = 1

[routing]
default = "sim1"

[[modems]]
name = "sim1"
number = "{OWN_NUMBER}"
{transport}
pace_per_minute = 0
command_timeout_ms = 1000
send_timeout_secs = 3
health_check_secs = 1
reconnect_max_secs = 1
reassembly_timeout_secs = 600
"#
    );
    write_config(dir, Some(sink), &extra)
}

fn deliver_pdus(from: &str, text: &str, reference: u16) -> Vec<String> {
    deliver_encoded(
        from,
        encode_text(text, &SmsOptions::default(), reference).unwrap(),
    )
}

fn deliver_encoded(from: &str, enc: adapters::sms::EncodedText) -> Vec<String> {
    let scts = Timestamp::new(OffsetDateTime::now_utc()).unwrap();
    enc.parts
        .into_iter()
        .map(|ud| {
            let d = Deliver {
                reply_path: false,
                more_messages: false,
                loop_prevention: false,
                status_report_indication: false,
                originator: Address::parse_number(from).unwrap(),
                pid: 0,
                dcs: Dcs::general(ud.encoding(), None),
                scts,
                user_data: ud,
            };
            ModemPdu {
                smsc: None,
                tpdu: Tpdu::Deliver(d),
            }
            .to_hex()
        })
        .collect()
}

fn report_pdu(mr: u8, to: &str, status: u8) -> String {
    let now = Timestamp::new(OffsetDateTime::now_utc()).unwrap();
    ModemPdu {
        smsc: None,
        tpdu: Tpdu::StatusReport(StatusReport {
            more_messages: false,
            loop_prevention: false,
            status_report_qualifier: false,
            message_reference: mr,
            recipient: Address::parse_number(to).unwrap(),
            scts: now,
            discharge_time: now,
            status: Status(status),
            pid: None,
            dcs: None,
            user_data: None,
        }),
    }
    .to_hex()
}

fn open_all(got: &[Received], sk: &keys::PrivateKey) -> Vec<String> {
    let mut texts: Vec<String> = got
        .iter()
        .map(|r| {
            let env = Envelope::from_base64(r.json()["envelope"].as_str().unwrap()).unwrap();
            assert_eq!(env.header.to, OWN_NUMBER);
            assert_eq!(env.header.from, PEER);
            env.open(sk).unwrap().as_text().to_string()
        })
        .collect();
    texts.sort();
    texts
}

/// The text of submitted PDUs, joined in part order; checks recipient,
/// status-report request and concatenation.
fn decode_sent(pdus: &[String]) -> String {
    let mut parts: Vec<(u8, String)> = pdus
        .iter()
        .map(|h| {
            let d = decode_modem_hex(h).unwrap();
            assert_eq!(d.kind, "submit");
            assert_eq!(d.recipient.as_deref(), Some(PEER));
            assert_eq!(d.status_report_requested, Some(true));
            let part = d.concat.as_ref().map_or(1, |c| {
                assert_eq!(c.total as usize, pdus.len());
                c.part
            });
            (part, d.text.unwrap())
        })
        .collect();
    parts.sort();
    parts.into_iter().map(|(_, t)| t).collect()
}

async fn healthz_modem(gw: &Gateway) -> serde_json::Value {
    gw.health().await["modems"]["sim1"].clone()
}

async fn wait_up(gw: &Gateway) {
    let start = Instant::now();
    while healthz_modem(gw).await["state"] != "up" {
        assert!(start.elapsed() < WAIT, "modem never came up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A gateway with one modem on the simulator over TCP, up and bring-up done.
async fn over_tcp(name: &str) -> (TempDir, Sink, Sim, Gateway) {
    let dir = TempDir::new(name);
    let sink = Sink::start(0).await;
    let sim = Sim::start(None);
    let cfg = modem_config(&dir.0, &sink, &format!("tcp = \"127.0.0.1:{}\"", sim.tcp));
    let gw = Gateway::start(&cfg);
    wait_up(&gw).await;
    (dir, sink, sim, gw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modem_inbound_single_and_multipart_reach_the_private_side() {
    let (_dir, sink, sim, gw) = over_tcp("modem-inbound").await;
    let sk = gw.register_identity(OWN_NUMBER).await;

    let single = "Hello from a modem";
    let long = "Привет! ".repeat(40) + "the end";
    let parts = deliver_pdus(PEER, &long, 77);
    assert_eq!(parts.len(), 5);
    sim.ctl(serde_json::json!({"op": "deliver", "pdu": deliver_pdus(PEER, single, 0)[0]}));
    for i in [4, 2, 0, 3, 1] {
        sim.ctl(serde_json::json!({"op": "deliver", "pdu": parts[i]}));
    }
    let got = sink.wait_for("/private", 2, WAIT).await;
    assert_eq!(got.len(), 2);
    let mut want = vec![single.to_string(), long.clone()];
    want.sort();
    assert_eq!(open_all(&got, &sk), want);
    // Everything was deleted from the SIM after the commit; nothing waits.
    sim.wait_until("empty SIM", |s| s["sim"].as_object().unwrap().is_empty())
        .await;
    assert_eq!(gw.count("SELECT COUNT(*) FROM pending_parts"), 0);
    let h = healthz_modem(&gw).await;
    assert_eq!(h["received"], 2, "{h}");
    // Text never reaches the logs.
    let logs = gw.kill();
    assert!(
        !logs
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("from a modem"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modem_inbound_8bit_data_reaches_the_private_side_as_octets() {
    let (_dir, sink, sim, gw) = over_tcp("modem-data").await;
    let sk = gw.register_identity(OWN_NUMBER).await;

    // A short payload in one SMS and a 300-octet one in three parts
    // (134 octets a part), every byte value present.
    let short: Vec<u8> = vec![0x00, 0x1b, 0xff, 0x80, 0x0a];
    let long: Vec<u8> = (0..300u32).map(|i| (i * 7 % 256) as u8).collect();
    let opts = SmsOptions::default();
    let one = deliver_encoded(
        PEER,
        adapters::sms::encode_binary(&short, &opts, 0, None).unwrap(),
    );
    let three = deliver_encoded(
        PEER,
        adapters::sms::encode_binary(&long, &opts, 91, None).unwrap(),
    );
    assert_eq!((one.len(), three.len()), (1, 3));
    sim.ctl(serde_json::json!({"op": "deliver", "pdu": one[0]}));
    for i in [2, 0, 1] {
        sim.ctl(serde_json::json!({"op": "deliver", "pdu": three[i]}));
    }
    let got = sink.wait_for("/private", 2, WAIT).await;
    assert_eq!(got.len(), 2);
    let mut data: Vec<(u32, Vec<u8>)> = got
        .iter()
        .map(|r| {
            let env = Envelope::from_base64(r.json()["envelope"].as_str().unwrap()).unwrap();
            assert_eq!(env.header.encoding, "8bit");
            match env.open(&sk).unwrap() {
                gateway::envelope::Content::Data { data } => (env.header.segments, data),
                other => panic!("expected data content, got {other:?}"),
            }
        })
        .collect();
    data.sort_by_key(|d| d.1.len());
    assert_eq!(data, vec![(1, short), (3, long)]);
    sim.wait_until("empty SIM", |s| s["sim"].as_object().unwrap().is_empty())
        .await;
    assert_eq!(gw.count("SELECT COUNT(*) FROM pending_parts"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modem_outbound_leaves_as_pdus_and_becomes_delivered() {
    let (_dir, sink, sim, gw) = over_tcp("modem-outbound").await;

    let text = "A long message through the modem, ".repeat(6);
    let r = gw.send(serde_json::json!({"to": PEER, "text": text})).await;
    assert_eq!(r.status(), 202);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    gw.wait_status(&id, "sent", WAIT).await;
    let s = sim.state();
    let sent: Vec<String> = serde_json::from_value(s["sent"].clone()).unwrap();
    assert_eq!(sent.len(), 2, "{s}");
    assert_eq!(decode_sent(&sent), text);
    assert!(sink.on("/sms").is_empty(), "the generic route was used");

    for mr in s["mrs"].as_array().unwrap() {
        let mr = mr.as_u64().unwrap() as u8;
        sim.ctl(serde_json::json!({"op": "report", "pdu": report_pdu(mr, PEER, 0)}));
    }
    let v = gw.wait_status(&id, "delivered", WAIT).await;
    assert_eq!(v["status"], "delivered", "{v}");

    // A permanent refusal (invalid destination) dead-letters at once.
    sim.ctl(serde_json::json!({"op": "fault", "cms": [1]}));
    let r = gw.send(serde_json::json!({"to": PEER, "text": "x"})).await;
    let id2 = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let v = gw.wait_status(&id2, "dead", WAIT).await;
    assert_eq!(v["status"], "dead", "{v}");
    assert_eq!(sim.sent().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modem_faults_lose_nothing_and_send_nothing_twice() {
    let (_dir, sink, sim, gw) = over_tcp("modem-faults").await;
    let sk = gw.register_identity(OWN_NUMBER).await;

    // Echo back on, noise before every answer, URCs inside the send, a
    // retryable network error on the second part of a two-part message.
    sim.ctl(serde_json::json!({"op": "deliver", "pdu": deliver_pdus(PEER, "one", 0)[0]}));
    sim.ctl(serde_json::json!({"op": "fault", "echo": true, "garbage": true, "urc_in_send": true}));
    let text = "Two parts, one network error in between. ".repeat(4);
    let r = gw.send(serde_json::json!({"to": PEER, "text": text})).await;
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Let the first part through, then fail the second once.
    sim.wait_until("first part", |s| !s["sent"].as_array().unwrap().is_empty())
        .await;
    sim.ctl(serde_json::json!({"op": "fault", "cms": [332]}));
    gw.wait_status(&id, "sent", WAIT).await;
    sim.ctl(serde_json::json!({"op": "fault", "garbage": false}));
    let sent = sim.sent();
    assert_eq!(sent.len(), 2, "a part was sent twice or lost");
    assert_eq!(decode_sent(&sent), text);

    // A hung modem: the next command gets no answer; the adapter resets it.
    let connects = sim.state()["connects"].as_u64().unwrap();
    sim.ctl(serde_json::json!({"op": "fault", "mute": 1}));
    let r = gw
        .send(serde_json::json!({"to": PEER, "text": "after the hang"}))
        .await;
    let id2 = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    gw.wait_status(&id2, "sent", WAIT).await;
    assert!(sim.state()["connects"].as_u64().unwrap() > connects);
    let sent = sim.sent();
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(decode_sent(&sent[2..]), "after the hang");

    // The device vanishes; a message arrives on the SIM meanwhile (its
    // +CMTI is lost); after the reconnect the sweep finds it.
    sim.ctl(serde_json::json!({"op": "vanish", "secs": 2}));
    sim.ctl(serde_json::json!({"op": "deliver", "pdu": deliver_pdus(PEER, "two", 0)[0]}));
    let got = sink.wait_for("/private", 2, WAIT).await;
    if open_all(&got, &sk) != vec!["one", "two"] {
        for l in gw.logs.lock().unwrap().iter() {
            if l.contains("modem") || l.contains("inbound") {
                eprintln!("{l}");
            }
        }
        eprintln!("{}", sim.state());
    }
    assert_eq!(open_all(&got, &sk), vec!["one", "two"]);
    sim.wait_until("empty SIM", |s| s["sim"].as_object().unwrap().is_empty())
        .await;
    wait_up(&gw).await;
    let h = healthz_modem(&gw).await;
    assert!(h["resets"].as_u64().unwrap() >= 2, "{h}");
    let metrics = gw
        .client()
        .get(gw.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("gateway_modem_up{modem=\"sim1\"} 1"),
        "{metrics}"
    );
    assert!(
        sink.wait_for("/private", 3, Duration::from_secs(1))
            .await
            .len()
            == 2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modem_waiting_parts_survive_a_restart() {
    let dir = TempDir::new("modem-restart");
    let sink = Sink::start(0).await;
    let link = dir.0.join("ttyMODEM");
    let sim = Sim::start(Some(&link));
    let cfg = modem_config(&dir.0, &sink, &format!("device = \"{}\"", link.display()));
    let gw = Gateway::start(&cfg);
    let sk = gw.register_identity(OWN_NUMBER).await;
    wait_up(&gw).await;

    let text = "Restart-proof multipart text. ".repeat(7);
    let parts = deliver_pdus(PEER, &text, 300);
    assert_eq!(parts.len(), 2);
    sim.ctl(serde_json::json!({"op": "deliver", "pdu": parts[1]}));
    sim.wait_until("part stored and deleted", |s| {
        s["sim"].as_object().unwrap().is_empty()
    })
    .await;
    let start = Instant::now();
    while gw.count("SELECT COUNT(*) FROM pending_parts") != 1 {
        assert!(start.elapsed() < WAIT);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Sealed, not plaintext.
    assert!(!file_contains(
        &gw.data_dir.join("gateway.db"),
        "Restart-proof"
    ));
    let token = gw.token.clone();
    let (status, _) = gw.terminate();
    assert!(status.success());

    let gw = Gateway::spawn(&cfg, token);
    wait_up(&gw).await;
    sim.ctl(serde_json::json!({"op": "deliver", "pdu": parts[0]}));
    let got = sink.wait_for("/private", 1, WAIT).await;
    assert_eq!(open_all(&got, &sk), vec![text]);
    let start = Instant::now();
    while gw.count("SELECT COUNT(*) FROM pending_parts") != 0 {
        assert!(start.elapsed() < WAIT);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Issue 18: on a transit-only node a waiting part is kept in memory, not in
/// `pending_parts`, and the reassembled message reaches the private side
/// without its body ever being written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modem_parts_of_a_transit_only_node_wait_in_memory() {
    let dir = TempDir::new("modem-transit");
    let sink = Sink::start(0).await;
    let link = dir.0.join("ttyMODEM");
    let sim = Sim::start(Some(&link));
    let cfg = modem_config(&dir.0, &sink, &format!("device = \"{}\"", link.display()));
    let mut toml = std::fs::read_to_string(&cfg).unwrap();
    toml.push_str("\n[privacy]\ntransit_only = true\n");
    std::fs::write(&cfg, toml).unwrap();
    let gw = Gateway::start(&cfg);
    let sk = gw.register_identity(OWN_NUMBER).await;
    wait_up(&gw).await;

    let text = "Transit multipart text, never at rest. ".repeat(5);
    let parts = deliver_pdus(PEER, &text, 301);
    assert_eq!(parts.len(), 2);
    sim.ctl(serde_json::json!({"op": "deliver", "pdu": parts[1]}));
    sim.wait_until("part taken and deleted", |s| {
        s["sim"].as_object().unwrap().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gw.count("SELECT COUNT(*) FROM pending_parts"), 0);
    sim.ctl(serde_json::json!({"op": "deliver", "pdu": parts[0]}));
    let got = sink.wait_for("/private", 1, WAIT).await;
    assert_eq!(open_all(&got, &sk), vec![text]);
    let chunks = crate::privacy::ciphertext_chunks(got[0].json()["envelope"].as_str().unwrap());
    assert!(crate::privacy::holders(&gw.data_dir, &chunks).is_empty());
    assert_eq!(
        gw.count("SELECT COUNT(*) FROM messages WHERE transit = 1 AND sealed IS NULL"),
        1
    );
    assert_eq!(gw.count("SELECT COUNT(*) FROM pending_parts"), 0);
}
