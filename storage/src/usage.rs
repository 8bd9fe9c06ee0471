//! Per-tenant usage (bytes and objects) and the quotas checked against it.
//!
//! The counters live in the `usage` key space and change only by counter additions in the
//! same transaction as the records they count, so they are exact and exactly as durable as
//! the data, whichever node writes. A quota is checked against the committed counters plus
//! the growth of this node's writes in flight: two concurrent writes through one node cannot
//! pass a quota together that only one of them fits. Writes in flight on other nodes are not
//! seen, so a tenant writing through several nodes at once can pass its quota by at most
//! what those writes add (the counters stay exact; the next write is refused).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use coffre_crypto::{AdminScope, TenantId, TenantScope};

use crate::error::{Error, Result};
use crate::keys;
use crate::meta_store::{decode_counters, Cf, Tx};
use crate::records::{BucketRecord, Quotas, TenantRecord};
use crate::sealed_records::StoredObject;
use crate::store::{read, Store};

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

/// The growth reserved by this node's writes in flight, per tenant, each tenant's behind a
/// lock of its own: a quota check reads the committed counters under it (a metadata read,
/// a round trip on PostgreSQL), and holds up only that tenant's other quota checks.
#[derive(Default)]
pub(crate) struct UsageTracker {
    tenants: Mutex<HashMap<TenantId, Arc<Mutex<[i64; 2]>>>>,
}

/// A lock whose holder cannot leave its plain counters half-updated.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl UsageTracker {
    /// Forgets a deleted tenant.
    pub fn remove(&self, tenant: TenantId) {
        lock(&self.tenants).remove(&tenant);
    }

    /// The tenant's in-flight counters (kept once made: a writer holding them must never
    /// find them replaced).
    fn of(&self, tenant: TenantId) -> Arc<Mutex<[i64; 2]>> {
        Arc::clone(lock(&self.tenants).entry(tenant).or_default())
    }

    /// Reserves `growth` if it fits `quotas` over the committed counters (`committed` reads
    /// them) and the writes in flight. The counters are read under the tenant's lock: read
    /// before it, they could miss a write whose reservation is released meanwhile (committed
    /// after the read, released before this check), and two writes could pass together.
    fn reserve(
        &self,
        tenant: TenantId,
        committed: impl FnOnce() -> Result<[i64; 2]>,
        quotas: &Quotas,
        growth: [i64; 2],
    ) -> Result<()> {
        let entry = self.of(tenant);
        let mut in_flight = lock(&entry);
        let committed = committed()?;
        let current = [0, 1].map(|i| committed[i].saturating_add(in_flight[i]));
        check_limits(&current, quotas, growth)?;
        for i in 0..2 {
            in_flight[i] = in_flight[i].saturating_add(growth[i]);
        }
        Ok(())
    }

    fn in_flight(&self, tenant: TenantId) -> [i64; 2] {
        *lock(&self.of(tenant))
    }

    fn release(&self, tenant: TenantId, growth: [i64; 2]) {
        let entry = self.of(tenant);
        let mut in_flight = lock(&entry);
        for i in 0..2 {
            in_flight[i] = in_flight[i].saturating_sub(growth[i]);
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

fn counters_of(value: Option<Vec<u8>>) -> [i64; 2] {
    let stored = value.map(|v| decode_counters(&v)).unwrap_or_default();
    [0, 1].map(|i| stored.get(i).copied().unwrap_or(0))
}

/// A usage change in a transaction: its growth stays reserved against the quota until this
/// is dropped, which the caller does once the transaction committed or was abandoned.
#[must_use]
pub(crate) struct Charge<'a> {
    tracker: &'a UsageTracker,
    tenant: TenantId,
    growth: [i64; 2],
}

impl Drop for Charge<'_> {
    fn drop(&mut self) {
        if self.growth != [0, 0] {
            self.tracker.release(self.tenant, self.growth);
        }
    }
}

impl Store {
    /// Checks `delta` against the tenant's quotas (only growth is checked: a write that
    /// shrinks usage always passes), reserves its growth, and adds the counter update to
    /// `tx`. The transaction depends on the tenant's record (a quota changed or the tenant
    /// deleted meanwhile makes it run again), not on the counters, to which concurrent
    /// writers only add.
    pub(crate) fn charge(
        &self,
        tx: &mut Tx<'_>,
        tenant: TenantId,
        delta: UsageDelta,
    ) -> Result<Charge<'_>> {
        let record: TenantRecord =
            read(tx, Cf::Tenants, &keys::tenant(tenant))?.ok_or(Error::NoSuchTenant)?;
        let counters = delta.counters();
        let growth = counters.map(|c| c.max(0));
        let tracker = &self.shared.usage;
        let limited = record.quotas.bytes.is_some() || record.quotas.objects.is_some();
        let reserved = if limited && growth != [0, 0] {
            let usage_key = keys::usage(tenant);
            let committed = || Ok(counters_of(tx.peek(Cf::Usage, &usage_key)?));
            tracker.reserve(tenant, committed, &record.quotas, growth)?;
            growth
        } else {
            [0, 0]
        };
        if counters != [0, 0] {
            tx.add(Cf::Usage, keys::usage(tenant), &counters);
        }
        Ok(Charge {
            tracker,
            tenant,
            growth: reserved,
        })
    }

    /// Refuses early a PUT of `size` bytes to `key` that could not fit the tenant's byte
    /// quota, before its body is received: an overwrite counts only its growth. The commit
    /// checks again, exactly; this check reserves nothing and only saves receiving a doomed
    /// upload.
    pub fn check_room_for_object(
        &self,
        scope: &TenantScope,
        bucket: &BucketRecord,
        key: &str,
        size: u64,
    ) -> Result<()> {
        let growth = i64::try_from(size).unwrap_or(i64::MAX);
        match self.check_byte_quota(scope, growth) {
            Err(Error::QuotaExceeded { .. }) => {
                let current = keys::object(scope.tenant_id(), bucket.id, key.as_bytes());
                let replaced = self
                    .get_record::<StoredObject>(Cf::Objects, &current)?
                    .map_or(0, |object| i64::try_from(object.size()).unwrap_or(i64::MAX));
                self.check_byte_quota(scope, growth.saturating_sub(replaced))
            }
            other => other,
        }
    }

    /// Whether `bytes` more (or fewer) fit the tenant's byte quota now.
    fn check_byte_quota(&self, scope: &TenantScope, bytes: i64) -> Result<()> {
        let tenant = scope.tenant_id();
        let record: TenantRecord = self
            .get_record(Cf::Tenants, &keys::tenant(tenant))?
            .ok_or(Error::NoSuchTenant)?;
        if record.quotas.bytes.is_none() {
            return Ok(());
        }
        let committed = counters_of(self.meta().get(Cf::Usage, &keys::usage(tenant))?);
        let in_flight = self.shared.usage.in_flight(tenant);
        let current = [0, 1].map(|i| committed[i].saturating_add(in_flight[i]));
        check_limits(&current, &record.quotas, [bytes, 0])
    }

    /// Committed usage: what the tenant's records hold.
    pub fn tenant_usage(&self, admin: &AdminScope, tenant: TenantId) -> Result<Usage> {
        self.tenant(admin, tenant)?;
        let [bytes, objects] = counters_of(self.meta().get(Cf::Usage, &keys::usage(tenant))?);
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
