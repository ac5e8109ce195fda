//! Key sharing for several nodes on one database: `gateway keys export` /
//! `gateway keys import`.
//!
//! Every node must open what any node sealed, and pseudonymise a number
//! the same way, so every node holds the same edge keys (with their
//! rotation history) and the same `pseudonym.key`. They travel in one
//! owner-only file an operator copies to each node; they never enter the
//! shared database, where anyone who can read it (a replica, a backup, a
//! DBA) could open every sealed body. The file is as secret as the keys:
//! delete it once every node has imported it.

use std::io::Write;
use std::path::Path;

use hpke::Kem as _;
use serde::{Deserialize, Serialize};

use super::keys::{Kem, Keyring, kid_of, parse_private_key};
use crate::core::error::{Error, Result};
use crate::core::pseudonym::{KEY_FILE, Pseudonyms};

/// The file's format tag; an import refuses any other.
const FORMAT: &str = "gateway-keys/1";

/// What an export file holds.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Bundle {
    format: String,
    /// The kid new envelopes are sealed to.
    current: String,
    /// Every edge private key (64 hex digits), oldest rotation included.
    edge: Vec<String>,
    /// The pseudonym key (64 hex digits).
    pseudonym: String,
}

/// What was exported or imported (kids only; never a key).
#[derive(Debug, Serialize)]
pub struct Shared {
    /// The current kid.
    pub current: String,
    /// Every kid in the file.
    pub kids: Vec<String>,
    /// Kids written by an import (the others were there already).
    pub added: Vec<String>,
}

/// Writes the edge keys and the pseudonym key of `data_dir` to a new
/// owner-only file `out` (never over an existing file).
pub fn export(data_dir: &Path, out: &Path) -> Result<Shared> {
    use hpke::Serializable;
    let ring = Keyring::open(data_dir)?;
    // A node that never ran has no pseudonym key yet: make the one every
    // node will share.
    Pseudonyms::open_or_create(data_dir)?;
    let pseudonym = std::fs::read(data_dir.join(KEY_FILE))
        .map_err(|e| Error::io("read", data_dir.join(KEY_FILE), e))?;
    let bundle = Bundle {
        format: FORMAT.into(),
        current: ring.current().kid.clone(),
        edge: ring
            .all()
            .map(|k| hex::encode(k.private.to_bytes()))
            .collect(),
        pseudonym: hex::encode(pseudonym),
    };
    let text = serde_json::to_vec_pretty(&bundle)
        .map_err(|e| Error::Keys(format!("cannot encode the key file: {e}")))?;
    let mut opts = crate::core::fs::private_file_options();
    opts.truncate(false).create(false).create_new(true);
    let mut f = opts.open(out).map_err(|e| Error::io("create", out, e))?;
    f.write_all(&text)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io("write", out, e))?;
    Ok(Shared {
        current: bundle.current,
        kids: ring.all().map(|k| k.kid.clone()).collect(),
        added: Vec::new(),
    })
}

/// Installs the keys of export file `file` into `data_dir`: edge keys it
/// lacks are added (its own are kept, so nothing it sealed becomes
/// unreadable), the file's current key becomes current, and the pseudonym
/// key is written, refusing to replace a different one (numbers already
/// pseudonymised with it would stop matching).
pub fn import(data_dir: &Path, file: &Path) -> Result<Shared> {
    let text = std::fs::read(file).map_err(|e| Error::io("read", file, e))?;
    // The error never quotes the file: it holds keys.
    let bundle: Bundle = serde_json::from_slice(&text)
        .map_err(|_| Error::Keys(format!("{} is not a gateway key export", file.display())))?;
    if bundle.format != FORMAT {
        return Err(Error::Keys(format!(
            "{}: unknown key export format (want {FORMAT})",
            file.display()
        )));
    }
    let mut keys = Vec::new();
    for text in &bundle.edge {
        let sk = parse_private_key(text)
            .map_err(|_| Error::Keys(format!("{}: an edge key is malformed", file.display())))?;
        keys.push((kid_of(&Kem::sk_to_pk(&sk)), sk));
    }
    if !keys.iter().any(|(kid, _)| *kid == bundle.current) {
        return Err(Error::Keys(format!(
            "{}: the current key {} is not in the file",
            file.display(),
            bundle.current
        )));
    }
    let pseudonym = hex::decode(bundle.pseudonym.trim())
        .ok()
        .filter(|k| k.len() == 32)
        .ok_or_else(|| {
            Error::Keys(format!(
                "{}: the pseudonym key is malformed",
                file.display()
            ))
        })?;
    let pseudonym_path = data_dir.join(KEY_FILE);
    match std::fs::read(&pseudonym_path) {
        Ok(have) if have != pseudonym => {
            return Err(Error::Keys(format!(
                "{} holds a different pseudonym key; a node joining a cluster must start from the cluster's (move it away first)",
                pseudonym_path.display()
            )));
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("read", &pseudonym_path, e)),
    }
    let dir = data_dir.join("keys");
    crate::core::fs::create_private_dir(&dir)?;
    let have: Vec<String> = Keyring::open(data_dir)
        .map(|r| r.all().map(|k| k.kid.clone()).collect())
        .unwrap_or_default();
    let mut added = Vec::new();
    for (kid, sk) in &keys {
        if !have.contains(kid) {
            Keyring::write_key(&dir, sk)?;
            added.push(kid.clone());
        }
    }
    Keyring::set_current(&dir, &bundle.current)?;
    crate::core::fs::write_private_file(&pseudonym_path, &pseudonym)?;
    // What was written must load as a keyring, with the file's current key.
    let ring = Keyring::open(data_dir)?;
    if ring.current().kid != bundle.current {
        return Err(Error::Keys("the imported current key did not load".into()));
    }
    Ok(Shared {
        current: bundle.current,
        kids: keys.into_iter().map(|(kid, _)| kid).collect(),
        added,
    })
}

/// The fingerprint a cluster records of its edge key: SHA-256 of the raw
/// public key, in hex (the kid is its first 8 bytes).
pub fn fingerprint(pk: &super::keys::PublicKey) -> String {
    use hpke::Serializable;
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(pk.to_bytes()))
}

/// The fingerprints of every edge key of `ring` (current first).
pub fn fingerprints(ring: &Keyring) -> (String, Vec<String>) {
    (
        fingerprint(&ring.current().public),
        ring.all().map(|k| fingerprint(&k.public)).collect(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("share-{name}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_rotated_keyring_and_pseudonym_key_travel_in_one_private_file() {
        let (a, b) = (tmp("a"), tmp("b"));
        let mut ring = Keyring::open_or_create(&a).unwrap();
        let first = ring.current().kid.clone();
        let second = ring.rotate().unwrap();
        let out = a.join("cluster.keys");
        let shared = export(&a, &out).unwrap();
        assert_eq!(shared.current, second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&out).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "owner only");
        }
        assert!(export(&a, &out).is_err(), "never over an existing file");
        // B has a key of its own: kept, but A's current becomes current.
        let own = Keyring::open_or_create(&b).unwrap().current().kid.clone();
        let got = import(&b, &out).unwrap();
        assert_eq!(got.added.len(), 2);
        let ring_b = Keyring::open(&b).unwrap();
        assert_eq!(ring_b.current().kid, second);
        for kid in [&first, &second, &own] {
            assert!(ring_b.get(kid).is_some(), "{kid}");
        }
        assert_eq!(
            std::fs::read(a.join(KEY_FILE)).unwrap(),
            std::fs::read(b.join(KEY_FILE)).unwrap()
        );
        // Importing again changes nothing.
        assert!(import(&b, &out).unwrap().added.is_empty());
        // A node with another pseudonym key refuses.
        let c = tmp("c");
        std::fs::write(c.join(KEY_FILE), [7u8; 32]).unwrap();
        assert!(import(&c, &out).is_err());
        for d in [a, b, c] {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
