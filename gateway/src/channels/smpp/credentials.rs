//! SMPP server clients as the CLI manages them: a client's addresses are
//! normalised and checked (none twice, none owned by another client)
//! before the store records them. The table, and the hashing of the
//! passwords, are the store's (`store::smpp`); the same checks run on
//! either backend (`ClientOps`).

use crate::core::error::{Error, Result};
pub use crate::store::smpp::ClientInfo;
use crate::store::smpp::ClientOps;

/// Checks and normalises a client's addresses (see [`super::owners`]):
/// every one valid, none twice, none owned by another client.
fn checked_addresses(
    db: &dyn ClientOps,
    system_id: &str,
    addresses: &[String],
    region: phonenumber::country::Id,
) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(addresses.len());
    for a in addresses {
        let n = super::owners::normalise(a, region)?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    let others: Vec<(String, Vec<String>)> = db
        .smpp_clients()?
        .into_iter()
        .map(|c| (c.system_id, c.addresses))
        .collect();
    if let Some((addr, owner)) = super::owners::conflict(&others, system_id, &out) {
        return Err(Error::invalid(
            "address",
            format!("{addr} already belongs to SMPP client {owner}"),
        ));
    }
    Ok(out)
}

/// Adds a client and returns its password (shown once, stored hashed).
/// Addresses are normalised (`region` for national numbers) and must not
/// belong to another client.
pub fn add(
    db: &dyn ClientOps,
    system_id: &str,
    throughput: Option<f64>,
    addresses: &[String],
    region: phonenumber::country::Id,
    now: i64,
) -> Result<String> {
    if system_id.is_empty()
        || system_id.len() > 15
        || !system_id.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Error::invalid(
            "system_id",
            "must be 1 to 15 printable ASCII characters",
        ));
    }
    if throughput.is_some_and(|t| !(t > 0.0 && t.is_finite())) {
        return Err(Error::invalid("throughput", "must be above 0"));
    }
    let addresses = checked_addresses(db, system_id, addresses, region)?;
    db.add_smpp_client(system_id, throughput, &addresses, now)
}

/// Replaces a client's addresses (same checks as [`add`]); false when there
/// is no such client. The running server picks the change up within
/// seconds.
pub fn set_addresses(
    db: &dyn ClientOps,
    system_id: &str,
    addresses: &[String],
    region: phonenumber::country::Id,
) -> Result<bool> {
    let addresses = checked_addresses(db, system_id, addresses, region)?;
    db.set_smpp_addresses(system_id, &addresses)
}

/// Removes a client and the receipts owed to it; true when it existed.
/// Its live binds are closed by the running server within seconds, and
/// inbound messages queued for it are dead-lettered at their next attempt.
pub fn remove(db: &dyn ClientOps, system_id: &str) -> Result<bool> {
    db.remove_smpp_client(system_id)
}

/// Every client, by system_id.
pub fn list(db: &dyn ClientOps) -> Result<Vec<ClientInfo>> {
    db.smpp_clients()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::Db;

    #[test]
    fn add_verify_list_remove() {
        let c = Db::open_in_memory().unwrap();
        let us = phonenumber::country::Id::US;
        let pw = add(&c, "app1", Some(5.0), &["(415) 555-0100".into()], us, 1).unwrap();
        assert_eq!(pw.len(), 8);
        assert!(add(&c, "app1", None, &[], us, 2).is_err());
        assert!(add(&c, "much-too-long-system-id", None, &[], us, 2).is_err());
        // Another client cannot take the same number; bad addresses are refused.
        let e = add(&c, "app2", None, &["+14155550100".into()], us, 2).unwrap_err();
        assert!(e.to_string().contains("app1"), "{e}");
        assert!(add(&c, "app2", None, &["ACME".into()], us, 2).is_err());
        assert!(set_addresses(&c, "app1", &["+1415555*".into(), "+1415555*".into()], us).unwrap());
        assert!(!set_addresses(&c, "nobody", &[], us).unwrap());
        let ok = c.verify_smpp_client("app1", &pw).unwrap().unwrap();
        assert_eq!(ok.throughput, Some(5.0));
        assert_eq!(ok.addresses, vec!["+1415555*".to_string()]);
        assert_eq!(list(&c).unwrap().len(), 1);
        assert!(remove(&c, "app1").unwrap());
        assert!(c.verify_smpp_client("app1", &pw).unwrap().is_none());
    }
}
