//! Copying a whole object within a tenant without re-encrypting it: the copy keeps its
//! source's DEK (wrapped again for the copy's own tenant, bucket, key and id, never the
//! source's wrapped form reused), its part layout and its data, and seals its own values.
//! Its data files are shared with the source and counted (see `data_refs`).
//!
//! A copy that changes the data key (a customer key added, changed or dropped) cannot share:
//! the gateway re-encrypts it through [`Store::data_writer`] and [`Store::put_object`].

use coffre_crypto::{CustomerKey, ObjectId, TenantScope};

use crate::error::Result;
use crate::keys;
use crate::meta_store::{Cf, Durability};
use crate::objects::{check_customer_key, size_delta};
use crate::records::{now, BucketRecord, ObjectMeta, ObjectRecord};
use crate::sealed_records::StoredObject;
use crate::stats::{CountIntegrity, IntegrityKind};
use crate::store::{check_bucket_live, read, Store};

impl Store {
    /// Whether a copy of `source` stored under `customer_key` keeps the source's data key,
    /// so that [`Store::copy_object`] can share its data: neither has a customer key, or
    /// both the same one. Comparing customer keys unwraps the source's DEK.
    pub fn copy_keeps_data_key(
        &self,
        scope: &TenantScope,
        source: &ObjectRecord,
        customer_key: Option<&CustomerKey>,
    ) -> Result<bool> {
        match (source.customer_key_check.as_ref(), customer_key) {
            (None, None) => Ok(true),
            (Some(check), Some(key)) => {
                let dek = self
                    .unwrap_dek(
                        scope.tenant_id(),
                        source.bucket,
                        &source.key,
                        source.id,
                        &source.dek,
                    )
                    .count_integrity(self.stats(), IntegrityKind::WrappedDek)?;
                Ok(dek.matches_customer_key(key, check)?)
            }
            _ => Ok(false),
        }
    }

    /// Makes `key` in `bucket` a copy of `source` (as read with [`Store::object`]) that
    /// shares its data, with `meta` as its metadata (its size is the source's). The copy
    /// is charged its full size, as any object. `customer_key` is the one the copy is
    /// stored under: it must keep the source's data key (see [`Store::copy_keeps_data_key`];
    /// else the `CustomerKey*` errors).
    ///
    /// `Ok(None)`, with nothing stored, when the source is no longer the version read (it
    /// was overwritten or deleted since): read it again and decide anew.
    pub fn copy_object(
        &self,
        scope: &TenantScope,
        source: &ObjectRecord,
        bucket: &BucketRecord,
        key: &str,
        mut meta: ObjectMeta,
        customer_key: Option<&CustomerKey>,
    ) -> Result<Option<ObjectRecord>> {
        let tenant = scope.tenant_id();
        let source_db_key = keys::object(tenant, source.bucket, source.key.as_bytes());
        meta.size = source.meta.size;
        let size = meta.size;
        let id = ObjectId::random();
        let outcome = self.transact(Durability::Synced, |tx| {
            check_bucket_live(tx, tenant, bucket)?;
            // Read in the transaction: the source deleted or overwritten before the copy
            // commits conflicts, so its references cannot go first (see `data_refs`).
            let Some(current) = read::<StoredObject>(tx, Cf::Objects, &source_db_key)? else {
                return Ok(None);
            };
            // A version's id never changes, nor do its parts: same id, same data.
            if current.id != source.id {
                return Ok(None);
            }
            let dek = self
                .unwrap_dek(tenant, source.bucket, &source.key, current.id, &current.dek)
                .count_integrity(self.stats(), IntegrityKind::WrappedDek)?;
            check_customer_key(&dek, current.customer_key_check.as_ref(), customer_key)?;
            let record = ObjectRecord {
                key: key.to_owned(),
                id,
                meta: meta.clone(),
                last_modified: now(),
                parts: source.parts.clone(),
                bucket: bucket.id,
                dek: self.wrap_dek_in(tx, (tenant, bucket.id, key, id), &dek)?,
                customer_key_check: current.customer_key_check,
                // A copy is one part to clients, whatever the layout it shares.
                multipart: false,
            };
            let stored = StoredObject::seal(&record, &dek.value_key()?)?;
            let charge = self.commit_record(tx, tenant, bucket, &stored, size_delta(size), true)?;
            Ok(Some((record, charge)))
        })?;
        let Some((record, charge)) = outcome else {
            return Ok(None);
        };
        drop(charge);
        Ok(Some(record))
    }
}
