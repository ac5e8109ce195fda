//! Carrier adapters end to end: Twilio, Telnyx and an SMS Gateway for
//! Android phone, each against the mock provider API in
//! `fixtures/mocks/carriers.py`, with webhooks from `fixtures/webhooks/`.
//! Also cross-checks against the providers' own Python libraries.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer, SigningKey};
use gateway::envelope::keys::PrivateKey;
use gateway::envelope::{Content, Envelope};

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(20);
const TWILIO_SID: &str = "AC00000000000000000000000000000000";
const TWILIO_TOKEN: &str = "twilio-test-token";
pub(crate) const TELNYX_KEY: &str = "telnyx-test-key";
const PHONE_USER: &str = "sms";
const PHONE_PASSWORD: &str = "phone-password";
const PHONE_SIGNING_KEY: &str = "Ab3dE6gH";
const PHONE_PASSPHRASE: &str = "relay passphrase";
const PUBLIC_URL: &str = "https://sms.example.com";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn fixture(rel: &str) -> String {
    std::fs::read_to_string(fixtures().join(rel)).unwrap()
}

/// The mock provider server (Python stdlib), killed on drop.
pub(crate) struct Mock {
    child: Child,
    port: u16,
}

impl Mock {
    pub(crate) fn start(port: u16) -> Self {
        let mut child = Command::new("python3")
            .arg(fixtures().join("mocks/carriers.py"))
            .args(["--port", &port.to_string()])
            .args(["--twilio-sid", TWILIO_SID, "--twilio-token", TWILIO_TOKEN])
            .args(["--telnyx-key", TELNYX_KEY])
            .args([
                "--android-user",
                PHONE_USER,
                "--android-password",
                PHONE_PASSWORD,
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 must be installed");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .unwrap()
            .parse()
            .unwrap();
        Self { child, port }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn requests(&self, provider: &str) -> Vec<serde_json::Value> {
        let all: Vec<serde_json::Value> = reqwest::get(format!("{}/_mock/requests", self.url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        all.into_iter()
            .filter(|r| r["provider"] == provider)
            .collect()
    }

    pub(crate) async fn wait_requests(
        &self,
        provider: &str,
        path: &str,
        n: usize,
    ) -> Vec<serde_json::Value> {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let got: Vec<_> = self
                .requests(provider)
                .await
                .into_iter()
                .filter(|r| r["path"].as_str().unwrap().starts_with(path))
                .collect();
            if got.len() >= n || std::time::Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn fail(&self, provider: &str, status: u16, count: u32) {
        reqwest::Client::new()
            .post(format!("{}/_mock/fail", self.url()))
            .json(&serde_json::json!({"provider": provider, "status": status, "count": count}))
            .send()
            .await
            .unwrap();
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn secret_file(dir: &Path, name: &str, value: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, value).unwrap();
    p.display().to_string()
}

pub(crate) fn telnyx_signer() -> SigningKey {
    SigningKey::from_bytes(&[42u8; 32])
}

/// A gateway with the private side on `sink` and the carriers given in `extra`.
fn start(dir: &TempDir, sink: &Sink, extra: &str) -> Gateway {
    let cfg = write_config(
        &dir.0,
        None,
        &format!(
            "[delivery]\ninitial_backoff_ms = 100\nmax_backoff_secs = 1\nmax_attempts = 6\n\n\
             [private_side]\nwebhook_url = \"{}\"\n\n{extra}",
            sink.url("/private")
        ),
    );
    Gateway::start(&cfg)
}

pub(crate) fn twilio_section(dir: &Path, mock: &Mock, from: &str) -> String {
    format!(
        "[twilio]\naccount_sid = \"{TWILIO_SID}\"\napi_base = \"{}\"\npublic_url = \"{PUBLIC_URL}\"\n\
         from = \"{from}\"\nsecret_file = \"{}\"\n",
        mock.url(),
        secret_file(dir, "twilio.token", TWILIO_TOKEN)
    )
}

fn open_private(r: &Received, sk: &PrivateKey) -> Content {
    let b64 = r.json()["envelope"].as_str().unwrap().to_string();
    Envelope::from_base64(&b64).unwrap().open(sk).unwrap()
}

fn form(raw: &str) -> Vec<(String, String)> {
    adapters::twilio::parse_form(raw.as_bytes()).unwrap()
}

async fn post_twilio(gw: &Gateway, path: &str, raw: &str, sig: Option<&str>) -> reqwest::Response {
    let mut req = gw
        .client()
        .post(gw.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(raw.to_string());
    if let Some(s) = sig {
        req = req.header(adapters::twilio::SIGNATURE_HEADER, s);
    }
    req.send().await.unwrap()
}

fn inbound_count(gw: &Gateway) -> i64 {
    gw.count("SELECT COUNT(*) FROM messages WHERE direction = 'inbound'")
}

async fn send(gw: &Gateway, body: serde_json::Value) -> String {
    gw.send_accepted(body).await
}

fn statuses(m: &serde_json::Value) -> Vec<String> {
    m["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_inbound_outbound_status_outage_and_dead_letter() {
    let dir = TempDir::new("twilio");
    let sink = Sink::start(0).await;
    let mock = Mock::start(0);
    let gw = start(&dir, &sink, &twilio_section(&dir.0, &mock, "+14155550199"));
    let sk = gw.register_identity("+14155550101").await;
    let url = format!("{PUBLIC_URL}/webhooks/twilio");

    // Inbound SMS with a valid signature: empty TwiML, reaches the private side.
    let raw = fixture("webhooks/twilio/inbound_sms.txt");
    let sig = adapters::twilio::signature(TWILIO_TOKEN.as_bytes(), &url, &form(&raw));
    let r = post_twilio(&gw, "/webhooks/twilio", &raw, Some(&sig)).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/xml")
    );
    assert_eq!(r.text().await.unwrap(), adapters::twilio::EMPTY_TWIML);
    let got = sink.wait_for("/private", 1, WAIT).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        open_private(&got[0], &sk),
        Content::text("Hello from Twilio!")
    );

    // Retried webhook (signed with the default port spelled out, which
    // Twilio has also done): acknowledged, stored once.
    let sig443 = adapters::twilio::signature(
        TWILIO_TOKEN.as_bytes(),
        "https://sms.example.com:443/webhooks/twilio",
        &form(&raw),
    );
    let r = post_twilio(&gw, "/webhooks/twilio", &raw, Some(&sig443)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(inbound_count(&gw), 1);

    // Invalid or missing signature, or a tampered body: 401, nothing stored.
    let other = raw.replace("SM1f0e8ae6ade43cb3c0ce4525424e404f", "SM2");
    for (body, s) in [
        (other.as_str(), Some(sig.as_str())),
        (other.as_str(), None),
        (other.as_str(), Some("bm90IGl0")),
    ] {
        let r = post_twilio(&gw, "/webhooks/twilio", body, s).await;
        assert_eq!(r.status(), 401);
    }
    let wrong = adapters::twilio::signature(b"not-the-token", &url, &form(&other));
    assert_eq!(
        post_twilio(&gw, "/webhooks/twilio", &other, Some(&wrong))
            .await
            .status(),
        401
    );
    assert_eq!(inbound_count(&gw), 1);

    // Inbound MMS: the media references travel inside the sealed content.
    let mms = fixture("webhooks/twilio/inbound_mms.txt");
    let sig = adapters::twilio::signature(TWILIO_TOKEN.as_bytes(), &url, &form(&mms));
    assert_eq!(
        post_twilio(&gw, "/webhooks/twilio", &mms, Some(&sig))
            .await
            .status(),
        200
    );
    let got = sink.wait_for("/private", 2, WAIT).await;
    let Content::Text { text, media } = open_private(&got[1], &sk) else {
        panic!("expected a text message");
    };
    assert_eq!(text, "Look at this");
    assert_eq!(media.len(), 2);
    assert!(
        media[0]
            .url
            .ends_with("/Media/ME0000000000000000000000000000000a")
    );
    assert_eq!(media[0].content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(media[1].content_type.as_deref(), Some("image/png"));

    // Outbound reaches the Messages API with basic auth and the right fields.
    let id = send(
        &gw,
        serde_json::json!({"to": "+14155550101", "text": "Hi from the gateway"}),
    )
    .await;
    let reqs = mock.wait_requests("twilio", "/2010-04-01/", 1).await;
    assert_eq!(reqs.len(), 1);
    let want_auth = format!(
        "Basic {}",
        B64.encode(format!("{TWILIO_SID}:{TWILIO_TOKEN}"))
    );
    assert_eq!(reqs[0]["authorization"], want_auth.as_str());
    assert_eq!(
        reqs[0]["path"],
        format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages.json").as_str()
    );
    let fields = form(reqs[0]["body"].as_str().unwrap());
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("To"), Some("+14155550101"));
    assert_eq!(get("From"), Some("+14155550199"));
    assert_eq!(get("Body"), Some("Hi from the gateway"));
    assert_eq!(
        get("StatusCallback"),
        Some("https://sms.example.com/webhooks/twilio/status")
    );
    let m = gw.wait_status(&id, "sent", WAIT).await;
    assert_eq!(m["status"], "sent", "{m}");
    let sid = m["carrier_id"].as_str().unwrap().to_string();
    assert!(sid.starts_with("SM"));

    // Status callback: delivered.
    let cb = fixture("webhooks/twilio/status_delivered.txt")
        .replace("SM00000000000000000000000000000000", &sid);
    let status_url = format!("{PUBLIC_URL}/webhooks/twilio/status");
    let sig = adapters::twilio::signature(TWILIO_TOKEN.as_bytes(), &status_url, &form(&cb));
    let bad = post_twilio(&gw, "/webhooks/twilio/status", &cb, Some("AAAA")).await;
    assert_eq!(bad.status(), 401);
    assert_eq!(gw.message(&id).await["status"], "sent");
    let r = post_twilio(&gw, "/webhooks/twilio/status", &cb, Some(&sig)).await;
    assert!(r.status().is_success(), "{}", r.status());
    let m = gw.message(&id).await;
    assert_eq!(m["status"], "delivered");
    assert_eq!(statuses(&m), ["queued", "sent", "delivered"]);

    // An outage (503, then 429 with code 20429) is ridden out with retries.
    mock.fail("twilio", 503, 2).await;
    let id = send(
        &gw,
        serde_json::json!({"to": "+14155550102", "text": "through the outage"}),
    )
    .await;
    let m = gw.wait_status(&id, "sent", WAIT).await;
    assert_eq!(m["status"], "sent", "{m}");
    assert_eq!(
        statuses(&m).iter().filter(|s| *s == "retrying").count(),
        2,
        "{m}"
    );
    mock.fail("twilio", 429, 1).await;
    let id = send(
        &gw,
        serde_json::json!({"to": "+14155550103", "text": "throttled"}),
    )
    .await;
    let m = gw.wait_status(&id, "sent", WAIT).await;
    assert!(m["history"].to_string().contains("20429"), "{m}");

    // A permanent Twilio error (21614: not a mobile number) dead-letters at once.
    let id = send(
        &gw,
        serde_json::json!({"to": "+15005550009", "text": "to a landline"}),
    )
    .await;
    let m = gw.wait_status(&id, "dead", WAIT).await;
    assert_eq!(m["status"], "dead", "{m}");
    assert!(m["last_error"].as_str().unwrap().contains("21614"), "{m}");
    let dead: serde_json::Value = gw
        .client()
        .get(gw.url("/v1/dead-letters"))
        .bearer_auth(&gw.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        dead.as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == id.as_str())
    );
}

#[test]
fn twilio_signature_agrees_with_twilios_python_library() {
    // Fails (does not skip) when the `twilio` package is missing: .ci/run installs it.
    let raw = fixture("webhooks/twilio/inbound_mms.txt");
    let params = form(&raw);
    let urls = [
        "https://sms.example.com/webhooks/twilio",
        "https://sms.example.com/webhooks/twilio?x=1&y=%20z",
        "http://127.0.0.1:8080/webhooks/twilio/status",
    ];
    let ours: Vec<String> = urls
        .iter()
        .map(|u| adapters::twilio::signature(TWILIO_TOKEN.as_bytes(), u, &params))
        .collect();
    let script = r#"
import json, sys
from twilio.request_validator import RequestValidator
d = json.load(sys.stdin)
v = RequestValidator(d["token"])
params = {}
for k, val in d["params"]:
    params[k] = val
out = []
for url, sig in zip(d["urls"], d["ours"]):
    out.append({"theirs": v.compute_signature(url, params), "valid": v.validate(url, params, sig)})
# Twilio's validator accepts the signature over the URL without :443 when it is called with it.
port = "https://sms.example.com:443/webhooks/twilio"
out.append({"theirs": "", "valid": v.validate(port, params, d["ours"][0])})
print(json.dumps(out))
"#;
    let input =
        serde_json::json!({"token": TWILIO_TOKEN, "params": params, "urls": urls, "ours": ours});
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python3 with the `twilio` package is required: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let res: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    for (i, s) in ours.iter().enumerate() {
        assert_eq!(res[i]["theirs"], s.as_str(), "url {}", urls[i]);
        assert_eq!(res[i]["valid"], true);
    }
    assert_eq!(res[3]["valid"], true);
    // And ours accepts theirs over the :443 spelling as well.
    assert!(adapters::twilio::validate(
        TWILIO_TOKEN.as_bytes(),
        "https://sms.example.com:443/webhooks/twilio",
        &params,
        Some(res[0]["theirs"].as_str().unwrap())
    ));
}

fn telnyx_headers(body: &[u8], ts: i64, key: &SigningKey) -> (String, String) {
    let ts = ts.to_string();
    let sig = key.sign(&adapters::telnyx::signed_bytes(&ts, body));
    (B64.encode(sig.to_bytes()), ts)
}

async fn post_telnyx(gw: &Gateway, body: &str, sig: Option<(String, String)>) -> reqwest::Response {
    let mut req = gw
        .client()
        .post(gw.url("/webhooks/telnyx"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some((s, t)) = sig {
        req = req
            .header(adapters::telnyx::SIGNATURE_HEADER, s)
            .header(adapters::telnyx::TIMESTAMP_HEADER, t);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telnyx_inbound_outbound_status_and_outage() {
    let dir = TempDir::new("telnyx");
    let sink = Sink::start(0).await;
    let mock = Mock::start(0);
    let signer = telnyx_signer();
    let section = format!(
        "[telnyx]\napi_base = \"{}\"\npublic_key = \"{}\"\nfrom = \"+14155550199\"\n\
         webhook_url = \"{PUBLIC_URL}/webhooks/telnyx\"\nsecret_file = \"{}\"\n",
        mock.url(),
        B64.encode(signer.verifying_key().as_bytes()),
        secret_file(&dir.0, "telnyx.key", TELNYX_KEY)
    );
    let gw = start(&dir, &sink, &section);
    let sk = gw.register_identity("+14155550101").await;

    let body = fixture("webhooks/telnyx/message_received.json");
    let body = body.trim();
    let r = post_telnyx(
        &gw,
        body,
        Some(telnyx_headers(body.as_bytes(), now_secs(), &signer)),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["duplicate"],
        false
    );
    let got = sink.wait_for("/private", 1, WAIT).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        open_private(&got[0], &sk),
        Content::text("Hello from Telnyx!")
    );

    // Retried: stored once.
    let r = post_telnyx(
        &gw,
        body,
        Some(telnyx_headers(body.as_bytes(), now_secs(), &signer)),
    )
    .await;
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["duplicate"],
        true
    );
    assert_eq!(inbound_count(&gw), 1);

    // Forged, stale, missing: 401, nothing stored.
    let other = body.replace("84cca175", "94cca175");
    let forger = SigningKey::from_bytes(&[1u8; 32]);
    for sig in [
        Some(telnyx_headers(other.as_bytes(), now_secs(), &forger)),
        Some(telnyx_headers(other.as_bytes(), now_secs() - 3600, &signer)),
        Some(telnyx_headers(body.as_bytes(), now_secs(), &signer)),
        None,
    ] {
        assert_eq!(post_telnyx(&gw, &other, sig).await.status(), 401);
    }
    assert_eq!(inbound_count(&gw), 1);

    // Outbound: Bearer key, JSON fields.
    let id = send(
        &gw,
        serde_json::json!({"to": "+14155550101", "text": "Hi Telnyx"}),
    )
    .await;
    let reqs = mock.wait_requests("telnyx", "/v2/messages", 1).await;
    assert_eq!(
        reqs[0]["authorization"],
        format!("Bearer {TELNYX_KEY}").as_str()
    );
    let sent: serde_json::Value = serde_json::from_str(reqs[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        sent,
        serde_json::json!({"from": "+14155550199", "to": "+14155550101", "text": "Hi Telnyx",
                           "webhook_url": "https://sms.example.com/webhooks/telnyx"})
    );
    let m = gw.wait_status(&id, "sent", WAIT).await;
    let carrier_id = m["carrier_id"].as_str().unwrap().to_string();

    // Delivery status.
    let fin = fixture("webhooks/telnyx/message_finalized_delivered.json")
        .trim()
        .replace("40385f64-5717-4562-b3fc-2c963f66afa6", &carrier_id);
    let r = post_telnyx(
        &gw,
        &fin,
        Some(telnyx_headers(fin.as_bytes(), now_secs(), &signer)),
    )
    .await;
    assert_eq!(r.status(), 200);
    let m = gw.message(&id).await;
    assert_eq!(m["status"], "delivered");
    assert_eq!(statuses(&m), ["queued", "sent", "delivered"]);

    // Outage ridden out.
    mock.fail("telnyx", 503, 3).await;
    let id = send(
        &gw,
        serde_json::json!({"to": "+14155550102", "text": "outage"}),
    )
    .await;
    let m = gw.wait_status(&id, "sent", WAIT).await;
    assert_eq!(m["status"], "sent", "{m}");
    assert_eq!(statuses(&m).iter().filter(|s| *s == "retrying").count(), 3);
}

pub(crate) fn android_section(dir: &Path, phone_url: &str, webhook_url: &str) -> String {
    format!(
        "[[android]]\nname = \"phone1\"\nurl = \"{phone_url}\"\nusername = \"{PHONE_USER}\"\n\
         password = {{ secret_file = \"{}\" }}\nsigning_key = {{ secret_file = \"{}\" }}\n\
         passphrase = {{ secret_file = \"{}\" }}\nwebhook_url = \"{webhook_url}\"\n\
         from = \"+14155550101\"\nsim_number = 2\nttl_secs = 3600\nkdf_iterations = 1000\n",
        secret_file(dir, "phone.password", PHONE_PASSWORD),
        secret_file(dir, "phone.signing", PHONE_SIGNING_KEY),
        secret_file(dir, "phone.passphrase", PHONE_PASSPHRASE),
    )
}

async fn post_phone(gw: &Gateway, body: &str, key: &str, ts: i64) -> reqwest::Response {
    let ts = ts.to_string();
    gw.client()
        .post(gw.url("/webhooks/android/phone1"))
        .header("content-type", "application/json")
        .header(
            adapters::android_relay::SIGNATURE_HEADER,
            adapters::android_relay::sign(key.as_bytes(), body.as_bytes(), &ts),
        )
        .header(adapters::android_relay::TIMESTAMP_HEADER, ts)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn android_relay_offline_phone_registration_encryption_and_parts() {
    let dir = TempDir::new("android");
    let sink = Sink::start(0).await;
    // The phone is offline when the gateway starts.
    let port = free_port();
    let phone_url = format!("http://127.0.0.1:{port}");
    let hook = "http://127.0.0.1:9/webhooks/android/phone1";
    let gw = start(&dir, &sink, &android_section(&dir.0, &phone_url, hook));
    let sk = gw.register_identity("+14155550101").await;

    let id = send(
        &gw,
        serde_json::json!({"to": "+14155550100", "text": "Hi phone"}),
    )
    .await;
    let deadline = std::time::Instant::now() + WAIT;
    while gw.count(&format!(
        "SELECT COUNT(*) FROM queue WHERE message_id = '{id}' AND attempts >= 2"
    )) == 0
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = gw.message(&id).await;
    assert_eq!(
        m["status"], "queued",
        "waits while the phone is offline: {m}"
    );
    assert!(
        m["last_error"].as_str().unwrap().contains("unreachable"),
        "{m}"
    );

    // The phone comes back: the message goes out, encrypted, and webhooks get registered.
    let mock = Mock::start(port);
    let m = gw.wait_status(&id, "sent", WAIT).await;
    assert_eq!(m["status"], "sent", "{m}");
    let reqs = mock.wait_requests("android", "/message", 1).await;
    let req = reqs.iter().find(|r| r["method"] == "POST").unwrap();
    let want_auth = format!(
        "Basic {}",
        B64.encode(format!("{PHONE_USER}:{PHONE_PASSWORD}"))
    );
    assert_eq!(req["authorization"], want_auth.as_str());
    let b: serde_json::Value = serde_json::from_str(req["body"].as_str().unwrap()).unwrap();
    assert_eq!(b["id"], id.as_str());
    assert_eq!(b["isEncrypted"], true);
    assert_eq!(b["simNumber"], 2);
    assert_eq!(b["ttl"], 3600);
    assert_eq!(b["withDeliveryReport"], true);
    let dec = |v: &serde_json::Value| {
        adapters::android_relay::decrypt(PHONE_PASSPHRASE, v.as_str().unwrap()).unwrap()
    };
    assert_eq!(dec(&b["textMessage"]["text"]), "Hi phone");
    assert_eq!(dec(&b["phoneNumbers"][0]), "+14155550100");
    let hooks = mock.wait_requests("android", "/webhooks", 5).await;
    let registered: Vec<_> = hooks.iter().filter(|r| r["method"] == "POST").collect();
    assert_eq!(registered.len(), 4, "{hooks:?}");

    // Parts: sent with partsCount 2; delivered only after both parts.
    let sent = fixture("webhooks/android/sms_sent.json")
        .trim()
        .replace("MESSAGE_ID", &id);
    assert_eq!(
        post_phone(&gw, &sent, PHONE_SIGNING_KEY, now_secs())
            .await
            .status(),
        200
    );
    let delivered = |d: &str| {
        fixture("webhooks/android/sms_delivered.json")
            .trim()
            .replace("MESSAGE_ID", &id)
            .replace("DELIVERY_ID", d)
    };
    assert_eq!(
        post_phone(&gw, &delivered("d1"), PHONE_SIGNING_KEY, now_secs())
            .await
            .status(),
        200
    );
    assert_eq!(
        post_phone(&gw, &delivered("d1"), PHONE_SIGNING_KEY, now_secs())
            .await
            .status(),
        200
    );
    assert_eq!(gw.message(&id).await["status"], "sent", "one part of two");
    // A forged delivery changes nothing.
    assert_eq!(
        post_phone(&gw, &delivered("d2"), "wrong-key", now_secs())
            .await
            .status(),
        401
    );
    assert_eq!(gw.message(&id).await["status"], "sent");
    assert_eq!(
        post_phone(&gw, &delivered("d2"), PHONE_SIGNING_KEY, now_secs())
            .await
            .status(),
        200
    );
    let m = gw.message(&id).await;
    assert_eq!(m["status"], "delivered", "{m}");
    assert_eq!(
        statuses(&m)
            .iter()
            .filter(|s| *s == "part_delivered")
            .count(),
        2
    );

    // sms:failed on another message.
    let id2 = send(
        &gw,
        serde_json::json!({"to": "+14155550102", "text": "will fail"}),
    )
    .await;
    gw.wait_status(&id2, "sent", WAIT).await;
    let failed = fixture("webhooks/android/sms_failed.json")
        .trim()
        .replace("MESSAGE_ID", &id2);
    assert_eq!(
        post_phone(&gw, &failed, PHONE_SIGNING_KEY, now_secs())
            .await
            .status(),
        200
    );
    let m = gw.message(&id2).await;
    assert_eq!(m["status"], "failed");
    assert!(
        m["history"]
            .to_string()
            .contains("RESULT_ERROR_GENERIC_FAILURE")
    );

    // Inbound, with encrypted text and sender.
    let mut ev: serde_json::Value =
        serde_json::from_str(&fixture("webhooks/android/sms_received.json")).unwrap();
    let enc = |s: &str| adapters::android_relay::encrypt(PHONE_PASSPHRASE, s, [9u8; 16], 1000);
    ev["payload"]["message"] = enc("Hello from the phone!").into();
    ev["payload"]["sender"] = enc("+14155550100").into();
    let body = ev.to_string();
    assert_eq!(
        post_phone(&gw, &body, PHONE_SIGNING_KEY, now_secs())
            .await
            .status(),
        200
    );
    let got = sink.wait_for("/private", 1, WAIT).await;
    assert_eq!(
        open_private(&got[0], &sk),
        Content::text("Hello from the phone!")
    );
    let env = Envelope::from_base64(got[0].json()["envelope"].as_str().unwrap()).unwrap();
    assert_eq!(env.header.from, "+14155550100");
    // Retried: once. Stale timestamp: refused.
    assert_eq!(
        post_phone(&gw, &body, PHONE_SIGNING_KEY, now_secs())
            .await
            .status(),
        200
    );
    assert_eq!(inbound_count(&gw), 1);
    let replay = body.replace("Ey6ECgOkVVFjz3CL48B8C", "other-delivery");
    assert_eq!(
        post_phone(&gw, &replay, PHONE_SIGNING_KEY, now_secs() - 3600)
            .await
            .status(),
        401
    );
    assert_eq!(inbound_count(&gw), 1);

    // Restart: registration lists first and adds nothing.
    let token = gw.token.clone();
    drop(gw.kill());
    let gw = Gateway::spawn(&dir.0.join("gateway.toml"), token);
    let deadline = std::time::Instant::now() + WAIT;
    while mock
        .requests("android")
        .await
        .iter()
        .filter(|r| r["path"] == "/webhooks" && r["method"] == "GET")
        .count()
        < 2
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let list: Vec<serde_json::Value> = reqwest::Client::new()
        .get(format!("{}/webhooks", mock.url()))
        .basic_auth(PHONE_USER, Some(PHONE_PASSWORD))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 4, "no duplicate registrations: {list:?}");
    let posts = mock
        .requests("android")
        .await
        .iter()
        .filter(|r| r["path"] == "/webhooks" && r["method"] == "POST")
        .count();
    assert_eq!(posts, 4);
    drop(gw);
}

#[test]
fn relay_encryption_agrees_with_the_published_client() {
    // android-sms-gateway's AESEncryptor (needs pycryptodome): it decrypts
    // ours, and we decrypt its.
    let ours =
        adapters::android_relay::encrypt("shared secret", "Grüße +14155550100", [3u8; 16], 75_000);
    let script = r#"
import sys
from android_sms_gateway.encryption import AESEncryptor
e = AESEncryptor("shared secret", iterations=75000)
print(e.decrypt(sys.argv[1]))
print(e.encrypt("Привет from Python"))
"#;
    let out = Command::new("python3")
        .args(["-c", script, &ours])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python3 with android-sms-gateway and pycryptodome is required: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("Grüße +14155550100"));
    let theirs = lines.next().unwrap();
    assert!(theirs.starts_with("$aes-256-cbc/pbkdf2-sha1$i=75000$"));
    assert_eq!(
        adapters::android_relay::decrypt("shared secret", theirs).unwrap(),
        "Привет from Python"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_blocks_outbound_until_start() {
    let dir = TempDir::new("optout");
    let sink = Sink::start(0).await;
    let mock = Mock::start(0);
    let gw = start(&dir, &sink, &twilio_section(&dir.0, &mock, "+14155550101"));
    gw.register_identity("+14155550101").await;
    let url = format!("{PUBLIC_URL}/webhooks/twilio");
    let inbound = |sid: &str, body: &str| {
        fixture("webhooks/twilio/inbound_sms.txt")
            .replace("SM1f0e8ae6ade43cb3c0ce4525424e404f", sid)
            .replace("Hello+from+Twilio%21", body)
    };
    let post = |raw: String| {
        let sig = adapters::twilio::signature(TWILIO_TOKEN.as_bytes(), &url, &form(&raw));
        let gw = &gw;
        async move {
            post_twilio(gw, "/webhooks/twilio", &raw, Some(&sig))
                .await
                .status()
        }
    };
    assert_eq!(post(inbound("SM1", "Stop")).await, 200);
    let stop_id = gw.count("SELECT COUNT(*) FROM opt_outs WHERE local_address = '+14155550101' AND remote_address = '+14155550100' AND keyword = 'STOP'");
    assert_eq!(stop_id, 1);
    assert_eq!(gw.count("SELECT COUNT(*) FROM message_events WHERE status = 'opt_out' AND detail = 'keyword STOP'"), 1);

    // Outbound from that number to the opted-out one: refused, clearly.
    let r = gw
        .send(serde_json::json!({"to": "+14155550100", "text": "promo"}))
        .await;
    assert_eq!(r.status(), 400);
    let e: serde_json::Value = r.json().await.unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("opted out"),
        "{e}"
    );
    assert!(!e.to_string().contains("promo"));
    // Other recipients are unaffected.
    send(
        &gw,
        serde_json::json!({"to": "+14155550102", "text": "fine"}),
    )
    .await;
    // HELP is recorded but changes nothing; START lifts the block.
    assert_eq!(post(inbound("SM2", "help")).await, 200);
    assert_eq!(gw.count("SELECT COUNT(*) FROM opt_outs"), 1);
    assert_eq!(post(inbound("SM3", "START")).await, 200);
    assert_eq!(gw.count("SELECT COUNT(*) FROM opt_outs"), 0);
    send(
        &gw,
        serde_json::json!({"to": "+14155550100", "text": "welcome back"}),
    )
    .await;
    // "Please stop" is a message, not a keyword.
    assert_eq!(post(inbound("SM4", "please+stop+it")).await, 200);
    assert_eq!(gw.count("SELECT COUNT(*) FROM opt_outs"), 0);
    // The keyword messages still reach the private side, sealed.
    assert_eq!(sink.wait_for("/private", 4, WAIT).await.len(), 4);
}
