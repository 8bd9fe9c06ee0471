//! Objects: writing, reading, overwriting and deleting them. Every change is one
//! transaction, and data it makes unreachable is queued for garbage collection in it
//! (data shared with a copy is released, see `data_refs`).

use coffre_crypto::{CustomerKey, CustomerKeyCheck, Dek, ObjectId, TenantId, TenantScope};

use crate::data_writer::{Binding, DataWriter, WriteTarget, WrittenData};
use crate::error::{Error, Result};
use crate::keys;
use crate::meta_store::{Cf, Durability, Tx};
use crate::object_reader::ObjectReader;
use crate::records::{
    now, BucketRecord, DataLocation, FileLocation, GcEntry, GcState, ObjectMeta, ObjectRecord,
    PartLayout, Record,
};
use crate::sealed_records::StoredObject;
use crate::stats::{CountIntegrity, IntegrityKind};
use crate::store::{check_bucket_live, read_for_write, Store};
use crate::usage::{record_bytes, Charge, UsageDelta};

impl Store {
    /// A writer for one part's data: a single PUT's body (a fresh DEK) or one part of a
    /// multipart upload (the upload's DEK; `NoSuchUpload` if it is gone). The data is
    /// sealed as it is written; its file, if it needs one, goes to an array the tenant's
    /// placement allows. With `customer_key` the data is sealed under it too (SSE-C); a part
    /// must come with the key its upload was created with, or with none if it had none
    /// (`CustomerKeyRequired`, `CustomerKeyMismatch`, `CustomerKeyNotApplicable`).
    pub fn data_writer(
        &self,
        scope: &TenantScope,
        bucket: &BucketRecord,
        target: WriteTarget,
        customer_key: Option<&CustomerKey>,
    ) -> Result<DataWriter> {
        let tenant_id = scope.tenant_id();
        let tenant = self.live_tenant(tenant_id)?;
        let (binding, dek) = match target {
            WriteTarget::Object => (Binding::Object, Dek::generate()),
            WriteTarget::Part {
                upload,
                part_number,
            } => {
                let dek = self.upload_dek(tenant_id, bucket, &upload, customer_key)?;
                (
                    Binding::Part {
                        upload: upload.id(),
                        part_number,
                    },
                    dek,
                )
            }
        };
        DataWriter::new(
            self.shared.clone(),
            tenant_id,
            bucket.id,
            binding,
            dek,
            customer_key,
            tenant.placement,
        )
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
        let data = data.into_commit(tenant, bucket.id, Binding::Object)?;
        let size = data.size;
        let id = ObjectId::random();
        let value_key = data.dek.value_key()?;
        let pending = data.pending;
        let (charge, record) = self.transact(Durability::Synced, |tx| {
            if let Some(pending) = &pending {
                pending.commit_in(tx)?;
            }
            check_bucket_live(tx, tenant, bucket)?;
            let record = ObjectRecord {
                key: key.to_owned(),
                id,
                meta: meta.clone(),
                last_modified: now(),
                parts: vec![PartLayout {
                    part_number: Binding::Object.part_number(),
                    size,
                    location: data.location.clone(),
                    checksums: Vec::new(),
                    nonce: data.nonce,
                }],
                bucket: bucket.id,
                dek: self.wrap_dek_in(tx, (tenant, bucket.id, key, id), &data.dek)?,
                customer_key_check: data.customer_key_check,
                multipart: false,
            };
            let stored = StoredObject::seal(&record, &value_key)?;
            let added = UsageDelta {
                bytes: size_delta(size),
                ..UsageDelta::default()
            };
            let charge = self.commit_object(tx, tenant, bucket, &stored, added)?;
            Ok((charge, record))
        })?;
        drop(charge);
        if let Some(pending) = pending {
            pending.committed();
        }
        Ok(record)
    }

    /// Writes `record` in `tx`, releasing the data of the version it replaces and charging
    /// the tenant's usage: `added` (data newly counted with this transaction, and what the
    /// transaction releases otherwise, such as a completed upload), plus the record's bytes
    /// (see [`record_bytes`]), less the replaced version's size and record bytes, and one
    /// object unless one is replaced. The caller has checked in `tx` that the bucket is
    /// live; the returned charge is held until the commit is done.
    pub(crate) fn commit_object(
        &self,
        tx: &mut Tx<'_>,
        tenant: TenantId,
        bucket: &BucketRecord,
        record: &StoredObject,
        added: UsageDelta,
    ) -> Result<Charge<'_>> {
        self.commit_with(tx, tenant, bucket, record, added, false)
    }

    /// [`Store::commit_object`] of `bytes_added`; with `shares_data`, `record`'s data files
    /// are those of a live record, and each gains a reference (see `data_refs`). The
    /// caller then also has read that record in `tx` and checked that it is unchanged.
    pub(crate) fn commit_record(
        &self,
        tx: &mut Tx<'_>,
        tenant: TenantId,
        bucket: &BucketRecord,
        record: &StoredObject,
        bytes_added: i64,
        shares_data: bool,
    ) -> Result<Charge<'_>> {
        let added = UsageDelta {
            bytes: bytes_added,
            ..UsageDelta::default()
        };
        self.commit_with(tx, tenant, bucket, record, added, shares_data)
    }

    fn commit_with(
        &self,
        tx: &mut Tx<'_>,
        tenant: TenantId,
        bucket: &BucketRecord,
        record: &StoredObject,
        added: UsageDelta,
        shares_data: bool,
    ) -> Result<Charge<'_>> {
        let db_key = keys::object(tenant, bucket.id, record.key.as_bytes());
        let mut delta = UsageDelta {
            objects: added.objects.saturating_add(1),
            records: added
                .records
                .saturating_add(record_bytes(&record.key, &record.meta)?),
            ..added
        };
        let gained = record.parts.iter().filter(|_| shares_data);
        let old = read_for_write::<StoredObject>(tx, Cf::Objects, &db_key)?;
        let released = old.iter().flat_map(|old| old.parts.iter());
        self.change_refs(
            tx,
            tenant,
            gained.map(|p| &p.location),
            released.map(|p| &p.location),
        )?;
        if let Some(old) = &old {
            delta.bytes = delta.bytes.saturating_sub(stored_size(old));
            delta.objects = added.objects;
            delta.records = delta
                .records
                .saturating_sub(record_bytes(&old.key, &old.meta)?);
        }
        let charge = self.charge(tx, tenant, delta)?;
        tx.put(Cf::Objects, db_key, record.encode()?);
        Ok(charge)
    }

    /// The object with its metadata decrypted. `NoSuchKey` if absent, `Integrity` if its
    /// record does not open under the tenant's keys.
    pub fn object(
        &self,
        scope: &TenantScope,
        bucket: &BucketRecord,
        key: &str,
    ) -> Result<ObjectRecord> {
        let tenant = scope.tenant_id();
        let stored: StoredObject = self
            .get_record(
                Cf::Objects,
                &keys::object(tenant, bucket.id, key.as_bytes()),
            )?
            .ok_or(Error::NoSuchKey)?;
        // Bound to the key asked for: a record moved under another key does not open.
        let stats = self.stats();
        let dek = self
            .unwrap_dek(tenant, bucket.id, key, stored.id, &stored.dek)
            .count_integrity(stats, IntegrityKind::WrappedDek)?;
        stored
            .open(bucket.id, &dek.value_key()?)
            .count_integrity(stats, IntegrityKind::SealedValue)
    }

    /// Removes `key`; succeeds when it is already absent, as S3 does.
    pub fn delete_object(
        &self,
        scope: &TenantScope,
        bucket: &BucketRecord,
        key: &str,
    ) -> Result<()> {
        let tenant = scope.tenant_id();
        let db_key = keys::object(tenant, bucket.id, key.as_bytes());
        let charge = self.transact(Durability::Synced, |tx| {
            check_bucket_live(tx, tenant, bucket)?;
            let Some(old) = read_for_write::<StoredObject>(tx, Cf::Objects, &db_key)? else {
                return Ok(None);
            };
            self.change_refs(tx, tenant, [], old.parts.iter().map(|p| &p.location))?;
            tx.delete(Cf::Objects, db_key.clone());
            let delta = UsageDelta {
                bytes: -stored_size(&old),
                objects: -1,
                records: -record_bytes(&old.key, &old.meta)?,
                ..UsageDelta::default()
            };
            self.charge(tx, tenant, delta).map(Some)
        })?;
        drop(charge);
        Ok(())
    }

    /// A reader that decrypts `object`'s data. `Integrity` if the object's DEK does not
    /// open for this tenant; for an SSE-C object, the errors of
    /// [`Store::check_customer_key`] unless `customer_key` is its key.
    pub fn object_reader(
        &self,
        scope: &TenantScope,
        object: &ObjectRecord,
        customer_key: Option<&CustomerKey>,
    ) -> Result<ObjectReader> {
        let tenant = scope.tenant_id();
        let dek = self
            .unwrap_dek(tenant, object.bucket, &object.key, object.id, &object.dek)
            .count_integrity(self.stats(), IntegrityKind::WrappedDek)?;
        check_customer_key(&dek, object.customer_key_check.as_ref(), customer_key)?;
        let data_dek = match customer_key {
            Some(key) => dek.with_customer_key(key)?,
            None => dek,
        };
        let stats = self.shared.stats.clone();
        ObjectReader::new(&self.shared.arrays, stats, tenant, object, &data_dek)
    }

    /// Whether `customer_key` may read `object`, as S3 decides it for SSE-C: an SSE-C object
    /// needs its key (`CustomerKeyRequired`, `CustomerKeyMismatch`), any other refuses one
    /// (`CustomerKeyNotApplicable`). Checking a given key unwraps the object's DEK.
    pub fn check_customer_key(
        &self,
        scope: &TenantScope,
        object: &ObjectRecord,
        customer_key: Option<&CustomerKey>,
    ) -> Result<()> {
        check_customer_key_given(object.customer_key_check.as_ref(), customer_key)?;
        if customer_key.is_none() {
            return Ok(());
        }
        let dek = self
            .unwrap_dek(
                scope.tenant_id(),
                object.bucket,
                &object.key,
                object.id,
                &object.dek,
            )
            .count_integrity(self.stats(), IntegrityKind::WrappedDek)?;
        check_customer_key(&dek, object.customer_key_check.as_ref(), customer_key)
    }
}

/// The checks of [`check_customer_key`] that need no key material: a key is given exactly
/// when one is required.
fn check_customer_key_given(
    check: Option<&CustomerKeyCheck>,
    given: Option<&CustomerKey>,
) -> Result<()> {
    match (check, given) {
        (Some(_), None) => Err(Error::CustomerKeyRequired),
        (None, Some(_)) => Err(Error::CustomerKeyNotApplicable),
        _ => Ok(()),
    }
}

/// Whether `given` is the customer key that `check` (made under `dek`) recognises, or both
/// are absent.
pub(crate) fn check_customer_key(
    dek: &Dek,
    check: Option<&CustomerKeyCheck>,
    given: Option<&CustomerKey>,
) -> Result<()> {
    check_customer_key_given(check, given)?;
    match (check, given) {
        (Some(check), Some(key)) if !dek.matches_customer_key(key, check)? => {
            Err(Error::CustomerKeyMismatch)
        }
        _ => Ok(()),
    }
}

/// Bytes as a usage delta (sizes are far below `i64::MAX`).
pub(crate) fn size_delta(size: u64) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

/// The bytes an object's parts occupy, as counted in usage.
pub(crate) fn stored_size(object: &StoredObject) -> i64 {
    object
        .parts
        .iter()
        .map(|p| size_delta(p.size))
        .fold(0i64, i64::saturating_add)
}

/// Adds the files among `locations` to the garbage collection queue. For files that no
/// other record can share: parts of uploads, or see `Store::change_refs`.
pub(crate) fn queue_locations<'a>(
    tx: &mut Tx<'_>,
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
            tx.put(Cf::Gc, keys::gc(*file), entry.encode()?);
        }
    }
    Ok(())
}
