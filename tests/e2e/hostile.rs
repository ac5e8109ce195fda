//! Hostile input, one row per case: each bad request gets the status and
//! error code in the table, a clear message that never quotes the request's
//! text, and changes nothing. The README's "Bad input" table lists the same
//! cases by name; `every_case_is_in_the_readme` keeps the two in step.

use std::time::Duration;

use crate::harness::*;

/// How a case signs or authenticates its request.
#[derive(Clone, Copy)]
enum Auth {
    /// No credentials at all.
    None,
    /// A bearer token that was never issued.
    WrongToken,
    /// The test's API key.
    ApiKey,
    /// The generic adapter's HMAC signature over the body, timestamp now.
    Signed,
    /// A signature made with another secret.
    BadSignature,
    /// A correct signature, ten minutes old.
    StaleSignature,
}

struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    content_type: &'static str,
    auth: Auth,
    body: String,
    status: u16,
    code: &'static str,
}

/// The marker every bad body carries where text would be; no answer may contain it.
const CANARY: &str = "hostile-canary-7f3a";

fn cases() -> Vec<Case> {
    let json = "application/json";
    let ok_send = format!(r#"{{"to":"+14155550101","text":"{CANARY}"}}"#);
    let twelve = (0..12)
        .map(|i| format!(r#"{{"reply":{{"text":"opt {i}","postback":"p{i}"}}}}"#))
        .collect::<Vec<_>>()
        .join(",");
    let inbound = |body: &str| body.replace("TEXT", CANARY);
    let c = |name, method, path, auth, body: String, status, code| Case {
        name,
        method,
        path,
        content_type: json,
        auth,
        body,
        status,
        code,
    };
    vec![
        c(
            "no API key",
            "POST",
            "/v1/messages",
            Auth::None,
            ok_send.clone(),
            401,
            "unauthorized",
        ),
        c(
            "unknown API key",
            "POST",
            "/v1/messages",
            Auth::WrongToken,
            ok_send.clone(),
            401,
            "unauthorized",
        ),
        c(
            "truncated JSON",
            "POST",
            "/v1/messages",
            Auth::ApiKey,
            format!(r#"{{"to":"+14155550101","text":"{CANARY}"#),
            400,
            "bad_request",
        ),
        c(
            "text in a number field",
            "POST",
            "/v1/messages",
            Auth::ApiKey,
            format!(r#"{{"to":"+14155550101","text":"x","ttl_seconds":"{CANARY}"}}"#),
            400,
            "bad_request",
        ),
        c(
            "text in a list",
            "POST",
            "/v1/messages",
            Auth::ApiKey,
            format!(r#"{{"to":["{CANARY}"],"text":"x"}}"#),
            400,
            "bad_request",
        ),
        Case {
            content_type: "text/plain",
            ..c(
                "not JSON content type",
                "POST",
                "/v1/messages",
                Auth::ApiKey,
                ok_send.clone(),
                415,
                "unsupported_media_type",
            )
        },
        c(
            "number too short",
            "POST",
            "/v1/messages",
            Auth::ApiKey,
            format!(r#"{{"to":"+1999","text":"{CANARY}"}}"#),
            400,
            "bad_request",
        ),
        c(
            "letters as a recipient",
            "POST",
            "/v1/messages",
            Auth::ApiKey,
            format!(r#"{{"to":"{CANARY}","text":"x"}}"#),
            400,
            "bad_request",
        ),
        c(
            "a letter O typed for a zero in a number",
            "POST",
            "/v1/messages",
            Auth::ApiKey,
            format!(r#"{{"to":"+1415555O1O1","text":"{CANARY}"}}"#),
            400,
            "bad_request",
        ),
        c(
            "a NUL in the text",
            "POST",
            "/v1/messages",
            Auth::ApiKey,
            format!(r#"{{"to":"+14155550101","text":"{CANARY}\u0000"}}"#),
            400,
            "bad_request",
        ),
        c(
            "an escape (ESC) in the text",
            "POST",
            "/v1/messages",
            Auth::ApiKey,
            format!(r#"{{"to":"+14155550101","text":"{CANARY}\u001b[31m"}}"#),
            400,
            "bad_request",
        ),
        c(
            "empty text",
            "POST",
            "/v1/messages",
            Auth::ApiKey,
            r#"{"to":"+14155550101","text":""}"#.into(),
            400,
            "bad_request",
        ),
        c(
            "text over 10000 characters",
            "POST",
            "/v1/messages",
            Auth::ApiKey,
            format!(r#"{{"to":"+14155550101","text":"{}"}}"#, "é".repeat(10_001)),
            400,
            "bad_request",
        ),
        c(
            "body over the size limit",
            "POST",
            "/v1/messages",
            Auth::ApiKey,
            format!(
                r#"{{"to":"+14155550101","text":"{}"}}"#,
                CANARY.repeat(5000)
            ),
            413,
            "too_large",
        ),
        c(
            "ttl_seconds 0",
            "POST",
            "/v1/messages",
            Auth::ApiKey,
            format!(r#"{{"to":"+14155550101","text":"{CANARY}","ttl_seconds":0}}"#),
            400,
            "bad_request",
        ),
        c(
            "ttl_seconds over a week",
            "POST",
            "/v1/messages",
            Auth::ApiKey,
            format!(r#"{{"to":"+14155550101","text":"{CANARY}","ttl_seconds":604801}}"#),
            400,
            "bad_request",
        ),
        c(
            "unknown channel",
            "POST",
            "/v1/messages",
            Auth::ApiKey,
            format!(r#"{{"to":"+14155550101","text":"{CANARY}","channel":"fax"}}"#),
            400,
            "bad_request",
        ),
        c(
            "text and envelope together",
            "POST",
            "/v1/messages",
            Auth::ApiKey,
            format!(r#"{{"to":"+14155550101","text":"{CANARY}","envelope":"R1dFVgE="}}"#),
            400,
            "bad_request",
        ),
        c(
            "envelope that is not base64",
            "POST",
            "/v1/messages",
            Auth::ApiKey,
            format!(r#"{{"envelope":"{CANARY}!!"}}"#),
            400,
            "bad_request",
        ),
        c(
            "RCS card with 12 suggestions",
            "POST",
            "/v1/messages",
            Auth::ApiKey,
            format!(
                r#"{{"to":"+14155550101","rcs":{{"text":"{CANARY}","suggestions":[{twelve}]}}}}"#
            ),
            400,
            "bad_request",
        ),
        c(
            "unknown message id",
            "GET",
            "/v1/messages/0193aaaa-0000-7000-8000-000000000000",
            Auth::ApiKey,
            String::new(),
            404,
            "not_found",
        ),
        c(
            "unknown route",
            "POST",
            "/v2/messages",
            Auth::ApiKey,
            ok_send.clone(),
            404,
            "not_found",
        ),
        c(
            "identity with a bad key",
            "PUT",
            "/v1/identities/+14155550101",
            Auth::ApiKey,
            format!(r#"{{"public_key":"{CANARY}"}}"#),
            400,
            "bad_request",
        ),
        c(
            "webhook without signature",
            "POST",
            "/webhooks/generic",
            Auth::None,
            inbound(r#"{"id":"h-1","from":"+14155550100","to":"+14155550101","text":"TEXT"}"#),
            401,
            "unauthorized",
        ),
        c(
            "webhook with a wrong signature",
            "POST",
            "/webhooks/generic",
            Auth::BadSignature,
            inbound(r#"{"id":"h-2","from":"+14155550100","to":"+14155550101","text":"TEXT"}"#),
            401,
            "unauthorized",
        ),
        c(
            "webhook signed ten minutes ago",
            "POST",
            "/webhooks/generic",
            Auth::StaleSignature,
            inbound(r#"{"id":"h-3","from":"+14155550100","to":"+14155550101","text":"TEXT"}"#),
            401,
            "unauthorized",
        ),
        c(
            "signed webhook, broken JSON",
            "POST",
            "/webhooks/generic",
            Auth::Signed,
            inbound(r#"{"id":"h-4","text":"TEXT""#),
            400,
            "bad_request",
        ),
        c(
            "signed webhook, no carrier id",
            "POST",
            "/webhooks/generic",
            Auth::Signed,
            inbound(r#"{"from":"+14155550100","to":"+14155550101","text":"TEXT"}"#),
            400,
            "bad_request",
        ),
        c(
            "signed webhook, empty carrier id",
            "POST",
            "/webhooks/generic",
            Auth::Signed,
            inbound(r#"{"id":"","from":"+14155550100","to":"+14155550101","text":"TEXT"}"#),
            400,
            "bad_request",
        ),
        c(
            "signed webhook, invalid sender",
            "POST",
            "/webhooks/generic",
            Auth::Signed,
            inbound(r#"{"id":"h-5","from":"+1","to":"+14155550101","text":"TEXT"}"#),
            400,
            "bad_request",
        ),
        c(
            "signed status for an unknown message",
            "POST",
            "/webhooks/generic/status",
            Auth::Signed,
            r#"{"id":"0193aaaa-0000-7000-8000-000000000000","status":"delivered"}"#.into(),
            404,
            "not_found",
        ),
        c(
            "signed status with an unknown state",
            "POST",
            "/webhooks/generic/status",
            Auth::Signed,
            r#"{"id":"0193aaaa-0000-7000-8000-000000000000","status":"exploded"}"#.into(),
            400,
            "bad_request",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let dir = TempDir::new("hostile");
    let sink = Sink::start(0).await;
    let cfg = write_config(&dir.0, Some(&sink), "");
    let gw = Gateway::start(&cfg);
    let client = gw.client();
    let mut failures = Vec::new();
    for case in cases() {
        let mut req = match case.method {
            "GET" => client.get(gw.url(case.path)),
            "PUT" => client.put(gw.url(case.path)),
            _ => client.post(gw.url(case.path)),
        }
        .header("content-type", case.content_type);
        let body = case.body.clone().into_bytes();
        req = match case.auth {
            Auth::None => req,
            Auth::WrongToken => req.bearer_auth("gw_never_issued_0000000000000000"),
            Auth::ApiKey => req.bearer_auth(&gw.token),
            Auth::Signed => req.header(
                adapters::signing::SIGNATURE_HEADER,
                adapters::signing::sign(GENERIC_SECRET.as_bytes(), now_secs(), &body),
            ),
            Auth::BadSignature => req.header(
                adapters::signing::SIGNATURE_HEADER,
                adapters::signing::sign(b"another secret", now_secs(), &body),
            ),
            Auth::StaleSignature => req.header(
                adapters::signing::SIGNATURE_HEADER,
                adapters::signing::sign(GENERIC_SECRET.as_bytes(), now_secs() - 600, &body),
            ),
        };
        let resp = req.body(body).send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let code = parsed["error"]["code"]
            .as_str()
            .unwrap_or("<no error body>");
        let message = parsed["error"]["message"].as_str().unwrap_or("");
        // The README's table, with --nocapture.
        let number = parsed["error"]["number"].as_u64().unwrap_or(0);
        eprintln!("| {} | {status} `{code}` {number} | {message} |", case.name);
        if status != case.status || code != case.code {
            failures.push(format!(
                "{}: got {status} {code} ({message}), want {} {}",
                case.name, case.status, case.code
            ));
        }
        if message.is_empty() {
            failures.push(format!("{}: no error message", case.name));
        }
        // Every error has its stable number and the link to its entry.
        if number / 100 != u64::from(status)
            || parsed["error"]["more_info"] != format!("docs/errors.md#{number}")
        {
            failures.push(format!("{}: no number or link: {text}", case.name));
        }
        if text.contains(CANARY) {
            failures.push(format!(
                "{}: the answer quotes the request: {text}",
                case.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Nothing was stored, queued or sent, and the service is fine.
    assert_eq!(gw.count("SELECT COUNT(*) FROM messages"), 0);
    assert_eq!(gw.count("SELECT COUNT(*) FROM queue"), 0);
    assert_eq!(gw.count("SELECT COUNT(*) FROM identities"), 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sink.on("/sms").is_empty() && sink.on("/private").is_empty());
    let r = gw
        .send(serde_json::json!({"to": "+14155550101", "text": "fine"}))
        .await;
    assert_eq!(r.status(), 202, "still serving after the hostile rows");
    let logs = gw.kill();
    let logs = logs.lock().unwrap();
    assert!(
        !logs.iter().any(|l| l.contains(CANARY)),
        "a hostile request's text reached the logs"
    );
}

#[test]
fn every_case_is_in_the_readme() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let missing: Vec<&str> = cases()
        .iter()
        .map(|c| c.name)
        .filter(|n| !readme.contains(&format!("| {n} |")))
        .collect();
    assert!(
        missing.is_empty(),
        "README's bad-input table lacks: {missing:?}"
    );
}
