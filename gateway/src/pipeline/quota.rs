//! Tenants' daily quotas: messages accepted (answered 202) per UTC day.
//!
//! A count per tenant and day in memory, seeded from the store the first
//! time a day is seen (so a restart does not hand out a fresh quota). A
//! send takes a [`Slot`] before its checks and commit; the slot gives its
//! unit back unless the message was stored, so refusals (a bad sender, the
//! spam gate, a full disk) never count and concurrent sends cannot both
//! take the last unit.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::core::error::{Error, Result};
use crate::core::tenants::Tenant;
use crate::store::Store;

const DAY_MS: i64 = 86_400_000;

/// Accepted messages today, per tenant.
#[derive(Default)]
pub struct Quotas {
    days: Mutex<HashMap<String, (i64, u64)>>,
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
        if self.kept {
            return;
        }
        if let Ok(mut days) = self.quotas.days.lock() {
            if let Some((day, used)) = days.get_mut(&self.tenant) {
                if *day == self.day {
                    *used = used.saturating_sub(1);
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
        if !self.knows(&tenant.name, day) {
            let stored = store
                .accepted_since(tenant.name.clone(), day * DAY_MS)
                .await?;
            if let Ok(mut days) = self.days.lock() {
                let e = days.entry(tenant.name.clone()).or_insert((day, stored));
                if e.0 != day {
                    *e = (day, stored);
                }
            }
        }
        let mut days = self
            .days
            .lock()
            .map_err(|_| Error::Store("quota counts poisoned".into()))?;
        let e = days.entry(tenant.name.clone()).or_insert((day, 0));
        if e.1 >= max {
            let renew_ms = (day + 1) * DAY_MS - now;
            return Err(Error::QuotaExceeded {
                retry_after_secs: (renew_ms as u64).div_ceil(1000),
            });
        }
        e.1 += 1;
        Ok(Some(Slot {
            quotas: self,
            tenant: tenant.name.clone(),
            day,
            kept: false,
        }))
    }

    fn knows(&self, tenant: &str, day: i64) -> bool {
        self.days
            .lock()
            .map(|d| d.get(tenant).is_some_and(|(d, _)| *d == day))
            .unwrap_or(false)
    }
}
