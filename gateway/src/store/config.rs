//! `[store]`: durability, group commit and retention.

use serde::Deserialize;

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
    }
}
