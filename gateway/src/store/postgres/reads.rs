//! The other operations the service needs to run on PostgreSQL: API keys,
//! identities, opt-outs, what the spam gate reads, and the erasure of
//! acknowledged bodies whose kept time ran out.

use std::collections::HashSet;

use subtle::ConstantTimeEq;

use super::cached::Cached;
use super::notify::{CacheKind, notify};
use super::{PgStore, pg_error};
use crate::core::error::{Error, Result};
use crate::core::tenants::Scopes;
use crate::envelope::keys::{self, PublicKey};
use crate::store::credentials::{ApiKey, NewApiKey, hash_token, new_token};
use crate::store::spam::Decision;

impl PgStore {
    /// The API key whose token hashes to `hash`, when it is valid at `now`
    /// (its current secret, or its previous one within the overlap).
    pub async fn api_key_by_hash(&self, hash: [u8; 32], now: i64) -> Result<Option<ApiKey>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT name, tenant, scopes, hash FROM api_keys \
                 WHERE hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2) \
                 UNION ALL \
                 SELECT name, tenant, scopes, previous_hash FROM api_keys \
                 WHERE previous_hash = $1 AND previous_until > $2 AND revoked_at IS NULL \
                 AND (expires_at IS NULL OR expires_at > $2) LIMIT 1",
                &[&hash.as_slice(), &now],
            )
            .await
            .map_err(pg_error)?;
        let Some(r) = row else {
            return Ok(None);
        };
        let stored: Vec<u8> = r.get(3);
        if !bool::from(stored.as_slice().ct_eq(&hash)) {
            return Ok(None);
        }
        Ok(Some(ApiKey {
            name: r.get(0),
            tenant: r.get(1),
            scopes: Scopes::parse(r.get(2)).unwrap_or_default(),
        }))
    }

    /// Creates an API key and returns its token (shown once, stored hashed).
    pub async fn create_api_key(&self, key: &NewApiKey<'_>, now: i64) -> Result<String> {
        if key.name.is_empty() || key.name.len() > 64 {
            return Err(Error::invalid("name", "must be 1 to 64 characters"));
        }
        if key.scopes.is_empty() {
            return Err(Error::invalid("scope", "a key needs at least one scope"));
        }
        let token = new_token();
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        tx.execute(
            "INSERT INTO api_keys (name, hash, created_at, tenant, scopes, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &key.name,
                &hash_token(&token).as_slice(),
                &now,
                &key.tenant,
                &key.scopes.to_string(),
                &key.expires_at,
            ],
        )
        .await
        .map_err(|e| match e.code() {
            Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                Error::invalid("name", "an API key with this name exists")
            }
            _ => pg_error(e),
        })?;
        notify(&tx, CacheKind::ApiKeys).await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(token)
    }

    /// Registers (or replaces) the public key of an internal address.
    pub async fn put_identity(&self, address: String, pk: PublicKey) -> Result<String> {
        use hpke::Serializable;
        let kid = keys::kid_of(&pk);
        let now = crate::core::clock::now_ms();
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        tx.execute(
            "INSERT INTO identities (address, public_key, kid, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (address) DO UPDATE SET public_key = EXCLUDED.public_key, kid = EXCLUDED.kid, \
             updated_at = EXCLUDED.updated_at",
            &[&address, &pk.to_bytes().as_slice(), &kid, &now],
        )
        .await
        .map_err(pg_error)?;
        notify(&tx, CacheKind::Identities).await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(kid)
    }

    /// The registered key of `address`.
    pub async fn identity(&self, address: String) -> Result<Option<PublicKey>> {
        use hpke::Deserializable;
        let raw: Option<Vec<u8>> = self
            .client()
            .await?
            .query_opt(
                "SELECT public_key FROM identities WHERE address = $1",
                &[&address],
            )
            .await
            .map_err(pg_error)?
            .map(|r| r.get(0));
        raw.map(|b| {
            PublicKey::from_bytes(&b)
                .map_err(|_| Error::Keys(format!("stored key of {address} is corrupt")))
        })
        .transpose()
    }

    /// Every `(local, remote)` opt-out pair, hashed with `hash`.
    pub async fn opt_out_pairs(&self, hash: fn(&str, &str) -> u64) -> Result<HashSet<u64>> {
        Ok(self
            .client()
            .await?
            .query("SELECT local_address, remote_address FROM opt_outs", &[])
            .await
            .map_err(pg_error)?
            .iter()
            .map(|r| hash(r.get(0), r.get(1)))
            .collect())
    }

    /// The keyword with which `remote` opted out of messages from `local`.
    pub async fn opted_out(&self, local: String, remote: String) -> Result<Option<String>> {
        Ok(self
            .client()
            .await?
            .row_opt(
                "SELECT keyword FROM opt_outs WHERE local_address = $1 AND remote_address = $2",
                &[&local, &remote],
            )
            .await?
            .map(|r| r.get(0)))
    }

    /// Messages the classifier has scored (shadow mode's clock).
    pub async fn scored_messages(&self) -> Result<u64> {
        let n: i64 = self
            .client()
            .await?
            .query_one(
                "SELECT COUNT(*) FROM messages WHERE verdict IS NOT NULL",
                &[],
            )
            .await
            .map_err(pg_error)?
            .get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// `mark spam|ham` decisions (and undone `mark spam`s) recorded after
    /// audit row `after`, oldest first.
    pub async fn decisions_after(&self, after: i64) -> Result<Vec<Decision>> {
        Ok(self
            .client()
            .await?
            .query(
                "SELECT id, action, model_score FROM audit_log \
                 WHERE id > $1 AND action IN ('mark_spam', 'mark_ham', 'undo_mark_spam') ORDER BY id LIMIT 1000",
                &[&after],
            )
            .await
            .map_err(pg_error)?
            .iter()
            .map(|r| Decision::of(r.get(0), &r.get::<_, String>(1), r.get(2)))
            .collect())
    }

    /// The newest audit row id.
    pub async fn last_audit_id(&self) -> Result<i64> {
        Ok(self
            .client()
            .await?
            .query_one("SELECT COALESCE(MAX(id), 0)::BIGINT FROM audit_log", &[])
            .await
            .map_err(pg_error)?
            .get(0))
    }

    /// Senders waiting for a decision, and their held messages.
    pub async fn review_depth(&self) -> Result<(i64, i64)> {
        let r = self
            .client()
            .await?
            .query_one(
                "SELECT (SELECT COUNT(*) FROM flagged_senders WHERE decided IS NULL), \
                 (SELECT COUNT(*) FROM flagged_senders s JOIN messages m \
                  ON m.sender = s.sender AND m.status IN ('held', 'blocked') WHERE s.decided IS NULL)",
                &[],
            )
            .await
            .map_err(pg_error)?;
        Ok((r.get(0), r.get(1)))
    }

    /// Allow and block patterns in force at `now`.
    pub async fn active_lists(&self, now: i64) -> Result<(Vec<String>, Vec<String>)> {
        let mut allow = Vec::new();
        let mut block = Vec::new();
        for r in self
            .client()
            .await?
            .query(
                "SELECT kind, pattern FROM lists WHERE expires_at IS NULL OR expires_at > $1",
                &[&now],
            )
            .await
            .map_err(pg_error)?
        {
            let kind: String = r.get(0);
            if kind == "allow" {
                allow.push(r.get(1));
            } else {
                block.push(r.get(1));
            }
        }
        Ok((allow, block))
    }

    /// Erases the bodies whose kept time after acknowledgement ran out.
    pub async fn erase_acknowledged(&self, now: i64) -> Result<usize> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE messages SET sealed = NULL, erase_at = NULL \
                 WHERE erase_at IS NOT NULL AND erase_at <= $1 AND sealed IS NOT NULL",
                &[&now],
            )
            .await
            .map_err(pg_error)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}

impl PgStore {
    /// Revokes the live key `name`; false when there is none.
    pub async fn revoke_api_key(&self, name: &str, now: i64) -> Result<bool> {
        self.update_live_key(
            "UPDATE api_keys SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL",
            &[&name, &now],
        )
        .await
    }
}

impl PgStore {
    /// Every API key, oldest first.
    pub async fn api_keys(&self) -> Result<Vec<crate::store::ApiKeyInfo>> {
        Ok(self
            .client()
            .await?
            .query(
                "SELECT name, tenant, scopes, created_at, revoked_at, expires_at, previous_until \
                 FROM api_keys ORDER BY id",
                &[],
            )
            .await
            .map_err(pg_error)?
            .iter()
            .map(|r| crate::store::ApiKeyInfo {
                name: r.get(0),
                tenant: r.get(1),
                scopes: r.get(2),
                created_at: r.get(3),
                revoked_at: r.get(4),
                expires_at: r.get(5),
                previous_until: r.get(6),
            })
            .collect())
    }
}
