//! Per-tenant usage (bytes and objects) and the quotas checked against it.
//!
//! The counters live in the `usage` key space and change only by additions written in the
//! same batch as the records they count, so they are exactly as durable as the data. In
//! memory each tenant's committed counters are kept together with the growth of the writes
//! in flight: two concurrent writes cannot pass a quota together that only one of them fits.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use coffre_crypto::{AdminScope, TenantId, TenantScope};

use crate::error::{Error, Result};
use crate::keys;
use crate::meta_store::{decode_counters, Batch, Cf, MetaStore};
use crate::records::{Quotas, TenantRecord};
use crate::store::Store;

/// What a tenant stores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of object data, including the parts of unfinished multipart uploads.
    pub bytes: u64,
    pub objects: u64,
    pub buckets: u64,
}

/// How a write changes a tenant's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct UsageDelta {
    pub bytes: i64,
    pub objects: i64,
}

impl UsageDelta {
    fn counters(self) -> [i64; 2] {
        [self.bytes, self.objects]
    }
}

const COUNTER_NAMES: [&str; 2] = ["bytes", "objects"];

/// Committed counters plus the growth reserved by writes in flight, per tenant seen since
/// the store was opened.
#[derive(Default)]
pub(crate) struct UsageTracker {
    tenants: Mutex<HashMap<TenantId, [i64; 2]>>,
}

impl UsageTracker {
    fn lock(&self) -> MutexGuard<'_, HashMap<TenantId, [i64; 2]>> {
        // The map holds plain counters, valid whatever a panicking holder was doing.
        self.tenants.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets a deleted tenant.
    pub fn remove(&self, tenant: TenantId) {
        self.lock().remove(&tenant);
    }

    fn reserve(
        &self,
        meta: &dyn MetaStore,
        tenant: TenantId,
        quotas: &Quotas,
        growth: [i64; 2],
    ) -> Result<()> {
        let mut tenants = self.lock();
        let current = match tenants.get_mut(&tenant) {
            Some(current) => current,
            None => {
                let stored = stored_counters(meta, tenant)?;
                tenants.entry(tenant).or_insert(stored)
            }
        };
        check_limits(current, quotas, growth)?;
        for i in 0..2 {
            current[i] = current[i].saturating_add(growth[i]);
        }
        Ok(())
    }

    /// Whether `growth` would fit now, counting the writes in flight; reserves nothing.
    fn fits(
        &self,
        meta: &dyn MetaStore,
        tenant: TenantId,
        quotas: &Quotas,
        growth: [i64; 2],
    ) -> Result<()> {
        let known = self.lock().get(&tenant).copied();
        let current = match known {
            Some(current) => current,
            None => stored_counters(meta, tenant)?,
        };
        check_limits(&current, quotas, growth)
    }

    fn adjust(&self, tenant: TenantId, change: [i64; 2]) {
        if let Some(current) = self.lock().get_mut(&tenant) {
            for i in 0..2 {
                current[i] = current[i].saturating_add(change[i]);
            }
        }
    }
}

fn check_limits(current: &[i64; 2], quotas: &Quotas, growth: [i64; 2]) -> Result<()> {
    let limits = [quotas.bytes, quotas.objects];
    for i in 0..2 {
        if let (true, Some(limit)) = (growth[i] > 0, limits[i]) {
            let after = i128::from(current[i]) + i128::from(growth[i]);
            if after > i128::from(limit) {
                return Err(Error::QuotaExceeded {
                    what: COUNTER_NAMES[i],
                    limit,
                });
            }
        }
    }
    Ok(())
}

fn stored_counters(meta: &dyn MetaStore, tenant: TenantId) -> Result<[i64; 2]> {
    let stored = meta
        .get(Cf::Usage, &keys::usage(tenant))?
        .map(|v| decode_counters(&v))
        .unwrap_or_default();
    Ok([0, 1].map(|i| stored.get(i).copied().unwrap_or(0)))
}

/// A usage change on its way into a batch: its growth is reserved until the batch is
/// written ([`Charge::committed`]) or abandoned (dropped).
#[must_use]
pub(crate) struct Charge<'a> {
    tracker: &'a UsageTracker,
    tenant: TenantId,
    growth: [i64; 2],
    shrink: [i64; 2],
    done: bool,
}

impl Charge<'_> {
    /// The batch was written: reductions now count too.
    pub fn committed(mut self) {
        self.tracker.adjust(self.tenant, self.shrink);
        self.done = true;
    }
}

impl Drop for Charge<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.tracker
                .adjust(self.tenant, self.growth.map(|g| g.saturating_neg()));
        }
    }
}

impl Store {
    /// Checks `delta` against the tenant's quotas (only growth is checked: a write that
    /// shrinks usage always passes), reserves its growth, and adds the counter update to
    /// `batch`. `QuotaExceeded` leaves `batch` unchanged.
    pub(crate) fn charge(
        &self,
        tenant: TenantId,
        delta: UsageDelta,
        batch: &mut Batch,
    ) -> Result<Charge<'_>> {
        let record: TenantRecord = self
            .get_record(Cf::Tenants, &keys::tenant(tenant))?
            .ok_or(Error::NoSuchTenant)?;
        let counters = delta.counters();
        let growth = counters.map(|c| c.max(0));
        let shrink = counters.map(|c| c.min(0));
        let tracker = &self.shared.usage;
        tracker.reserve(self.meta(), tenant, &record.quotas, growth)?;
        if counters != [0, 0] {
            batch.add(Cf::Usage, keys::usage(tenant), &counters);
        }
        Ok(Charge {
            tracker,
            tenant,
            growth,
            shrink,
            done: false,
        })
    }

    /// Refuses early a write that could not fit the tenant's byte quota, before its body is
    /// received: `bytes` is the growth it would cause (its size less what it replaces). The
    /// commit checks again, exactly; this check only saves receiving a doomed upload.
    pub fn check_byte_quota(&self, scope: &TenantScope, bytes: i64) -> Result<()> {
        let tenant = scope.tenant_id();
        let record: TenantRecord = self
            .get_record(Cf::Tenants, &keys::tenant(tenant))?
            .ok_or(Error::NoSuchTenant)?;
        if record.quotas.bytes.is_none() {
            return Ok(());
        }
        self.shared
            .usage
            .fits(self.meta(), tenant, &record.quotas, [bytes, 0])
    }

    /// Committed usage: what the tenant's records hold.
    pub fn tenant_usage(&self, admin: &AdminScope, tenant: TenantId) -> Result<Usage> {
        self.tenant(admin, tenant)?;
        let [bytes, objects] = stored_counters(self.meta(), tenant)?;
        let buckets = self.count_with_prefix(Cf::Buckets, &keys::tenant(tenant))?;
        Ok(Usage {
            bytes: u64::try_from(bytes).unwrap_or(0),
            objects: u64::try_from(objects).unwrap_or(0),
            buckets,
        })
    }

    fn count_with_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<u64> {
        let mut cursor = self.meta().cursor(cf, keys::prefix_end(prefix))?;
        cursor.seek(prefix);
        let mut count = 0;
        while let Some((key, _)) = cursor.next_entry()? {
            if !key.starts_with(prefix) {
                break;
            }
            count += 1;
        }
        Ok(count)
    }
}
