//! Parts of multipart SMS waiting for their siblings (`pending_parts`),
//! each already sealed to the edge key by the caller: the store keeps the
//! sealed row and the clear columns reloads and retention select on.

use rusqlite::params;

use super::Store;
use crate::core::error::Result;

/// A part to keep, sealed.
#[derive(Debug, Clone)]
pub struct NewPart {
    /// Whose part (`modem:<name>`, `smpp:<route>`, `smpp-server:<id>`): what reloads select on.
    pub adapter: String,
    /// The sender (metadata for retention); may be empty.
    pub sender: String,
    /// Unix ms.
    pub arrived_at: i64,
    /// The edge key id it is sealed to.
    pub kid: String,
    /// Envelope header bytes.
    pub header: Vec<u8>,
    /// Sealed body.
    pub sealed: Vec<u8>,
}

/// A kept part, as read back.
#[derive(Debug, Clone)]
pub struct StoredPart {
    /// Row id (what [`Store::delete_parts`] takes).
    pub id: i64,
    /// The edge key id it is sealed to.
    pub kid: String,
    /// Envelope header bytes.
    pub header: Vec<u8>,
    /// Sealed body.
    pub sealed: Vec<u8>,
}

impl Store {
    /// Keeps a part; returns its row id.
    pub async fn insert_part(&self, part: NewPart) -> Result<i64> {
        if let Some(pg) = self.pg() {
            return pg.insert_part(part).await;
        }
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO pending_parts (adapter, sender, arrived_at, kid, header, sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                part.adapter,
                part.sender,
                part.arrived_at,
                part.kid,
                part.header,
                part.sealed
            ])?;
            Ok(tx.last_insert_rowid())
        })
        .await
    }

    /// Deletes kept parts (their message was committed or dropped).
    pub async fn delete_parts(&self, ids: Vec<i64>) -> Result<()> {
        if let Some(pg) = self.pg() {
            return pg.delete_parts(ids).await;
        }
        self.write(move |tx| {
            let mut st = tx.prepare_cached("DELETE FROM pending_parts WHERE id = ?1")?;
            for id in &ids {
                st.execute(params![id])?;
            }
            Ok(())
        })
        .await
    }

    /// Every kept part of `adapter`, oldest first.
    pub async fn parts_of(&self, adapter: String) -> Result<Vec<StoredPart>> {
        if let Some(pg) = self.pg() {
            return pg.parts_of(adapter).await;
        }
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT id, kid, header, sealed FROM pending_parts WHERE adapter = ?1 ORDER BY arrived_at, id",
            )?;
            let it = st.query_map(params![adapter], |r| {
                Ok(StoredPart {
                    id: r.get(0)?,
                    kid: r.get(1)?,
                    header: r.get(2)?,
                    sealed: r.get(3)?,
                })
            })?;
            Ok(it.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }
}
