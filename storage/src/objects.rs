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

impl Store {
    /// A writer for one part's data (a single PUT's body or one multipart part).
    pub fn data_writer(&self, scope: &TenantScope, _bucket: &BucketRecord) -> Result<DataWriter> {
        Ok(DataWriter::new(self.shared.clone(), scope.tenant_id()))
    }

    /// Makes `data` the content of `key`, replacing any previous version.
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
            }],
        };
        let mut batch = Batch::new();
        if let Some(pending) = &pending {
            pending.commit_in(&mut batch);
        }
        let _bucket_guard = self.shared.locks.buckets_shared();
        let _key_guard = self.shared.locks.object(tenant, bucket.id, key);
        self.check_bucket_live(tenant, bucket)?;
        self.commit_object(tenant, bucket, &record, batch)?;
        if let Some(pending) = pending {
            pending.committed();
        }
        Ok(record)
    }

    /// Writes `record` with the rest of `batch`, queueing the data of the version it
    /// replaces. The caller holds the bucket lock (shared) and the key's lock, and has
    /// checked that the bucket is live.
    pub(crate) fn commit_object(
        &self,
        tenant: TenantId,
        bucket: &BucketRecord,
        record: &ObjectRecord,
        mut batch: Batch,
    ) -> Result<()> {
        let db_key = keys::object(tenant, bucket.id, record.key.as_bytes());
        if let Some(old) = self.get_record::<ObjectRecord>(Cf::Objects, &db_key)? {
            queue_locations(&mut batch, tenant, old.parts.iter().map(|p| &p.location))?;
        }
        batch.put(Cf::Objects, db_key, record.encode()?);
        self.meta().write(batch, Durability::Synced)
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
        let _key_guard = self.shared.locks.object(tenant, bucket.id, key);
        let db_key = keys::object(tenant, bucket.id, key.as_bytes());
        let Some(old) = self.get_record::<ObjectRecord>(Cf::Objects, &db_key)? else {
            return Ok(());
        };
        let mut batch = Batch::new();
        queue_locations(&mut batch, tenant, old.parts.iter().map(|p| &p.location))?;
        batch.delete(Cf::Objects, db_key);
        self.meta().write(batch, Durability::Synced)
    }

    pub fn object_reader(
        &self,
        scope: &TenantScope,
        object: &ObjectRecord,
    ) -> Result<ObjectReader> {
        ObjectReader::new(&self.shared.arrays, scope.tenant_id(), object)
    }
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
