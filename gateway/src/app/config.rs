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

use crate::channels::android::config::AndroidRelayConfig;
use crate::channels::generic::config::GenericConfig;
use crate::channels::modem::config::ModemConfig;
use crate::channels::rbm::config::{ROUTE as RBM_ROUTE, RbmConfig};
use crate::channels::smpp::config::SmppConfig;
use crate::channels::telnyx::config::TelnyxConfig;
use crate::channels::twilio::config::TwilioConfig;
use crate::core::error::{Error, Result};
use crate::core::tenants::{TenantConfig, Tenants};
use crate::delivery::callbacks::CallbacksConfig;
use crate::delivery::config::RoutingConfig;
use crate::delivery::config::{DeliveryConfig, PrivateSideConfig};
use crate::http::config::{AdminConfig, HttpConfig};
use crate::pipeline::privacy::PrivacyConfig;
use crate::store::config::StoreConfig;

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
    /// Status callbacks to API clients: signing secret, giving up.
    pub callbacks: CallbacksConfig,
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
    /// The review queue's operator actions: the undo window of drops, the
    /// hold webhook.
    pub review: crate::store::undo::ReviewConfig,
    /// GSM modems (`[[modems]]`), each its own route named after it.
    pub modems: Vec<ModemConfig>,
    /// Twilio Programmable Messaging; absent means no Twilio route or webhook.
    pub twilio: Option<TwilioConfig>,
    /// Telnyx Messaging; absent means no Telnyx route or webhook.
    pub telnyx: Option<TelnyxConfig>,
    /// Android phones running SMS Gateway for Android, one route each.
    pub android: Vec<AndroidRelayConfig>,
    /// Google RCS Business Messaging; absent means no RCS.
    pub rbm: Option<RbmConfig>,
    /// SMPP: client binds to SMSCs (`[[smpp.client]]`) and the SMPP server
    /// for SMS applications (`[smpp.server]`).
    pub smpp: SmppConfig,
    /// What is kept, and for how long: erase on delivery, no content at
    /// rest for listed regions, pseudonymised numbers.
    pub privacy: PrivacyConfig,
    /// The private-side applications (`[[tenants]]`); empty means one
    /// implicit tenant that owns everything.
    pub tenants: Vec<TenantConfig>,
    /// The admin plane's listener.
    pub admin: AdminConfig,
}

/// Which spam model to load.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// A model file written by `gateway model train`; absent means the model
    /// bundled with the binary.
    pub path: Option<PathBuf>,
}

/// Where `gateway model promote` puts the model a deployment runs, inside
/// its data directory.
pub const PROMOTED_MODEL: &str = "model/active.json";

impl ModelConfig {
    /// Loads the model in force: the configured file, else the one
    /// `gateway model promote` installed in the data directory, else the
    /// bundled one.
    pub fn load(&self, data_dir: &std::path::Path) -> Result<classifier::Model> {
        let promoted = data_dir.join(PROMOTED_MODEL);
        let path = match &self.path {
            Some(p) => Some(p.clone()),
            None => promoted.exists().then_some(promoted),
        };
        match path {
            Some(p) => classifier::Model::load(&p)
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
            callbacks: CallbacksConfig::default(),
            generic: None,
            private_side: PrivateSideConfig::default(),
            routing: RoutingConfig::default(),
            sms: adapters::sms::SmsOptions::default(),
            classifier: classifier::Config::default(),
            model: ModelConfig::default(),
            review: crate::store::undo::ReviewConfig::default(),
            modems: Vec::new(),
            twilio: None,
            telnyx: None,
            android: Vec::new(),
            rbm: None,
            smpp: SmppConfig::default(),
            privacy: PrivacyConfig::default(),
            tenants: Vec::new(),
            admin: AdminConfig::default(),
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
        self.http.validate(&mut problems);
        self.store.validate(&mut problems);
        if self.store.backend == crate::store::config::BackendKind::Postgres
            && self.store.lease_secs <= 2 * (self.delivery.request_timeout_secs + 2)
        {
            problems.push(
                "store.lease_secs must be longer than 2 × (delivery.request_timeout_secs + 2): a claimed entry may wait one send for a slot, then take one"
                    .to_string(),
            );
        }
        self.delivery.validate(&mut problems);
        self.callbacks.validate(&mut problems);
        if let Some(g) = &self.generic {
            g.validate(&mut problems);
        }
        self.private_side.validate(&mut problems);
        self.routing.validate(&mut problems);
        ModemConfig::validate_all(&self.modems, &mut problems);
        if let Some(t) = &self.twilio {
            t.validate(&mut problems);
        }
        if let Some(t) = &self.telnyx {
            t.validate(&mut problems);
        }
        AndroidRelayConfig::validate_all(&self.android, &mut problems);
        if let Some(r) = &self.rbm {
            r.validate(&self.default_region, &mut problems);
            // A cross-section check: RCS is chosen per recipient, never by rules.
            if self
                .routing
                .rules
                .iter()
                .any(|rule| rule.route == RBM_ROUTE)
                || self.routing.default.as_deref() == Some(RBM_ROUTE)
            {
                problems.push(
                    "routing must not name the rbm route: RCS is chosen per recipient by the channel"
                        .into(),
                );
            }
        }
        self.smpp.validate(&mut problems);
        self.privacy.validate(&mut problems);
        self.review.validate(&mut problems);
        crate::pipeline::hold_notify::validate(&self.review, &mut problems);
        self.validate_tenants(&mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Config(problems.join("; ")))
        }
    }
}

impl Config {
    /// The tenants, built (patterns normalised in the default region).
    pub fn tenants(&self) -> Result<Tenants> {
        let mut problems = Vec::new();
        let t = Tenants::build(
            &self.tenants,
            crate::core::address::region(&self.default_region),
            &mut problems,
        );
        if problems.is_empty() {
            Ok(t)
        } else {
            Err(Error::Config(problems.join("; ")))
        }
    }

    fn validate_tenants(&self, problems: &mut Vec<String>) {
        Tenants::build(
            &self.tenants,
            crate::core::address::region(&self.default_region),
            problems,
        );
        for (i, t) in self.tenants.iter().enumerate() {
            if let Some(k) = &t.service_public_key {
                if crate::envelope::keys::parse_public_key(k).is_err() {
                    problems.push(format!(
                        "tenants[{i}].service_public_key is not a base64 X25519 public key"
                    ));
                }
            }
        }
        if self.admin.enabled && self.admin.listen == self.listen && self.listen.port() != 0 {
            problems.push("admin.listen must differ from listen".into());
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
            "default_region = \"XX\"\n[store]\nmax_batch = 0\n[review]\nundo_window_secs = 86401\n[generic]\nurl = \"ftp://x\"",
        )
        .unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("default_region")
                && e.contains("max_batch")
                && e.contains("generic.url")
                && e.contains("undo_window_secs"),
            "{e}"
        );
    }

    #[test]
    fn postgres_checks_across_sections_name_their_fields() {
        let pg = "[store]\nbackend = \"postgres\"\nurl = \"postgres://gw@127.0.0.1:5432/gw\"\n";
        Config::from_toml(pg).unwrap().validate().unwrap();
        let c = Config::from_toml(&format!(
            "{pg}lease_secs = 5\n[smpp.server]\nlisten = \"127.0.0.1:0\"\n"
        ))
        .unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("store.lease_secs"), "{e}");
        // SMPP runs on PostgreSQL (the server on every node, a client
        // bind on the node holding its lease).
        Config::from_toml(&format!(
            "{pg}[smpp.server]\nlisten = \"127.0.0.1:0\"\n[[smpp.client]]\nname = \"a\"\nhost = \"h:1\"\nsystem_id = \"s\"\n"
        ))
        .unwrap()
        .validate()
        .unwrap();
    }
}
