//! Starting the gateway binary, a recording sink, and small helpers.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;

pub const GENERIC_SECRET: &str = "generic-test-secret";
pub const PRIVATE_SECRET: &str = "private-test-secret";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_gateway")
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "gw-e2e-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One request the sink received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A local HTTP server standing in for the SMSC and the private side.
/// `status` is the HTTP status it answers with (200 = accept).
pub struct Sink {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    /// The idempotency key of every request, answered or refused: each
    /// attempt a far end saw.
    pub attempted: Arc<Mutex<Vec<String>>>,
    pub status: Arc<AtomicU16>,
    /// When non-zero, every answer waits this long (a slow far end); the
    /// request is recorded first, as a real SMSC would have taken it.
    pub delay_ms: Arc<AtomicU64>,
    handle: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct SinkState {
    received: Arc<Mutex<Vec<Received>>>,
    attempted: Arc<Mutex<Vec<String>>>,
    status: Arc<AtomicU16>,
    delay_ms: Arc<AtomicU64>,
}

async fn record(
    State(s): State<SinkState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    if let Some(k) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        s.attempted.lock().unwrap().push(k.to_string());
    }
    let code = s.status.load(Ordering::SeqCst);
    if code != 200 {
        return (StatusCode::from_u16(code).unwrap(), "down").into_response();
    }
    let n = {
        let mut r = s.received.lock().unwrap();
        r.push(Received {
            path: uri.path().to_string(),
            headers,
            body: body.to_vec(),
        });
        r.len()
    };
    let delay = s.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({"carrier_id": format!("c-{n}")})),
    )
        .into_response()
}

impl Sink {
    /// Starts on an ephemeral port, or on `port` when given (to come back on
    /// the same address after an outage).
    pub async fn start(port: u16) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let attempted = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let st = SinkState {
            received: received.clone(),
            attempted: attempted.clone(),
            status: status.clone(),
            delay_ms: delay_ms.clone(),
        };
        let app = axum::Router::new().fallback(record).with_state(st);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            received,
            attempted,
            status,
            delay_ms,
            handle,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn on(&self, path: &str) -> Vec<Received> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Waits until `n` requests reached `path`.
    pub async fn wait_for(&self, path: &str, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.on(path);
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// A running gateway process.
pub struct Gateway {
    pub child: Child,
    pub addr: SocketAddr,
    /// The admin plane's listener (`/metrics`, detailed `/healthz`, operator endpoints).
    pub admin: SocketAddr,
    pub data_dir: PathBuf,
    pub logs: Arc<Mutex<Vec<String>>>,
    pub token: String,
}

/// Tests of the backbone are about transport, not spam policy: their senders
/// are allow-listed and the limits raised, so a model update cannot change
/// their outcome. The spam tests write their own policy.
pub const BACKBONE_POLICY: &str = r#"
[classifier]
allow = ["+1415555*"]
[classifier.rate_limits]
long_code = { per_second = 1000.0, burst = 10000 }
recipient = { per_second = 1000.0, burst = 10000 }
pair = { per_second = 1000.0, burst = 10000 }
route = { per_second = 1000.0, burst = 10000 }
"#;

pub fn write_config(dir: &Path, sink: Option<&Sink>, extra: &str) -> PathBuf {
    write_config_with_policy(dir, sink, extra, BACKBONE_POLICY)
}

/// Like [`write_config`] with a spam policy of the test's own (TOML).
pub fn write_config_with_policy(
    dir: &Path,
    sink: Option<&Sink>,
    extra: &str,
    policy: &str,
) -> PathBuf {
    let data = dir.join("data");
    let mut cfg = format!(
        "listen = \"127.0.0.1:0\"\nadmin.listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n",
        data.display()
    );
    cfg.push_str(extra);
    cfg.push_str(policy);
    if let Some(s) = sink {
        cfg.push_str(&format!(
            "\n[generic]\nurl = \"{}\"\nfrom = \"+14155550199\"\n\n[private_side]\nwebhook_url = \"{}\"\n",
            s.url("/sms"),
            s.url("/private")
        ));
    }
    let path = dir.join("gateway.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

/// Sets a fresh service key on the private side of a config written by
/// [`write_config_with_policy`] with a sink, so inbound messages for anyone
/// can be sealed (the spam tests hold inbound bursts).
pub fn with_service_key(cfg: &Path) {
    let (_, service_pk) = gateway::envelope::keys::generate();
    let text = std::fs::read_to_string(cfg).unwrap().replace(
        "[private_side]\n",
        &format!(
            "[private_side]\nservice_public_key = \"{}\"\n",
            gateway::envelope::keys::public_key_b64(&service_pk)
        ),
    );
    std::fs::write(cfg, text).unwrap();
}

/// Runs a CLI command against the config and returns stdout.
pub fn cli(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .env("GATEWAY_GENERIC_SECRET", GENERIC_SECRET)
        .env("GATEWAY_PRIVATE_SECRET", PRIVATE_SECRET)
        .output()
        .unwrap()
}

impl Gateway {
    /// Creates an API key and starts the service on `config`.
    pub fn start(config: &Path) -> Self {
        let out = cli(config, &["keys", "api", "create", "e2e"]);
        let token = if out.status.success() {
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        } else {
            // Restart: the key exists already; make another.
            let name = format!(
                "e2e-{}",
                std::process::id() ^ Instant::now().elapsed().subsec_nanos()
            );
            let out = cli(config, &["keys", "api", "create", &name]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        Self::spawn(config, token)
    }

    pub fn spawn(config: &Path, token: String) -> Self {
        let mut child = Command::new(bin())
            .arg("--config")
            .arg(config)
            .args(["serve", "--log-format", "json"])
            .env("GATEWAY_GENERIC_SECRET", GENERIC_SECRET)
            .env("GATEWAY_PRIVATE_SECRET", PRIVATE_SECRET)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent {
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                        if v["message"] == "listening" {
                            let _ = tx.send((
                                v["addr"].as_str().unwrap_or_default().to_string(),
                                v["admin"].as_str().unwrap_or_default().to_string(),
                            ));
                            sent = true;
                        }
                    }
                }
                sink.lock().unwrap().push(line);
            }
        });
        let (addr, admin) = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
            Err(_) => {
                let _ = child.kill();
                panic!("gateway did not start: {:?}", logs.lock().unwrap());
            }
        };
        let data_dir = config.parent().unwrap().join("data");
        Self {
            child,
            addr,
            admin,
            data_dir,
            logs,
            token,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A URL on the admin plane's listener.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// Registers a fresh identity for `address` and returns its private key.
    pub async fn register_identity(&self, address: &str) -> gateway::envelope::keys::PrivateKey {
        use gateway::envelope::keys;
        let (sk, pk) = keys::generate();
        let r = self
            .client()
            .put(self.url(&format!("/v1/identities/{address}")))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({"public_key": keys::public_key_b64(&pk)}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        sk
    }

    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    pub async fn send(&self, body: serde_json::Value) -> reqwest::Response {
        self.client()
            .post(self.url("/v1/messages"))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| self.unreachable(&e))
    }

    /// Fails the test on a request the gateway did not answer at all, with
    /// what the gateway last logged (a crash or a reset is otherwise only
    /// "connection closed").
    pub fn unreachable(&self, e: &reqwest::Error) -> ! {
        let logs = self.logs.lock().map(|l| l.clone()).unwrap_or_default();
        let tail = &logs[logs.len().saturating_sub(40)..];
        panic!(
            "the gateway did not answer: {e:?}\nits last log lines:\n{}",
            tail.join("\n")
        );
    }

    /// Sends `body` with an `Idempotency-Key`.
    pub async fn send_keyed(&self, key: &str, body: serde_json::Value) -> reqwest::Response {
        self.client()
            .post(self.url("/v1/messages"))
            .bearer_auth(&self.token)
            .header("idempotency-key", key)
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| self.unreachable(&e))
    }

    /// Sends `body`, asserts it was accepted (202) and returns the id.
    pub async fn send_accepted(&self, body: serde_json::Value) -> String {
        let r = self.send(body).await;
        assert_eq!(r.status(), 202);
        r.json::<serde_json::Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The node's detailed `/healthz` (the admin listener's).
    pub async fn health(&self) -> serde_json::Value {
        self.client()
            .get(self.admin_url("/healthz"))
            .send()
            .await
            .unwrap_or_else(|e| self.unreachable(&e))
            .json()
            .await
            .unwrap()
    }

    /// The `cluster` section of the node's detailed `/healthz` (PostgreSQL).
    pub async fn cluster_health(&self) -> serde_json::Value {
        self.health().await["cluster"].clone()
    }

    /// The generic SMSC reports `status` for the message it knows as `id`
    /// (signed with the test secret); asserts it was taken (200).
    pub async fn report_generic_status(&self, id: &str, status: &str) {
        let r = self
            .post_signed(
                "/webhooks/generic/status",
                &serde_json::json!({"id": id, "status": status}),
                GENERIC_SECRET,
            )
            .await;
        assert_eq!(r.status(), 200);
    }

    /// Waits (up to `within`) until the node's health lists `n` nodes (it
    /// has its cluster section after its first heartbeat), asserts it, and
    /// returns that cluster section.
    pub async fn wait_cluster_nodes(&self, n: usize, within: Duration) -> serde_json::Value {
        let deadline = Instant::now() + within;
        let mut health = self.cluster_health().await;
        while health["nodes"].as_array().map(Vec::len) != Some(n) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            health = self.cluster_health().await;
        }
        assert_eq!(
            health["nodes"].as_array().map(Vec::len),
            Some(n),
            "{health}"
        );
        health
    }

    /// Whether the node's health says it holds the lease of `channel`.
    pub async fn holds_channel(&self, channel: &str) -> bool {
        self.cluster_health().await["channels"]
            .as_array()
            .is_some_and(|c| {
                c.iter()
                    .any(|l| l["channel"] == channel && l["here"] == true)
            })
    }

    /// Waits (bounded by `within`) until the node holds the lease of
    /// `channel`, failing with its cluster health if it never does; returns
    /// how long that took.
    pub async fn wait_holds_channel(&self, channel: &str, within: Duration) -> Duration {
        let start = Instant::now();
        while !self.holds_channel(channel).await && start.elapsed() < within {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            self.holds_channel(channel).await,
            "{}",
            self.cluster_health().await
        );
        start.elapsed()
    }

    pub async fn message(&self, id: &str) -> serde_json::Value {
        self.client()
            .get(self.url(&format!("/v1/messages/{id}")))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Polls a message until its status is `want`.
    pub async fn wait_status(&self, id: &str, want: &str, within: Duration) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let m = self.message(id).await;
            if m["status"] == want || Instant::now() > deadline {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// POSTs a body signed with the generic adapter's secret.
    pub async fn post_signed(
        &self,
        path: &str,
        body: &serde_json::Value,
        secret: &str,
    ) -> reqwest::Response {
        let raw = serde_json::to_vec(body).unwrap();
        let sig = adapters::signing::sign(secret.as_bytes(), now_secs(), &raw);
        self.client()
            .post(self.url(path))
            .header("content-type", "application/json")
            .header(adapters::signing::SIGNATURE_HEADER, sig)
            .body(raw)
            .send()
            .await
            .unwrap_or_else(|e| self.unreachable(&e))
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics_text(&self) -> String {
        self.client()
            .get(self.admin_url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub fn count(&self, sql: &str) -> i64 {
        let c = rusqlite::Connection::open(self.data_dir.join("gateway.db")).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        c.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(mut self) -> Arc<Mutex<Vec<String>>> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.logs.clone()
    }

    /// SIGTERM and wait for a graceful exit; returns the exit status.
    pub fn terminate(mut self) -> (std::process::ExitStatus, Arc<Mutex<Vec<String>>>) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return (st, self.logs.clone());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("gateway did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A random string that appears nowhere else (for privacy canaries).
pub fn canary() -> String {
    use rand::Rng;
    let mut r = rand::rng();
    format!("CANARY{:016x}{:016x}", r.random::<u64>(), r.random::<u64>())
}

/// Whether `needle` occurs in the file's bytes.
pub fn file_contains(path: &Path, needle: &str) -> bool {
    match std::fs::read(path) {
        Ok(bytes) => bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
        Err(_) => false,
    }
}

/// Logs in to the web console at `login_url` with an admin key and returns
/// the session cookie (`name=value`) for later requests. `http` must not
/// follow redirects: the login answers 303 with the cookie.
pub async fn console_session(http: &reqwest::Client, login_url: String, key: &str) -> String {
    let r = http
        .post(login_url)
        .form(&[("key", key)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "the console login answers 303");
    r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}
