//! Parts of multipart SMS waiting for their siblings, for the adapters that
//! reassemble themselves (GSM modems, SMPP binds). Each part is sealed to
//! the edge key before the store keeps it, so a crash loses no part and the
//! store never holds part text in the clear (parts of messages without
//! content at rest, `[privacy]`, wait in memory instead); the `adapter` and `sender`
//! columns are the metadata reloads and retention sweeps select on.

use adapters::sms::Part;

use super::Pipeline;
use crate::core::error::{Error, Result};
use crate::envelope::{Channel, Content, Direction, Envelope, Header};
use crate::store::parts::NewPart;

/// Who a stored part belongs to: its row's clear columns and its sealed
/// header's addresses.
pub struct Owner {
    /// The `pending_parts.adapter` value reloads select on.
    pub adapter: String,
    /// The `pending_parts.sender` value (retention), may be empty.
    pub sender: String,
    /// The sealed header's id (the message group the part belongs to).
    pub group: String,
    /// The sealed header's `from`.
    pub from: String,
    /// The sealed header's `to`.
    pub to: String,
}

/// Seals `part` to the current edge key and stores it; returns its row id
/// (what `delete` takes once the message is committed).
pub async fn insert(p: &Pipeline, owner: Owner, part: &Part) -> Result<i64> {
    if p.transit.applies(&owner.from, &owner.to) {
        // No content at rest: the part waits in memory (a crash loses it,
        // and the carrier's copy is the only one).
        return Ok(p
            .transit
            .keep_part(owner.adapter, owner.group, part.clone()));
    }
    let edge = p.keys.current()?;
    let header = Header {
        v: crate::envelope::VERSION,
        id: owner.group,
        created_at: crate::core::clock::rfc3339_ms(crate::core::clock::now_ms()),
        channel: Channel::Sms,
        direction: Direction::Inbound,
        from: owner.from,
        to: owner.to,
        segments: 1,
        encoding: part.body.encoding.as_str().to_string(),
        size_class: 0,
        expires_at: None,
        kid: String::new(),
        carrier_ids: Default::default(),
        seal: Default::default(),
    };
    let env = p.sealer.seal(
        header,
        &Content::SmsPart { part: part.clone() },
        &edge.public,
    )?;
    p.store
        .insert_part(NewPart {
            adapter: owner.adapter,
            sender: owner.sender,
            arrived_at: (part.arrived_at.unix_timestamp_nanos() / 1_000_000) as i64,
            kid: env.header.kid.clone(),
            header: env.header_bytes().to_vec(),
            sealed: env.sealed_bytes(),
        })
        .await
}

/// Deletes stored parts (their message was committed or dropped).
pub async fn delete(p: &Pipeline, ids: Vec<i64>) -> Result<()> {
    let (memory, stored): (Vec<i64>, Vec<i64>) = ids.into_iter().partition(|id| *id < 0);
    p.transit.drop_parts(&memory);
    if stored.is_empty() {
        return Ok(());
    }
    p.store.delete_parts(stored).await
}

/// A stored part read back: its row id and, if it opens, its group id
/// and the part (a row that does not open is reported, not deleted, so
/// an operator can still look at it with the right key).
pub type Loaded = (i64, Result<(String, Part)>);

/// Every stored part of `adapter`, oldest first, opened with the edge key
/// it was sealed to.
pub async fn load(p: &Pipeline, adapter: String) -> Result<Vec<Loaded>> {
    let rows = p.store.parts_of(adapter.clone()).await?;
    let mut out: Vec<Loaded> = rows
        .into_iter()
        .map(|row| (row.id, open(p, &row.kid, &row.header, &row.sealed)))
        .collect();
    out.extend(
        p.transit
            .parts_of(&adapter)
            .into_iter()
            .map(|(id, group, part)| (id, Ok((group, part)))),
    );
    Ok(out)
}

fn open(p: &Pipeline, kid: &str, header: &[u8], sealed: &[u8]) -> Result<(String, Part)> {
    let env = Envelope::from_parts(header, sealed)?;
    let key = p.keys.get(kid)?;
    match p.opener.open(&env, &key.private)? {
        Content::SmsPart { part } => Ok((env.header.id.clone(), part)),
        _ => Err(Error::Envelope(
            "pending part holds another content type".into(),
        )),
    }
}
