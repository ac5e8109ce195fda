//! RCS end to end: the real binary against the mock RBM API and token
//! endpoint in `fixtures/mocks/rbm.py` (which checks the RS256 assertion
//! with the test key pair in `fixtures/rcs/keys/`), SMS through the generic
//! route into the recording sink.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gateway::envelope::{Content, Envelope};
use serde_json::{Value, json};

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(20);
const CLIENT_TOKEN: &str = "rbm-client-token";
const AGENT: &str = "gateway-test-agent@rbm.goog";
/// The business's number: `[rbm] from` and the generic route's sender.
const BUSINESS: &str = "+14155550199";
const CAPABLE: &str = "+14155550111";
const CAPABLE_2: &str = "+14155550112";
const CAPABLE_3: &str = "+14155550113";
const INCAPABLE: &str = "+14155550121";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn fixture_json(rel: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join(rel)).unwrap()).unwrap()
}

/// The SMS text part of a rendering golden file.
fn golden_text(rel: &str) -> String {
    let s = std::fs::read_to_string(fixtures().join(rel)).unwrap();
    s.split("\n---\n").next().unwrap().to_string()
}

/// The mock RBM API + token endpoint, killed on drop.
struct RbmMock {
    child: Child,
    port: u16,
}

impl RbmMock {
    fn start(capable: &[&str]) -> Self {
        let mut child = Command::new("python3")
            .arg(fixtures().join("mocks/rbm.py"))
            .args([
                "--port",
                "0",
                "--client-token",
                CLIENT_TOKEN,
                "--agent-id",
                AGENT,
            ])
            .arg("--public-key")
            .arg(fixtures().join("rcs/keys/test_public.pem"))
            .args(["--capable", &capable.join(",")])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 (with pycryptodome, .ci/requirements.txt) must be installed");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("mock did not start: {line:?}"))
            .parse()
            .unwrap();
        Self { child, port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn requests(&self) -> Vec<Value> {
        reqwest::get(self.url("/_mock/requests"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// API requests with this method whose path starts with `prefix`.
    async fn calls(&self, method: &str, prefix: &str) -> Vec<Value> {
        self.requests()
            .await
            .into_iter()
            .filter(|r| r["method"] == method && r["path"].as_str().unwrap().starts_with(prefix))
            .collect()
    }

    async fn wait_calls(&self, method: &str, prefix: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            let got = self.calls(method, prefix).await;
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        reqwest::Client::new()
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for RbmMock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rbm_section(dir: &Path, mock: &RbmMock, fallback_secs: u64) -> String {
    rbm_section_with_key(dir, mock, fallback_secs, "service_account.json")
}

fn rbm_section_with_key(dir: &Path, mock: &RbmMock, fallback_secs: u64, key: &str) -> String {
    let token = dir.join("client-token");
    std::fs::write(&token, CLIENT_TOKEN).unwrap();
    format!(
        "[delivery]\ninitial_backoff_ms = 100\nmax_backoff_secs = 1\nmax_attempts = 6\n\n\
         [rbm]\nagent_id = \"{AGENT}\"\nfrom = \"{BUSINESS}\"\napi_base = \"{}\"\ntoken_uri = \"{}\"\n\
         fallback_secs = {fallback_secs}\nsms_segment_budget = 4\n\
         service_account = {{ secret_file = \"{}\" }}\nclient_token = {{ secret_file = \"{}\" }}\n\n",
        mock.url(""),
        mock.url("/token"),
        fixtures().join("rcs/keys").join(key).display(),
        token.display()
    )
}

fn statuses(m: &Value) -> Vec<String> {
    m["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap().to_string())
        .collect()
}

async fn accepted(gw: &Gateway, body: Value) -> Value {
    let r = gw.send(body).await;
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 202, "{v}");
    v
}

fn open_private(r: &Received, sk: &gateway::envelope::keys::PrivateKey) -> Content {
    let b64 = r.json()["envelope"].as_str().unwrap().to_string();
    Envelope::from_base64(&b64).unwrap().open(sk).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rcs_auto_to_capable_recipient_goes_rcs_and_is_delivered_on_delivered() {
    let dir = TempDir::new("rcs-auto");
    let sink = Sink::start(0).await;
    let mock = RbmMock::start(&[CAPABLE]);
    let gw = Gateway::start(&write_config(
        &dir.0,
        Some(&sink),
        &rbm_section(&dir.0, &mock, 30),
    ));

    let a = accepted(
        &gw,
        json!({"to": CAPABLE, "rcs": fixture_json("rcs/api/standalone_card.json")}),
    )
    .await;
    assert_eq!(
        (
            a["channel"].as_str(),
            a["segments"].as_u64(),
            a["encoding"].as_str()
        ),
        (Some("rcs"), Some(1), Some("utf8")),
        "{a}"
    );
    let id = a["id"].as_str().unwrap().to_string();
    let m = gw.wait_status(&id, "sent", WAIT).await;
    assert_eq!(m["status"], "sent", "{m}");
    assert_eq!(m["channel"], "rcs");

    // The token came from the mock token endpoint, which checked the RS256
    // assertion against the test public key; the send used it.
    let tokens = mock.calls("POST", "/token").await;
    assert_eq!(tokens.len(), 1);
    assert!(tokens[0]["body"].as_str().unwrap().starts_with(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="
    ));
    let caps = mock
        .calls("GET", &format!("/v1/phones/{CAPABLE}/capabilities"))
        .await;
    assert_eq!(caps.len(), 1);
    let sends = mock
        .calls("POST", &format!("/v1/phones/{CAPABLE}/agentMessages"))
        .await;
    assert_eq!(sends.len(), 1);
    assert!(
        sends[0]["path"]
            .as_str()
            .unwrap()
            .contains(&format!("messageId={id}"))
    );
    assert!(
        sends[0]["authorization"]
            .as_str()
            .unwrap()
            .starts_with("Bearer ya29.mock-")
    );
    let body: Value = serde_json::from_str(sends[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, fixture_json("rcs/rbm/agent_message_standalone.json"));

    // DELIVERED (signed by the mock with the client token) makes it delivered.
    let webhook = gw.url("/webhooks/rbm");
    let r = mock
        .control(
            "/_mock/deliver",
            json!({"message_id": id, "webhook": webhook}),
        )
        .await;
    assert_eq!(r["status"], 200, "{r}");
    let m = gw.message(&id).await;
    assert_eq!(m["status"], "delivered", "{m}");
    assert_eq!(statuses(&m), ["queued", "sent", "delivered"], "{m}");
    assert_eq!(gw.count("SELECT COUNT(*) FROM rcs_fallback"), 0);
    // A READ adds to the history; a repeated DELIVERED changes nothing.
    let r = mock
        .control(
            "/_mock/deliver",
            json!({"message_id": id, "webhook": webhook, "event": "READ"}),
        )
        .await;
    assert_eq!(r["status"], 200, "{r}");
    let m = gw.message(&id).await;
    assert_eq!(statuses(&m), ["queued", "sent", "delivered", "read"], "{m}");

    // A second message to the same user: the capability answer is cached,
    // the token reused; a carousel goes as a carousel.
    let a = accepted(
        &gw,
        json!({"to": CAPABLE, "rcs": fixture_json("rcs/api/carousel.json"), "channel": "auto"}),
    )
    .await;
    assert_eq!(a["channel"], "rcs");
    let sends = mock
        .wait_calls("POST", &format!("/v1/phones/{CAPABLE}/agentMessages"), 2)
        .await;
    assert_eq!(sends.len(), 2);
    let body: Value = serde_json::from_str(sends[1]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, fixture_json("rcs/rbm/agent_message_carousel.json"));
    assert_eq!(
        mock.calls("GET", &format!("/v1/phones/{CAPABLE}/capabilities"))
            .await
            .len(),
        1
    );
    assert_eq!(mock.calls("POST", "/token").await.len(), 1);
    // Nothing went to the SMS route.
    assert!(sink.on("/sms").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rcs_auto_to_incapable_recipient_goes_sms_and_a_numbered_reply_maps_to_its_postback() {
    let dir = TempDir::new("rcs-sms");
    let sink = Sink::start(0).await;
    let mock = RbmMock::start(&[CAPABLE]);
    let gw = Gateway::start(&write_config(
        &dir.0,
        Some(&sink),
        &rbm_section(&dir.0, &mock, 30),
    ));
    let business_key = gw.register_identity(BUSINESS).await;

    let card = fixture_json("rcs/api/standalone_card.json");
    let a = accepted(&gw, json!({"to": INCAPABLE, "rcs": card})).await;
    assert_eq!(
        (
            a["channel"].as_str(),
            a["segments"].as_u64(),
            a["encoding"].as_str()
        ),
        (Some("sms"), Some(2), Some("gsm7")),
        "{a}"
    );
    let got = sink.wait_for("/sms", 1, WAIT).await;
    assert_eq!(got.len(), 1);
    let sms = got[0].json();
    assert_eq!(
        sms["text"],
        golden_text("rcs/render/standalone_card.txt").as_str()
    );
    assert_eq!(sms["to"], INCAPABLE);
    assert_eq!(
        (sms["segments"].as_u64(), sms["encoding"].as_str()),
        (Some(2), Some("gsm7"))
    );
    assert!(
        mock.calls("POST", &format!("/v1/phones/{INCAPABLE}/agentMessages"))
            .await
            .is_empty()
    );
    assert_eq!(
        mock.calls("GET", &format!("/v1/phones/{INCAPABLE}/capabilities"))
            .await
            .len(),
        1
    );
    let id = a["id"].as_str().unwrap();
    let m = gw.wait_status(id, "sent", WAIT).await;
    assert_eq!(
        (m["channel"].as_str(), m["adapter"].as_str()),
        (Some("sms"), Some("generic")),
        "{m}"
    );

    // The user answers "2" by SMS: the private side gets suggestion 2's
    // response with its postback, sealed; a second "2" is plain text.
    for (n, carrier_id) in [(1usize, "smsc-r1"), (2, "smsc-r2")] {
        let r = gw
            .post_signed(
                "/webhooks/generic",
                &json!({"id": carrier_id, "from": INCAPABLE, "to": BUSINESS, "text": "2"}),
                GENERIC_SECRET,
            )
            .await;
        assert_eq!(r.status(), 200);
        let got = sink.wait_for("/private", n, WAIT).await;
        assert_eq!(got.len(), n);
    }
    let got = sink.on("/private");
    match open_private(&got[0], &business_key) {
        Content::RcsUser {
            message: adapters::rcs::UserMessage::SuggestionResponse { text, postback },
        } => assert_eq!(
            (text.as_str(), postback.as_str()),
            ("Show coats", "sale_coats")
        ),
        other => panic!("expected a suggestion response, got {other:?}"),
    }
    assert_eq!(open_private(&got[1], &business_key), Content::text("2"));

    // channel sms never tries RCS, even for a capable user; channel rcs to
    // an incapable user is refused, nothing stored.
    let before = mock.calls("POST", "/v1/phones/").await.len();
    let a = accepted(
        &gw,
        json!({"to": CAPABLE, "rcs": fixture_json("rcs/api/file.json"), "channel": "sms"}),
    )
    .await;
    assert_eq!(a["channel"], "sms");
    let got = sink.wait_for("/sms", 2, WAIT).await;
    assert_eq!(
        got[1].json()["text"],
        golden_text("rcs/render/file.txt").as_str()
    );
    assert_eq!(mock.calls("POST", "/v1/phones/").await.len(), before);
    let messages = gw.count("SELECT COUNT(*) FROM messages");
    let r = gw
        .send(json!({"to": INCAPABLE, "text": "hello", "channel": "rcs"}))
        .await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("capability"),
        "{e}"
    );
    assert_eq!(gw.count("SELECT COUNT(*) FROM messages"), messages);
    // RBM refusing a message for good (the user left RCS after the cached
    // capability check) sends the SMS at once, not after fallback_secs.
    let a = accepted(&gw, json!({"to": CAPABLE, "text": "first, over RCS"})).await;
    assert_eq!(a["channel"], "rcs");
    // The first message must have reached RBM before the user "leaves RCS",
    // or it too would be refused and fall back.
    mock.wait_calls("POST", "/v1/phones/", before + 1).await;
    mock.control(
        "/_mock/capable",
        json!({"phone": CAPABLE, "capable": false}),
    )
    .await;
    let started = Instant::now();
    let a = accepted(&gw, json!({"to": CAPABLE, "text": "second, RBM says 404"})).await;
    assert_eq!(a["channel"], "rcs", "the capability answer is cached");
    let id = a["id"].as_str().unwrap();
    let got = sink.wait_for("/sms", 3, WAIT).await;
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].json()["text"], "second, RBM says 404");
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "well before fallback_secs = 30"
    );
    let m = gw.wait_status(id, "sent", WAIT).await;
    assert!(
        m["history"].to_string().contains("HTTP 404 NOT_FOUND"),
        "{m}"
    );
    assert_eq!(m["channel"], "sms", "{m}");
    // Bad RCS content is refused naming the field, never quoting it.
    let r = gw
        .send(json!({"to": CAPABLE, "rcs": {"text": "t", "suggestions": [{"reply": {"text": "a very long chip text over 25", "postback": "p"}}]}}))
        .await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("suggestions[0].reply.text") && !msg.contains("very long"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rcs_not_delivered_in_time_is_revoked_and_sent_as_sms_once_even_across_a_restart() {
    let dir = TempDir::new("rcs-fallback");
    let sink = Sink::start(0).await;
    let mock = RbmMock::start(&[CAPABLE, CAPABLE_2, CAPABLE_3]);
    let cfg = write_config(&dir.0, Some(&sink), &rbm_section(&dir.0, &mock, 2));
    let gw = Gateway::start(&cfg);

    let a = accepted(
        &gw,
        json!({"to": CAPABLE, "rcs": fixture_json("rcs/api/text_with_suggestions.json")}),
    )
    .await;
    assert_eq!(a["channel"], "rcs");
    let id = a["id"].as_str().unwrap().to_string();
    assert_eq!(gw.wait_status(&id, "sent", WAIT).await["channel"], "rcs");
    // No DELIVERED: after 2 s it is revoked and its SMS rendering sent.
    let got = sink.wait_for("/sms", 1, WAIT).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].json()["text"],
        golden_text("rcs/render/text_with_suggestions.txt").as_str()
    );
    let revokes = mock
        .calls(
            "DELETE",
            &format!("/v1/phones/{CAPABLE}/agentMessages/{id}"),
        )
        .await;
    assert_eq!(revokes.len(), 1);
    let m = gw.wait_status(&id, "sent", WAIT).await;
    assert_eq!(m["channel"], "sms", "{m}");
    let hist = statuses(&m);
    assert_eq!(
        hist,
        ["queued", "sent", "fallback", "queued", "sent"],
        "{m}"
    );
    assert!(m["history"].to_string().contains("revoked at RBM"), "{m}");
    // Exactly once: time passes, nothing more happens.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(sink.on("/sms").len(), 1);
    assert_eq!(mock.calls("DELETE", "/v1/phones/").await.len(), 1);
    assert_eq!(gw.count("SELECT COUNT(*) FROM rcs_fallback"), 0);

    // The timer is durable: accepted, then the process is killed before it
    // is due; the restarted gateway revokes and sends the SMS, once.
    let a = accepted(&gw, json!({"to": CAPABLE_2, "text": "Your code is 123456"})).await;
    let id2 = a["id"].as_str().unwrap().to_string();
    gw.wait_status(&id2, "sent", WAIT).await;
    let token = gw.token.clone();
    gw.kill();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let gw = Gateway::spawn(&cfg, token);
    let got = sink.wait_for("/sms", 2, WAIT).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].json()["text"], "Your code is 123456");
    assert_eq!(
        (
            got[1].json()["segments"].as_u64(),
            got[1].json()["encoding"].as_str()
        ),
        (Some(1), Some("gsm7"))
    );
    assert_eq!(
        mock.calls(
            "DELETE",
            &format!("/v1/phones/{CAPABLE_2}/agentMessages/{id2}")
        )
        .await
        .len(),
        1
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(sink.on("/sms").len(), 2);

    // Delivered before the timer: no revoke, no SMS.
    mock.control(
        "/_mock/auto_deliver",
        json!({"webhook": gw.url("/webhooks/rbm"), "delay_ms": 100}),
    )
    .await;
    let a = accepted(&gw, json!({"to": CAPABLE_3, "text": "delivered in time"})).await;
    let id3 = a["id"].as_str().unwrap().to_string();
    let m = gw.wait_status(&id3, "delivered", WAIT).await;
    assert_eq!(m["status"], "delivered", "{m}");
    assert!(
        m["history"].to_string().contains("SMS fallback cancelled"),
        "{m}"
    );
    mock.control("/_mock/auto_deliver", json!({"webhook": null}))
        .await;

    // channel rcs never falls back: not delivered, never revoked, no SMS.
    let a = accepted(
        &gw,
        json!({"to": CAPABLE_3, "text": "rcs only", "channel": "rcs"}),
    )
    .await;
    let id4 = a["id"].as_str().unwrap().to_string();
    gw.wait_status(&id4, "sent", WAIT).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(sink.on("/sms").len(), 2);
    assert!(
        mock.calls("DELETE", &format!("/v1/phones/{CAPABLE_3}/"))
            .await
            .is_empty()
    );
    assert_eq!(gw.message(&id4).await["channel"], "rcs");
    assert_eq!(gw.count("SELECT COUNT(*) FROM rcs_fallback"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbm_webhook_handshake_signature_and_inbound_user_messages() {
    let dir = TempDir::new("rcs-webhook");
    let sink = Sink::start(0).await;
    let mock = RbmMock::start(&[CAPABLE]);
    let gw = Gateway::start(&write_config(
        &dir.0,
        Some(&sink),
        &rbm_section(&dir.0, &mock, 30),
    ));
    let sk = gw.register_identity(BUSINESS).await;
    let webhook = gw.url("/webhooks/rbm");
    let post = |body: Value, sig: Option<&str>| {
        let mut req = gw.client().post(&webhook).json(&body);
        if let Some(s) = sig {
            req = req.header("X-Goog-Signature", s);
        }
        req.send()
    };

    // Setup handshake: the secret is echoed only for our client token.
    let r = post(
        json!({"clientToken": CLIENT_TOKEN, "secret": "s3cr3t-42"}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    // the bare secret as a plain-text body (RBM webhook guide)
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(r.text().await.unwrap(), "s3cr3t-42");
    let r = post(
        json!({"clientToken": "not-ours", "secret": "s3cr3t-42"}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 401);

    // A user message with a bad or missing signature is refused, nothing stored.
    let event = json!({"senderPhoneNumber": CAPABLE, "messageId": "MxUser0001", "sendTime": "2026-12-01T12:00:00Z",
                       "agentId": AGENT, "text": "Hello agent"});
    let r = mock
        .control(
            "/_mock/user",
            json!({"webhook": webhook, "event": event, "signature": "AAAA"}),
        )
        .await;
    assert_eq!(r["status"], 401, "{r}");
    let body = fixture_json("rcs/rbm/webhook_text.json");
    assert_eq!(post(body.clone(), None).await.unwrap().status(), 401);
    let wrong = adapters::rcs::rbm::sign(b"other-token", b"{}");
    assert_eq!(post(body, Some(&wrong)).await.unwrap().status(), 401);
    assert_eq!(
        gw.count("SELECT COUNT(*) FROM messages WHERE direction = 'inbound'"),
        0
    );

    // Signed: stored sealed and delivered to the private side; a retried
    // push (same RBM messageId) is stored once.
    for duplicate in [false, true] {
        let r = mock
            .control("/_mock/user", json!({"webhook": webhook, "event": event}))
            .await;
        assert_eq!(r["status"], 200, "{r}");
        let answer: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
        assert_eq!(answer["duplicate"], duplicate, "{answer}");
    }
    let got = sink.wait_for("/private", 1, WAIT).await;
    assert_eq!(open_private(&got[0], &sk), Content::text("Hello agent"));
    assert_eq!(gw.count("SELECT COUNT(*) FROM messages WHERE direction = 'inbound' AND channel = 'rcs' AND adapter = 'rbm'"), 1);

    // A tapped suggestion and a shared location arrive as RCS user content.
    for ev in [
        json!({"senderPhoneNumber": CAPABLE, "messageId": "MxUser0002", "agentId": AGENT,
               "suggestionResponse": {"postbackData": "sale_boots", "text": "Show boots", "type": "REPLY"}}),
        json!({"senderPhoneNumber": CAPABLE, "messageId": "MxUser0003", "agentId": AGENT,
               "location": {"latitude": 37.4220188, "longitude": -122.0844786}}),
    ] {
        let r = mock
            .control("/_mock/user", json!({"webhook": webhook, "event": ev}))
            .await;
        assert_eq!(r["status"], 200, "{r}");
    }
    let got = sink.wait_for("/private", 3, WAIT).await;
    assert_eq!(got.len(), 3);
    match open_private(&got[1], &sk) {
        Content::RcsUser {
            message: adapters::rcs::UserMessage::SuggestionResponse { postback, .. },
        } => assert_eq!(postback, "sale_boots"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        open_private(&got[2], &sk),
        Content::RcsUser {
            message: adapters::rcs::UserMessage::Location { .. }
        }
    ));
    // Typing indicators and events about unknown messages are acknowledged.
    let r = mock
        .control("/_mock/user", json!({"webhook": webhook, "event": {"senderPhoneNumber": CAPABLE, "eventType": "IS_TYPING", "eventId": "e1"}}))
        .await;
    assert_eq!(r["status"], 200, "{r}");
    // Privacy: nothing of the content is in the logs or the clear columns.
    let logs = gw.logs.lock().unwrap().join("\n");
    assert!(!logs.contains("Hello agent") && !logs.contains("sale_boots"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbm_token_endpoint_refuses_an_assertion_signed_with_another_key() {
    let dir = TempDir::new("rcs-badkey");
    let sink = Sink::start(0).await;
    let mock = RbmMock::start(&[CAPABLE]);
    let extra = rbm_section_with_key(&dir.0, &mock, 30, "service_account_other_key.json");
    let gw = Gateway::start(&write_config(&dir.0, Some(&sink), &extra));
    // The capability check cannot get a token: `auto` goes SMS at once.
    let a = accepted(&gw, json!({"to": CAPABLE, "text": "hello"})).await;
    assert_eq!(a["channel"], "sms");
    // `rcs` is tried and retried; the history names the refusal, no send happened.
    let a = accepted(
        &gw,
        json!({"to": CAPABLE, "text": "hello", "channel": "rcs"}),
    )
    .await;
    let id = a["id"].as_str().unwrap();
    let m = gw.wait_status(id, "dead", Duration::from_secs(30)).await;
    assert_eq!(m["status"], "dead", "{m}");
    assert!(
        m["history"].to_string().contains("HTTP 400 invalid_grant"),
        "{m}"
    );
    assert!(mock.calls("POST", "/v1/phones/").await.is_empty());
    assert!(mock.calls("POST", "/token").await.len() >= 2);
}
