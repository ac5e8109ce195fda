//! `gateway demo`: the whole system in one command and about a minute, with
//! no config file and nothing else to start.
//!
//! It runs the real service (the same `serve` code, HTTP API, store, spam
//! gate and delivery worker) on a temporary data directory and a loopback
//! port, with the generic HTTP route pointed at a simulated SMSC and phone
//! and the private side at a simulated private side (`demo_sim`). Then it
//! sends one message each way over HTTP, as a real private side and carrier
//! would, and prints each step: accepted, sealed, sent, delivered, opened.
//! The secrets and the internal user's key are made up for the run and the
//! data directory is removed at the end (unless `--data-dir` named it).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::CliError;
use super::demo_sim::{self, Seen, Sims};
use crate::app::config::Config;
use crate::channels::generic::config::{GENERIC_SECRET_ENV, GenericConfig};
use crate::core::secrets::SecretRef;
use crate::envelope::keys;

/// Options of `gateway demo`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  gateway demo\n  gateway demo --keep-running")]
pub struct DemoArgs {
    /// After the demo, keep the gateway and the simulators running (until
    /// Ctrl-C) and print how to reach them.
    #[arg(long)]
    keep_running: bool,
}

/// The internal user on the private side (her key is registered).
const ALICE: &str = "+14155550101";
/// The phone on the phone network.
const PHONE: &str = "+14155550123";
/// The gateway's own number on the simulated SMSC.
const GATEWAY_NUMBER: &str = "+14155550199";
const OUTBOUND_TEXT: &str = "Hi Bob, this is Alice on the private side.";
const INBOUND_TEXT: &str = "Hi Alice! Bob here, replying from my phone.";
/// How long any one step may take before the demo gives up.
const STEP_LIMIT: Duration = Duration::from_secs(20);

/// What the steps need.
struct Run {
    http: reqwest::Client,
    base: String,
    token: String,
    carrier_secret: Vec<u8>,
    sims: Sims,
}

/// Runs the demo; `data_dir` (from `--data-dir`) is kept, a temporary one is
/// removed.
pub fn run(args: &DemoArgs, data_dir: Option<&Path>) -> Result<(), CliError> {
    let (dir, temporary) = match data_dir {
        Some(d) => (d.to_path_buf(), false),
        None => (temp_dir(), true),
    };
    let result = super::runtime()?.block_on(demo(args, &dir));
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn temp_dir() -> PathBuf {
    std::env::temp_dir().join(format!(
        "gateway-demo-{}-{}",
        std::process::id(),
        hex::encode(rand::random::<[u8; 4]>())
    ))
}

fn fail(step: &str, why: impl std::fmt::Display) -> CliError {
    CliError {
        code: 1,
        message: format!("demo failed at {step}: {why}"),
    }
}

async fn demo(args: &DemoArgs, dir: &Path) -> Result<(), CliError> {
    let started = Instant::now();
    crate::core::fs::create_private_dir(dir)?;
    let (alice_sk, alice_pk) = keys::generate();
    let alice_kid = keys::kid_of(&alice_pk);
    let cfg = config(dir)?;
    let carrier_secret = secret(cfg.generic.as_ref().map(|g| &g.secret), GENERIC_SECRET_ENV)?;
    let private_secret = secret(
        Some(&cfg.private_side.secret),
        crate::delivery::config::PRIVATE_SECRET_ENV,
    )?;
    let sims = demo_sim::start(carrier_secret.clone(), private_secret, alice_sk)
        .await
        .map_err(|e| fail("starting the simulators", e))?;
    let cfg = point_at(cfg, &sims);
    let key = crate::store::NewApiKey {
        name: "demo",
        tenant: None,
        scopes: crate::core::tenants::Scopes::APPLICATION,
        expires_at: None,
    };
    let token =
        crate::store::open_for_cli(dir)?.create_api_key(&key, crate::core::clock::now_ms())?;
    let edge_kid = crate::envelope::keys::Keyring::open_or_create(dir)?
        .current()
        .kid
        .clone();
    let base = format!("http://{}", cfg.listen);
    println!(
        "gateway demo: the real service on {base}, data in {}",
        dir.display()
    );
    println!(
        "  simulated SMSC and phone {PHONE}: http://{}/sms; simulated private side: http://{}/private",
        sims.addr, sims.addr
    );
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(crate::app::serve::run_until(cfg, shutdown.clone()));
    let mut run = Run {
        http: reqwest::Client::new(),
        base,
        token,
        carrier_secret,
        sims,
    };
    let result = tokio::select! {
        r = steps(&mut run, &alice_pk, &alice_kid, &edge_kid) => r,
        // The service stopped on its own (its port taken, say): say why now,
        // not after a step's time limit.
        () = until_finished(&server) => Err(fail("start", "the gateway stopped")),
    };
    if result.is_ok() {
        println!();
        println!(
            "demo finished in {:.1} s: one message each way, sealed at the edge, opened only at the ends",
            started.elapsed().as_secs_f64()
        );
        if args.keep_running {
            keep_running(&run).await;
        }
    }
    shutdown.cancel();
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.into()),
        Err(e) => return Err(fail("stopping the gateway", e)),
    }
    result
}

/// Resolves once `task` has finished.
async fn until_finished<T>(task: &tokio::task::JoinHandle<T>) {
    while !task.is_finished() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The demo's configuration: the embedded defaults, a free loopback port,
/// made-up secrets in owner-only files in the data directory. The URLs are
/// filled in once the simulators listen.
fn config(dir: &Path) -> Result<Config, CliError> {
    let mut cfg = Config::load(None)?;
    cfg.data_dir = dir.to_path_buf();
    cfg.listen = free_port().map_err(|e| fail("finding a free port", e))?;
    // The demo shows the public API; an admin listener on the default port
    // would collide with a gateway already running on this machine.
    cfg.admin.enabled = false;
    let file_secret = |name: &str| -> Result<SecretRef, CliError> {
        let path = dir.join(name);
        crate::core::fs::write_private_file(
            &path,
            hex::encode(rand::random::<[u8; 16]>()).as_bytes(),
        )?;
        // A variable the operator surely has not set, so the file is used
        // even when GATEWAY_GENERIC_SECRET is exported for a real gateway.
        Ok(SecretRef {
            secret_env: Some("GATEWAY_DEMO_SECRET_NOT_SET".into()),
            secret_file: Some(path),
        })
    };
    cfg.generic = Some(GenericConfig {
        url: String::new(),
        from: Some(GATEWAY_NUMBER.into()),
        secret: file_secret("demo-generic.secret")?,
        batch_max: 1,
        batch_linger_ms: 0,
    });
    cfg.private_side.secret = file_secret("demo-private.secret")?;
    Ok(cfg)
}

fn point_at(mut cfg: Config, sims: &Sims) -> Config {
    if let Some(g) = cfg.generic.as_mut() {
        g.url = format!("http://{}/sms", sims.addr);
    }
    cfg.private_side.webhook_url = Some(format!("http://{}/private", sims.addr));
    cfg
}

/// Resolves a secret the way the gateway will, so both ends hold the same.
fn secret(r: Option<&SecretRef>, default_env: &str) -> Result<Vec<u8>, CliError> {
    r.map(|r| r.resolve(default_env))
        .transpose()?
        .flatten()
        .ok_or_else(|| fail("configuration", "a demo secret did not resolve"))
}

fn free_port() -> std::io::Result<std::net::SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

async fn steps(
    run: &mut Run,
    alice_pk: &crate::envelope::keys::PublicKey,
    alice_kid: &str,
    edge_kid: &str,
) -> Result<(), CliError> {
    wait_healthy(run).await?;
    let kid = register(run, alice_pk).await?;
    println!("  alice ({ALICE}) on the private side registered her public key (kid {kid})");
    println!();
    println!("1. private side -> phone");
    outbound(run, edge_kid).await?;
    println!();
    println!("2. phone -> private side");
    inbound(run, alice_kid).await
}

async fn wait_healthy(run: &Run) -> Result<(), CliError> {
    let deadline = Instant::now() + STEP_LIMIT;
    loop {
        let ok = run
            .http
            .get(format!("{}/healthz", run.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(fail("start", "the gateway did not answer /healthz"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn register(run: &Run, pk: &crate::envelope::keys::PublicKey) -> Result<String, CliError> {
    let v = json(
        run.http
            .put(format!("{}/v1/identities/{ALICE}", run.base))
            .bearer_auth(&run.token)
            .json(&serde_json::json!({"public_key": keys::public_key_b64(pk)})),
        "registering alice's key",
    )
    .await?;
    Ok(str_of(&v, "kid"))
}

/// Sends a request and reads a JSON answer, failing the step on a non-2xx.
async fn json(req: reqwest::RequestBuilder, step: &str) -> Result<serde_json::Value, CliError> {
    let resp = req.send().await.map_err(|e| fail(step, e))?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| fail(step, e))?;
    if !status.is_success() {
        return Err(fail(step, format!("HTTP {status}: {body}")));
    }
    serde_json::from_str(&body).map_err(|e| fail(step, e))
}

fn str_of(v: &serde_json::Value, key: &str) -> String {
    match &v[key] {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Waits for the next thing a simulator saw.
async fn next_seen(run: &mut Run, step: &str) -> Result<Seen, CliError> {
    match tokio::time::timeout(STEP_LIMIT, run.sims.seen.recv()).await {
        Ok(Some(Seen::BadSignature(path))) => Err(fail(step, format!("{path}: bad signature"))),
        Ok(Some(seen)) => Ok(seen),
        Ok(None) => Err(fail(step, "the simulators stopped")),
        Err(_) => Err(fail(step, "nothing arrived in time")),
    }
}

async fn outbound(run: &mut Run, edge_kid: &str) -> Result<(), CliError> {
    let v = json(
        run.http
            .post(format!("{}/v1/messages", run.base))
            .bearer_auth(&run.token)
            .json(&serde_json::json!({"from": ALICE, "to": PHONE, "text": OUTBOUND_TEXT})),
        "sending",
    )
    .await?;
    let id = str_of(&v, "id");
    println!(
        "  accepted   POST /v1/messages -> 202 id={id} status={} segments={} encoding={}",
        str_of(&v, "status"),
        str_of(&v, "segments"),
        str_of(&v, "encoding")
    );
    println!(
        "  sealed     stored as an envelope sealed to the gateway's edge key (kid {edge_kid}); no text in the clear"
    );
    let Seen::Sms {
        id: got,
        to,
        from,
        text,
        segments,
        encoding,
    } = next_seen(run, "sending").await?
    else {
        return Err(fail(
            "sending",
            "the private side got something instead of the SMSC",
        ));
    };
    if got != id || text != OUTBOUND_TEXT {
        return Err(fail("sending", "the SMSC got a different message"));
    }
    println!(
        "  sent       opened at the edge, encoded and signed; the SMSC took {segments} {encoding} segment(s) for {to}"
    );
    println!(
        "  phone      {to} shows, from {}: \"{text}\"",
        from.as_deref().unwrap_or("?")
    );
    // A handset's delivery report comes after the SMSC's answer was
    // recorded (`sent`); reporting sooner would be kept as a late `sent`
    // in the history, which is right but reads oddly in a demo.
    wait_status(run, &id, "sent").await?;
    report_delivered(run, &id).await?;
    let history = wait_status(run, &id, "delivered").await?;
    println!("  delivered  the SMSC's delivery report arrived; history: {history}");
    Ok(())
}

/// The SMSC reports the delivery, signed, as a carrier would.
async fn report_delivered(run: &Run, id: &str) -> Result<(), CliError> {
    let body = serde_json::json!({"id": id, "status": "delivered"}).to_string();
    json(
        signed(run, "/webhooks/generic/status", body),
        "reporting delivery",
    )
    .await?;
    Ok(())
}

fn signed(run: &Run, path: &str, body: String) -> reqwest::RequestBuilder {
    let sig = adapters::signing::sign(
        &run.carrier_secret,
        crate::core::clock::now_secs(),
        body.as_bytes(),
    );
    run.http
        .post(format!("{}{path}", run.base))
        .header(adapters::signing::SIGNATURE_HEADER, sig)
        .header("content-type", "application/json")
        .body(body)
}

/// Polls `GET /v1/messages/{id}` until `want`; returns the history as
/// `a -> b -> c`.
async fn wait_status(run: &Run, id: &str, want: &str) -> Result<String, CliError> {
    let deadline = Instant::now() + STEP_LIMIT;
    loop {
        let v = json(
            run.http
                .get(format!("{}/v1/messages/{id}", run.base))
                .bearer_auth(&run.token),
            "reading the status",
        )
        .await?;
        if str_of(&v, "status") == want {
            let history: Vec<String> = v["history"]
                .as_array()
                .map(|h| h.iter().map(|e| str_of(e, "status")).collect())
                .unwrap_or_default();
            return Ok(history.join(" -> "));
        }
        if Instant::now() > deadline {
            return Err(fail(
                "reading the status",
                format!("still {}", str_of(&v, "status")),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn inbound(run: &mut Run, alice_kid: &str) -> Result<(), CliError> {
    println!("  phone      {PHONE} replies: \"{INBOUND_TEXT}\"");
    let body = serde_json::json!({
        "id": "demo-smsc-reply-1", "from": PHONE, "to": ALICE, "text": INBOUND_TEXT
    })
    .to_string();
    let v = json(signed(run, "/webhooks/generic", body), "receiving").await?;
    let id = str_of(&v, "id");
    println!(
        "  accepted   the SMSC's signed POST /webhooks/generic -> 200 id={id} status={}",
        str_of(&v, "status")
    );
    let Seen::Envelope {
        id: got,
        kid,
        from,
        opened,
    } = next_seen(run, "receiving").await?
    else {
        return Err(fail(
            "receiving",
            "the SMSC got something instead of the private side",
        ));
    };
    if got != id {
        return Err(fail(
            "receiving",
            "the private side got a different message",
        ));
    }
    println!("  sealed     sealed at the edge to alice's key (kid {kid}) before it was stored");
    if kid != alice_kid {
        return Err(fail("receiving", "sealed to a key that is not alice's"));
    }
    println!(
        "  delivered  the private side verified the gateway's signature and took the envelope"
    );
    let text = opened.map_err(|e| fail("opening", e))?;
    if text != INBOUND_TEXT {
        return Err(fail(
            "opening",
            "the opened text differs from what the phone sent",
        ));
    }
    println!(
        "  opened     with alice's private key: \"{text}\" from {from} (the phone's text, intact)"
    );
    Ok(())
}

async fn keep_running(run: &Run) {
    println!();
    println!("still running (Ctrl-C stops it and removes a temporary data directory):");
    println!(
        "  API        {}  (Authorization: Bearer {})",
        run.base, run.token
    );
    println!(
        "  health     {}/healthz   metrics {}/metrics",
        run.base, run.base
    );
    let _ = tokio::signal::ctrl_c().await;
}
