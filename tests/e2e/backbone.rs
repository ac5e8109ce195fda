//! The backbone, end to end: API -> generic SMSC sink, generic webhook ->
//! private-side sink, signatures, de-duplication, privacy, restart.

use std::time::Duration;

use gateway::envelope::Envelope;
use gateway::envelope::keys;
use hpke::Serializable;

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_reaches_the_smsc_signed_and_becomes_delivered() {
    let dir = TempDir::new("outbound");
    let sink = Sink::start(0).await;
    let cfg = write_config(&dir.0, Some(&sink), "");
    let gw = Gateway::start(&cfg);

    let resp = gw
        .send(serde_json::json!({"to": "+1 415 555 0101", "text": "Hello there"}))
        .await;
    assert_eq!(resp.status(), 202);
    let accepted: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(accepted["status"], "queued");
    assert_eq!(accepted["segments"], 1);
    assert_eq!(accepted["encoding"], "gsm7");
    let id = accepted["id"].as_str().unwrap().to_string();

    let got = sink.wait_for("/sms", 1, WAIT).await;
    assert_eq!(got.len(), 1, "SMSC sink got nothing");
    let req = &got[0];
    let sig = req
        .headers
        .get(adapters::signing::SIGNATURE_HEADER)
        .unwrap()
        .to_str()
        .unwrap();
    adapters::signing::verify(
        GENERIC_SECRET.as_bytes(),
        Some(sig),
        &req.body,
        now_secs(),
        60,
    )
    .unwrap();
    assert!(adapters::signing::verify(b"wrong", Some(sig), &req.body, now_secs(), 60).is_err());
    let body = req.json();
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["to"], "+14155550101");
    assert_eq!(body["from"], "+14155550199");
    assert_eq!(body["text"], "Hello there");
    assert_eq!(
        req.headers.get("idempotency-key").unwrap(),
        &format!("{id}#1")
    );

    let sent = gw.wait_status(&id, "sent", WAIT).await;
    assert_eq!(sent["status"], "sent", "{sent}");
    assert_eq!(sent["carrier_id"], "c-1");

    // The SMSC reports delivery.
    gw.report_generic_status(&id, "delivered").await;
    let done = gw.message(&id).await;
    assert_eq!(done["status"], "delivered");
    let history: Vec<&str> = done["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["queued", "sent", "delivered"]);
    assert!(done.get("text").is_none(), "metadata only");

    // A status callback with a bad signature changes nothing.
    let r = gw
        .post_signed(
            "/webhooks/generic/status",
            &serde_json::json!({"id": id, "status": "failed"}),
            "nope",
        )
        .await;
    assert_eq!(r.status(), 401);
    assert_eq!(gw.message(&id).await["status"], "delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_api_keys_are_refused_and_store_nothing() {
    let dir = TempDir::new("apikeys");
    let sink = Sink::start(0).await;
    let cfg = write_config(&dir.0, Some(&sink), "");
    let gw = Gateway::start(&cfg);
    let before = gw.count("SELECT COUNT(*) FROM messages");
    let c = gw.client();
    let body = serde_json::json!({"to": "+14155550101", "text": "x"});
    let r = c
        .post(gw.url("/v1/messages"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let err: serde_json::Value = r.json().await.unwrap();
    assert_eq!(err["error"]["code"], "unauthorized");
    let r = c
        .post(gw.url("/v1/messages"))
        .bearer_auth("gw_wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(gw.count("SELECT COUNT(*) FROM messages"), before);

    // Bad input: clear 400s, nothing stored.
    for bad in [
        serde_json::json!({"to": "not a number", "text": "x"}),
        serde_json::json!({"to": "+14155550101"}),
        serde_json::json!({"to": "+14155550101", "text": "x", "ttl_seconds": 0}),
        serde_json::json!({"to": "+14155550101", "text": "x", "surprise": 1}),
        serde_json::json!({"to": "+14155550101", "envelope": "bm90IGFuIGVudmVsb3Bl"}),
    ] {
        let r = gw.send(bad.clone()).await;
        assert_eq!(r.status(), 400, "{bad}");
        let e: serde_json::Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "bad_request", "{e}");
    }
    let r = c
        .post(gw.url("/v1/messages"))
        .bearer_auth(&gw.token)
        .header("content-type", "application/json")
        .body("{broken")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .post(gw.url("/v1/messages"))
        .bearer_auth(&gw.token)
        .header("content-type", "application/json")
        .body(vec![b' '; 200 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(gw.count("SELECT COUNT(*) FROM messages"), before);
    // Health and metrics still answer (on a new connection: the server
    // closes the one whose body it refused unread, and a pooled reuse of it
    // can race that close).
    let c = gw.client();
    assert_eq!(
        c.get(gw.url("/healthz")).send().await.unwrap().status(),
        200
    );
    let m = c
        .get(gw.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("gateway_queue_depth"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbound_envelope_of_8bit_data_is_refused() {
    use gateway::envelope::{Channel, Content, Direction, Envelope, Header, keys};
    let dir = TempDir::new("envelope-data");
    let sink = Sink::start(0).await;
    let cfg = write_config(&dir.0, Some(&sink), "");
    let gw = Gateway::start(&cfg);
    let out = cli(&cfg, &["keys", "public"]);
    let edge = keys::parse_public_key(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    let header = Header {
        v: 1,
        id: uuid::Uuid::now_v7().to_string(),
        created_at: "2026-12-01T12:00:00.000Z".into(),
        channel: Channel::Sms,
        direction: Direction::Outbound,
        from: String::new(),
        to: "+14155550101".into(),
        segments: 1,
        encoding: "8bit".into(),
        size_class: 0,
        expires_at: None,
        kid: String::new(),
        carrier_ids: Default::default(),
        seal: Default::default(),
    };
    let data = Content::Data {
        data: vec![0x00, 0xff, 0x1b],
    };
    let env = Envelope::seal(header, &data, &edge, &mut rand::rng()).unwrap();
    let before = gw.count("SELECT COUNT(*) FROM messages");
    let r = gw
        .send(serde_json::json!({"to": "+14155550101", "envelope": env.to_base64()}))
        .await;
    assert_eq!(r.status(), 400);
    let e: serde_json::Value = r.json().await.unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("content type cannot be sent"),
        "{e}"
    );
    assert_eq!(gw.count("SELECT COUNT(*) FROM messages"), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_is_sealed_to_the_recipient_and_deduplicated() {
    let dir = TempDir::new("inbound");
    let sink = Sink::start(0).await;
    let cfg = write_config(&dir.0, Some(&sink), "");
    let gw = Gateway::start(&cfg);

    // The internal recipient registers its key.
    let (sk, pk) = keys::generate();
    let r = gw
        .client()
        .put(gw.url("/v1/identities/+14155550101"))
        .bearer_auth(&gw.token)
        .json(&serde_json::json!({"public_key": keys::public_key_b64(&pk)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let text = "Grüße 👋 from the phone network";
    let sms = serde_json::json!({"id": "smsc-1", "from": "+14155550100", "to": "+14155550101", "text": text});
    let r = gw
        .post_signed("/webhooks/generic", &sms, GENERIC_SECRET)
        .await;
    assert_eq!(r.status(), 200);
    let first: serde_json::Value = r.json().await.unwrap();
    assert_eq!(first["duplicate"], false);

    let got = sink.wait_for("/private", 1, WAIT).await;
    assert_eq!(got.len(), 1);
    let sig = got[0]
        .headers
        .get(adapters::signing::SIGNATURE_HEADER)
        .unwrap()
        .to_str()
        .unwrap();
    adapters::signing::verify(
        PRIVATE_SECRET.as_bytes(),
        Some(sig),
        &got[0].body,
        now_secs(),
        60,
    )
    .unwrap();
    let b64 = got[0].json()["envelope"].as_str().unwrap().to_string();
    let env = Envelope::from_base64(&b64).unwrap();
    assert_eq!(env.header.from, "+14155550100");
    assert_eq!(env.header.kid, keys::kid_of(&pk));
    assert_eq!(env.header.encoding, "ucs2");
    assert_eq!(env.open(&sk).unwrap().as_text(), text);

    // A flipped header byte makes it fail to open.
    let mut wire = env.to_bytes();
    let pos = 7 + wire[7..].iter().position(|&b| b == b'+').unwrap() + 1;
    wire[pos] ^= 0x01;
    if let Ok(tampered) = Envelope::from_bytes(&wire) {
        assert!(tampered.open(&sk).is_err());
    }

    // The same carrier message id again: stored once, acknowledged again.
    let r = gw
        .post_signed("/webhooks/generic", &sms, GENERIC_SECRET)
        .await;
    assert_eq!(r.status(), 200);
    let second: serde_json::Value = r.json().await.unwrap();
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["id"], first["id"]);
    assert_eq!(
        gw.count("SELECT COUNT(*) FROM messages WHERE direction = 'inbound'"),
        1
    );

    // Bad signature: 401 and nothing stored.
    let forged = serde_json::json!({"id": "smsc-2", "from": "+14155550100", "to": "+14155550101", "text": "x"});
    let r = gw
        .post_signed("/webhooks/generic", &forged, "not-the-secret")
        .await;
    assert_eq!(r.status(), 401);
    let r = gw
        .client()
        .post(gw.url("/webhooks/generic"))
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        gw.count("SELECT COUNT(*) FROM messages WHERE direction = 'inbound'"),
        1
    );

    // Signed but broken JSON: 400, nothing stored.
    let raw = b"{\"id\": 1".to_vec();
    let sig = adapters::signing::sign(GENERIC_SECRET.as_bytes(), now_secs(), &raw);
    let r = gw
        .client()
        .post(gw.url("/webhooks/generic"))
        .header(adapters::signing::SIGNATURE_HEADER, sig)
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        gw.count("SELECT COUNT(*) FROM messages WHERE direction = 'inbound'"),
        1
    );
    let _ = pk.to_bytes();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privacy_canary_never_reaches_disk_or_logs() {
    let dir = TempDir::new("canary");
    let sink = Sink::start(0).await;
    let cfg = write_config(&dir.0, Some(&sink), "");
    let gw = Gateway::start(&cfg);
    let (_, pk) = keys::generate();
    gw.client()
        .put(gw.url("/v1/identities/+14155550101"))
        .bearer_auth(&gw.token)
        .json(&serde_json::json!({"public_key": keys::public_key_b64(&pk)}))
        .send()
        .await
        .unwrap();

    let out_canary = canary();
    let in_canary = canary();
    let r = gw
        .send(serde_json::json!({"to": "+14155550101", "text": out_canary}))
        .await;
    assert_eq!(r.status(), 202);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let sms = serde_json::json!({"id": "canary-1", "from": "+14155550100", "to": "+14155550101", "text": in_canary});
    assert_eq!(
        gw.post_signed("/webhooks/generic", &sms, GENERIC_SECRET)
            .await
            .status(),
        200
    );
    // A broken request carrying the canary must not echo it either.
    let r = gw
        .send(serde_json::json!({"to": "nope", "text": out_canary}))
        .await;
    let err = r.text().await.unwrap();
    assert!(!err.contains(&out_canary), "error echoed the text: {err}");

    assert_eq!(sink.wait_for("/sms", 1, WAIT).await.len(), 1);
    assert_eq!(sink.wait_for("/private", 1, WAIT).await.len(), 1);
    gw.wait_status(&id, "sent", WAIT).await;
    // Sanity: the sink did get the text, so the check below means something.
    assert!(String::from_utf8_lossy(&sink.on("/sms")[0].body).contains(&out_canary));

    let data_dir = gw.data_dir.clone();
    let (status, logs) = gw.terminate();
    assert!(status.success(), "graceful shutdown exit: {status:?}");
    let logs = logs.lock().unwrap().join("\n");
    assert!(logs.len() > 1000, "debug logs were captured");
    for c in [&out_canary, &in_canary] {
        assert!(!logs.contains(c.as_str()), "canary in logs");
        for f in ["gateway.db", "gateway.db-wal", "gateway.db-shm"] {
            assert!(!file_contains(&data_dir.join(f), c), "canary in {f}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_messages_survive_sigkill_and_go_out_after_restart() {
    let dir = TempDir::new("restart");
    let sink = Sink::start(0).await;
    sink.status.store(503, std::sync::atomic::Ordering::SeqCst);
    let cfg = write_config(
        &dir.0,
        Some(&sink),
        "[delivery]\ninitial_backoff_ms = 200\nmax_backoff_secs = 1\n",
    );
    let gw = Gateway::start(&cfg);
    let mut ids = Vec::new();
    for i in 0..20 {
        let r = gw
            .send(serde_json::json!({"to": "+14155550101", "text": format!("queued {i}")}))
            .await;
        assert_eq!(r.status(), 202);
        ids.push(
            r.json::<serde_json::Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // Wait until the sink has refused a first attempt of each.
    let deadline = std::time::Instant::now() + WAIT;
    while gw.count("SELECT COUNT(*) FROM queue WHERE attempts > 0") < 20
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        gw.count("SELECT COUNT(*) FROM queue WHERE attempts > 0"),
        20
    );
    let token = gw.token.clone();
    drop(gw.kill());

    sink.status.store(200, std::sync::atomic::Ordering::SeqCst);
    let gw = Gateway::spawn(&cfg, token);
    let got = sink.wait_for("/sms", ids.len(), WAIT).await;
    let mut seen: Vec<String> = got
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    seen.dedup();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(
        seen, want,
        "every queued message delivered after the restart"
    );
    for id in &ids {
        let m = gw.wait_status(id, "sent", WAIT).await;
        assert_eq!(m["status"], "sent");
        assert!(
            m["history"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["status"] == "retrying")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_encoding_is_off_by_default_and_reported_when_it_changes_the_text() {
    let text = "It\u{2019}s 5\u{2013}7 \u{201c}today\u{201d}";
    for (smart, encoding, sent) in [
        (false, "ucs2", text.to_string()),
        (true, "gsm7", "It's 5-7 \"today\"".to_string()),
    ] {
        let dir = TempDir::new("smart");
        let sink = Sink::start(0).await;
        let extra = if smart {
            "[sms]\nsmart_encoding = true\n"
        } else {
            ""
        };
        let cfg = write_config(&dir.0, Some(&sink), extra);
        let gw = Gateway::start(&cfg);
        let resp = gw
            .send(serde_json::json!({"to": "+14155550101", "text": text}))
            .await;
        assert_eq!(resp.status(), 202);
        let a: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(a["encoding"], encoding);
        assert_eq!(a.get("smart_encoded").is_some(), smart, "{a}");
        let got = sink.wait_for("/sms", 1, WAIT).await;
        assert_eq!(got[0].json()["text"], sent);
    }
}
