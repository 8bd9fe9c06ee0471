//! Per-tenant usage (bytes, objects, multipart uploads in progress) and the quotas checked
//! against it.
//!
//! The counters live in the `usage` key space and change only by counter additions in the
//! same transaction as the records they count, so they are exact and exactly as durable as
//! the data, whichever node writes. A quota is checked against the committed counters plus
//! the growth of this node's writes in flight: two concurrent writes through one node cannot
//! pass a quota together that only one of them fits. Writes in flight on other nodes are not
//! seen, so a tenant writing through several nodes at once can pass its quota by at most
//! what those writes add (the counters stay exact; the next write is refused). A check
//! that would refuse while writes of the same kind are in flight waits for them to settle
//! first, so that it refuses only growth that truly does not fit.
//!
//! `bytes` counts object data and, for tenants created with this rule, the bytes of the
//! records a tenant makes the service keep (each object's and upload's key and metadata:
//! [`record_bytes`]), so that empty objects with large metadata fill a byte quota too.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use coffre_crypto::{AdminScope, TenantId, TenantScope};

use crate::error::{Error, Result};
use crate::keys;
use crate::meta_store::{decode_counters, Cf, Tx};
use crate::records::{BucketRecord, Quotas, Record, TenantRecord};
use crate::sealed_records::{SealedMeta, StoredObject};
use crate::store::{read, Store};

/// What a tenant stores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of object data, including the parts of unfinished multipart uploads, and for
    /// a tenant that counts them (`counts_record_bytes`) the bytes of its object and
    /// upload records (see [`record_bytes`]).
    pub bytes: u64,
    pub objects: u64,
    /// Multipart uploads in progress: created, neither completed nor aborted.
    pub uploads: u64,
    pub buckets: u64,
}

/// How a write changes a tenant's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct UsageDelta {
    /// Object data.
    pub bytes: i64,
    pub objects: i64,
    /// Record bytes (see [`record_bytes`]): added to `bytes` for a tenant whose usage
    /// counts them (`counts_record_bytes`), ignored for the others.
    pub records: i64,
    /// Uploads in progress.
    pub uploads: i64,
    /// Uploads in progress found by [`Store::count_uploads_once`]: added to the counter,
    /// never refused (they are there already).
    pub uploads_found: i64,
}

impl UsageDelta {
    fn counters(self, counts_record_bytes: bool) -> Counters {
        let records = if counts_record_bytes { self.records } else { 0 };
        [
            self.bytes.saturating_add(records),
            self.objects,
            self.uploads,
        ]
    }
}

/// The bytes an object's or upload's record counts in its tenant's usage, besides the
/// object's data: its key and its metadata as stored (system headers, ETag, checksums,
/// user metadata and tags, sealed). A function of the stored record alone, so the bytes a
/// write charges are exactly those its replacement or deletion releases. (Parts of uploads
/// carry fixed-size records and are not counted.) Computed from the decoded metadata: a
/// later format of [`SealedMeta`] must give records stored before it the figure they were
/// charged, or their deletion would give back more or less than they took.
pub(crate) fn record_bytes(key: &str, meta: &SealedMeta) -> Result<i64> {
    let meta = postcard::to_allocvec(meta)
        .map_err(|e| Error::Corrupt(format!("encoding object metadata: {e}")))?;
    Ok(size_delta(key.len()).saturating_add(size_delta(meta.len())))
}

fn size_delta(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

/// The usage counters, in the order they are stored: bytes, objects, uploads in progress.
/// (Records of earlier builds hold the first two; absent counters read 0.)
type Counters = [i64; COUNTERS];
const COUNTERS: usize = 3;
const COUNTER_NAMES: [&str; COUNTERS] = ["bytes", "objects", "uploads"];
/// Where the upload counter is in [`Counters`].
const UPLOADS: usize = 2;

fn limits(quotas: &Quotas) -> [Option<u64>; COUNTERS] {
    [quotas.bytes, quotas.objects, quotas.uploads]
}

/// The growth reserved by this node's writes in flight, per tenant, each tenant's behind a
/// lock of its own: a quota check reads the committed counters under it (a metadata read,
/// a round trip on PostgreSQL), and holds up only that tenant's other quota checks.
#[derive(Default)]
pub(crate) struct UsageTracker {
    tenants: Mutex<HashMap<TenantId, Arc<InFlight>>>,
}

/// A tenant's growth in flight, and the signal of its releases.
#[derive(Default)]
struct InFlight {
    counters: Mutex<Counters>,
    released: Condvar,
}

/// How long a quota check that would refuse waits for the writes in flight to settle (see
/// [`UsageTracker::reserve`]) before it refuses anyway.
const SETTLE_WAIT: Duration = Duration::from_secs(5);

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
    fn of(&self, tenant: TenantId) -> Arc<InFlight> {
        Arc::clone(lock(&self.tenants).entry(tenant).or_default())
    }

    /// Reserves `growth` if it fits `quotas` over the committed counters (`committed` reads
    /// them) and the writes in flight. The counters are read under the tenant's lock: read
    /// before it, they could miss a write whose reservation is released meanwhile (committed
    /// after the read, released before this check), and two writes could pass together.
    /// A write committed but not yet released is counted twice, committed and in flight:
    /// a check that would refuse while growth of its kind is in flight waits for releases
    /// (at most [`SETTLE_WAIT`]) and checks again, so that concurrent writes are refused
    /// only when they truly do not fit.
    fn reserve(
        &self,
        tenant: TenantId,
        mut committed: impl FnMut() -> Result<Counters>,
        quotas: &Quotas,
        growth: Counters,
    ) -> Result<()> {
        let entry = self.of(tenant);
        let deadline = Instant::now() + SETTLE_WAIT;
        let mut in_flight = lock(&entry.counters);
        loop {
            let current = add(committed()?, *in_flight);
            let refused = match check_limits(&current, quotas, growth) {
                Ok(()) => break,
                Err(refused) => refused,
            };
            let pending = (0..COUNTERS).any(|i| growth[i] > 0 && in_flight[i] > 0);
            let left = deadline.saturating_duration_since(Instant::now());
            if !pending || left.is_zero() {
                return Err(refused);
            }
            in_flight = entry
                .released
                .wait_timeout(in_flight, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        for i in 0..COUNTERS {
            in_flight[i] = in_flight[i].saturating_add(growth[i]);
        }
        Ok(())
    }

    fn in_flight(&self, tenant: TenantId) -> Counters {
        *lock(&self.of(tenant).counters)
    }

    fn release(&self, tenant: TenantId, growth: Counters) {
        let entry = self.of(tenant);
        let mut in_flight = lock(&entry.counters);
        for i in 0..COUNTERS {
            in_flight[i] = in_flight[i].saturating_sub(growth[i]);
        }
        entry.released.notify_all();
    }
}

fn add(a: Counters, b: Counters) -> Counters {
    std::array::from_fn(|i| a[i].saturating_add(b[i]))
}

fn check_limits(current: &Counters, quotas: &Quotas, growth: Counters) -> Result<()> {
    let limits = limits(quotas);
    for i in 0..COUNTERS {
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

/// The tenant's uploads in progress, read in `tx`: each has two entries in `uploads`, its
/// record and its listing entry, always written and removed together.
fn uploads_in_progress(tx: &mut Tx<'_>, tenant: TenantId) -> Result<i64> {
    let prefix = keys::tenant(tenant);
    let end = keys::prefix_end(&prefix);
    let entries = tx.scan(Cf::Uploads, &prefix, end.as_deref(), usize::MAX)?;
    Ok(i64::try_from(entries.len() / 2).unwrap_or(i64::MAX))
}

fn counters_of(value: Option<Vec<u8>>) -> Counters {
    let stored = value.map(|v| decode_counters(&v)).unwrap_or_default();
    std::array::from_fn(|i| stored.get(i).copied().unwrap_or(0))
}

/// A usage change in a transaction: its growth stays reserved against the quota until this
/// is dropped, which the caller does once the transaction committed or was abandoned.
#[must_use]
pub(crate) struct Charge<'a> {
    tracker: &'a UsageTracker,
    tenant: TenantId,
    growth: Counters,
}

impl Drop for Charge<'_> {
    fn drop(&mut self) {
        if self.growth != [0; COUNTERS] {
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
        let counters = delta.counters(record.counts_record_bytes);
        // Uploads counted now for the first time: in the counters, not as growth.
        let mut base = [0; COUNTERS];
        base[UPLOADS] = delta.uploads_found;
        let growth = counters.map(|c| c.max(0));
        let tracker = &self.shared.usage;
        let limited = limits(&record.quotas).iter().any(Option::is_some);
        let reserved = if limited && growth != [0; COUNTERS] {
            let usage_key = keys::usage(tenant);
            let committed = || Ok(add(counters_of(tx.peek(Cf::Usage, &usage_key)?), base));
            tracker.reserve(tenant, committed, &record.quotas, growth)?;
            growth
        } else {
            [0; COUNTERS]
        };
        let counters = add(counters, base);
        if counters != [0; COUNTERS] {
            tx.add(Cf::Usage, keys::usage(tenant), &counters);
        }
        Ok(Charge {
            tracker,
            tenant,
            growth: reserved,
        })
    }

    /// For a tenant of an earlier build, whose uploads in progress no counter saw: counts
    /// them (for [`UsageDelta::uploads_found`]) and marks the tenant's record counted, in
    /// `tx`, which must not have changed any upload yet; 0 for any other tenant. `tx`
    /// depends on the uploads (the scan) and on the record (rewritten): a concurrent
    /// upload change commits either before (and is in the scan) or after (and counts
    /// itself).
    pub(crate) fn count_uploads_once(&self, tx: &mut Tx<'_>, tenant: TenantId) -> Result<i64> {
        let mut record: TenantRecord =
            read(tx, Cf::Tenants, &keys::tenant(tenant))?.ok_or(Error::NoSuchTenant)?;
        if record.uploads_counted {
            return Ok(0);
        }
        let found = uploads_in_progress(tx, tenant)?;
        record.uploads_counted = true;
        tx.put(Cf::Tenants, keys::tenant(tenant), record.encode()?);
        Ok(found)
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
                let replaced = self.object_charge(scope, bucket, key)?.unwrap_or(0);
                let replaced = i64::try_from(replaced).unwrap_or(i64::MAX);
                self.check_byte_quota(scope, growth.saturating_sub(replaced))
            }
            other => other,
        }
    }

    /// The bytes the object at `key` counts in its tenant's usage: its data, and its
    /// record's bytes (see [`record_bytes`]) if the tenant counts them; `None` if absent.
    pub fn object_charge(
        &self,
        scope: &TenantScope,
        bucket: &BucketRecord,
        key: &str,
    ) -> Result<Option<u64>> {
        let tenant = scope.tenant_id();
        let current = keys::object(tenant, bucket.id, key.as_bytes());
        let Some(object) = self.get_record::<StoredObject>(Cf::Objects, &current)? else {
            return Ok(None);
        };
        let record: TenantRecord = self
            .get_record(Cf::Tenants, &keys::tenant(tenant))?
            .ok_or(Error::NoSuchTenant)?;
        let mut charge = object.size();
        if record.counts_record_bytes {
            let bytes = record_bytes(&object.key, &object.meta)?;
            charge = charge.saturating_add(u64::try_from(bytes).unwrap_or(0));
        }
        Ok(Some(charge))
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
        check_limits(&add(committed, in_flight), &record.quotas, [bytes, 0, 0])
    }

    /// Committed usage: what the tenant's records hold.
    pub fn tenant_usage(&self, admin: &AdminScope, tenant: TenantId) -> Result<Usage> {
        let record = self.tenant(admin, tenant)?;
        let [bytes, objects, mut uploads] =
            counters_of(self.meta().get(Cf::Usage, &keys::usage(tenant))?);
        if !record.uploads_counted {
            // Not counted yet (see `charge_counters`): each upload has two entries.
            let entries = self.count_with_prefix(Cf::Uploads, &keys::tenant(tenant))?;
            uploads = i64::try_from(entries / 2).unwrap_or(i64::MAX);
        }
        let buckets = self.count_with_prefix(Cf::Buckets, &keys::tenant(tenant))?;
        Ok(Usage {
            bytes: u64::try_from(bytes).unwrap_or(0),
            objects: u64::try_from(objects).unwrap_or(0),
            uploads: u64::try_from(uploads).unwrap_or(0),
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {

    use super::*;
    use crate::meta_store::{encode_counters, Durability};
    use crate::records::ObjectMeta;
    use crate::{TenantSettings, TenantUpdate};

    /// A tenant of an earlier build, with uploads no counter saw, gets them counted by its
    /// first upload change, exactly once.
    #[test]
    fn uploads_of_an_earlier_build_are_counted_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::test_store(dir.path(), "a1");
        let admin = AdminScope::local_operator();
        let tenant = store
            .create_tenant(&admin, "old", TenantSettings::default())
            .unwrap();
        let scope = TenantScope::for_tests(tenant.id);
        let bucket = store.create_bucket(&scope, "b", "r").unwrap();
        let create =
            |key: &str| store.create_upload(&scope, &bucket, key, ObjectMeta::default(), None);
        let uploads: Vec<_> = ["a", "b", "c"].map(|k| create(k).unwrap()).into();

        // As an earlier build left it: the tenant's record says nothing of uploads, its
        // counters are bytes and objects only.
        store
            .transact(Durability::Synced, |tx| {
                let mut record: TenantRecord =
                    read(tx, Cf::Tenants, &keys::tenant(tenant.id))?.unwrap();
                record.uploads_counted = false;
                tx.put(Cf::Tenants, keys::tenant(tenant.id), record.encode()?);
                tx.put(Cf::Usage, keys::usage(tenant.id), encode_counters(&[0, 0]));
                Ok(())
            })
            .unwrap();
        let usage = || store.tenant_usage(&admin, tenant.id).unwrap().uploads;
        assert_eq!(
            usage(),
            3,
            "counted by a scan until the counter counts them"
        );

        store
            .abort_upload(&scope, &bucket, &uploads[0].address())
            .unwrap();
        assert!(store.tenant(&admin, tenant.id).unwrap().uploads_counted);
        assert_eq!(usage(), 2);
        assert_eq!(
            counters_of(
                store
                    .meta()
                    .get(Cf::Usage, &keys::usage(tenant.id))
                    .unwrap()
            )[UPLOADS],
            2
        );

        // The quota sees them.
        let update = TenantUpdate {
            quota_uploads: Some(Some(3)),
            ..TenantUpdate::default()
        };
        store.update_tenant(&admin, tenant.id, update).unwrap();
        create("d").unwrap();
        assert!(matches!(
            create("e"),
            Err(Error::QuotaExceeded {
                what: "uploads",
                limit: 3
            })
        ));
        for upload in &uploads[1..] {
            store
                .abort_upload(&scope, &bucket, &upload.address())
                .unwrap();
        }
        assert_eq!(usage(), 1);
    }
}
