//! Service configuration: embedded defaults, an optional TOML file, and
//! environment overrides for secrets.
//!
//! Every struct denies unknown fields, so a typo in the file is an error that
//! names the key instead of a silently ignored setting. Defaults are `const fn`s
//! so the documented values and the code cannot drift apart. Secrets never
//! appear in the file as literals: they come from an environment variable
//! (with a fixed default name per section) or from a file path.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Directory for the database and key files (created owner-only).
    pub data_dir: PathBuf,
    /// Region used to read national numbers (ISO 3166 alpha-2, e.g. "US").
    pub default_region: String,
    /// Logging.
    pub log: LogConfig,
    /// HTTP server limits.
    pub http: HttpConfig,
    /// Durable store.
    pub store: StoreConfig,
    /// Delivery queue and retries.
    pub delivery: DeliveryConfig,
    /// The generic HTTP SMSC adapter; absent means no SMS route.
    pub generic: Option<GenericConfig>,
    /// Where inbound envelopes go.
    pub private_side: PrivateSideConfig,
    /// Which route sends which outbound message.
    pub routing: RoutingConfig,
    /// SMS encoding options: national language tables, smart encoding.
    pub sms: adapters::sms::SmsOptions,
    /// Spam defense policy: thresholds, allow/block lists, rate limits.
    pub classifier: classifier::Config,
    /// Which spam model to load.
    pub model: ModelConfig,
    /// GSM modems (`[[modems]]`), each its own route named after it.
    pub modems: Vec<ModemConfig>,
    /// Twilio Programmable Messaging; absent means no Twilio route or webhook.
    pub twilio: Option<crate::carriers::TwilioConfig>,
    /// Telnyx Messaging; absent means no Telnyx route or webhook.
    pub telnyx: Option<crate::carriers::TelnyxConfig>,
    /// Android phones running SMS Gateway for Android, one route each.
    pub android: Vec<crate::carriers::AndroidRelayConfig>,
    /// Google RCS Business Messaging; absent means no RCS.
    pub rbm: Option<crate::rcs::RbmConfig>,
    /// SMPP: client binds to SMSCs (`[[smpp.client]]`) and the SMPP server
    /// for SMS applications (`[smpp.server]`).
    pub smpp: crate::smpp::SmppConfig,
}

/// Which spam model to load.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// A model file written by `gateway model train`; absent means the model
    /// bundled with the binary.
    pub path: Option<PathBuf>,
}

impl ModelConfig {
    /// Loads the configured model, or the bundled one.
    pub fn load(&self) -> Result<classifier::Model> {
        match &self.path {
            Some(p) => classifier::Model::load(p)
                .map_err(|e| Error::Config(format!("model {}: {e}", p.display()))),
            None => classifier::Model::default_model()
                .map_err(|e| Error::Config(format!("bundled model: {e}"))),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./gateway-data"),
            default_region: "US".into(),
            log: LogConfig::default(),
            http: HttpConfig::default(),
            store: StoreConfig::default(),
            delivery: DeliveryConfig::default(),
            generic: None,
            private_side: PrivateSideConfig::default(),
            routing: RoutingConfig::default(),
            sms: adapters::sms::SmsOptions::default(),
            classifier: classifier::Config::default(),
            model: ModelConfig::default(),
            modems: Vec::new(),
            twilio: None,
            telnyx: None,
            android: Vec::new(),
            rbm: None,
            smpp: crate::smpp::SmppConfig::default(),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Logging settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `human` or `json`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `gateway=debug,info`; `RUST_LOG` wins.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

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
    /// A client must send a request's whole header within this time, and an
    /// idle keep-alive connection is closed after it (slow-header clients).
    pub header_read_timeout_secs: u64,
    /// Largest request header block; bigger gets 431 and the connection closes.
    pub max_header_bytes: usize,
    /// Most header fields in one request.
    pub max_headers: usize,
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
            header_read_timeout_secs: 10,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
        }
    }
}

/// SQLite durability setting.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// fsync the WAL on every commit: an acknowledged message survives power
    /// loss. The default, because acknowledging means promising.
    #[default]
    Full,
    /// fsync only at checkpoints: survives a process crash, but a power loss
    /// can lose the last commits.
    Normal,
}

/// Durable store settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Durability of each commit.
    pub synchronous: Synchronous,
    /// Most write operations folded into one transaction (group commit).
    pub max_batch: usize,
    /// Read connections kept open for queries.
    pub read_connections: usize,
    /// Sealed bodies are erased this long after a message was accepted,
    /// whatever its state (the retention policy for non-ephemeral messages).
    pub body_retention_secs: u64,
    /// Metadata rows (messages, history, queue, carrier ids) are deleted this
    /// long after a message was accepted.
    pub metadata_retention_secs: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            max_batch: 2048,
            read_connections: 4,
            body_retention_secs: 30 * 24 * 3600,
            metadata_retention_secs: 365 * 24 * 3600,
        }
    }
}

/// Delivery queue settings, shared by every route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Attempts before a message is dead-lettered.
    pub max_attempts: u32,
    /// Age (seconds since accepted) after which a message is dead-lettered.
    pub max_age_secs: u64,
    /// First retry delay; doubles each attempt, with jitter.
    pub initial_backoff_ms: u64,
    /// Ceiling of the retry delay.
    pub max_backoff_secs: u64,
    /// Sends in flight at once per route.
    pub concurrency: usize,
    /// Timeout of one delivery HTTP request.
    pub request_timeout_secs: u64,
    /// Signature timestamp window for inbound webhooks, in seconds.
    pub signature_window_secs: i64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 15,
            max_age_secs: 2 * 24 * 3600,
            initial_backoff_ms: 1000,
            max_backoff_secs: 600,
            concurrency: 64,
            request_timeout_secs: 10,
            signature_window_secs: 300,
        }
    }
}

/// Where a secret comes from. The environment variable wins over the file so
/// an operator can override a deployed file without editing it.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SecretRef {
    /// Environment variable holding the secret (each section has a default name).
    pub secret_env: Option<String>,
    /// File holding the secret (trailing newline ignored).
    pub secret_file: Option<PathBuf>,
}

impl SecretRef {
    /// Resolves the secret, trying `secret_env` (or `default_env`), then the file.
    pub fn resolve(&self, default_env: &str) -> Result<Option<Vec<u8>>> {
        let var = self.secret_env.as_deref().unwrap_or(default_env);
        if let Ok(v) = std::env::var(var) {
            if !v.is_empty() {
                return Ok(Some(v.into_bytes()));
            }
        }
        if let Some(path) = &self.secret_file {
            let raw = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
            return Ok(Some(raw.trim_end_matches(['\r', '\n']).as_bytes().to_vec()));
        }
        Ok(None)
    }
}

/// The generic HTTP SMSC adapter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericConfig {
    /// URL each outbound SMS is POSTed to.
    pub url: String,
    /// Sender used when a message names none.
    #[serde(default)]
    pub from: Option<String>,
    /// Shared HMAC secret for both directions (default env `GATEWAY_GENERIC_SECRET`).
    #[serde(flatten)]
    pub secret: SecretRef,
}

/// Routing rules, tried in order; the first that matches picks the route.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// Route for messages no rule matches; absent means the first configured route.
    pub default: Option<String>,
    /// Ordered rules.
    pub rules: Vec<RouteRule>,
}

/// One routing rule. Every condition given must hold; a rule with no
/// condition matches everything.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// Destination number prefix in E.164, e.g. `+44` or `+1415`.
    #[serde(default)]
    pub to_prefix: Option<String>,
    /// Destination country (ISO 3166 alpha-2), e.g. `GB`.
    #[serde(default)]
    pub to_country: Option<String>,
    /// Sender, exactly as normalised (E.164, short code or alphanumeric id).
    #[serde(default)]
    pub from: Option<String>,
    /// The route to use.
    pub route: String,
}

/// Default environment variable of the generic adapter's secret.
pub const GENERIC_SECRET_ENV: &str = "GATEWAY_GENERIC_SECRET";
/// Default environment variable of the private-side webhook secret.
pub const PRIVATE_SECRET_ENV: &str = "GATEWAY_PRIVATE_SECRET";

/// The private side: where inbound envelopes are delivered.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PrivateSideConfig {
    /// URL each inbound envelope is POSTed to; absent means envelopes wait in the store.
    pub webhook_url: Option<String>,
    /// Public key (base64, 32 bytes X25519) used when the recipient has no registered identity.
    pub service_public_key: Option<String>,
    /// HMAC secret for the webhook (default env `GATEWAY_PRIVATE_SECRET`).
    #[serde(flatten)]
    pub secret: SecretRef,
}

impl Config {
    /// Loads `path` over the embedded defaults, or the defaults alone.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let cfg = match path {
            None => Self::default(),
            Some(p) => {
                let raw = std::fs::read_to_string(p).map_err(|e| Error::io("read", p, e))?;
                Self::from_toml(&raw)?
            }
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses TOML text (unknown keys are errors naming the key).
    pub fn from_toml(raw: &str) -> Result<Self> {
        toml::from_str(raw).map_err(|e| Error::Config(e.to_string()))
    }

    /// Semantic checks the types cannot express; reports every problem at once.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if self
            .default_region
            .parse::<phonenumber::country::Id>()
            .is_err()
        {
            problems.push(format!(
                "default_region {:?} is not an ISO 3166 region code",
                self.default_region
            ));
        }
        if self.http.max_body_bytes < 1024 {
            problems.push("http.max_body_bytes must be at least 1024".to_string());
        }
        if self.http.max_connections == 0 || self.http.max_in_flight == 0 {
            problems
                .push("http.max_connections and http.max_in_flight must be at least 1".to_string());
        }
        if self.http.header_read_timeout_secs == 0 {
            problems.push("http.header_read_timeout_secs must be at least 1".to_string());
        }
        if !(1024..=1024 * 1024).contains(&self.http.max_header_bytes) || self.http.max_headers == 0
        {
            problems.push(
                "http.max_header_bytes must be 1024 to 1048576 and http.max_headers at least 1"
                    .to_string(),
            );
        }
        if self.store.metadata_retention_secs < self.store.body_retention_secs {
            problems.push(
                "store.metadata_retention_secs must not be shorter than store.body_retention_secs"
                    .to_string(),
            );
        }
        if self.store.max_batch == 0 {
            problems.push("store.max_batch must be at least 1".to_string());
        }
        if self.delivery.concurrency == 0 {
            problems.push("delivery.concurrency must be at least 1".to_string());
        }
        if self.delivery.max_attempts == 0 {
            problems.push("delivery.max_attempts must be at least 1".to_string());
        }
        if let Some(g) = &self.generic {
            if !(g.url.starts_with("http://") || g.url.starts_with("https://")) {
                problems.push("generic.url must be an http(s) URL".to_string());
            }
        }
        if let Some(u) = &self.private_side.webhook_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                problems.push("private_side.webhook_url must be an http(s) URL".to_string());
            }
        }
        if let Some(k) = &self.private_side.service_public_key {
            if crate::envelope::keys::parse_public_key(k).is_err() {
                problems.push(
                    "private_side.service_public_key is not a base64 X25519 public key".to_string(),
                );
            }
        }
        for (i, r) in self.routing.rules.iter().enumerate() {
            if let Some(p) = &r.to_prefix {
                if !p.starts_with('+') || !p[1..].bytes().all(|b| b.is_ascii_digit()) {
                    problems.push(format!("routing.rules[{i}].to_prefix must be + and digits"));
                }
            }
            if let Some(c) = &r.to_country {
                if c.parse::<phonenumber::country::Id>().is_err() {
                    problems.push(format!(
                        "routing.rules[{i}].to_country {c:?} is not an ISO 3166 region"
                    ));
                }
            }
        }
        for (i, m) in self.modems.iter().enumerate() {
            m.check(i, &self.modems, &mut problems);
        }
        crate::carriers::validate(self, &mut problems);
        crate::rcs::validate(self, &mut problems);
        self.smpp.validate(&mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Config(problems.join("; ")))
        }
    }
}

/// What to do with a multipart message whose parts stop coming.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum IncompletePolicy {
    /// Deliver the parts that arrived, in order (the default: a partial
    /// message is better than a silently lost one).
    #[default]
    Deliver,
    /// Drop it (logged with its metadata).
    Drop,
}

/// One GSM modem (`[[modems]]`): a serial device or a TCP modem server
/// (ser2net style). It becomes a route called `name`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModemConfig {
    /// Route and metrics name: lowercase letters, digits, `-`, `_`.
    pub name: String,
    /// The SIM's own number (E.164): the `to` of every inbound message.
    pub number: String,
    /// Serial device, e.g. `/dev/ttyUSB2` (give this or `tcp`).
    #[serde(default)]
    pub device: Option<PathBuf>,
    /// Serial speed.
    #[serde(default = "default_modem_baud")]
    pub baud: u32,
    /// `host:port` of a TCP modem server (give this or `device`).
    #[serde(default)]
    pub tcp: Option<String>,
    /// SIM PIN, entered only when the SIM asks (default env
    /// `GATEWAY_MODEM_<NAME>_PIN`, name upper-cased, `-` as `_`).
    #[serde(flatten)]
    pub pin: SecretRef,
    /// SMSC number set with `AT+CSCA` and written into each PDU; absent
    /// keeps the SIM's.
    #[serde(default)]
    pub smsc: Option<String>,
    /// Message storage for `AT+CPMS` (`SM` = SIM, `ME` = phone, `MT` = both).
    #[serde(default = "default_modem_storage")]
    pub storage: String,
    /// Most SMS parts sent per minute (carriers throttle SIMs); 0 = no limit.
    #[serde(default = "default_modem_pace")]
    pub pace_per_minute: u32,
    /// Ask for status reports (TP-SRR) and turn them into `delivered`/`failed`.
    #[serde(default = "default_true")]
    pub status_reports: bool,
    /// `AT+CNMI` parameters, e.g. `"2,1,0,2,0"`; absent tries `2,1,0,2,0`,
    /// then `2,1,0,1,0`, then `1,1,0,0,0` until the modem accepts one.
    #[serde(default)]
    pub cnmi: Option<String>,
    /// How long an ordinary command may take before the modem counts as hung.
    #[serde(default = "default_modem_command_timeout_ms")]
    pub command_timeout_ms: u64,
    /// How long one `AT+CMGS` may take (it waits for the network).
    #[serde(default = "default_modem_send_timeout_secs")]
    pub send_timeout_secs: u64,
    /// Idle time after which the modem is probed with `AT`; no answer resets it.
    #[serde(default = "default_modem_health_check_secs")]
    pub health_check_secs: u64,
    /// Ceiling of the reconnect backoff (it starts at 0.5 s and doubles).
    #[serde(default = "default_modem_reconnect_max_secs")]
    pub reconnect_max_secs: u64,
    /// How long a multipart message waits for missing parts.
    #[serde(default = "default_modem_reassembly_timeout_secs")]
    pub reassembly_timeout_secs: u64,
    /// What to do when that time is up.
    #[serde(default)]
    pub incomplete: IncompletePolicy,
}

const fn default_modem_baud() -> u32 {
    115_200
}
fn default_modem_storage() -> String {
    "SM".into()
}
const fn default_modem_pace() -> u32 {
    10
}
const fn default_true() -> bool {
    true
}
const fn default_modem_command_timeout_ms() -> u64 {
    5_000
}
const fn default_modem_send_timeout_secs() -> u64 {
    60
}
const fn default_modem_health_check_secs() -> u64 {
    30
}
const fn default_modem_reconnect_max_secs() -> u64 {
    60
}
const fn default_modem_reassembly_timeout_secs() -> u64 {
    600
}

impl ModemConfig {
    /// The parsed `cnmi` setting, or the fallbacks.
    pub fn indications(&self) -> Option<Vec<adapters::at::Cnmi>> {
        let Some(raw) = &self.cnmi else {
            return Some(adapters::at::Cnmi::FALLBACKS.to_vec());
        };
        let n: Vec<u8> = raw
            .split(',')
            .map(|f| f.trim().parse().ok())
            .collect::<Option<_>>()?;
        let [mode, mt, bm, ds, bfr] = n[..] else {
            return None;
        };
        Some(vec![adapters::at::Cnmi {
            mode,
            mt,
            bm,
            ds,
            bfr,
        }])
    }

    /// The default PIN environment variable of this modem.
    pub fn pin_env(&self) -> String {
        format!(
            "GATEWAY_MODEM_{}_PIN",
            self.name.to_ascii_uppercase().replace('-', "_")
        )
    }

    fn check(&self, i: usize, all: &[ModemConfig], problems: &mut Vec<String>) {
        let at = format!("modems[{i}]");
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            problems.push(format!(
                "{at}.name must be lowercase letters, digits, - or _"
            ));
        }
        if all.iter().filter(|m| m.name == self.name).count() > 1 {
            problems.push(format!("{at}.name {:?} is used twice", self.name));
        }
        if self.device.is_some() == self.tcp.is_some() {
            problems.push(format!("{at} needs exactly one of device or tcp"));
        }
        if adapters::sms::Address::parse_number(&self.number).is_err()
            || !self.number.starts_with('+')
        {
            problems.push(format!("{at}.number must be an E.164 number"));
        }
        if let Some(s) = &self.smsc {
            if adapters::sms::Address::parse_number(s).is_err() {
                problems.push(format!("{at}.smsc is not a phone number"));
            }
        }
        if !matches!(self.storage.as_str(), "SM" | "ME" | "MT" | "SR" | "BM") {
            problems.push(format!("{at}.storage must be SM, ME or MT"));
        }
        if self.indications().is_none() {
            problems.push(format!("{at}.cnmi must be five numbers like \"2,1,0,2,0\""));
        }
        if self.command_timeout_ms == 0 || self.send_timeout_secs == 0 {
            problems.push(format!("{at} timeouts must be at least 1"));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn empty_file_is_the_defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("./gateway-data"));
        assert!(c.generic.is_none());
        c.validate().unwrap();
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::from_toml("listne = \"127.0.0.1:1\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("listne"), "{e}");
        let e = Config::from_toml("[delivery]\nmax_atempts = 3")
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_atempts"), "{e}");
    }

    #[test]
    fn all_semantic_problems_reported_together() {
        let c = Config::from_toml(
            "default_region = \"XX\"\n[store]\nmax_batch = 0\n[generic]\nurl = \"ftp://x\"",
        )
        .unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("default_region") && e.contains("max_batch") && e.contains("generic.url"),
            "{e}"
        );
    }

    #[test]
    fn secret_env_wins_over_file() {
        let dir = std::env::temp_dir().join(format!("gw-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("s");
        std::fs::write(&f, "from-file\n").unwrap();
        let r = SecretRef {
            secret_env: Some("GW_TEST_SECRET_UNSET_VAR".into()),
            secret_file: Some(f),
        };
        assert_eq!(r.resolve("X").unwrap().unwrap(), b"from-file");
        let r2 = SecretRef {
            secret_env: Some("PATH".into()),
            secret_file: None,
        };
        assert!(r2.resolve("X").unwrap().is_some());
    }

    #[test]
    fn modem_defaults_and_checks() {
        let c = Config::from_toml(
            "[[modems]]\nname = \"sim-1\"\nnumber = \"+14155550100\"\ntcp = \"127.0.0.1:7000\"",
        )
        .unwrap();
        c.validate().unwrap();
        let m = &c.modems[0];
        assert_eq!((m.pace_per_minute, m.storage.as_str()), (10, "SM"));
        assert_eq!(m.indications().unwrap().len(), 3);
        assert_eq!(m.pin_env(), "GATEWAY_MODEM_SIM_1_PIN");
        let bad =
            Config::from_toml("[[modems]]\nname = \"A\"\nnumber = \"x\"\ncnmi = \"1,2\"").unwrap();
        let e = bad.validate().unwrap_err().to_string();
        assert!(
            e.contains("name")
                && e.contains("device or tcp")
                && e.contains("cnmi")
                && e.contains("number"),
            "{e}"
        );
    }
}
