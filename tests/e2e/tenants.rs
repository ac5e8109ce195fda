//! Issue 17: tenants and scoped keys. Two tenants share one gateway; a
//! hostile one (beta) tries every cross-tenant action against the other
//! (acme) and must get nothing: no send from acme's senders, no read or
//! overwrite of acme's identities, acme's messages and dead letters as
//! absent (404, never 403), and an identity overwrite attempt followed by
//! an inbound message that still opens only with acme's own key, at
//! acme's webhook only. Plus scopes, revocation within a second, rotation,
//! per-tenant quotas and the admin plane.

use std::time::{Duration, Instant};

use gateway::envelope::Envelope;
use gateway::envelope::keys;

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(10);
const ACME_SECRET: &str = "acme-webhook-secret";
const BETA_SECRET: &str = "beta-webhook-secret";

/// A gateway with tenants acme and beta, each with its own webhook sink;
/// the SMSC is a third sink. Returns the gateway (holding an operator's
/// admin key) and the config path.
struct World {
    _dir: TempDir,
    cfg: std::path::PathBuf,
    smsc: Sink,
    acme_hook: Sink,
    beta_hook: Sink,
    gw: Gateway,
}

async fn world(name: &str, beta_quota: u64) -> World {
    world_with(name, beta_quota, "").await
}

/// [`world`] with more configuration after the tenants (`tail`).
async fn world_with(name: &str, beta_quota: u64, tail: &str) -> World {
    let dir = TempDir::new(name);
    let smsc = Sink::start(0).await;
    let acme_hook = Sink::start(0).await;
    let beta_hook = Sink::start(0).await;
    std::fs::write(dir.0.join("acme.secret"), ACME_SECRET).unwrap();
    std::fs::write(dir.0.join("beta.secret"), BETA_SECRET).unwrap();
    let extra = format!(
        r#"
[delivery]
initial_backoff_ms = 50
[generic]
url = "{smsc}"
from = "+14155550199"

[[tenants]]
name = "acme"
senders = ["+14155550100", "+1415555011*", "ACME"]
addresses = ["+1415555010*"]
webhook_url = "{acme}"
secret_file = "{acme_secret}"
max_messages_per_day = 1000
smpp_accounts = ["acme-smpp"]

[[tenants]]
name = "beta"
senders = ["+14155550200", "BETA"]
addresses = ["+1415555020*"]
webhook_url = "{beta}"
secret_file = "{beta_secret}"
max_messages_per_day = {beta_quota}
{tail}
"#,
        smsc = smsc.url("/sms"),
        acme = acme_hook.url("/acme"),
        beta = beta_hook.url("/beta"),
        acme_secret = dir.0.join("acme.secret").display(),
        beta_secret = dir.0.join("beta.secret").display(),
    );
    let cfg = write_config(&dir.0, None, &extra);
    let ops = create_key(&cfg, &["ops", "--scope", "admin"]);
    let gw = Gateway::spawn(&cfg, ops);
    World {
        _dir: dir,
        cfg,
        smsc,
        acme_hook,
        beta_hook,
        gw,
    }
}

fn create_key(cfg: &std::path::Path, args: &[&str]) -> String {
    let mut all = vec!["keys", "api", "create"];
    all.extend_from_slice(args);
    let out = cli(cfg, &all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A request with `token` on the public listener: (status, JSON body).
async fn call(
    gw: &Gateway,
    token: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    call_at(gw, &gw.url(path), token, method, body).await
}

async fn call_at(
    gw: &Gateway,
    url: &str,
    token: &str,
    method: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let c = gw.client();
    let mut req = match method {
        "GET" => c.get(url),
        "PUT" => c.put(url),
        _ => c.post(url),
    };
    if !token.is_empty() {
        req = req.bearer_auth(token);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

/// One row of the hostile table: what is tried, the method, the path, the
/// body, and the status and error code it must get.
type Hostile = (
    &'static str,
    &'static str,
    String,
    Option<serde_json::Value>,
    u16,
    &'static str,
);

fn code(v: &serde_json::Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_tenant_can_reach_nothing_of_another() {
    let w = world("tenants-hostile", 1000).await;
    let gw = &w.gw;
    let acme = create_key(
        &w.cfg,
        &[
            "acme-app",
            "--tenant",
            "acme",
            "--scope",
            "send,read,identities",
        ],
    );
    let beta = create_key(&w.cfg, &["beta-app", "--tenant", "beta"]);

    // acme registers its recipient's key; a message without `from` goes
    // from acme's first sender.
    let (sk_a, pk_a) = keys::generate();
    let (s, _) = call(
        gw,
        &acme,
        "PUT",
        "/v1/identities/+14155550101",
        Some(serde_json::json!({"public_key": keys::public_key_b64(&pk_a)})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, sent) = call(
        gw,
        &acme,
        "POST",
        "/v1/messages",
        Some(serde_json::json!({"to": "+14155550900", "text": "hello"})),
    )
    .await;
    assert_eq!(s, 202, "{sent}");
    let acme_msg = sent["id"].as_str().unwrap().to_string();
    let (s, view) = call(gw, &acme, "GET", &format!("/v1/messages/{acme_msg}"), None).await;
    assert_eq!((s, view["from"].as_str()), (200, Some("+14155550100")));
    assert_eq!(view["tenant"], "acme");

    assert_eq!(w.smsc.wait_for("/sms", 1, WAIT).await.len(), 1);
    // A dead letter of acme's: the SMSC refuses for good.
    w.smsc
        .status
        .store(400, std::sync::atomic::Ordering::SeqCst);
    let (s, sent) = call(
        gw,
        &acme,
        "POST",
        "/v1/messages",
        Some(serde_json::json!({"to": "+14155550901", "from": "+14155550117", "text": "x"})),
    )
    .await;
    assert_eq!(s, 202, "{sent}");
    let acme_dead = sent["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, dl) = call(gw, &acme, "GET", "/v1/dead-letters", None).await;
        if dl
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == acme_dead.as_str())
        {
            break;
        }
        assert!(Instant::now() < deadline, "never dead-lettered: {dl}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    w.smsc
        .status
        .store(200, std::sync::atomic::Ordering::SeqCst);

    // The hostile table: every cross-tenant action beta tries, and what it gets.
    let absent = call(gw, &beta, "GET", "/v1/messages/no-such-id", None).await;
    assert_eq!(absent.0, 404);
    let table: Vec<Hostile> = vec![
        (
            "send from acme's number",
            "POST",
            "/v1/messages".into(),
            Some(serde_json::json!({"to": "+14155550900", "from": "+14155550100", "text": "x"})),
            403,
            "sender_not_allowed",
        ),
        (
            "send from acme's prefix",
            "POST",
            "/v1/messages".into(),
            Some(serde_json::json!({"to": "+14155550900", "from": "+14155550113", "text": "x"})),
            403,
            "sender_not_allowed",
        ),
        (
            "send from acme's alphanumeric id",
            "POST",
            "/v1/messages".into(),
            Some(serde_json::json!({"to": "+14155550900", "from": "ACME", "text": "x"})),
            403,
            "sender_not_allowed",
        ),
        (
            "overwrite acme's identity",
            "PUT",
            "/v1/identities/+14155550101".into(),
            Some(serde_json::json!({"public_key": keys::public_key_b64(&keys::generate().1)})),
            403,
            "forbidden",
        ),
        (
            "read acme's identity",
            "GET",
            "/v1/identities/+14155550101".into(),
            None,
            403,
            "forbidden",
        ),
        (
            "read acme's message",
            "GET",
            format!("/v1/messages/{acme_msg}"),
            None,
            404,
            "not_found",
        ),
        (
            "retry acme's dead letter",
            "POST",
            format!("/v1/messages/{acme_dead}/retry"),
            None,
            404,
            "not_found",
        ),
    ];
    for (what, method, path, body, want, want_code) in table {
        let (s, v) = call(gw, &beta, method, &path, body).await;
        assert_eq!((s, code(&v)), (want, want_code), "beta: {what}: {v}");
        if want == 404 {
            // Indistinguishable from a message that does not exist (but
            // for the request's own id).
            let mut v = v.clone();
            let mut absent_body = absent.1.clone();
            v["error"]["request_id"].take();
            absent_body["error"]["request_id"].take();
            assert_eq!((s, &v), (absent.0, &absent_body), "beta: {what}");
        }
    }
    let (s, dl) = call(gw, &beta, "GET", "/v1/dead-letters", None).await;
    assert_eq!((s, dl.as_array().unwrap().len()), (200, 0), "{dl}");
    // The list shows each tenant its own messages only.
    let listed = |v: &serde_json::Value| -> Vec<String> {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (s, mine) = call(gw, &acme, "GET", "/v1/messages?limit=500", None).await;
    assert_eq!(s, 200, "{mine}");
    assert!(listed(&mine).contains(&acme_dead), "{mine}");
    let (s, theirs) = call(gw, &beta, "GET", "/v1/messages?limit=500", None).await;
    assert_eq!(s, 200, "{theirs}");
    assert!(!listed(&theirs).contains(&acme_dead), "{theirs}");
    let by_to = "/v1/messages?to=%2B14155550901&limit=500";
    let (_, theirs) = call(gw, &beta, "GET", by_to, None).await;
    assert!(listed(&theirs).is_empty(), "{theirs}");
    // The dead letter is still dead: beta's retry did nothing.
    let (_, dl) = call(gw, &acme, "GET", "/v1/dead-letters", None).await;
    assert_eq!(dl.as_array().unwrap().len(), 1, "{dl}");

    // After the overwrite attempt, an inbound SMS to acme's recipient goes
    // to acme's webhook only, signed with acme's secret, and opens only
    // with acme's key.
    let r = gw
        .post_signed(
            "/webhooks/generic",
            &serde_json::json!({"id": "in-1", "from": "+14155550900", "to": "+14155550101", "text": "for acme"}),
            GENERIC_SECRET,
        )
        .await;
    assert_eq!(r.status(), 200);
    let inbound_id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let got = w.acme_hook.wait_for("/acme", 1, WAIT).await;
    assert_eq!(got.len(), 1);
    let sig = got[0]
        .headers
        .get(adapters::signing::SIGNATURE_HEADER)
        .unwrap()
        .to_str()
        .unwrap();
    adapters::signing::verify(
        ACME_SECRET.as_bytes(),
        Some(sig),
        &got[0].body,
        now_secs(),
        60,
    )
    .unwrap();
    assert!(
        adapters::signing::verify(
            BETA_SECRET.as_bytes(),
            Some(sig),
            &got[0].body,
            now_secs(),
            60
        )
        .is_err()
    );
    let env = Envelope::from_base64(got[0].json()["envelope"].as_str().unwrap()).unwrap();
    assert_eq!(env.open(&sk_a).unwrap().as_text(), "for acme");
    assert!(env.open(&keys::generate().0).is_err());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(w.beta_hook.received.lock().unwrap().is_empty());
    let (s, _) = call(
        gw,
        &beta,
        "GET",
        &format!("/v1/messages/{inbound_id}"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, v) = call(
        gw,
        &acme,
        "GET",
        &format!("/v1/messages/{inbound_id}"),
        None,
    )
    .await;
    assert_eq!((s, v["tenant"].as_str()), (200, Some("acme")), "{v}");

    // The operator sees across tenants on the admin plane only.
    let (s, dl) = call_at(
        gw,
        &gw.admin_url("/admin/dead-letters"),
        &gw.token,
        "GET",
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        dl.as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == acme_dead.as_str())
    );
    let (s, v) = call_at(gw, &gw.admin_url("/admin/dead-letters"), &acme, "GET", None).await;
    assert_eq!((s, code(&v)), (403, "forbidden"));
    let (s, _) = call_at(gw, &gw.admin_url("/admin/dead-letters"), "", "GET", None).await;
    assert_eq!(s, 401);
    let (s, v) = call(gw, &gw.token, "GET", "/v1/dead-letters", None).await;
    assert_eq!(
        (s, code(&v)),
        (403, "forbidden"),
        "an operator key is not a tenant's"
    );
    let (s, _) = call(gw, "", "GET", "/metrics", None).await;
    assert_eq!(s, 404, "no /metrics on the public listener");
    let (s, h) = call(gw, "", "GET", "/healthz", None).await;
    assert_eq!((s, h), (200, serde_json::json!({"status": "ok"})));
    assert!(gw.metrics_text().await.contains("gateway_"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_revocation_rotation_and_quota() {
    let w = world("tenants-keys", 3).await;
    let gw = &w.gw;

    // Keys are checked against the tenants at creation.
    for bad in [
        vec!["nobody-app"],
        vec!["ghost-app", "--tenant", "ghost"],
        vec!["acme-op", "--tenant", "acme", "--scope", "admin"],
        vec!["empty", "--tenant", "acme", "--scope", ""],
        vec!["root", "--tenant", "acme", "--scope", "root"],
    ] {
        let mut args = vec!["keys", "api", "create"];
        args.extend(bad.iter());
        assert!(!cli(&w.cfg, &args).status.success(), "{bad:?}");
    }

    // A key without the scope an action needs is refused.
    let reader = create_key(
        &w.cfg,
        &["acme-reader", "--tenant", "acme", "--scope", "read"],
    );
    let (s, v) = call(
        gw,
        &reader,
        "POST",
        "/v1/messages",
        Some(serde_json::json!({"to": "+14155550900", "text": "x"})),
    )
    .await;
    assert_eq!((s, code(&v)), (403, "forbidden"), "{v}");
    let (s, v) = call(gw, &reader, "GET", "/v1/identities/+14155550101", None).await;
    assert_eq!((s, code(&v)), (403, "forbidden"), "{v}");
    let (s, _) = call(gw, &reader, "GET", "/v1/dead-letters", None).await;
    assert_eq!(s, 200);

    // Revoked: refused within one second.
    let (s, _) = call(gw, &reader, "GET", "/v1/dead-letters", None).await;
    assert_eq!(s, 200, "cached as valid");
    assert!(
        cli(&w.cfg, &["keys", "api", "revoke", "acme-reader"])
            .status
            .success()
    );
    let revoked = Instant::now();
    loop {
        let (s, _) = call(gw, &reader, "GET", "/v1/dead-letters", None).await;
        if s == 401 {
            break;
        }
        assert!(
            revoked.elapsed() < Duration::from_secs(1),
            "still valid after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused_after = revoked.elapsed();
    eprintln!("revoked key refused after {refused_after:?}");

    // Rotation: old and new both work during the overlap; with none, the
    // old one stops at once.
    let old = create_key(&w.cfg, &["acme-rot", "--tenant", "acme", "--scope", "read"]);
    let out = cli(&w.cfg, &["keys", "api", "rotate", "acme-rot"]);
    assert!(out.status.success());
    let new = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_ne!(old, new);
    for t in [&old, &new] {
        assert_eq!(call(gw, t, "GET", "/v1/dead-letters", None).await.0, 200);
    }
    let out = cli(
        &w.cfg,
        &["keys", "api", "rotate", "acme-rot", "--overlap-secs", "0"],
    );
    let newest = String::from_utf8(out.stdout).unwrap().trim().to_string();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(call(gw, &new, "GET", "/v1/dead-letters", None).await.0, 401);
    assert_eq!(
        call(gw, &newest, "GET", "/v1/dead-letters", None).await.0,
        200
    );
    let list = cli(&w.cfg, &["keys", "api", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let rot = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "acme-rot")
        .unwrap();
    assert_eq!(
        (rot["tenant"].as_str(), rot["scopes"].as_str()),
        (Some("acme"), Some("read"))
    );

    // Quota: beta may have 3 accepted messages a day. Refusals do not count.
    let beta = create_key(&w.cfg, &["beta-app", "--tenant", "beta"]);
    let acme = create_key(&w.cfg, &["acme-app", "--tenant", "acme"]);
    let send = |token: String, from: &'static str| async move {
        call(
            gw,
            &token,
            "POST",
            "/v1/messages",
            Some(serde_json::json!({"to": "+14155550900", "from": from, "text": "q"})),
        )
        .await
    };
    for _ in 0..3 {
        let (s, v) = send(beta.clone(), "ACME").await;
        assert_eq!((s, code(&v)), (403, "sender_not_allowed"));
    }
    for i in 0..3 {
        let (s, v) = send(beta.clone(), "BETA").await;
        assert_eq!(s, 202, "send {i}: {v}");
    }
    let r = gw
        .client()
        .post(gw.url("/v1/messages"))
        .bearer_auth(&beta)
        .json(&serde_json::json!({"to": "+14155550900", "from": "BETA", "text": "q"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry_after), "{retry_after}");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(code(&v), "quota_exceeded");
    // Another tenant's quota is its own.
    let (s, v) = send(acme.clone(), "ACME").await;
    assert_eq!(s, 202, "{v}");
    let (s, t) = call_at(gw, &gw.admin_url("/admin/tenants"), &gw.token, "GET", None).await;
    assert_eq!(s, 200);
    assert_eq!(t["tenants"][1]["accepted_today"], 3, "{t}");
    let _ = &w.acme_hook;
    let _ = &w.beta_hook;

    // The quota survives a restart: counted from the store.
    let cfg = w.cfg.clone();
    let token = w.gw.token.clone();
    drop(w.gw);
    let gw = Gateway::spawn(&cfg, token);
    let (s, v) = call(
        &gw,
        &beta,
        "POST",
        "/v1/messages",
        Some(serde_json::json!({"to": "+14155550900", "text": "q"})),
    )
    .await;
    assert_eq!((s, code(&v)), (429, "quota_exceeded"), "{v}");
}

/// Submits one short message over SMPP with smpplib as `system_id`; what
/// the client reported (`{"ids"}` or `{"error","status"}`).
fn smpp_submit(port: &str, system_id: &str, password: &str, source: &str) -> serde_json::Value {
    use std::io::BufRead;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/smpp/smpplib_client.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .args([
            "--port",
            port,
            "--system-id",
            system_id,
            "--password",
            password,
        ])
        .args(["--source", source, "--dest", "+14155550900", "--text", "hi"])
        .args(["--timeout", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 with smpplib (pip install -r .ci/requirements.txt)");
    // The submit_sm_resp may come after the first line; the client exits
    // on an error, or after its 2 s wait for receipts.
    let lines: Vec<serde_json::Value> = std::io::BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .take(10)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    lines
        .iter()
        .find(|v| v.get("error").is_some())
        .or_else(|| {
            lines
                .iter()
                .find(|v| v["ids"].as_array().is_some_and(|a| !a.is_empty()))
        })
        .cloned()
        .unwrap_or_else(|| serde_json::json!({"lines": lines}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smpp_accounts_send_as_their_tenant_under_its_rules() {
    let w = world_with(
        "tenants-smpp",
        1000,
        "[smpp.server]\nlisten = \"127.0.0.1:0\"\nthroughput = 500.0\n",
    )
    .await;
    let gw = &w.gw;
    let acme_pw = crate::smpp::add_client(&w.cfg, "acme-smpp", &["--throughput", "100"]);
    let stray_pw = crate::smpp::add_client(&w.cfg, "stray", &["--throughput", "100"]);
    let addr = crate::smpp::smpp_addr(gw).await;
    let port = addr.rsplit(':').next().unwrap().to_string();
    let port = port.as_str();

    // Its tenant's sender: accepted, recorded as acme's.
    let ok = smpp_submit(port, "acme-smpp", &acme_pw, "+14155550100");
    let id = ok["ids"][0]
        .as_str()
        .unwrap_or_else(|| panic!("{ok}"))
        .to_string();
    let acme = create_key(&w.cfg, &["acme-app", "--tenant", "acme"]);
    let beta = create_key(&w.cfg, &["beta-app", "--tenant", "beta"]);
    let (s, v) = call(gw, &acme, "GET", &format!("/v1/messages/{id}"), None).await;
    assert_eq!((s, v["tenant"].as_str()), (200, Some("acme")), "{v}");
    assert_eq!(
        call(gw, &beta, "GET", &format!("/v1/messages/{id}"), None)
            .await
            .0,
        404
    );

    // Another tenant's sender: ESME_RINVSRCADR (0x0A).
    let refused = smpp_submit(port, "acme-smpp", &acme_pw, "+14155550200");
    assert_eq!(refused["status"], 0x0A, "{refused}");
    // An account no tenant lists: ESME_RX_R_APPN (0x66).
    let stray = smpp_submit(port, "stray", &stray_pw, "+14155550100");
    assert_eq!(stray["status"], 0x66, "{stray}");
}
