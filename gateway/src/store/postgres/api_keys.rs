//! API key rotation and default status callbacks on PostgreSQL (creation,
//! revocation and lookups are in `reads.rs`): a rotated key's new secret
//! replaces the old, which keeps working until the overlap ends; every
//! node's token cache hears of a change at once.

use super::notify::{CacheKind, notify};
use super::{PgStore, pg_error};
use crate::core::error::Result;
use crate::store::credentials::{hash_token, new_token};

impl PgStore {
    /// Gives the live key `name` a new token (returned, shown once); the
    /// old one stays valid until `previous_until`. `None` when there is
    /// no live key of that name.
    pub async fn rotate_api_key(
        &self,
        name: &str,
        previous_until: i64,
        now: i64,
    ) -> Result<Option<String>> {
        let token = new_token();
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        let n = tx
            .execute(
                "UPDATE api_keys SET previous_hash = hash, previous_until = $3, hash = $2 \
                 WHERE name = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $4)",
                &[&name, &hash_token(&token).as_slice(), &previous_until, &now],
            )
            .await
            .map_err(pg_error)?;
        if n > 0 {
            notify(&tx, CacheKind::ApiKeys).await?;
        }
        tx.commit().await.map_err(pg_error)?;
        Ok((n > 0).then_some(token))
    }
}

impl PgStore {
    /// Sets (or with `None` clears) the default status callback URL of
    /// the live key `name`; false when there is no such key.
    pub async fn set_key_callback(&self, name: &str, url: Option<&str>) -> Result<bool> {
        self.update_live_key(
            "UPDATE api_keys SET status_callback = $2 WHERE name = $1 AND revoked_at IS NULL",
            &[&name, &url],
        )
        .await
    }

    /// Runs `sql`, an update of a live key, and tells every node when it
    /// changed one; false when none matched.
    pub(super) async fn update_live_key(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        let n = tx.execute(sql, params).await.map_err(pg_error)?;
        if n > 0 {
            notify(&tx, CacheKind::ApiKeys).await?;
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(n > 0)
    }
}
