//! A lean HTTP/1 client for the delivery hot path: the signed POST of one
//! message (or one batch) to a route's plain `http://` far end.
//!
//! Why not reqwest here: with one request per message the delivery client
//! was a third of the gateway's CPU per message (README "Performance"),
//! reqwest's own part ~17 µs of 151 µs per message (MT, 64 connections;
//! this client's ~2 µs): per request reqwest turns its `Url` into a `Uri`, builds a header map
//! through its builder, looks the host up in hyper-util's pool (a mutex,
//! a hash of scheme and authority, a checkout future), arms its own
//! timeout and wraps the answer in its decoders. Everything here that does
//! not change between requests is built once per route (the URI, the
//! `Host` and `Content-Type` headers, the address), and the pool is a
//! stack of idle connections to the one far end, taken and put back under
//! a mutex held for a push or a pop.
//!
//! Kept as reqwest had it: one timeout over the whole exchange (connect,
//! send, answer and body), a connect timeout, `TCP_NODELAY`, keep-alive
//! with at most `max_idle` idle connections, the answer body capped. A
//! pooled connection the far end closed while it sat idle fails before an
//! answer arrives: the request is sent once more on a new connection (the
//! same signed body with the same `Idempotency-Key`, which is what the
//! worker's own retry would send). https URLs, URLs with credentials and
//! a proxy set in the environment stay with reqwest and its rustls setup
//! ([`super::http::Endpoint`]).
//!
//! Not kept: redirects. reqwest followed a 3xx, turning the signed POST
//! into a bodiless GET on 301–303; here a 3xx is what it says, a refusal
//! (`HTTP 3xx`, given up like any other 4xx-class answer).

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;

use super::http::{Answer, is_transient};

/// Timeouts and pool size of a [`LeanClient`].
#[derive(Debug, Clone, Copy)]
pub struct LeanOptions {
    /// The whole exchange: connect, send, answer, body.
    pub timeout: Duration,
    /// Establishing a TCP connection.
    pub connect_timeout: Duration,
    /// Idle keep-alive connections kept per far end.
    pub max_idle: usize,
}

impl LeanOptions {
    /// As `[delivery]` sets up the shared reqwest client.
    pub fn of(cfg: &super::config::DeliveryConfig) -> Self {
        Self {
            timeout: Duration::from_secs(cfg.request_timeout_secs),
            connect_timeout: Duration::from_secs(5),
            max_idle: cfg.concurrency,
        }
    }
}

/// One idle or busy connection's sending half (its connection task runs
/// on its own and ends when the connection closes).
type Sender = SendRequest<Full<Bytes>>;

/// A keep-alive HTTP/1 client for one `http://` URL.
pub struct LeanClient {
    /// `host:port` to connect to.
    addr: String,
    /// The request target (path and query).
    uri: Uri,
    /// `Host` and `Content-Type`, the same on every request.
    host: HeaderValue,
    /// The signature header's name.
    signature: HeaderName,
    /// Idle connections, the most recently used on top.
    idle: Mutex<Vec<Sender>>,
    /// Largest answer body read.
    max_answer: usize,
    opts: LeanOptions,
}

/// How one exchange on one connection failed.
enum Failure {
    /// No answer came (refused, reset, closed before the answer): on a
    /// pooled connection worth one more try on a new one.
    NoAnswer,
    /// The answer began and then failed.
    Broken,
}

/// Whether the environment names a proxy for plain HTTP, as reqwest reads
/// it: such a deployment keeps reqwest, which goes through the proxy.
fn proxy_configured() -> bool {
    ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
static JSON: HeaderValue = HeaderValue::from_static("application/json");

impl LeanClient {
    /// A client for `url` when it is plain `http://` without credentials
    /// and no proxy is set in the environment; `None` for anything else
    /// (the caller keeps reqwest for it, which honours `HTTP_PROXY` /
    /// `ALL_PROXY` and `NO_PROXY`).
    pub fn new(url: &str, max_answer: usize, opts: LeanOptions) -> Option<Self> {
        if proxy_configured() {
            return None;
        }
        Self::direct(url, max_answer, opts)
    }

    /// [`LeanClient::new`] without the proxy check.
    fn direct(url: &str, max_answer: usize, opts: LeanOptions) -> Option<Self> {
        let parsed = reqwest::Url::parse(url).ok()?;
        if parsed.scheme() != "http" || !parsed.username().is_empty() || parsed.password().is_some()
        {
            return None;
        }
        let host = parsed.host_str()?;
        let port = parsed.port_or_known_default()?;
        let authority = match parsed.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let target = match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_string(),
        };
        Some(Self {
            addr: format!("{host}:{port}"),
            uri: target.parse().ok()?,
            host: HeaderValue::from_str(&authority).ok()?,
            signature: HeaderName::from_bytes(adapters::signing::SIGNATURE_HEADER.as_bytes())
                .ok()?,
            idle: Mutex::new(Vec::new()),
            max_answer,
            opts,
        })
    }

    /// POSTs `body` (JSON) with its signature header and, when given, an
    /// `Idempotency-Key`. `Err` is a transport failure, worded as
    /// [`super::http::describe`] words reqwest's.
    pub async fn post(
        &self,
        signature: &str,
        idempotency_key: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Answer, String> {
        let invalid = |_| "invalid header value".to_string();
        let signature = HeaderValue::from_str(signature).map_err(invalid)?;
        let key = idempotency_key
            .map(HeaderValue::from_str)
            .transpose()
            .map_err(invalid)?;
        let body = Bytes::from(body);
        match tokio::time::timeout(self.opts.timeout, self.exchange(signature, key, body)).await {
            Ok(answer) => answer,
            Err(_) => Err("timeout".into()),
        }
    }

    /// A pooled connection first; when it gives no answer (closed by the
    /// far end while idle), once more on a new connection.
    async fn exchange(
        &self,
        signature: HeaderValue,
        key: Option<HeaderValue>,
        body: Bytes,
    ) -> Result<Answer, String> {
        if let Some(sender) = self.take_idle() {
            let request = self.request(signature.clone(), key.clone(), body.clone());
            match self.once(sender, request).await {
                Ok(answer) => return Ok(answer),
                Err(Failure::NoAnswer) => {}
                Err(Failure::Broken) => return Err("transport error".into()),
            }
        }
        let sender = self.connect().await?;
        self.once(sender, self.request(signature, key, body))
            .await
            .map_err(|_| "transport error".to_string())
    }

    /// The request: the constant parts cloned (reference counts), the
    /// per-request headers added.
    fn request(
        &self,
        signature: HeaderValue,
        key: Option<HeaderValue>,
        body: Bytes,
    ) -> Request<Full<Bytes>> {
        let mut headers = HeaderMap::with_capacity(4);
        headers.insert(HOST, self.host.clone());
        headers.insert(CONTENT_TYPE, JSON.clone());
        headers.insert(self.signature.clone(), signature);
        if let Some(key) = key {
            headers.insert(IDEMPOTENCY_KEY.clone(), key);
        }
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = headers;
        req
    }

    /// The most recently used idle connection that is still open.
    fn take_idle(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(sender) = idle.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    /// Keeps a connection whose exchange ended cleanly for the next one.
    fn put_back(&self, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < self.opts.max_idle {
                idle.push(sender);
            }
        }
    }

    /// A new connection, its driving task spawned.
    async fn connect(&self) -> Result<Sender, String> {
        let tcp = tokio::time::timeout(
            self.opts.connect_timeout,
            tokio::net::TcpStream::connect(self.addr.as_str()),
        )
        .await
        .map_err(|_| "timeout".to_string())?
        .map_err(|_| "connection refused or unreachable".to_string())?;
        // Requests are written whole: no reason to wait for an ACK.
        let _ = tcp.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|_| "transport error".to_string())?;
        tokio::spawn(async move {
            // Ends when the far end or the last sender closes it.
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// One exchange on `sender`; the connection goes back to the pool when
    /// the answer was read to its end.
    async fn once(
        &self,
        mut sender: Sender,
        request: Request<Full<Bytes>>,
    ) -> Result<Answer, Failure> {
        sender.ready().await.map_err(|_| Failure::NoAnswer)?;
        let resp = sender
            .send_request(request)
            .await
            .map_err(|_| Failure::NoAnswer)?;
        let status = resp.status();
        let mut body = resp.into_body();
        let mut bytes = Vec::new();
        let mut complete = true;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| Failure::Broken)?;
            if let Ok(data) = frame.into_data() {
                if bytes.len() + data.len() > self.max_answer {
                    // Not read to its end: the connection is not reused.
                    complete = false;
                    bytes = Vec::new();
                    break;
                }
                bytes.extend_from_slice(&data);
            }
        }
        drop(body);
        if complete {
            self.put_back(sender);
        }
        if status.is_success() {
            return Ok(Answer::Ok(bytes));
        }
        Ok(Answer::Failed {
            transient: is_transient(status.as_u16()),
            reason: format!("HTTP {}", status.as_u16()),
        })
    }

    /// Idle connections held now (tests).
    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.idle.lock().map(|i| i.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    //! Against far ends written for each case on 127.0.0.1: keep-alive
    //! reuse, a connection closed between requests, the body cap, the
    //! timeout and the answer mapping.
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    fn opts(timeout_ms: u64) -> LeanOptions {
        LeanOptions {
            timeout: Duration::from_millis(timeout_ms),
            connect_timeout: Duration::from_secs(2),
            max_idle: 4,
        }
    }

    /// One request read off `s`: its head (lower-cased) and body; `None`
    /// at end of stream.
    async fn read_request(s: &mut TcpStream) -> Option<(String, Vec<u8>)> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0);
        let mut body = buf[head_end..].to_vec();
        while body.len() < len {
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        Some((head, body))
    }

    fn answer(status: &str, body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    /// A far end: `serve(n, connection)` handles each accepted connection;
    /// returns its URL and the count of connections accepted.
    async fn far_end<F, Fut>(serve: F) -> (String, Arc<AtomicUsize>)
    where
        F: Fn(usize, TcpStream) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/sms?x=1", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let n = count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(n, s));
            }
        });
        (url, accepted)
    }

    #[tokio::test]
    async fn keeps_one_connection_alive_and_sends_the_signed_request() {
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        let (url, accepted) = far_end(move |_, mut s| {
            let seen = seen.clone();
            async move {
                while let Some((head, body)) = read_request(&mut s).await {
                    seen.lock().unwrap().push((head, body));
                    s.write_all(&answer("200 OK", r#"{"status":"sent"}"#))
                        .await
                        .unwrap();
                }
            }
        })
        .await;
        let client = LeanClient::direct(&url, 1024, opts(5000)).unwrap();
        for i in 0..3 {
            let key = format!("m{i}#1");
            let answer = client
                .post("t=1,v1=ab", Some(&key), b"{\"a\":1}".to_vec())
                .await;
            match answer {
                Ok(Answer::Ok(body)) => assert_eq!(body, br#"{"status":"sent"}"#),
                _ => panic!("not accepted"),
            }
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one keep-alive connection"
        );
        assert_eq!(client.idle_count(), 1);
        let heads = heads.lock().unwrap();
        assert_eq!(heads.len(), 3);
        let (head, body) = &heads[2];
        assert!(head.starts_with("post /sms?x=1 http/1.1\r\n"), "{head}");
        assert!(head.contains("\r\nhost: 127.0.0.1:"), "{head}");
        assert!(head.contains("\r\ncontent-type: application/json\r\n"));
        assert!(
            head.contains("\r\nx-gateway-signature: t=1,v1=ab\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nidempotency-key: m2#1\r\n"));
        assert_eq!(body, b"{\"a\":1}");
    }

    #[tokio::test]
    async fn a_connection_closed_between_requests_is_replaced_without_losing_the_request() {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        // Each connection answers its first request, then reads the next
        // one and closes without answering (a far end's idle timeout
        // racing the request).
        let (url, accepted) = far_end(move |_, mut s| {
            let seen = seen.clone();
            async move {
                if let Some((head, _)) = read_request(&mut s).await {
                    seen.lock().unwrap().push(head);
                    s.write_all(&answer("200 OK", "{}")).await.unwrap();
                }
                if let Some((head, _)) = read_request(&mut s).await {
                    seen.lock().unwrap().push(head);
                }
            }
        })
        .await;
        let client = LeanClient::direct(&url, 1024, opts(5000)).unwrap();
        for i in 0..3 {
            let key = format!("m{i}#1");
            let answer = client.post("t=1,v1=ab", Some(&key), b"{}".to_vec()).await;
            assert!(matches!(answer, Ok(Answer::Ok(_))), "request {i}");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
        let keys: Vec<bool> = requests
            .lock()
            .unwrap()
            .iter()
            .map(|h| h.contains("idempotency-key: m1#1"))
            .collect();
        // m1 went out on the first connection (unanswered), then again on
        // the second with the same key.
        assert_eq!(keys.iter().filter(|k| **k).count(), 2);
    }

    #[tokio::test]
    async fn an_answer_over_the_cap_is_dropped_with_its_connection() {
        let big = "x".repeat(100);
        let (url, accepted) = far_end(move |_, mut s| {
            let big = big.clone();
            async move {
                while read_request(&mut s).await.is_some() {
                    s.write_all(&answer("200 OK", &big)).await.unwrap();
                }
            }
        })
        .await;
        let client = LeanClient::direct(&url, 16, opts(5000)).unwrap();
        for _ in 0..2 {
            match client.post("s", None, b"{}".to_vec()).await {
                Ok(Answer::Ok(body)) => assert!(body.is_empty()),
                _ => panic!("not accepted"),
            }
            assert_eq!(client.idle_count(), 0, "not read to its end: not reused");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_far_end_that_never_answers_times_out() {
        let (url, _) = far_end(|_, mut s| async move {
            let _ = read_request(&mut s).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        })
        .await;
        let client = LeanClient::direct(&url, 1024, opts(200)).unwrap();
        let started = std::time::Instant::now();
        let answer = client.post("s", Some("m#1"), b"{}".to_vec()).await;
        assert_eq!(answer.err().as_deref(), Some("timeout"));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(client.idle_count(), 0);
    }

    #[tokio::test]
    async fn refusals_are_classified_and_the_connection_kept() {
        let (url, accepted) = far_end(|_, mut s| async move {
            let mut n = 0;
            while read_request(&mut s).await.is_some() {
                let status = if n == 0 {
                    "503 Busy"
                } else {
                    "400 Bad Request"
                };
                n += 1;
                s.write_all(&answer(status, r#"{"error":"no"}"#))
                    .await
                    .unwrap();
            }
        })
        .await;
        let client = LeanClient::direct(&url, 1024, opts(5000)).unwrap();
        let a = client.post("s", None, b"{}".to_vec()).await;
        assert!(
            matches!(a, Ok(Answer::Failed { transient: true, ref reason }) if reason == "HTTP 503")
        );
        let a = client.post("s", None, b"{}".to_vec()).await;
        assert!(
            matches!(a, Ok(Answer::Failed { transient: false, ref reason }) if reason == "HTTP 400")
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_transport_failure() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let client =
            LeanClient::direct(&format!("http://127.0.0.1:{port}/"), 1024, opts(2000)).unwrap();
        let answer = client.post("s", None, b"{}".to_vec()).await;
        assert_eq!(
            answer.err().as_deref(),
            Some("connection refused or unreachable")
        );
    }

    #[test]
    fn only_plain_http_urls_without_credentials() {
        let o = opts(1000);
        assert!(LeanClient::direct("https://example.com/sms", 1, o).is_none());
        assert!(LeanClient::direct("http://u:p@example.com/sms", 1, o).is_none());
        assert!(LeanClient::direct("not a url", 1, o).is_none());
        let c = LeanClient::direct("http://example.com/sms", 1, o).unwrap();
        assert_eq!(c.addr, "example.com:80");
        assert_eq!(c.host, "example.com");
        let c = LeanClient::direct("http://[::1]:8080/a/b?c=d", 1, o).unwrap();
        assert_eq!(c.addr, "[::1]:8080");
        assert_eq!(c.host, "[::1]:8080");
        assert_eq!(c.uri, "/a/b?c=d");
    }
}
