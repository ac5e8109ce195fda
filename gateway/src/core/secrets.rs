//! Secrets: never literals in the configuration file. Each comes from an
//! environment variable (every section has a default name) or from a file;
//! the variable wins, so an operator can override a deployed file without
//! editing it. Resolved values are never logged.

use std::path::PathBuf;

use serde::Deserialize;

use crate::core::error::{Error, Result};

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

/// A secret that must be text (an API key, a password), or an error naming
/// `what` (never the value).
pub fn text_secret(bytes: Vec<u8>, what: &str) -> Result<String> {
    String::from_utf8(bytes).map_err(|_| Error::Config(format!("{what} is not UTF-8")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
}
