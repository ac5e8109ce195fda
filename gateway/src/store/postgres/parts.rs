//! Parts of multipart SMS waiting for their siblings, and a tenant's
//! accepted count, on PostgreSQL (as `store/parts.rs` and
//! `store/tenancy.rs`).

use super::{PgStore, pg_error};
use crate::core::error::Result;
use crate::store::parts::{NewPart, StoredPart};

impl PgStore {
    /// Keeps a part; returns its row id.
    pub async fn insert_part(&self, part: NewPart) -> Result<i64> {
        Ok(self
            .client()
            .await?
            .query_one(
                "INSERT INTO pending_parts (adapter, sender, arrived_at, kid, header, sealed) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                &[
                    &part.adapter,
                    &part.sender,
                    &part.arrived_at,
                    &part.kid,
                    &part.header,
                    &part.sealed,
                ],
            )
            .await
            .map_err(pg_error)?
            .get(0))
    }

    /// Deletes kept parts (their message was committed or dropped).
    pub async fn delete_parts(&self, ids: Vec<i64>) -> Result<()> {
        self.client()
            .await?
            .execute("DELETE FROM pending_parts WHERE id = ANY($1)", &[&ids])
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    /// Every kept part of `adapter`, oldest first.
    pub async fn parts_of(&self, adapter: String) -> Result<Vec<StoredPart>> {
        Ok(self
            .client()
            .await?
            .query(
                "SELECT id, kid, header, sealed FROM pending_parts WHERE adapter = $1 ORDER BY arrived_at, id",
                &[&adapter],
            )
            .await
            .map_err(pg_error)?
            .iter()
            .map(|r| StoredPart {
                id: r.get(0),
                kid: r.get(1),
                header: r.get(2),
                sealed: r.get(3),
            })
            .collect())
    }

    /// Outbound messages of `tenant` stored since `since` (Unix ms).
    pub async fn accepted_since(&self, tenant: String, since: i64) -> Result<u64> {
        let n: i64 = self
            .client()
            .await?
            .query_one(
                "SELECT COUNT(*) FROM messages WHERE tenant = $1 AND created_at >= $2 AND direction = 'outbound'",
                &[&tenant, &since],
            )
            .await
            .map_err(pg_error)?
            .get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
