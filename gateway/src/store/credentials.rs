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
use crate::core::tenants::Scopes;
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
    /// The tenant it belongs to; `None`: the implicit tenant or an operator.
    pub tenant: Option<String>,
    /// Its scopes (`send,read,identities,admin`).
    pub scopes: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms, if revoked.
    pub revoked_at: Option<i64>,
    /// Unix ms after which it stops working, if set.
    pub expires_at: Option<i64>,
    /// Unix ms until which the secret before the last rotation still works.
    pub previous_until: Option<i64>,
}

/// What a valid token is: the key's name, tenant and scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Name given at creation.
    pub name: String,
    /// Its tenant (`None`: the implicit tenant or an operator).
    pub tenant: Option<String>,
    /// What it may do.
    pub scopes: Scopes,
}

/// A key to create.
#[derive(Debug, Clone)]
pub struct NewApiKey<'a> {
    /// Its name (1-64 characters, unique).
    pub name: &'a str,
    /// Its tenant, if any.
    pub tenant: Option<&'a str>,
    /// Its scopes.
    pub scopes: Scopes,
    /// Unix ms after which it stops working.
    pub expires_at: Option<i64>,
}

fn unique_name(e: rusqlite::Error) -> Error {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Error::invalid("name", "an API key with this name exists")
        }
        other => Error::from(other),
    }
}

/// Creates a key and returns its token.
fn create_api_key(conn: &Connection, key: &NewApiKey<'_>, now: i64) -> Result<String> {
    if key.name.is_empty() || key.name.len() > 64 {
        return Err(Error::invalid("name", "must be 1 to 64 characters"));
    }
    if key.scopes.is_empty() {
        return Err(Error::invalid("scope", "a key needs at least one scope"));
    }
    let token = new_token();
    conn.execute(
        "INSERT INTO api_keys (name, hash, created_at, tenant, scopes, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            key.name,
            hash_token(&token).as_slice(),
            now,
            key.tenant,
            key.scopes.to_string(),
            key.expires_at
        ],
    )
    .map_err(unique_name)?;
    Ok(token)
}

/// Gives the live key `name` a new secret; the old one keeps working until
/// `previous_until` (an overlap window to roll the new one out). `None`
/// when there is no live key of that name.
fn rotate_api_key(
    conn: &Connection,
    name: &str,
    previous_until: i64,
    now: i64,
) -> Result<Option<String>> {
    let token = new_token();
    let n = conn.execute(
        "UPDATE api_keys SET previous_hash = hash, previous_until = ?3, hash = ?2 \
         WHERE name = ?1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?4)",
        params![name, hash_token(&token).as_slice(), previous_until, now],
    )?;
    Ok((n > 0).then_some(token))
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
    let mut stmt = conn.prepare(
        "SELECT name, tenant, scopes, created_at, revoked_at, expires_at, previous_until \
         FROM api_keys ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(ApiKeyInfo {
            name: r.get(0)?,
            tenant: r.get(1)?,
            scopes: r.get(2)?,
            created_at: r.get(3)?,
            revoked_at: r.get(4)?,
            expires_at: r.get(5)?,
            previous_until: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The live key whose token hashes to `hash`: its current secret, or the
/// one before its last rotation while the overlap lasts.
fn api_key_by_hash(conn: &Connection, hash: &[u8; 32], now: i64) -> Result<Option<ApiKey>> {
    let row: Option<(String, Option<String>, String, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT name, tenant, scopes, hash FROM api_keys \
             WHERE hash = ?1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?2) \
             UNION ALL \
             SELECT name, tenant, scopes, previous_hash FROM api_keys \
             WHERE previous_hash = ?1 AND previous_until > ?2 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > ?2) LIMIT 1",
        )?
        .query_row(params![hash.as_slice(), now], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let Some((name, tenant, scopes, stored)) = row else {
        return Ok(None);
    };
    if !bool::from(stored.as_slice().ct_eq(hash)) {
        return Ok(None);
    }
    // A scope this binary does not know (a newer one wrote it) grants nothing.
    let scopes = Scopes::parse(&scopes).unwrap_or_default();
    Ok(Some(ApiKey {
        name,
        tenant,
        scopes,
    }))
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
    /// Looks up an API token; `Some(key)` when it is valid now.
    pub async fn check_token(&self, token: String) -> Result<Option<ApiKey>> {
        if let Some(pg) = self.pg() {
            return pg
                .api_key_by_hash(hash_token(&token), crate::core::clock::now_ms())
                .await;
        }
        let hash = hash_token(&token);
        let now = crate::core::clock::now_ms();
        self.read(move |c| api_key_by_hash(c, &hash, now)).await
    }

    /// Looks up an API key by its token's hash (the console's sessions keep
    /// the hash, never the token); `Some(key)` when it is valid now.
    pub async fn check_token_hash(&self, hash: [u8; 32]) -> Result<Option<ApiKey>> {
        if let Some(pg) = self.pg() {
            return pg.api_key_by_hash(hash, crate::core::clock::now_ms()).await;
        }
        let now = crate::core::clock::now_ms();
        self.read(move |c| api_key_by_hash(c, &hash, now)).await
    }

    /// Registers an identity in the next group commit.
    pub async fn put_identity(&self, address: String, pk: PublicKey) -> Result<String> {
        if let Some(pg) = self.pg() {
            return pg.put_identity(address, pk).await;
        }
        let now = crate::core::clock::now_ms();
        self.write(move |tx| put_identity(tx, &address, &pk, now))
            .await
    }

    /// The registered key of `address`.
    pub async fn identity(&self, address: String) -> Result<Option<PublicKey>> {
        if let Some(pg) = self.pg() {
            return pg.identity(address).await;
        }
        self.read(move |c| identity(c, &address)).await
    }
}

impl Db {
    /// Creates an API key and returns its token (shown once, stored hashed).
    pub fn create_api_key(&self, key: &NewApiKey<'_>, now: i64) -> Result<String> {
        create_api_key(self.conn(), key, now)
    }

    /// Gives the live key `name` a new token; the old one works until
    /// `previous_until`. `None` when there is no live key of that name.
    pub fn rotate_api_key(
        &self,
        name: &str,
        previous_until: i64,
        now: i64,
    ) -> Result<Option<String>> {
        rotate_api_key(self.conn(), name, previous_until, now)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut c).unwrap();
        c
    }

    fn key<'a>(name: &'a str, tenant: Option<&'a str>, expires_at: Option<i64>) -> NewApiKey<'a> {
        NewApiKey {
            name,
            tenant,
            scopes: Scopes::APPLICATION,
            expires_at,
        }
    }

    #[test]
    fn tenant_scopes_rotation_expiry_and_revocation() {
        let c = db();
        let t = create_api_key(&c, &key("a", Some("acme"), None), 0).unwrap();
        let found = api_key_by_hash(&c, &hash_token(&t), 1).unwrap().unwrap();
        assert_eq!(found.tenant.as_deref(), Some("acme"));
        assert_eq!(found.scopes, Scopes::APPLICATION);

        // Rotation: both work until the overlap ends, then only the new one.
        let t2 = rotate_api_key(&c, "a", 100, 1).unwrap().unwrap();
        assert!(api_key_by_hash(&c, &hash_token(&t), 99).unwrap().is_some());
        assert!(api_key_by_hash(&c, &hash_token(&t2), 99).unwrap().is_some());
        assert!(api_key_by_hash(&c, &hash_token(&t), 100).unwrap().is_none());
        assert!(
            api_key_by_hash(&c, &hash_token(&t2), 100)
                .unwrap()
                .is_some()
        );

        // Expiry.
        let e = create_api_key(&c, &key("e", None, Some(50)), 0).unwrap();
        assert!(api_key_by_hash(&c, &hash_token(&e), 49).unwrap().is_some());
        assert!(api_key_by_hash(&c, &hash_token(&e), 50).unwrap().is_none());
        assert!(rotate_api_key(&c, "e", 100, 60).unwrap().is_none());

        // Revocation ends both secrets at once.
        let t3 = rotate_api_key(&c, "a", 1_000, 2).unwrap().unwrap();
        assert!(revoke_api_key(&c, "a", 3).unwrap());
        for tok in [&t2, &t3] {
            assert!(api_key_by_hash(&c, &hash_token(tok), 4).unwrap().is_none());
        }
        let empty = NewApiKey {
            scopes: Scopes::default(),
            ..key("x", None, None)
        };
        assert!(create_api_key(&c, &empty, 0).is_err());
    }

    #[test]
    fn keys_from_before_tenants_keep_every_scope() {
        let mut c = Connection::open_in_memory().unwrap();
        // A version-9 database with one key, as a deployment before tenants had.
        super::super::schema::migrate_to(&mut c, 9).unwrap();
        c.execute(
            "INSERT INTO api_keys (name, hash, created_at) VALUES ('old', ?1, 0)",
            params![hash_token("gw_old").as_slice()],
        )
        .unwrap();
        super::super::schema::migrate(&mut c).unwrap();
        let k = api_key_by_hash(&c, &hash_token("gw_old"), 1)
            .unwrap()
            .unwrap();
        assert_eq!(
            (k.tenant, k.scopes.to_string()),
            (None, "send,read,identities,admin".into())
        );
    }
}
