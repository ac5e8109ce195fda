//! Key files: the gateway's edge key pairs (with rotation) and parsing of
//! recipients' public keys.
//!
//! Layout under `<data_dir>/keys/` (directory 0700, files 0600):
//! `edge-<kid>.key` holds one X25519 private key as 64 hex digits;
//! `current` holds the kid used to seal new outbound envelopes. Rotation
//! writes a new key and moves `current`; old keys stay so envelopes sealed to
//! them still open. A kid is the first 8 bytes of SHA-256 over the raw public
//! key, in hex, so anyone holding the public key can compute it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use hpke::{Deserializable, Kem as _, Serializable};
use rand_core::RngCore;
use sha2::{Digest, Sha256};

use crate::core::error::{Error, Result};

/// The KEM of every envelope (RFC 9180 DHKEM(X25519, HKDF-SHA256)).
pub type Kem = hpke::kem::X25519HkdfSha256;
/// A recipient's public key.
pub type PublicKey = <Kem as hpke::Kem>::PublicKey;
/// A private key.
pub type PrivateKey = <Kem as hpke::Kem>::PrivateKey;

/// Key id of a public key: hex of the first 8 bytes of SHA-256(raw key).
pub fn kid_of(pk: &PublicKey) -> String {
    let digest = Sha256::digest(pk.to_bytes());
    hex::encode(&digest[..8])
}

/// Parses a base64 (standard or URL-safe, padded or not) raw X25519 public key.
pub fn parse_public_key(b64: &str) -> Result<PublicKey> {
    let raw =
        decode_b64(b64.trim()).ok_or_else(|| Error::Keys("public key is not base64".into()))?;
    PublicKey::from_bytes(&raw)
        .map_err(|_| Error::Keys("public key is not 32 bytes of X25519".into()))
}

/// Parses a private key written as 64 hex digits or base64.
pub fn parse_private_key(text: &str) -> Result<PrivateKey> {
    let t = text.trim();
    let raw = hex::decode(t)
        .ok()
        .or_else(|| decode_b64(t))
        .ok_or_else(|| Error::Keys("private key is neither hex nor base64".into()))?;
    PrivateKey::from_bytes(&raw).map_err(|_| Error::Keys("private key is not 32 bytes".into()))
}

/// Base64 of a public key, the form printed by `gateway keys public` and
/// accepted by `PUT /v1/identities/{address}`.
pub fn public_key_b64(pk: &PublicKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(pk.to_bytes())
}

fn decode_b64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())
}

/// Generates a fresh key pair from the OS RNG.
pub fn generate() -> (PrivateKey, PublicKey) {
    let mut ikm = [0u8; 32];
    rand::rng().fill_bytes(&mut ikm);
    Kem::derive_keypair(&ikm)
}

/// One edge key pair.
#[derive(Clone)]
pub struct EdgeKey {
    /// Key id.
    pub kid: String,
    /// Private half.
    pub private: PrivateKey,
    /// Public half.
    pub public: PublicKey,
    /// When the key file was written (RFC 3339), for `keys list`.
    pub created_at: String,
}

impl std::fmt::Debug for EdgeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private half.
        f.debug_struct("EdgeKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// All edge keys, the current one first in importance.
#[derive(Debug, Clone)]
pub struct Keyring {
    dir: PathBuf,
    keys: BTreeMap<String, EdgeKey>,
    current: String,
}

impl Keyring {
    /// Opens the keyring under `data_dir/keys`, creating a first key when there
    /// is none (first run).
    pub fn open_or_create(data_dir: &Path) -> Result<Self> {
        let dir = data_dir.join("keys");
        crate::core::fs::create_private_dir(&dir)?;
        match Self::load(&dir)? {
            Some(k) => Ok(k),
            None => {
                Self::write_new_key(&dir)?;
                Self::load(&dir)?.ok_or_else(|| Error::Keys("no key after creating one".into()))
            }
        }
    }

    /// Opens an existing keyring; errors when there is none.
    pub fn open(data_dir: &Path) -> Result<Self> {
        let dir = data_dir.join("keys");
        Self::load(&dir)?.ok_or_else(|| {
            Error::Keys(format!(
                "no edge keys in {} (run `gateway keys create`)",
                dir.display()
            ))
        })
    }

    fn load(dir: &Path) -> Result<Option<Self>> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", dir, e)),
        };
        let mut keys = BTreeMap::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("read", dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(kid) = name
                .strip_prefix("edge-")
                .and_then(|n| n.strip_suffix(".key"))
            else {
                continue;
            };
            let path = entry.path();
            let text = fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
            let private = parse_private_key(&text)
                .map_err(|e| Error::Keys(format!("{}: {e}", path.display())))?;
            let public = Kem::sk_to_pk(&private);
            if kid_of(&public) != kid {
                return Err(Error::Keys(format!(
                    "{}: file name does not match its key",
                    path.display()
                )));
            }
            let created_at = entry
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .map(crate::core::clock::rfc3339_from_system)
                .unwrap_or_default();
            keys.insert(
                kid.to_string(),
                EdgeKey {
                    kid: kid.to_string(),
                    private,
                    public,
                    created_at,
                },
            );
        }
        if keys.is_empty() {
            return Ok(None);
        }
        let current_path = dir.join("current");
        let current = match fs::read_to_string(&current_path) {
            Ok(s) => s.trim().to_string(),
            // No pointer (older layout or manual copy): pick the newest key.
            Err(_) => keys
                .values()
                .max_by(|a, b| a.created_at.cmp(&b.created_at))
                .map(|k| k.kid.clone())
                .unwrap_or_default(),
        };
        if !keys.contains_key(&current) {
            return Err(Error::Keys(format!(
                "current key {current} has no key file"
            )));
        }
        Ok(Some(Self {
            dir: dir.to_path_buf(),
            keys,
            current,
        }))
    }

    fn write_new_key(dir: &Path) -> Result<String> {
        let (sk, _) = generate();
        let kid = Self::write_key(dir, &sk)?;
        Self::set_current(dir, &kid)?;
        Ok(kid)
    }

    /// Writes private key `sk` as `edge-<kid>.key` in keyring directory
    /// `dir` (0600); returns its kid.
    pub(super) fn write_key(dir: &Path, sk: &PrivateKey) -> Result<String> {
        let kid = kid_of(&Kem::sk_to_pk(sk));
        let path = dir.join(format!("edge-{kid}.key"));
        crate::core::fs::write_private_file(
            &path,
            format!("{}\n", hex::encode(sk.to_bytes())).as_bytes(),
        )?;
        Ok(kid)
    }

    /// Points `current` at `kid` (atomically: a reader never sees half).
    pub(super) fn set_current(dir: &Path, kid: &str) -> Result<()> {
        crate::core::fs::write_private_file(&dir.join("current"), format!("{kid}\n").as_bytes())
    }

    /// Creates a new key and makes it current; old keys are kept.
    pub fn rotate(&mut self) -> Result<String> {
        Self::write_new_key(&self.dir)?;
        *self = Self::load(&self.dir)?.ok_or_else(|| Error::Keys("keyring vanished".into()))?;
        Ok(self.current.clone())
    }

    /// The key new envelopes are sealed to.
    pub fn current(&self) -> &EdgeKey {
        // Invariant: `load` only builds a Keyring whose `current` is a key of `keys`.
        match self.keys.get(&self.current) {
            Some(k) => k,
            None => unreachable!("keyring current kid always names a loaded key"),
        }
    }

    /// The key with id `kid`, to open an envelope sealed to it.
    pub fn get(&self, kid: &str) -> Option<&EdgeKey> {
        self.keys.get(kid)
    }

    /// Every key, ordered by kid.
    pub fn all(&self) -> impl Iterator<Item = &EdgeKey> {
        self.keys.values()
    }
}

/// The edge keys of the running service: the keyring, read again from its
/// directory when an unknown key id shows up (the CLI may have rotated keys
/// while the service runs).
pub struct KeyStore {
    dir: std::path::PathBuf,
    ring: std::sync::RwLock<Keyring>,
}

impl KeyStore {
    /// The keys of `ring`, kept in `dir`.
    pub fn new(dir: &Path, ring: Keyring) -> Self {
        Self {
            dir: dir.to_path_buf(),
            ring: std::sync::RwLock::new(ring),
        }
    }

    /// The edge key new envelopes are sealed to.
    pub fn current(&self) -> Result<EdgeKey> {
        let k = self
            .ring
            .read()
            .map_err(|_| Error::Keys("keyring lock poisoned".into()))?;
        Ok(k.current().clone())
    }

    /// The edge key with id `kid`, reloading the keyring from disk once if
    /// it is unknown.
    pub fn get(&self, kid: &str) -> Result<EdgeKey> {
        if let Some(k) = self.ring.read().ok().and_then(|k| k.get(kid).cloned()) {
            return Ok(k);
        }
        let fresh = Keyring::open(&self.dir)?;
        let found = fresh.get(kid).cloned();
        if let Ok(mut guard) = self.ring.write() {
            *guard = fresh;
        }
        found.ok_or_else(|| Error::Keys(format!("no edge key with id {kid}")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn create_rotate_and_reload() {
        let dir = crate::core::fs::test_dir("keyring");
        let mut k = Keyring::open_or_create(&dir).unwrap();
        let first = k.current().kid.clone();
        let second = k.rotate().unwrap();
        assert_ne!(first, second);
        let again = Keyring::open(&dir).unwrap();
        assert_eq!(again.current().kid, second);
        assert!(
            again.get(&first).is_some(),
            "old key kept for old envelopes"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join("keys").join(format!("edge-{first}.key")))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "key file must be owner-only");
            let dmode = fs::metadata(dir.join("keys")).unwrap().permissions().mode();
            assert_eq!(dmode & 0o077, 0, "key dir must be owner-only");
        }
    }

    #[test]
    fn public_key_parsing() {
        let (_, pk) = generate();
        let b = public_key_b64(&pk);
        assert_eq!(kid_of(&parse_public_key(&b).unwrap()), kid_of(&pk));
        assert!(parse_public_key("not base64!").is_err());
        assert!(parse_public_key("AAAA").is_err());
    }
}
