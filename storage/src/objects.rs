//! Objects: writing, reading, overwriting and deleting them. Every change is one synced
//! batch, and data it makes unreachable is queued for garbage collection in that batch.

use coffre_crypto::{ObjectId, TenantId, TenantScope};

use crate::data_writer::{DataWriter, WrittenData};
use crate::error::{Error, Result};
use crate::keys;
use crate::meta_store::{Batch, Cf, Durability};
use crate::object_reader::ObjectReader;
use crate::records::{
    now, BucketRecord, DataLocation, FileLocation, GcEntry, GcState, ObjectMeta, ObjectRecord,
    PartLayout, Record,
};
use crate::store::Store;
use crate::usage::UsageDelta;

impl Store {
    /// A writer for one part's data (a single PUT's body or one multipart part). Its file,
    /// if it needs one, goes to an array the tenant's placement allows.
    pub fn data_writer(&self, scope: &TenantScope, _bucket: &BucketRecord) -> Result<DataWriter> {
        let tenant = self.live_tenant(scope.tenant_id())?;
        Ok(DataWriter::new(
            self.shared.clone(),
            scope.tenant_id(),
            tenant.placement,
        ))
    }

    /// Makes `data` the content of `key`, replacing any previous version. `QuotaExceeded`
    /// when the tenant has no room for it; the data is then removed.
    pub fn put_object(
        &self,
        scope: &TenantScope,
        bucket: &BucketRecord,
        key: &str,
        meta: ObjectMeta,
        data: WrittenData,
    ) -> Result<ObjectRecord> {
        let tenant = scope.tenant_id();
        let size = data.size();
        let (location, pending) = data.into_location(tenant)?;
        let record = ObjectRecord {
            key: key.to_owned(),
            id: ObjectId::random(),
            meta,
            last_modified: now(),
            parts: vec![PartLayout {
                part_number: 0,
                size,
                location,
                checksums: Vec::new(),
            }],
        };
        let mut batch = Batch::new();
        if let Some(pending) = &pending {
            pending.commit_in(&mut batch);
        }
        let _bucket_guard = self.shared.locks.buckets_shared();
        let _key_guard = self.shared.locks.object(tenant, bucket.id, key);
        self.check_bucket_live(tenant, bucket)?;
        self.commit_object(tenant, bucket, &record, batch, size_delta(size))?;
        if let Some(pending) = pending {
            pending.committed();
        }
        Ok(record)
    }

    /// Writes `record` with the rest of `batch`, queueing the data of the version it
    /// replaces and charging the tenant's usage: `bytes_added` (data newly counted with
    /// this batch) less the replaced version's size, and one object unless one is replaced.
    /// The caller holds the bucket lock (shared) and the key's lock, and has checked that
    /// the bucket is live.
    pub(crate) fn commit_object(
        &self,
        tenant: TenantId,
        bucket: &BucketRecord,
        record: &ObjectRecord,
        mut batch: Batch,
        bytes_added: i64,
    ) -> Result<()> {
        let db_key = keys::object(tenant, bucket.id, record.key.as_bytes());
        let mut delta = UsageDelta {
            bytes: bytes_added,
            objects: 1,
        };
        if let Some(old) = self.get_record::<ObjectRecord>(Cf::Objects, &db_key)? {
            queue_locations(&mut batch, tenant, old.parts.iter().map(|p| &p.location))?;
            delta.bytes = delta.bytes.saturating_sub(stored_size(&old));
            delta.objects = 0;
        }
        let charge = self.charge(tenant, delta, &mut batch)?;
        batch.put(Cf::Objects, db_key, record.encode()?);
        self.meta().write(batch, Durability::Synced)?;
        charge.committed();
        Ok(())
    }

    /// `NoSuchKey` if absent.
    pub fn object(
        &self,
        scope: &TenantScope,
        bucket: &BucketRecord,
        key: &str,
    ) -> Result<ObjectRecord> {
        self.get_record(
            Cf::Objects,
            &keys::object(scope.tenant_id(), bucket.id, key.as_bytes()),
        )?
        .ok_or(Error::NoSuchKey)
    }

    /// Removes `key`; succeeds when it is already absent, as S3 does.
    pub fn delete_object(
        &self,
        scope: &TenantScope,
        bucket: &BucketRecord,
        key: &str,
    ) -> Result<()> {
        let tenant = scope.tenant_id();
        let _bucket_guard = self.shared.locks.buckets_shared();
        let _key_guard = self.shared.locks.object(tenant, bucket.id, key);
        self.check_bucket_live(tenant, bucket)?;
        let db_key = keys::object(tenant, bucket.id, key.as_bytes());
        let Some(old) = self.get_record::<ObjectRecord>(Cf::Objects, &db_key)? else {
            return Ok(());
        };
        let mut batch = Batch::new();
        queue_locations(&mut batch, tenant, old.parts.iter().map(|p| &p.location))?;
        batch.delete(Cf::Objects, db_key);
        let delta = UsageDelta {
            bytes: -stored_size(&old),
            objects: -1,
        };
        let charge = self.charge(tenant, delta, &mut batch)?;
        self.meta().write(batch, Durability::Synced)?;
        charge.committed();
        Ok(())
    }

    pub fn object_reader(
        &self,
        scope: &TenantScope,
        object: &ObjectRecord,
    ) -> Result<ObjectReader> {
        ObjectReader::new(&self.shared.arrays, scope.tenant_id(), object)
    }
}

/// Bytes as a usage delta (sizes are far below `i64::MAX`).
pub(crate) fn size_delta(size: u64) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

/// The bytes an object's parts occupy, as counted in usage.
pub(crate) fn stored_size(object: &ObjectRecord) -> i64 {
    object
        .parts
        .iter()
        .map(|p| size_delta(p.size))
        .fold(0i64, i64::saturating_add)
}

/// Adds the files among `locations` to the garbage collection queue.
pub(crate) fn queue_locations<'a>(
    batch: &mut Batch,
    tenant: TenantId,
    locations: impl IntoIterator<Item = &'a DataLocation>,
) -> Result<()> {
    for location in locations {
        if let DataLocation::File { array, file } = location {
            let entry = GcEntry {
                location: FileLocation {
                    tenant,
                    array: array.clone(),
                    file: *file,
                },
                state: GcState::Queued,
            };
            batch.put(Cf::Gc, keys::gc(*file), entry.encode()?);
        }
    }
    Ok(())
}
