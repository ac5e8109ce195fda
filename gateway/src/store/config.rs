//! `[store]`: durability, group commit and retention.

use serde::Deserialize;

use crate::core::secrets::SecretRef;

/// Default environment variable of the PostgreSQL password.
pub const STORE_SECRET_ENV: &str = "GATEWAY_STORE_SECRET";

/// Which database holds the store.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// One file in the data directory, one node: the embedded default.
    #[default]
    Sqlite,
    /// A PostgreSQL server that several nodes can share (`url`).
    Postgres,
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
    /// `sqlite` (the default) or `postgres`.
    pub backend: BackendKind,
    /// `postgres://user@host:port/db` (postgres only; no password in it:
    /// that comes from `secret_env` / `secret_file`).
    pub url: Option<String>,
    /// The PostgreSQL password (default env `GATEWAY_STORE_SECRET`); none
    /// when the server trusts the user.
    #[serde(flatten)]
    pub password: SecretRef,
    /// Connections in the PostgreSQL pool of one node.
    pub pool_size: usize,
    /// How long a node holds a queue entry it claimed (postgres): past it,
    /// another node takes the entry over with the same attempt id. Longer
    /// than one send (`delivery.request_timeout_secs`).
    pub lease_secs: u64,
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
    /// The database may not grow beyond this many MiB (unset: until the disk
    /// is full). At the cap, as on a full disk, writes are refused with 503
    /// `storage_full` and `/healthz` reports the store not writable, so the
    /// disk keeps room for the WAL, logs and the operating system.
    pub max_database_mb: Option<u64>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            max_batch: 2048,
            read_connections: 4,
            body_retention_secs: 30 * 24 * 3600,
            metadata_retention_secs: 365 * 24 * 3600,
            max_database_mb: None,
            backend: BackendKind::Sqlite,
            url: None,
            password: SecretRef::default(),
            pool_size: 8,
            lease_secs: 60,
        }
    }
}

impl StoreConfig {
    /// Semantic checks, appended to `problems`.
    pub fn validate(&self, problems: &mut Vec<String>) {
        if self.metadata_retention_secs < self.body_retention_secs {
            problems.push(
                "store.metadata_retention_secs must not be shorter than store.body_retention_secs"
                    .to_string(),
            );
        }
        if self.max_database_mb == Some(0) {
            problems.push("store.max_database_mb must be at least 1".to_string());
        }
        if self.max_batch == 0 {
            problems.push("store.max_batch must be at least 1".to_string());
        }
        self.validate_backend(problems);
    }

    /// The checks of `backend`, `url` and what only one backend has.
    fn validate_backend(&self, problems: &mut Vec<String>) {
        match self.backend {
            BackendKind::Sqlite => {
                if self.url.is_some() {
                    problems.push("store.url is only for backend = \"postgres\"".to_string());
                }
            }
            BackendKind::Postgres => {
                match self.url.as_deref() {
                    None => problems.push(
                        "store.url is required with backend = \"postgres\" (postgres://user@host:port/db)"
                            .to_string(),
                    ),
                    Some(url) => check_url(url, problems),
                }
                if self.max_database_mb.is_some() {
                    problems.push(
                        "store.max_database_mb is not available with backend = \"postgres\": PostgreSQL \
                         keeps its files' size after deletes (the space is reused, not returned), so a cap \
                         on the database's size would go on refusing after retention made room; cap the \
                         server's disk instead (a tablespace on a volume of that size): a full disk is \
                         answered 503 storage_full, as on SQLite"
                            .to_string(),
                    );
                }
                if self.pool_size == 0 {
                    problems.push("store.pool_size must be at least 1".to_string());
                }
                if self.lease_secs == 0 {
                    problems.push("store.lease_secs must be at least 1".to_string());
                }
            }
        }
    }
}

/// A PostgreSQL URL: the scheme, and no password in it (a secret is never
/// a literal in the configuration file).
fn check_url(url: &str, problems: &mut Vec<String>) {
    let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    else {
        problems.push("store.url must start with postgres:// or postgresql://".to_string());
        return;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if let Some((user, _)) = authority.rsplit_once('@') {
        if user.contains(':') {
            problems.push(
                "store.url must not hold the password; use store.secret_env or store.secret_file"
                    .to_string(),
            );
        }
    }
    if url.parse::<tokio_postgres::Config>().is_err() {
        problems.push("store.url is not a valid PostgreSQL URL".to_string());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn problems(toml_text: &str) -> Vec<String> {
        let cfg: StoreConfig = toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}"));
        let mut p = Vec::new();
        cfg.validate(&mut p);
        p
    }

    #[test]
    fn backend_checks_name_their_field() {
        assert!(problems("").is_empty());
        assert!(problems("backend = \"postgres\"")[0].starts_with("store.url is required"));
        assert!(problems("url = \"postgres://u@h/db\"")[0].starts_with("store.url is only"));
        let p = problems("backend = \"postgres\"\nurl = \"postgres://u:pw@h:5432/db\"");
        assert!(p[0].contains("must not hold the password"), "{p:?}");
        let p = problems("backend = \"postgres\"\nurl = \"mysql://u@h/db\"");
        assert!(p[0].starts_with("store.url must start"), "{p:?}");
        let p = problems(
            "backend = \"postgres\"\nurl = \"postgres://u@h:5432/db\"\nsecret_env = \"PG\"\nmax_database_mb = 5",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("store.max_database_mb"));
        assert!(problems("backend = \"postgres\"\nurl = \"postgres://u@h:5432/db\"").is_empty());
        assert!(toml::from_str::<StoreConfig>("bogus = 1").is_err());
    }
}
