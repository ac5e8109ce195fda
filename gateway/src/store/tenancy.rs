//! What tenants need of the store beyond the message rows' `tenant`
//! column: how many messages a tenant had accepted since a time (its
//! quota survives a restart).

use rusqlite::params;

use super::Store;
use crate::core::error::Result;

impl Store {
    /// Outbound messages of `tenant` stored since `since` (Unix ms): every
    /// one was answered 202 (refusals store nothing).
    pub async fn accepted_since(&self, tenant: String, since: i64) -> Result<u64> {
        if let Some(pg) = self.pg() {
            return pg.accepted_since(tenant, since).await;
        }
        self.read(move |c| {
            let n: i64 = c
                .prepare_cached(
                    "SELECT COUNT(*) FROM messages WHERE tenant = ?1 AND created_at >= ?2 \
                     AND direction = 'outbound'",
                )?
                .query_row(params![tenant, since], |r| r.get(0))?;
            Ok(n.max(0) as u64)
        })
        .await
    }
}
