//! The web console in a real browser: headless Chromium driven through
//! chromedriver (WebDriver) against the real binary. An operator logs in
//! (a wrong key is refused), finds a message by number, opens a held
//! sender in the review queue, releases it and sees its message delivered.
//! Plain HTTP checks that pages need the session and POSTs the CSRF token.
//!
//! chromedriver must be installed (`.ci/run` installs Debian's `chromium`
//! and `chromium-driver`); without it the test fails, it does not skip.
//! `CONSOLE_SCREENSHOTS=1` saves screenshots to `docs/console-*.png`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(30);

/// chromedriver on an ephemeral loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver() -> Driver {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "chromedriver could not start ({e}): install chromium and chromium-driver \
                 (`apt-get install chromium chromium-driver`, as .ci/run does)"
            )
        });
    let d = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(r) = reqwest::get(format!("{}/status", d.url)).await {
            if r.status().is_success() {
                return d;
            }
        }
        assert!(Instant::now() < deadline, "chromedriver did not answer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--window-size=1280,900"]}),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a headless Chromium session")
}

async fn shot(c: &Client, name: &str) {
    if std::env::var("CONSOLE_SCREENSHOTS").as_deref() == Ok("1") {
        let png = c.screenshot().await.unwrap();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../docs")
            .join(format!("console-{name}.png"));
        std::fs::write(path, png).unwrap();
    }
}

/// The text of the element `css`, waiting (bounded) for it to appear: a
/// click that submits a form returns before the next page is there, so the
/// element found may belong to the page being replaced; a stale element is
/// looked up again on the new page.
async fn text_of(c: &Client, css: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let found = c
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        match found.text().await {
            Ok(text) => return text,
            Err(e) if is_stale(&e) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{css}: {e}"),
        }
    }
}

/// Whether the browser answered "stale element": the page was replaced
/// between finding the element and reading it.
fn is_stale(e: &fantoccini::error::CmdError) -> bool {
    matches!(e, fantoccini::error::CmdError::Standard(w)
        if w.error == fantoccini::error::ErrorStatus::StaleElementReference)
}

/// The element `loc`, waiting (bounded) for it to appear.
async fn el(c: &Client, loc: Locator<'_>) -> fantoccini::elements::Element {
    c.wait()
        .at_most(WAIT)
        .for_element(loc)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Waits (bounded) until the browser is at `path`.
async fn wait_path(c: &Client, path: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let at = c.current_url().await.unwrap().path().to_string();
        if at == path {
            return;
        }
        assert!(Instant::now() < deadline, "at {at}, want {path}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (bounded) until the browser's query string contains `part`.
async fn wait_query(c: &Client, part: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let url = c.current_url().await.unwrap();
        if url.query().is_some_and(|q| q.contains(part)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "at {url}, want a query with {part}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A gateway in enforce mode whose default spam policy holds a burst, with
/// `undo_secs` as the undo window of review drops; an operator's key.
/// Returns the gateway, the sink (kept alive), the admin token and the
/// held sender.
async fn held_sender(dir: &TempDir, undo_secs: u64) -> (Gateway, Sink, String, &'static str) {
    let sink = Sink::start(0).await;
    let cfg = write_config_with_policy(
        &dir.0,
        Some(&sink),
        "",
        &format!("[review]\nundo_window_secs = {undo_secs}\n[classifier]\nmode = \"enforce\"\n"),
    );
    with_service_key(&cfg);
    let gw = Gateway::start(&cfg);
    let out = cli(&cfg, &["keys", "api", "create", "ops", "--scope", "admin"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admin = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let sender = "+12125550100";
    for i in 0..30 {
        let sms = serde_json::json!({
            "id": format!("c-{i}"), "from": sender,
            "to": format!("+1415555{:04}", 1000 + i), "text": canary(),
        });
        let r = gw
            .post_signed("/webhooks/generic", &sms, GENERIC_SECRET)
            .await;
        assert_eq!(r.status(), 200);
    }
    let held = gw.count(
        "SELECT COUNT(*) FROM messages WHERE sender = '+12125550100' AND status IN ('held', 'blocked')",
    );
    assert!(held >= 10, "a burst is held ({held})");
    (gw, sink, admin, sender)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_needs_a_session_and_a_csrf_token() {
    let dir = TempDir::new("console-http");
    let (gw, _sink, admin, _) = held_sender(&dir, 1).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for page in [
        "/console/messages",
        "/console/review",
        "/console/health",
        "/console/dead-letters",
    ] {
        let r = http.get(gw.admin_url(page)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{page} without a session");
        assert_eq!(r.headers()["location"], "/console/login");
    }
    // A wrong key, and a tenant-less key without the admin scope, are refused.
    let r = http
        .post(gw.admin_url("/console/login"))
        .form(&[("key", "not-a-key")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    let r = http
        .post(gw.admin_url("/console/login"))
        .form(&[("key", admin.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(&admin),
        "the cookie never holds the API token"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    let r = http
        .get(gw.admin_url("/console/review"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("+12125550100"), "the held sender is listed");
    // A POST without the CSRF token (or with a wrong one) changes nothing.
    for form in [
        vec![("action", "ham")],
        vec![("action", "ham"), ("csrf", "0")],
    ] {
        let r = http
            .post(gw.admin_url("/console/review/%2B12125550100"))
            .header("cookie", &session)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
    }
    let r = http
        .post(gw.admin_url("/console/logout"))
        .header("cookie", &session)
        .form(&[("x", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "logout is a POST with the token too");
    let held = || {
        gw.count("SELECT COUNT(*) FROM messages WHERE sender = '+12125550100' AND status IN ('held', 'blocked')")
    };
    let held_before = held();
    assert!(held_before >= 10, "nothing was released");

    // With the token: Drop and Block need the confirm box.
    let get = |path: &str| {
        http.get(gw.admin_url(path))
            .header("cookie", &session)
            .send()
    };
    let page = get("/console/review/%2B12125550100")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = after(&page, "name=\"csrf\" value=\"", 64);
    let held_table = &page[page.find("id=\"held\"").unwrap()..];
    let id = after(held_table, "href=\"/console/messages/", 36);
    let post = |form: Vec<(&'static str, String)>| {
        http.post(gw.admin_url("/console/review/%2B12125550100"))
            .header("cookie", &session)
            .form(&form)
            .send()
    };
    // Every action answers 303 back to the sender's page, which shows
    // what it did once (a reload repeats the GET, never the action).
    let sender_page = || async {
        get("/console/review/%2B12125550100")
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    for action in ["drop", "block", "spam"] {
        let r = post(vec![
            ("csrf", csrf.clone()),
            ("action", action.into()),
            ("id", id.clone()),
        ])
        .await
        .unwrap();
        assert_eq!(r.status(), 303, "{action} without confirmation");
        assert_eq!(r.headers()["location"], "/console/review/%2B12125550100");
        assert!(sender_page().await.contains("tick confirm"));
    }
    assert!(!sender_page().await.contains("id=\"flash\""), "shown once");
    assert_eq!(held(), held_before, "nothing dropped unconfirmed");
    let r = post(vec![
        ("csrf", csrf.clone()),
        ("action", "drop".into()),
        ("id", id.clone()),
        ("confirm", "yes".into()),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    let page = sender_page().await;
    assert!(page.contains(&format!("dropped {id}")), "{page}");
    assert_eq!(
        gw.count("SELECT COUNT(*) FROM audit_log WHERE actor = 'console:ops' AND action = 'drop'"),
        1
    );
    // The drop becomes final when the window (1 s here) has passed: then
    // dropped, body erased; until then the body is still there.
    let final_sql = format!(
        "SELECT COUNT(*) FROM messages WHERE id = '{id}' AND status = 'dropped' AND sealed IS NULL"
    );
    wait_count(&gw, &final_sql, 1).await;
    assert_eq!(held(), held_before - 1);
    assert_eq!(gw.count("SELECT COUNT(*) FROM pending_drops"), 0);

    // Block, confirmed: the sender's held messages leave the queue.
    let r = post(vec![
        ("csrf", csrf.clone()),
        ("action", "block".into()),
        ("confirm", "yes".into()),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    let page = sender_page().await;
    assert!(
        page.contains(&format!(
            "block-listed; {} held message(s) dropped",
            held_before - 1
        )),
        "{page}"
    );
    wait_count(&gw, "SELECT COUNT(*) FROM messages WHERE sender = '+12125550100' AND status IN ('held', 'blocked')", 0).await;
    let queue = get("/console/review").await.unwrap().text().await.unwrap();
    assert!(
        !queue.contains("+12125550100"),
        "decided senders leave the queue"
    );

    // The other pages render; a bad search says why; retry needs a dead letter.
    let health = get("/console/health").await.unwrap();
    assert_eq!(health.status(), 200);
    let health = health.text().await.unwrap();
    assert!(
        health.contains("oldest_age_secs") && health.contains("health-status"),
        "{health}"
    );
    assert_eq!(get("/console/dead-letters").await.unwrap().status(), 200);
    let bad = get("/console/messages?status=bogus")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(bad.contains("is not a status"));
    let r = http
        .post(gw.admin_url(&format!("/console/dead-letters/{id}/retry")))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "not a dead letter");
    let r = get(&format!("/console/messages/{id}")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("dropped by operator"));

    // Logging out ends the session.
    let r = http
        .post(gw.admin_url("/console/logout"))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(get("/console/review").await.unwrap().status(), 303);

    // Pages are not cached or framed.
    let login = http
        .get(gw.admin_url("/console/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.headers()["cache-control"], "no-store");
    assert_eq!(login.headers()["x-frame-options"], "DENY");
    assert!(
        login.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );

    // Revoking the key ends its open sessions at the next request.
    let session = console_session(&http, gw.admin_url("/console/login"), &admin).await;
    let page = |s: String| {
        http.get(gw.admin_url("/console/review"))
            .header("cookie", s)
            .send()
    };
    assert_eq!(page(session.clone()).await.unwrap().status(), 200);
    let out = cli(
        &dir.0.join("gateway.toml"),
        &["keys", "api", "revoke", "ops"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        page(session).await.unwrap().status(),
        303,
        "revoked key, session over"
    );
}

/// Waits (bounded) until `sql` counts `want`.
async fn wait_count(gw: &Gateway, sql: &str, want: i64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let n = gw.count(sql);
        if n == want {
            return;
        }
        assert!(Instant::now() < deadline, "{sql}: {n}, want {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `n` characters after `marker` in `page`.
fn after(page: &str, marker: &str, n: usize) -> String {
    let at = page
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {page}"))
        + marker.len();
    page[at..at + n].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_a_browser_finds_releases_and_sees_delivered() {
    let driver = start_driver().await;
    let dir = TempDir::new("console-browser");
    let (gw, sink, admin, sender) = held_sender(&dir, 30).await;
    let c = browser(&driver).await;

    // Any page sends a visitor without a session to the login form.
    c.goto(&gw.admin_url("/console/review")).await.unwrap();
    wait_path(&c, "/console/login").await;
    el(&c, Locator::Css("#key"))
        .await
        .send_keys("wrong-key")
        .await
        .unwrap();
    el(&c, Locator::Css("#login")).await.click().await.unwrap();
    assert!(
        text_of(&c, "#login-error")
            .await
            .contains("not an admin-scope")
    );
    el(&c, Locator::Css("#key"))
        .await
        .send_keys(&admin)
        .await
        .unwrap();
    el(&c, Locator::Css("#login")).await.click().await.unwrap();
    wait_path(&c, "/console/messages").await;

    // Find the sender's messages by number.
    el(&c, Locator::Css("#number"))
        .await
        .send_keys(sender)
        .await
        .unwrap();
    el(&c, Locator::Css("#find")).await.click().await.unwrap();
    // The unfiltered page has results too: wait for the search's own page.
    wait_query(&c, "number=").await;
    let results = text_of(&c, "#results").await;
    let rows = c
        .find_all(Locator::Css("#results tr td.status"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 30, "every message from the number");
    assert!(results.contains("held"), "{results}");
    shot(&c, "messages").await;

    // Open the held sender in the review queue; its reasons are listed.
    c.goto(&gw.admin_url("/console/review")).await.unwrap();
    el(&c, Locator::LinkText(sender))
        .await
        .click()
        .await
        .unwrap();
    assert!(!text_of(&c, "#reasons").await.trim().is_empty());
    let held_link = el(&c, Locator::Css("#held td a")).await;
    let held_id = held_link.text().await.unwrap();
    shot(&c, "review").await;

    // Drop one (confirm ticked): it leaves the held list and waits in the
    // undo window; Undo holds it again. A reload repeats neither.
    let held_sql = "SELECT COUNT(*) FROM messages WHERE sender = '+12125550100' AND status IN ('held', 'blocked')";
    let held_before = gw.count(held_sql);
    let first_row = "#held tr:nth-child(2)";
    let dropped_id = c
        .find(Locator::Css(&format!("{first_row} td a")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    el(
        &c,
        Locator::Css(&format!("{first_row} input[name='confirm']")),
    )
    .await
    .click()
    .await
    .unwrap();
    el(&c, Locator::Css(&format!("{first_row} button.act-drop")))
        .await
        .click()
        .await
        .unwrap();
    let flash = text_of(&c, "#flash").await;
    assert!(flash.contains(&format!("dropped {dropped_id}")), "{flash}");
    assert!(flash.contains("Undo"), "{flash}");
    assert!(!text_of(&c, "#held").await.contains(&dropped_id));
    assert!(text_of(&c, "#pending").await.contains(&dropped_id));
    // Redirected after the POST: the browser is at the page, not the form's target.
    wait_path(&c, "/console/review/%2B12125550100").await;
    shot(&c, "review-undo").await;
    c.refresh().await.unwrap();
    assert!(
        c.find_all(Locator::Css("#flash")).await.unwrap().is_empty(),
        "the flash is shown once"
    );
    let drops = "SELECT COUNT(*) FROM audit_log WHERE action = 'drop'";
    assert_eq!(gw.count(drops), 1, "a reload does not drop again");
    el(&c, Locator::Css("button.act-undo"))
        .await
        .click()
        .await
        .unwrap();
    let flash = text_of(&c, "#flash").await;
    assert!(flash.contains("1 message(s) held again"), "{flash}");
    assert!(text_of(&c, "#held").await.contains(&dropped_id));
    assert!(
        c.find_all(Locator::Css("#pending"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(gw.count(held_sql), held_before, "back in the queue");
    assert_eq!(
        gw.count(&format!(
            "SELECT COUNT(*) FROM messages WHERE id = '{dropped_id}' AND status IN ('held', 'blocked') AND sealed IS NOT NULL"
        )),
        1,
        "held, body kept"
    );
    c.goto(&gw.admin_url("/console/review")).await.unwrap();
    assert!(text_of(&c, "#queue").await.contains(sender));
    el(&c, Locator::LinkText(sender))
        .await
        .click()
        .await
        .unwrap();

    let delivered_before = sink.on("/private").len();
    let held_n = gw.count(
        "SELECT COUNT(*) FROM messages WHERE sender = '+12125550100' AND status IN ('held', 'blocked')",
    ) as usize;
    el(&c, Locator::Css("button.act-release_all"))
        .await
        .click()
        .await
        .unwrap();
    let flash = text_of(&c, "#flash").await;
    assert!(flash.contains(&format!("released {held_n}")), "{flash}");
    c.refresh().await.unwrap();
    assert_eq!(
        gw.count("SELECT COUNT(*) FROM audit_log WHERE action = 'release'"),
        held_n as i64,
        "a reload does not release again"
    );

    // The released message is delivered; its page says so.
    sink.wait_for("/private", delivered_before + held_n, WAIT)
        .await;
    let deadline = Instant::now() + WAIT;
    let status = loop {
        c.goto(&gw.admin_url(&format!("/console/messages/{held_id}")))
            .await
            .unwrap();
        let s = text_of(&c, "#status").await;
        if s == "delivered" || s == "sent" || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(status == "delivered" || status == "sent", "{status}");
    let timeline = text_of(&c, "#timeline").await;
    assert!(timeline.contains("released by operator"), "{timeline}");

    // Health: the traffic chart counts the burst; the detailed report as tables.
    c.goto(&gw.admin_url("/console/health")).await.unwrap();
    let summary = text_of(&c, "#activity-summary").await;
    assert!(summary.starts_with("30 message(s) accepted"), "{summary}");
    assert!(
        !c.find_all(Locator::Css("#activity rect"))
            .await
            .unwrap()
            .is_empty()
    );
    shot(&c, "health").await;
    // Metadata only: no message text on any page seen.
    let page = c.source().await.unwrap();
    assert!(!page.contains("CANARY"), "no text on the page");
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_shows_failing_health_and_retries_a_dead_letter() {
    let dir = TempDir::new("console-dead");
    let sink = Sink::start(0).await;
    sink.status.store(401, std::sync::atomic::Ordering::SeqCst);
    let cfg = write_config(&dir.0, Some(&sink), "");
    let gw = Gateway::start(&cfg);
    let out = cli(&cfg, &["keys", "api", "create", "ops", "--scope", "admin"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admin = String::from_utf8(out.stdout).unwrap().trim().to_string();
    gw.register_identity("+14155550101").await;
    let sms = serde_json::json!({"id": "d-1", "from": "+14155550100", "to": "+14155550101", "text": canary()});
    let r = gw
        .post_signed("/webhooks/generic", &sms, GENERIC_SECRET)
        .await;
    assert_eq!(r.status(), 200);

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let session = console_session(&http, gw.admin_url("/console/login"), &admin).await;
    let get = |path: &str| {
        http.get(gw.admin_url(path))
            .header("cookie", &session)
            .send()
    };
    // The private side refuses: the message is dead-lettered, health says why.
    let deadline = Instant::now() + WAIT;
    let dead = loop {
        let page = get("/console/dead-letters")
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if page.contains("href=\"/console/messages/") || Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let table = &dead[dead.find("id=\"dead\"").unwrap()..];
    let id = after(table, "href=\"/console/messages/", 36);
    let csrf = after(&dead, "name=\"csrf\" value=\"", 64);
    let health = get("/console/health").await.unwrap().text().await.unwrap();
    assert!(health.contains("degraded"), "{health}");
    assert!(health.contains("deliveries to private failing"), "{health}");

    // Retry from the console once the private side answers again.
    sink.status.store(200, std::sync::atomic::Ordering::SeqCst);
    let r = http
        .post(gw.admin_url(&format!("/console/dead-letters/{id}/retry")))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("/console/messages/{id}").as_str()
    );
    gw.wait_status(&id, "delivered", WAIT).await;
    let page = get(&format!("/console/messages/{id}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<td id=\"status\">delivered</td>"), "{page}");
    assert!(
        page.contains("retried: queued for delivery again"),
        "the redirect's page says what the POST did"
    );
    let again = get(&format!("/console/messages/{id}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!again.contains("id=\"flash\""), "once");
    assert!(!page.contains("CANARY"), "no text on the page");
}
