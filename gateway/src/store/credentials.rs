//! API keys (stored as SHA-256 hashes) and internal recipients' identities.
//!
//! Tokens are 32 random bytes, so a plain SHA-256 is enough: there is nothing
//! to brute-force that a slow password hash would protect. Lookups go by hash
//! and the found hash is compared again in constant time.

use base64::Engine;
use hpke::Serializable;
use rand_core::RngCore;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Db, Store};
use crate::core::error::{Error, Result};
use crate::envelope::keys::{self, PublicKey};

/// Prefix that makes gateway tokens recognisable in secret scanners.
pub const TOKEN_PREFIX: &str = "gw_";

/// A new random API token (shown once, never stored).
pub fn new_token() -> String {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    )
}

/// SHA-256 of a token, the form kept in the database.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A stored API key, without its secret.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApiKeyInfo {
    /// Name given at creation.
    pub name: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms, if revoked.
    pub revoked_at: Option<i64>,
}

/// Creates a key named `name` and returns its token.
fn create_api_key(conn: &Connection, name: &str, now: i64) -> Result<String> {
    if name.is_empty() || name.len() > 64 {
        return Err(Error::invalid("name", "must be 1 to 64 characters"));
    }
    let token = new_token();
    conn.execute(
        "INSERT INTO api_keys (name, hash, created_at) VALUES (?1, ?2, ?3)",
        params![name, hash_token(&token).as_slice(), now],
    )
    .map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Error::invalid("name", "an API key with this name exists")
        }
        other => Error::from(other),
    })?;
    Ok(token)
}

/// Revokes the key named `name`.
fn revoke_api_key(conn: &Connection, name: &str, now: i64) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE api_keys SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
        params![name, now],
    )? > 0)
}

/// Every key, oldest first.
fn list_api_keys(conn: &Connection) -> Result<Vec<ApiKeyInfo>> {
    let mut stmt = conn.prepare("SELECT name, created_at, revoked_at FROM api_keys ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok(ApiKeyInfo {
            name: r.get(0)?,
            created_at: r.get(1)?,
            revoked_at: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The name of the live key whose token hashes to `hash`.
fn api_key_by_hash(conn: &Connection, hash: &[u8; 32]) -> Result<Option<String>> {
    let row: Option<(String, Vec<u8>)> = conn
        .prepare_cached("SELECT name, hash FROM api_keys WHERE hash = ?1 AND revoked_at IS NULL")?
        .query_row(params![hash.as_slice()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(row.and_then(|(name, stored)| bool::from(stored.as_slice().ct_eq(hash)).then_some(name)))
}

/// Registers (or replaces) the public key of an internal address.
fn put_identity(conn: &Connection, address: &str, pk: &PublicKey, now: i64) -> Result<String> {
    let kid = keys::kid_of(pk);
    conn.prepare_cached(
        "INSERT INTO identities (address, public_key, kid, updated_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT(address) DO UPDATE SET public_key = excluded.public_key, kid = excluded.kid, \
         updated_at = excluded.updated_at",
    )?
    .execute(params![address, pk.to_bytes().as_slice(), kid, now])?;
    Ok(kid)
}

/// The registered public key of an internal address.
fn identity(conn: &Connection, address: &str) -> Result<Option<PublicKey>> {
    use hpke::Deserializable;
    let raw: Option<Vec<u8>> = conn
        .prepare_cached("SELECT public_key FROM identities WHERE address = ?1")?
        .query_row(params![address], |r| r.get(0))
        .optional()?;
    raw.map(|b| {
        PublicKey::from_bytes(&b)
            .map_err(|_| Error::Keys(format!("stored key of {address} is corrupt")))
    })
    .transpose()
}

impl Store {
    /// Looks up an API token; `Some(name)` when it is valid.
    pub async fn check_token(&self, token: String) -> Result<Option<String>> {
        let hash = hash_token(&token);
        self.read(move |c| api_key_by_hash(c, &hash)).await
    }

    /// Registers an identity in the next group commit.
    pub async fn put_identity(&self, address: String, pk: PublicKey) -> Result<String> {
        let now = crate::core::clock::now_ms();
        self.write(move |tx| put_identity(tx, &address, &pk, now))
            .await
    }

    /// The registered key of `address`.
    pub async fn identity(&self, address: String) -> Result<Option<PublicKey>> {
        self.read(move |c| identity(c, &address)).await
    }
}

impl Db {
    /// Creates an API key named `name` and returns its token (shown once,
    /// stored hashed).
    pub fn create_api_key(&self, name: &str, now: i64) -> Result<String> {
        create_api_key(self.conn(), name, now)
    }

    /// Revokes the key named `name`; false when there is no live one.
    pub fn revoke_api_key(&self, name: &str, now: i64) -> Result<bool> {
        revoke_api_key(self.conn(), name, now)
    }

    /// Every API key, oldest first.
    pub fn api_keys(&self) -> Result<Vec<ApiKeyInfo>> {
        list_api_keys(self.conn())
    }

    /// Registers (or replaces) the public key of an internal address;
    /// returns its key id.
    pub fn put_identity(&self, address: &str, pk: &PublicKey, now: i64) -> Result<String> {
        put_identity(self.conn(), address, pk, now)
    }

    /// The registered public key of an internal address.
    pub fn identity(&self, address: &str) -> Result<Option<PublicKey>> {
        identity(self.conn(), address)
    }
}
