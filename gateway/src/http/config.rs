//! `[http]`: the HTTP server's limits.

use serde::Deserialize;

/// Limits that keep the HTTP server bounded under abuse.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest request body accepted; bigger gets 413.
    pub max_body_bytes: usize,
    /// Requests handled at once; beyond that clients get 503 with Retry-After.
    pub max_in_flight: usize,
    /// A request that takes longer than this is answered 503.
    pub request_timeout_secs: u64,
    /// Connections open at once; further clients wait in the listen backlog
    /// until one closes (keep the process's open-file limit above this).
    pub max_connections: usize,
    /// Connections open at once from one peer address; beyond it a new one
    /// is closed at once (no one address takes every slot).
    pub max_connections_per_peer: usize,
    /// A client must send a request's whole header within this time, and an
    /// idle keep-alive connection is closed after it (slow-header clients).
    pub header_read_timeout_secs: u64,
    /// Largest request header block; bigger gets 431 and the connection closes.
    pub max_header_bytes: usize,
    /// Most header fields in one request.
    pub max_headers: usize,
    /// A request's whole body must arrive within this time (less up to a
    /// fifth at random, so a flood's timeouts spread out), else 408 and the
    /// connection closes (slow-body clients).
    pub body_read_timeout_secs: u64,
    /// Requests from one peer address whose body is still arriving after a
    /// short grace (250 ms); beyond it such a request is answered 503 and
    /// closed. Complete requests never count.
    pub max_slow_bodies_per_peer: usize,
}

const fn default_max_body_bytes() -> usize {
    64 * 1024
}
const fn default_max_in_flight() -> usize {
    4096
}
const fn default_request_timeout_secs() -> u64 {
    15
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: default_max_body_bytes(),
            max_in_flight: default_max_in_flight(),
            request_timeout_secs: default_request_timeout_secs(),
            max_connections: 8192,
            max_connections_per_peer: 1024,
            header_read_timeout_secs: 10,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            body_read_timeout_secs: 5,
            max_slow_bodies_per_peer: 64,
        }
    }
}

impl HttpConfig {
    /// Semantic checks, appended to `problems`.
    pub fn validate(&self, problems: &mut Vec<String>) {
        if self.max_body_bytes < 1024 {
            problems.push("http.max_body_bytes must be at least 1024".to_string());
        }
        if self.max_connections == 0 || self.max_in_flight == 0 {
            problems
                .push("http.max_connections and http.max_in_flight must be at least 1".to_string());
        }
        if self.body_read_timeout_secs == 0
            || self.max_slow_bodies_per_peer == 0
            || self.max_connections_per_peer == 0
        {
            problems.push(
                "http.body_read_timeout_secs, http.max_slow_bodies_per_peer and http.max_connections_per_peer must be at least 1"
                    .to_string(),
            );
        }
        if self.header_read_timeout_secs == 0 {
            problems.push("http.header_read_timeout_secs must be at least 1".to_string());
        }
        if !(1024..=1024 * 1024).contains(&self.max_header_bytes) || self.max_headers == 0 {
            problems.push(
                "http.max_header_bytes must be 1024 to 1048576 and http.max_headers at least 1"
                    .to_string(),
            );
        }
    }
}

/// `[admin]`: the admin plane's listener (`/metrics`, the detailed
/// `/healthz`, operator endpoints), apart from the public one that carriers
/// and applications reach.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Whether the admin listener runs at all.
    pub enabled: bool,
    /// Where it listens; loopback by default, since `/metrics` there needs
    /// no key.
    pub listen: std::net::SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8081)),
        }
    }
}
