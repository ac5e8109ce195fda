//! `[smpp]`: client binds to SMSCs and the SMPP server's section.

use std::net::SocketAddr;

use adapters::smpp::Concatenation;
use serde::Deserialize;

use crate::core::secrets::SecretRef;

/// `[smpp]`: client binds and the server.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SmppConfig {
    /// SMSCs to bind to, each a route `smpp:<name>`.
    pub client: Vec<SmppClientConfig>,
    /// The SMPP server for SMS applications; absent means off.
    pub server: Option<SmppServerConfig>,
}

/// How a client bind binds.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum BindType {
    /// Submit only (no inbound, no receipts on this bind).
    Transmitter,
    /// Receive only (inbound messages and receipts).
    Receiver,
    /// Both on one connection: the default, because receipts come back on
    /// the bind that submitted the message with most SMSCs.
    #[default]
    Transceiver,
}

impl BindType {
    /// True when this bind may submit.
    pub const fn transmits(self) -> bool {
        matches!(self, Self::Transmitter | Self::Transceiver)
    }
}

/// SMPP interface version to announce in the bind.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
pub enum Version {
    /// SMPP 3.4 (`interface_version` 0x34): what nearly every SMSC speaks.
    #[default]
    #[serde(rename = "3.4")]
    V34,
    /// SMPP 5.0 (0x50).
    #[serde(rename = "5.0")]
    V50,
}

const fn default_binds() -> u32 {
    1
}
const fn default_window() -> u32 {
    // Kannel's max-pending-submits default.
    10
}
const fn default_enquire_link_secs() -> u64 {
    // Jasmin's elink_interval default.
    30
}
const fn default_response_timeout_secs() -> u64 {
    10
}
const fn default_reconnect_max_secs() -> u64 {
    60
}
const fn default_true() -> bool {
    true
}
const fn default_server_throughput() -> f64 {
    50.0
}
const fn default_max_connections() -> usize {
    256
}
const fn default_reassembly_timeout_secs() -> u64 {
    600
}

/// One SMSC (`[[smpp.client]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmppClientConfig {
    /// Route name suffix: the route is `smpp:<name>`. Lowercase letters,
    /// digits, `-`, `_`.
    pub name: String,
    /// `host:port` of the SMSC.
    pub host: String,
    /// `system_id` to bind with (at most 15 characters).
    pub system_id: String,
    /// The bind password (at most 8 characters), default env
    /// `GATEWAY_SMPP_<NAME>_PASSWORD`.
    #[serde(flatten)]
    pub password: SecretRef,
    /// `system_type` of the bind (often empty; some SMSCs want one).
    #[serde(default)]
    pub system_type: String,
    /// `transmitter`, `receiver` or `transceiver`.
    #[serde(default)]
    pub bind: BindType,
    /// `"3.4"` or `"5.0"`.
    #[serde(default)]
    pub version: Version,
    /// Parallel binds (connections) for throughput; sends are spread over
    /// the binds that are up.
    #[serde(default = "default_binds")]
    pub binds: u32,
    /// Outstanding `submit_sm` per bind (the window).
    #[serde(default = "default_window")]
    pub window: u32,
    /// Idle time before an `enquire_link` is sent.
    #[serde(default = "default_enquire_link_secs")]
    pub enquire_link_secs: u64,
    /// How long a response may take before the request counts as failed
    /// (a `submit_sm` then becomes a retry).
    #[serde(default = "default_response_timeout_secs")]
    pub response_timeout_secs: u64,
    /// Most `submit_sm` per second per bind (the SMSC's agreed MPS); 0 means
    /// no limit of our own.
    #[serde(default)]
    pub throughput: f64,
    /// `udh`, `sar` or `payload`: how long messages are split.
    #[serde(default)]
    pub concatenation: Concatenation,
    /// Connect with TLS (server certificate checked against the web PKI
    /// roots, or against `tls_ca`).
    #[serde(default)]
    pub tls: bool,
    /// A PEM file of CA certificates to trust instead of the web PKI roots:
    /// for an SMSC with a private CA or a self-signed certificate.
    #[serde(default)]
    pub tls_ca: Option<std::path::PathBuf>,
    /// The name the SMSC's certificate must carry; default: the host part.
    #[serde(default)]
    pub tls_server_name: Option<String>,
    /// Sender used when a message names none.
    #[serde(default)]
    pub from: Option<String>,
    /// Ask for delivery receipts (`registered_delivery` 1).
    #[serde(default = "default_true")]
    pub registered_delivery: bool,
    /// The number inbound messages without a usable `destination_addr` go to.
    #[serde(default)]
    pub number: Option<String>,
    /// Ceiling of the reconnect backoff (starts at 0.5 s, doubles).
    #[serde(default = "default_reconnect_max_secs")]
    pub reconnect_max_secs: u64,
    /// How long an inbound multipart message waits for missing parts.
    #[serde(default = "default_reassembly_timeout_secs")]
    pub reassembly_timeout_secs: u64,
}

impl SmppClientConfig {
    /// This SMSC's route name.
    pub fn route_name(&self) -> String {
        format!("smpp:{}", self.name)
    }

    /// Default environment variable of the password.
    pub fn password_env(&self) -> String {
        format!(
            "GATEWAY_SMPP_{}_PASSWORD",
            self.name.to_ascii_uppercase().replace('-', "_")
        )
    }
}

/// The SMPP server (`[smpp.server]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmppServerConfig {
    /// Address to listen on, e.g. `127.0.0.1:2775`.
    pub listen: SocketAddr,
    /// Outstanding `submit_sm` handled at once per connection; further ones
    /// wait in the socket (TCP backpressure), they are not refused.
    #[serde(default = "default_window")]
    pub window: u32,
    /// Messages per second per client (`system_id`) unless the client has
    /// its own limit (`gateway smpp client add --throughput`); over it a
    /// `submit_sm` gets `ESME_RTHROTTLED`.
    #[serde(default = "default_server_throughput")]
    pub throughput: f64,
    /// Connections at once; more are closed right after accept.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// `system_id` the gateway answers binds with.
    #[serde(default = "default_server_system_id")]
    pub system_id: String,
    /// Idle time after which the server sends `enquire_link`; a client that
    /// does not answer within `response_timeout_secs` is disconnected.
    #[serde(default = "default_enquire_link_secs")]
    pub enquire_link_secs: u64,
    /// How long a client may take to answer a `deliver_sm`.
    #[serde(default = "default_response_timeout_secs")]
    pub response_timeout_secs: u64,
    /// How long a multipart `submit_sm` waits for its missing parts.
    #[serde(default = "default_reassembly_timeout_secs")]
    pub reassembly_timeout_secs: u64,
    /// PEM certificate chain (leaf first): with `tls_key`, the listener
    /// speaks TLS only (SMPP over TLS, as carriers' SMSCs offer it).
    #[serde(default)]
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<std::path::PathBuf>,
}

fn default_server_system_id() -> String {
    "gateway".into()
}

impl SmppConfig {
    /// Semantic checks, appended to `problems`.
    pub fn validate(&self, problems: &mut Vec<String>) {
        for (i, c) in self.client.iter().enumerate() {
            let at = format!("smpp.client[{i}]");
            if c.name.is_empty()
                || c.name.len() > 32
                || !c
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            {
                problems.push(format!(
                    "{at}.name must be 1-32 lowercase letters, digits, - or _"
                ));
            }
            if self.client.iter().filter(|o| o.name == c.name).count() > 1 {
                problems.push(format!("{at}.name {:?} is used twice", c.name));
            }
            if split_host(&c.host).is_none() {
                problems.push(format!("{at}.host must be host:port"));
            }
            if c.system_id.is_empty() || c.system_id.len() > 15 {
                problems.push(format!("{at}.system_id must be 1 to 15 characters"));
            }
            if c.system_type.len() > 12 {
                problems.push(format!("{at}.system_type must be at most 12 characters"));
            }
            if c.binds == 0 || c.binds > 64 {
                problems.push(format!("{at}.binds must be 1 to 64"));
            }
            if c.window == 0 || c.window > 1000 {
                problems.push(format!("{at}.window must be 1 to 1000"));
            }
            if c.response_timeout_secs == 0 || c.enquire_link_secs == 0 {
                problems.push(format!("{at} timeouts must be at least 1"));
            }
            if !(c.throughput >= 0.0 && c.throughput.is_finite()) {
                problems.push(format!("{at}.throughput must be 0 or more"));
            }
            if c.tls_ca.is_some() && !c.tls {
                problems.push(format!("{at}.tls_ca needs tls = true"));
            }
        }
        if let Some(s) = &self.server {
            if s.window == 0 || s.window > 1000 {
                problems.push("smpp.server.window must be 1 to 1000".into());
            }
            if !(s.throughput > 0.0 && s.throughput.is_finite()) {
                problems.push("smpp.server.throughput must be above 0".into());
            }
            if s.system_id.is_empty() || s.system_id.len() > 15 {
                problems.push("smpp.server.system_id must be 1 to 15 characters".into());
            }
            if s.tls_cert.is_some() != s.tls_key.is_some() {
                problems.push("smpp.server.tls_cert and tls_key go together".into());
            }
        }
    }
}

/// `host:port` split into its parts (IPv6 hosts may be bracketed).
pub fn split_host(host: &str) -> Option<(&str, u16)> {
    let (h, p) = host.rsplit_once(':')?;
    let p: u16 = p.parse().ok()?;
    (!h.is_empty() && p != 0).then_some((h.trim_matches(['[', ']']), p))
}
