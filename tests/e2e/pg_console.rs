//! The console's review pages on PostgreSQL: a burst held by node A is
//! listed and decided on node B's console (the shared review queue).

use std::time::Duration;

use crate::harness::*;
use crate::pg::Postgres;
use crate::postgres::copy_keys;

/// A node's config on `url`: enforce mode, drops final at once, the
/// private side's service key set (inbound is sealed to it).
fn config(dir: &TempDir, sink: &Sink, pg: &Postgres, url: &str) -> std::path::PathBuf {
    let cfg = write_config_with_policy(
        &dir.0,
        Some(sink),
        &format!(
            "{}[delivery]\nrequest_timeout_secs = 3\n",
            pg.store_section(url)
        ),
        "[review]\nundo_window_secs = 0\n[classifier]\nmode = \"enforce\"\n",
    );
    with_service_key(&cfg);
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_review_pages_run_on_the_shared_database() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.create_db("console");
    let sink = Sink::start(0).await;
    let (da, db) = (TempDir::new("pgc-a"), TempDir::new("pgc-b"));
    let cfg_a = config(&da, &sink, &pg, &url);
    let a = Gateway::start(&cfg_a);
    copy_keys(&da.0, &db.0);
    let b = Gateway::spawn(&config(&db, &sink, &pg, &url), a.token.clone());
    let out = cli(
        &cfg_a,
        &["keys", "api", "create", "ops", "--scope", "admin"],
    );
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
            "to": format!("+1415555{:04}", 1000 + i), "text": "hello",
        });
        let r = a
            .post_signed("/webhooks/generic", &sms, GENERIC_SECRET)
            .await;
        assert_eq!(r.status(), 200);
    }
    let held = || {
        pg.sql(
            "console",
            "SELECT COUNT(*) FROM messages WHERE sender = '+12125550100' AND status IN ('held', 'blocked')",
        )
        .parse::<i64>()
        .unwrap()
    };
    assert!(held() >= 10, "a burst is held ({})", held());

    // Node B's console: log in, see the sender, mark it ham.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let session = console_session(&http, b.admin_url("/console/login"), &admin).await;
    let get = |path: &str| {
        http.get(b.admin_url(path))
            .header("cookie", &session)
            .send()
    };
    let queue = get("/console/review").await.unwrap();
    assert_eq!(queue.status(), 200);
    assert!(
        queue.text().await.unwrap().contains(sender),
        "the held sender is listed"
    );
    let page = get("/console/review/%2B12125550100")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let marker = "name=\"csrf\" value=\"";
    let at = page.find(marker).unwrap() + marker.len();
    let csrf = page[at..at + 64].to_string();
    let r = http
        .post(b.admin_url("/console/review/%2B12125550100"))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str()), ("action", "ham")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(held(), 0, "released by the decision on node B");
    assert_eq!(
        pg.sql(
            "console",
            "SELECT action FROM audit_log ORDER BY id DESC LIMIT 1"
        ),
        "mark_ham"
    );
    // Released messages go out (either node claims them).
    let got = sink.wait_for("/private", 30, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 30);
}
