//! Tenants' daily quotas: messages accepted (answered 202) per UTC day.
//!
//! A count per tenant and day in memory, seeded from the store the first
//! time a day is seen (so a restart does not hand out a fresh quota). A
//! send takes a [`Slot`] before its checks and commit; the slot gives its
//! unit back unless the message was stored, so refusals (a bad sender, the
//! spam gate, a full disk) never count and concurrent sends cannot both
//! take the last unit.
//!
//! On a shared store (PostgreSQL, several nodes) the count is read again
//! from the store once it is [`SHARED_REFRESH_MS`] old, so what the other
//! nodes accepted counts here too: a tenant spread over N nodes gets one
//! quota, exceeded at most by what the others accept within that second.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::core::error::{Error, Result};
use crate::core::tenants::Tenant;
use crate::store::Store;

const DAY_MS: i64 = 86_400_000;

/// How stale a tenant's count may be on a shared store (one indexed
/// count per tenant and second per node, whatever the traffic).
pub const SHARED_REFRESH_MS: i64 = 1_000;

/// One tenant's count for one day.
#[derive(Debug, Clone, Copy)]
struct Count {
    day: i64,
    /// Stored as accepted: the store's count when read, plus what this
    /// node kept since.
    settled: u64,
    /// Slots taken and not yet kept or given back (sends in progress).
    pending: u64,
    /// When `settled` was read from the store (Unix ms).
    read_at: i64,
}

/// Accepted messages today, per tenant.
#[derive(Default)]
pub struct Quotas {
    days: Mutex<HashMap<String, Count>>,
}

/// One unit of a tenant's quota, taken for a send in progress.
pub struct Slot<'a> {
    quotas: &'a Quotas,
    tenant: String,
    day: i64,
    kept: bool,
}

impl Slot<'_> {
    /// The message was stored: the unit stays used.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Ok(mut days) = self.quotas.days.lock() {
            if let Some(c) = days.get_mut(&self.tenant) {
                if c.day == self.day {
                    c.pending = c.pending.saturating_sub(1);
                    if self.kept {
                        c.settled += 1;
                    }
                }
            }
        }
    }
}

impl Quotas {
    /// Takes one unit of `tenant`'s quota for today (`now`, Unix ms), or
    /// refuses with `quota_exceeded` and the seconds until the next UTC
    /// day. `None` when the tenant has no quota.
    pub async fn take(&self, store: &Store, tenant: &Tenant, now: i64) -> Result<Option<Slot<'_>>> {
        let Some(max) = tenant.max_messages_per_day else {
            return Ok(None);
        };
        let day = now.div_euclid(DAY_MS);
        if self.needs_read(&tenant.name, day, now, store.is_postgres()) {
            let stored = store
                .accepted_since(tenant.name.clone(), day * DAY_MS)
                .await?;
            self.settle(&tenant.name, day, stored, now);
        }
        let mut days = self
            .days
            .lock()
            .map_err(|_| Error::Store("quota counts poisoned".into()))?;
        let c = days.entry(tenant.name.clone()).or_insert(Count {
            day,
            settled: 0,
            pending: 0,
            read_at: now,
        });
        if c.settled + c.pending >= max {
            let renew_ms = (day + 1) * DAY_MS - now;
            return Err(Error::QuotaExceeded {
                retry_after_secs: (renew_ms as u64).div_ceil(1000),
            });
        }
        c.pending += 1;
        Ok(Some(Slot {
            quotas: self,
            tenant: tenant.name.clone(),
            day,
            kept: false,
        }))
    }

    /// Whether `tenant`'s count for `day` must be read from the store: a
    /// new day, or (on a shared store) a count older than
    /// [`SHARED_REFRESH_MS`].
    fn needs_read(&self, tenant: &str, day: i64, now: i64, shared: bool) -> bool {
        self.days
            .lock()
            .map(|d| match d.get(tenant) {
                Some(c) if c.day == day => shared && now - c.read_at >= SHARED_REFRESH_MS,
                _ => true,
            })
            .unwrap_or(true)
    }

    /// Records the store's count for `day`: the messages every node stored
    /// (this node's kept ones included). Sends in progress stay pending.
    fn settle(&self, tenant: &str, day: i64, stored: u64, now: i64) {
        if let Ok(mut days) = self.days.lock() {
            let c = days.entry(tenant.to_string()).or_insert(Count {
                day,
                settled: stored,
                pending: 0,
                read_at: now,
            });
            if c.day != day {
                c.pending = 0;
            }
            c.day = day;
            c.settled = stored;
            c.read_at = now;
        }
    }
}
