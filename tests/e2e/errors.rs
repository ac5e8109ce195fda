//! Errors integrators can act on (issue 20): a stable `number` beside the
//! class `code`, a `more_info` link into `docs/errors.md`, the `param` at
//! fault, 405 with a body, `X-Request-Id` on every answer and in the log,
//! and "no route configured" as the gateway's 503, not the client's 400.

use crate::harness::*;

/// The numbers `docs/errors.md` documents.
fn documented() -> Vec<u64> {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/errors.md")).unwrap();
    doc.split("<a id=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next()?.parse().ok())
        .collect()
}

/// Status, headers and the error object of an answer; checks the parts
/// every error shares.
async fn error_of(resp: reqwest::Response) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body: serde_json::Value = resp.json().await.expect("a JSON error body");
    let e = body["error"].clone();
    let number = e["number"].as_u64().expect("a numeric number");
    assert!(e["code"].is_string() && e["message"].is_string(), "{e}");
    assert_eq!(e["more_info"], format!("docs/errors.md#{number}"));
    assert!(
        documented().contains(&number),
        "{number} not in docs/errors.md"
    );
    assert_eq!(
        number / 100,
        u64::from(status),
        "{number} reads as its status"
    );
    // The body names the request as the header does.
    let header = headers.get("x-request-id").expect("X-Request-Id");
    assert_eq!(e["request_id"], header.to_str().unwrap(), "{e}");
    (status, headers, e)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_number_param_and_link() {
    let dir = TempDir::new("errors");
    let sink = Sink::start(0).await;
    let cfg = write_config(&dir.0, Some(&sink), "");
    let gw = Gateway::start(&cfg);
    let c = gw.client();
    let send = |body: &'static str| {
        c.post(gw.url("/v1/messages"))
            .bearer_auth(&gw.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    // The issue's example: a number sent as a string.
    let (st, _, e) = error_of(
        send(r#"{"to":"+14155550101","text":"x","ttl_seconds":"60"}"#)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (st, e["number"].as_u64(), e["param"].as_str()),
        (400, Some(40002), Some("ttl_seconds"))
    );
    assert_eq!(e["code"], "bad_request");
    let m = e["message"].as_str().unwrap();
    assert!(
        m.contains("ttl_seconds must be a whole number") && !m.contains("60"),
        "{m}"
    );

    let (_, _, e) = error_of(send(r#"{"to":"+1415","text":"x"}"#).await.unwrap()).await;
    assert_eq!(
        (e["number"].as_u64(), e["param"].as_str()),
        (Some(40010), Some("to"))
    );
    // A missing field (`to` is checked as a field; a webhook's `id` by the parser).
    let (_, _, e) = error_of(send(r#"{"text":"x"}"#).await.unwrap()).await;
    assert_eq!(e["param"], "to");
    let no_id = serde_json::json!({"from": "+14155550100", "to": "+14155550101", "text": "x"});
    let (_, _, e) = error_of(
        gw.post_signed("/webhooks/generic", &no_id, GENERIC_SECRET)
            .await,
    )
    .await;
    assert_eq!(
        (e["number"].as_u64(), e["param"].as_str()),
        (Some(40003), Some("id"))
    );
    let (_, _, e) = error_of(send(r#"{"to":"+14155550101","text":"x""#).await.unwrap()).await;
    assert_eq!(e["number"], 40001);
    assert!(e.get("param").is_none());

    // A typo'd field name is named back.
    let (_, _, e) = error_of(
        send(r#"{"to":"+14155550101","text":"x","ttl":60}"#)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (e["number"].as_u64(), e["param"].as_str()),
        (Some(40004), Some("ttl"))
    );

    // Credentials and signatures, each with its own number.
    let (st, _, e) = error_of(c.get(gw.url("/v1/messages/x")).send().await.unwrap()).await;
    assert_eq!((st, e["number"].as_u64()), (401, Some(40101)));
    let (_, _, e) = error_of(
        c.get(gw.url("/v1/messages/x"))
            .bearer_auth("gw_never_issued")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(e["number"], 40102);
    let inbound =
        serde_json::json!({"id":"c-1","from":"+14155550100","to":"+14155550101","text":"x"});
    let (_, _, e) = error_of(gw.post_signed("/webhooks/generic", &inbound, "wrong").await).await;
    assert_eq!(e["number"], 40111);
    let (_, _, e) = error_of(
        c.post(gw.url("/webhooks/generic"))
            .header("content-type", "application/json")
            .body(inbound.to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(e["number"], 40110);

    // Not found: a message, and a path.
    let (_, _, e) = error_of(
        c.get(gw.url("/v1/messages/0193aaaa-0000-7000-8000-000000000000"))
            .bearer_auth(&gw.token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(e["number"], 40400);
    let (_, _, e) = error_of(c.get(gw.url("/v2/nothing")).send().await.unwrap()).await;
    assert_eq!(e["number"], 40401);

    // 405 has a body and keeps its Allow header.
    let (st, h, e) = error_of(c.delete(gw.url("/v1/messages")).send().await.unwrap()).await;
    assert_eq!(
        (st, e["code"].as_str(), e["number"].as_u64()),
        (405, Some("method_not_allowed"), Some(40500))
    );
    // POST sends, GET lists (HEAD comes with GET).
    assert_eq!(h.get("allow").unwrap(), "POST,GET,HEAD");
    let (st, _, _) = error_of(c.post(gw.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(st, 405);

    // 415 and 413 too.
    let (_, _, e) = error_of(
        c.post(gw.url("/v1/messages"))
            .bearer_auth(&gw.token)
            .header("content-type", "text/plain")
            .body("{}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(e["number"], 41500);
    let big = format!(r#"{{"to":"+14155550101","text":"{}"}}"#, "x".repeat(70_000));
    let (_, _, e) = error_of(
        c.post(gw.url("/v1/messages"))
            .bearer_auth(&gw.token)
            .header("content-type", "application/json")
            .body(big)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(e["number"], 41300);
    assert_eq!(gw.count("SELECT COUNT(*) FROM messages"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_route_is_the_gateways_503() {
    let dir = TempDir::new("errors-noroute");
    // No [generic], no carrier, no modem: nothing can send SMS.
    let cfg = write_config(&dir.0, None, "");
    let gw = Gateway::start(&cfg);
    let resp = gw
        .send(serde_json::json!({"to": "+14155550101", "text": "x"}))
        .await;
    let (st, _, e) = error_of(resp).await;
    assert_eq!(
        (st, e["code"].as_str(), e["number"].as_u64()),
        (503, Some("no_route"), Some(50302))
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("no SMS route is configured")
    );
    assert_eq!(
        gw.count("SELECT COUNT(*) FROM messages"),
        0,
        "nothing stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_has_a_request_id_that_the_log_carries() {
    let dir = TempDir::new("errors-reqid");
    let sink = Sink::start(0).await;
    let cfg = write_config(&dir.0, Some(&sink), "");
    let gw = Gateway::start(&cfg);
    let c = gw.client();
    let id_of = |r: &reqwest::Response| {
        r.headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_string())
    };

    // Made by the gateway when the client sent none: on a 202, a 200, a
    // 404, a 405, a 401, /healthz and /metrics, each different.
    let mut ids = Vec::new();
    let r = gw
        .send(serde_json::json!({"to": "+14155550101", "text": "x"}))
        .await;
    assert_eq!(r.status(), 202);
    ids.push(id_of(&r).unwrap());
    for (method, path) in [
        ("GET", "/healthz"),
        ("GET", "/metrics"),
        ("GET", "/nowhere"),
        ("PUT", "/v1/messages"),
        ("GET", "/v1/dead-letters"),
    ] {
        let r = c
            .request(method.parse().unwrap(), gw.url(path))
            .send()
            .await
            .unwrap();
        ids.push(id_of(&r).unwrap_or_else(|| panic!("{method} {path} has no X-Request-Id")));
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
    assert!(
        ids.iter().all(|i| uuid::Uuid::parse_str(i).is_ok()),
        "{ids:?}"
    );

    // A client's sane id comes back as it was; an insane one is replaced.
    let r = c
        .get(gw.url("/v1/messages/nope"))
        .header("x-request-id", "client-req_42.a:1")
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&r).unwrap(), "client-req_42.a:1");
    let long = "a".repeat(65);
    for bad in ["has space", long.as_str(), "{\"x\":1}"] {
        let r = c
            .get(gw.url("/healthz"))
            .header("x-request-id", bad)
            .send()
            .await
            .unwrap();
        let got = id_of(&r).unwrap();
        assert_ne!(got, bad);
        assert!(uuid::Uuid::parse_str(&got).is_ok());
    }

    // The log's lines for a request carry its id (the harness logs JSON at
    // debug level).
    let r = gw
        .client()
        .post(gw.url("/v1/messages"))
        .bearer_auth(&gw.token)
        .header("x-request-id", "trace-me-7")
        .json(&serde_json::json!({"to": "+14155550101", "text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let logs = gw.kill();
    let logs = logs.lock().unwrap();
    let tagged: Vec<&String> = logs.iter().filter(|l| l.contains("trace-me-7")).collect();
    assert!(!tagged.is_empty(), "no log line carries the request id");
    assert!(
        tagged
            .iter()
            .any(|l| l.contains("answered") && l.contains("202")),
        "{tagged:?}"
    );
}
