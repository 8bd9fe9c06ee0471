//! Multipart uploads: parts are written and superseded independently, then completion turns
//! a chosen list of them into one object in a single synced batch.
//!
//! Every call on an existing upload takes its [`UploadAddress`] (key and upload id together):
//! an upload id is only valid with the key it was created for, as on S3, and the check is
//! made here, against the stored upload, inside the transaction that acts on it.

mod completion;

pub use completion::{ChosenPart, Completion, UploadChecksum, MIN_PART_SIZE};

use coffre_crypto::{CustomerKey, Dek, ObjectId, TenantId, TenantScope};

use crate::data_writer::{Binding, WrittenData};
use crate::error::{Error, Result};
use crate::keys;
use crate::meta_store::{Cf, Durability, Tx};
use crate::objects::{check_customer_key, queue_locations, size_delta};
use crate::records::{
    now, BucketRecord, ObjectMeta, ObjectRecord, PartInfo, PartLayout, PartRecord, Record,
    UploadRecord,
};
use crate::sealed_records::{StoredObject, StoredPartRecord, StoredUpload};
use crate::stats::{CountIntegrity, IntegrityKind};
use crate::store::{check_bucket_live, read, read_for_write, Store};
use crate::usage::{record_bytes, UsageDelta};

/// A multipart upload as a request names it: the object key and the upload id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadAddress {
    key: String,
    id: ObjectId,
}

impl UploadAddress {
    /// `NoSuchUpload` unless `upload_id` is an upload id (the hex of an [`ObjectId`]).
    pub fn new(key: impl Into<String>, upload_id: &str) -> Result<Self> {
        let id = ObjectId::parse_hex(upload_id).map_err(|_| Error::NoSuchUpload)?;
        Ok(Self {
            key: key.into(),
            id,
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn upload_id(&self) -> String {
        self.id.to_hex()
    }

    pub(crate) fn id(&self) -> ObjectId {
        self.id
    }

    /// The stored upload, if it is the one this address names: `NoSuchUpload` when the id
    /// belongs to an upload of another key.
    fn check(&self, stored: StoredUpload) -> Result<StoredUpload> {
        if stored.key == self.key {
            Ok(stored)
        } else {
            Err(Error::NoSuchUpload)
        }
    }
}

impl UploadRecord {
    /// The address of this upload.
    pub fn address(&self) -> UploadAddress {
        UploadAddress {
            key: self.key.clone(),
            id: self.id,
        }
    }
}

/// The upload `address` names, read in `tx`; `NoSuchUpload` if it is absent or belongs to
/// another key.
fn read_upload(
    tx: &mut Tx<'_>,
    tenant: TenantId,
    bucket: &BucketRecord,
    address: &UploadAddress,
) -> Result<StoredUpload> {
    let key = keys::upload_by_id(tenant, bucket.id, address.id);
    address.check(read(tx, Cf::Uploads, &key)?.ok_or(Error::NoSuchUpload)?)
}

impl Store {
    /// Starts an upload with its own DEK, which its parts are sealed under and the object
    /// keeps; `meta` holds the headers given now (size and etag come at completion). With a
    /// `customer_key` (SSE-C) every part must come with that key, and the object needs it.
    /// The upload counts among the tenant's uploads in progress until it is completed or
    /// aborted: `QuotaExceeded` (nothing recorded) past the tenant's `uploads` quota.
    pub fn create_upload(
        &self,
        scope: &TenantScope,
        bucket: &BucketRecord,
        key: &str,
        meta: ObjectMeta,
        customer_key: Option<&CustomerKey>,
    ) -> Result<UploadRecord> {
        let tenant = scope.tenant_id();
        let id = ObjectId::random();
        let dek = Dek::generate();
        let customer_key_check = customer_key
            .map(|k| dek.customer_key_check(k))
            .transpose()?;
        let value_key = dek.value_key()?;
        let (upload, charge) = self.transact(Durability::Synced, |tx| {
            check_bucket_live(tx, tenant, bucket)?;
            // Before the upload's entries are written: a first count of the tenant's
            // uploads must not see this one.
            let uploads_found = self.count_uploads_once(tx, tenant)?;
            let upload = UploadRecord {
                id,
                key: key.to_owned(),
                initiated: now(),
                meta: meta.clone(),
                dek: self.wrap_dek_in(tx, (tenant, bucket.id, key, id), &dek)?,
                customer_key_check,
            };
            let sealed = StoredUpload::seal(&upload, &value_key)?;
            let delta = UsageDelta {
                uploads: 1,
                uploads_found,
                records: record_bytes(key, &sealed.meta)?,
                ..UsageDelta::default()
            };
            let charge = self.charge(tx, tenant, delta)?;
            let value = sealed.encode()?;
            tx.put(
                Cf::Uploads,
                keys::upload_by_id(tenant, bucket.id, id),
                value.clone(),
            );
            tx.put(
                Cf::Uploads,
                keys::upload_by_key(tenant, bucket.id, key.as_bytes(), id),
                value,
            );
            Ok((upload, charge))
        })?;
        drop(charge);
        Ok(upload)
    }

    /// The upload with its metadata decrypted. `NoSuchUpload` if absent or an upload of
    /// another key.
    pub fn upload(
        &self,
        scope: &TenantScope,
        bucket: &BucketRecord,
        address: &UploadAddress,
    ) -> Result<UploadRecord> {
        let tenant = scope.tenant_id();
        let stored = self.get_upload(tenant, bucket, address)?;
        let dek = self.stored_upload_dek(tenant, bucket, address.id, &stored)?;
        stored
            .open(&dek.value_key()?)
            .count_integrity(self.stats(), IntegrityKind::SealedValue)
    }

    fn get_upload(
        &self,
        tenant: TenantId,
        bucket: &BucketRecord,
        address: &UploadAddress,
    ) -> Result<StoredUpload> {
        let key = keys::upload_by_id(tenant, bucket.id, address.id);
        address.check(
            self.get_record(Cf::Uploads, &key)?
                .ok_or(Error::NoSuchUpload)?,
        )
    }

    /// The DEK of the upload (its parts' and its object's), for a part sent with
    /// `customer_key`: `NoSuchUpload` if absent, the customer key errors if the key is not
    /// the one the upload was created with (or none when it had none).
    pub(crate) fn upload_dek(
        &self,
        tenant: TenantId,
        bucket: &BucketRecord,
        address: &UploadAddress,
        customer_key: Option<&CustomerKey>,
    ) -> Result<Dek> {
        let stored = self.get_upload(tenant, bucket, address)?;
        let dek = self.stored_upload_dek(tenant, bucket, address.id, &stored)?;
        check_customer_key(&dek, stored.customer_key_check.as_ref(), customer_key)?;
        Ok(dek)
    }

    /// Whether `customer_key` fits the upload: its key if it was created with one (SSE-C),
    /// none otherwise (the customer key errors, as for a part).
    pub fn check_upload_customer_key(
        &self,
        scope: &TenantScope,
        bucket: &BucketRecord,
        address: &UploadAddress,
        customer_key: Option<&CustomerKey>,
    ) -> Result<()> {
        self.upload_dek(scope.tenant_id(), bucket, address, customer_key)
            .map(drop)
    }

    pub(crate) fn stored_upload_dek(
        &self,
        tenant: TenantId,
        bucket: &BucketRecord,
        id: ObjectId,
        stored: &StoredUpload,
    ) -> Result<Dek> {
        self.unwrap_dek(tenant, bucket.id, &stored.key, id, &stored.dek)
            .count_integrity(self.stats(), IntegrityKind::WrappedDek)
    }

    /// Records a part, superseding (and queueing for collection) any earlier part with the
    /// same number. The recorded size is the written data's, and counts in the tenant's
    /// usage from now on: `QuotaExceeded` (and the data removed) if it does not fit. `data`
    /// must come from a writer for this very part (`TargetMismatch` otherwise).
    pub fn put_part(
        &self,
        scope: &TenantScope,
        bucket: &BucketRecord,
        address: &UploadAddress,
        part_number: u32,
        part: PartInfo,
        data: WrittenData,
    ) -> Result<()> {
        let tenant = scope.tenant_id();
        let id = address.id;
        let binding = Binding::Part {
            upload: id,
            part_number,
        };
        let data = data.into_commit(tenant, bucket.id, binding)?;
        let size = data.size;
        let pending = data.pending;
        let record = PartRecord {
            part_number,
            etag: part.etag,
            size,
            last_modified: now(),
            checksums: part.checksums,
            location: data.location,
            nonce: data.nonce,
        };
        let part_key = keys::part(tenant, bucket.id, id, part_number);
        let charge = self.transact(Durability::Synced, |tx| {
            if let Some(pending) = &pending {
                pending.commit_in(tx)?;
            }
            check_bucket_live(tx, tenant, bucket)?;
            let upload = read_upload(tx, tenant, bucket, address)?;
            // Sealed with the upload's customer key, or without one if it has none.
            if data.customer_key_check != upload.customer_key_check {
                return Err(Error::TargetMismatch);
            }
            let sealed = StoredPartRecord::seal(&record, &data.dek.value_key()?, &upload.key)?;
            let mut bytes = size_delta(size);
            if let Some(old) = read_for_write::<StoredPartRecord>(tx, Cf::Parts, &part_key)? {
                queue_locations(tx, tenant, [&old.location])?;
                bytes = bytes.saturating_sub(size_delta(old.size));
            }
            let delta = UsageDelta {
                bytes,
                ..UsageDelta::default()
            };
            let charge = self.charge(tx, tenant, delta)?;
            tx.put(Cf::Parts, part_key.clone(), sealed.encode()?);
            Ok(charge)
        })?;
        drop(charge);
        if let Some(pending) = pending {
            pending.committed();
        }
        Ok(())
    }

    /// Parts after `part_number_marker`, at most `max_parts`, and whether more follow; their
    /// ETags and checksums decrypted.
    pub fn list_parts(
        &self,
        scope: &TenantScope,
        bucket: &BucketRecord,
        address: &UploadAddress,
        part_number_marker: u32,
        max_parts: usize,
    ) -> Result<(Vec<PartRecord>, bool)> {
        let tenant = scope.tenant_id();
        let id = address.id;
        let upload = self.get_upload(tenant, bucket, address)?;
        let Some(first) = part_number_marker.checked_add(1) else {
            return Ok((Vec::new(), false));
        };
        if max_parts == 0 {
            return Ok((Vec::new(), false));
        }
        let mut parts =
            self.committed_parts(tenant, bucket, id, first, max_parts.saturating_add(1))?;
        let truncated = parts.len() > max_parts;
        parts.truncate(max_parts);
        let value_key = self
            .stored_upload_dek(tenant, bucket, id, &upload)?
            .value_key()?;
        let parts = parts
            .into_iter()
            .map(|p| p.open(&value_key, &upload.key))
            .collect::<Result<_>>()
            .count_integrity(self.stats(), IntegrityKind::SealedValue)?;
        Ok((parts, truncated))
    }

    /// Up to `limit` committed parts numbered `first` and above, in order, outside any
    /// transaction.
    fn committed_parts(
        &self,
        tenant: TenantId,
        bucket: &BucketRecord,
        upload: ObjectId,
        first: u32,
        limit: usize,
    ) -> Result<Vec<StoredPartRecord>> {
        let prefix = keys::parts_prefix(tenant, bucket.id, upload);
        let mut cursor = self.meta().cursor(Cf::Parts, keys::prefix_end(&prefix))?;
        cursor.seek(&keys::part(tenant, bucket.id, upload, first));
        let mut parts = Vec::new();
        while parts.len() < limit {
            match cursor.next_entry()? {
                Some((key, value)) if key.starts_with(&prefix) => {
                    parts.push(StoredPartRecord::decode(&value)?)
                }
                _ => break,
            }
        }
        Ok(parts)
    }

    /// Completes the upload with the parts `completion` chooses, checked against the parts
    /// as stored (see [`Completion`]): in one transaction, the object is written with the
    /// multipart ETag and combined checksum of those parts, the upload and its parts are
    /// removed, and the data of unchosen parts and of the replaced object is queued.
    /// `InvalidPart`, `InvalidPartOrder`, `EntityTooSmall`, `BadDigest` as S3 answers them;
    /// `QuotaExceeded` (nothing changed) if the tenant has no room for one more object.
    pub fn complete_upload(
        &self,
        scope: &TenantScope,
        bucket: &BucketRecord,
        address: &UploadAddress,
        completion: &Completion,
    ) -> Result<ObjectRecord> {
        let tenant = scope.tenant_id();
        let id = address.id;
        let min_part_size = self.shared.min_part_size;
        let (record, charge) = self.transact(Durability::Synced, |tx| {
            let stored_upload = read_upload(tx, tenant, bucket, address)?;
            check_bucket_live(tx, tenant, bucket)?;
            let upload_record_bytes = record_bytes(&stored_upload.key, &stored_upload.meta)?;
            let uploads_found = self.count_uploads_once(tx, tenant)?;
            let dek = self.stored_upload_dek(tenant, bucket, id, &stored_upload)?;
            let value_key = dek.value_key()?;
            let upload = stored_upload
                .open(&value_key)
                .count_integrity(self.stats(), IntegrityKind::SealedValue)?;
            let parts = scan_parts(tx, tenant, bucket, id, 0, usize::MAX)?
                .into_iter()
                .map(|p| p.open(&value_key, &upload.key))
                .collect::<Result<Vec<_>>>()
                .count_integrity(self.stats(), IntegrityKind::SealedValue)?;
            let (chosen_parts, meta) = completion.resolve(&upload, &parts, min_part_size)?;

            remove_upload(
                tx,
                tenant,
                bucket,
                id,
                &upload.key,
                parts.iter().map(|p| p.part_number),
            );
            let unchosen: Vec<&PartRecord> = parts
                .iter()
                .filter(|p| !chosen_parts.iter().any(|c| c.part_number == p.part_number))
                .collect();
            queue_locations(tx, tenant, unchosen.iter().map(|p| &p.location))?;
            // The chosen parts' bytes were counted when they were uploaded.
            let unchosen_bytes = unchosen
                .iter()
                .map(|p| size_delta(p.size))
                .fold(0i64, i64::saturating_add);

            let record = ObjectRecord {
                key: upload.key.clone(),
                // The upload's id, to which its parts' data and its wrapped DEK are bound.
                id,
                meta,
                last_modified: now(),
                parts: chosen_parts
                    .into_iter()
                    .map(|p| PartLayout {
                        part_number: p.part_number,
                        size: p.size,
                        location: p.location,
                        checksums: p.checksums,
                        nonce: p.nonce,
                    })
                    .collect(),
                bucket: bucket.id,
                dek: upload.dek.clone(),
                customer_key_check: upload.customer_key_check,
                multipart: true,
            };
            let stored = StoredObject::seal(&record, &value_key)?;
            // One charge for the object and the upload it replaces: a completion that
            // stores no more than the upload held passes a full quota.
            let released = UsageDelta {
                bytes: -unchosen_bytes,
                records: -upload_record_bytes,
                uploads: -1,
                uploads_found,
                ..UsageDelta::default()
            };
            let charge = self.commit_object(tx, tenant, bucket, &stored, released)?;
            Ok((record, charge))
        })?;
        drop(charge);
        Ok(record)
    }

    /// Removes the upload (no longer counted among the tenant's uploads in progress) and
    /// queues its parts' data. `NoSuchUpload` if absent.
    pub fn abort_upload(
        &self,
        scope: &TenantScope,
        bucket: &BucketRecord,
        address: &UploadAddress,
    ) -> Result<()> {
        let tenant = scope.tenant_id();
        let id = address.id;
        let charge = self.transact(Durability::Synced, |tx| {
            let upload = read_upload(tx, tenant, bucket, address)?;
            check_bucket_live(tx, tenant, bucket)?;
            let uploads_found = self.count_uploads_once(tx, tenant)?;
            let parts = scan_parts(tx, tenant, bucket, id, 0, usize::MAX)?;
            remove_upload(
                tx,
                tenant,
                bucket,
                id,
                &upload.key,
                parts.iter().map(|p| p.part_number),
            );
            queue_locations(tx, tenant, parts.iter().map(|p| &p.location))?;
            let bytes = parts
                .iter()
                .map(|p| size_delta(p.size))
                .fold(0i64, i64::saturating_add);
            let delta = UsageDelta {
                bytes: -bytes,
                records: -record_bytes(&upload.key, &upload.meta)?,
                uploads: -1,
                uploads_found,
                ..UsageDelta::default()
            };
            self.charge(tx, tenant, delta)
        })?;
        drop(charge);
        Ok(())
    }
}

/// The upload's parts from number `first` on, at most `limit`, read in `tx`.
fn scan_parts(
    tx: &mut Tx<'_>,
    tenant: TenantId,
    bucket: &BucketRecord,
    upload: ObjectId,
    first: u32,
    limit: usize,
) -> Result<Vec<StoredPartRecord>> {
    let prefix = keys::parts_prefix(tenant, bucket.id, upload);
    let end = keys::prefix_end(&prefix);
    tx.scan(
        Cf::Parts,
        &keys::part(tenant, bucket.id, upload, first),
        end.as_deref(),
        limit,
    )?
    .iter()
    .map(|(_, value)| StoredPartRecord::decode(value))
    .collect()
}

/// Deletes the upload `id` of `key` (its record and its listing entry) and its parts.
fn remove_upload(
    tx: &mut Tx<'_>,
    tenant: TenantId,
    bucket: &BucketRecord,
    id: ObjectId,
    key: &str,
    part_numbers: impl IntoIterator<Item = u32>,
) {
    tx.delete(Cf::Uploads, keys::upload_by_id(tenant, bucket.id, id));
    tx.delete(
        Cf::Uploads,
        keys::upload_by_key(tenant, bucket.id, key.as_bytes(), id),
    );
    for part_number in part_numbers {
        tx.delete(Cf::Parts, keys::part(tenant, bucket.id, id, part_number));
    }
}
