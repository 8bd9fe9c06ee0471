//! Object tags: replaced as a whole, in place, without touching the object's data, ETag or
//! modification time (as on S3, tagging is not a new version of the object).

use coffre_crypto::TenantScope;

use crate::error::{Error, Result};
use crate::keys;
use crate::meta_store::{Cf, Durability};
use crate::records::{BucketRecord, Record};
use crate::sealed_records::StoredObject;
use crate::stats::{CountIntegrity, IntegrityKind};
use crate::store::{check_bucket_live, read_for_write, Store};
use crate::usage::{record_bytes, UsageDelta};

impl Store {
    /// Makes `tags` (sorted by key, keys unique: the caller validates them) the tag set of
    /// `key`; empty removes every tag. The object's record is rewritten in one transaction
    /// with the new tag set sealed under the object's DEK and every other sealed value kept
    /// as it was. `NoSuchKey` if the object is absent; `QuotaExceeded` (nothing changed) if
    /// the larger record does not fit the tenant's byte quota.
    pub fn put_object_tags(
        &self,
        scope: &TenantScope,
        bucket: &BucketRecord,
        key: &str,
        tags: &[(String, String)],
    ) -> Result<()> {
        let tenant = scope.tenant_id();
        let db_key = keys::object(tenant, bucket.id, key.as_bytes());
        let charge = self.transact(Durability::Synced, |tx| {
            check_bucket_live(tx, tenant, bucket)?;
            let mut stored: StoredObject =
                read_for_write(tx, Cf::Objects, &db_key)?.ok_or(Error::NoSuchKey)?;
            let dek = self
                .unwrap_dek(tenant, bucket.id, key, stored.id, &stored.dek)
                .count_integrity(self.stats(), IntegrityKind::WrappedDek)?;
            let before = record_bytes(&stored.key, &stored.meta)?;
            stored.replace_tags(tags, &dek.value_key()?)?;
            // The tags count in the record's bytes: `QuotaExceeded` if they do not fit.
            let delta = UsageDelta {
                records: record_bytes(&stored.key, &stored.meta)?.saturating_sub(before),
                ..UsageDelta::default()
            };
            let charge = self.charge(tx, tenant, delta)?;
            tx.put(Cf::Objects, db_key.clone(), stored.encode()?);
            Ok(charge)
        })?;
        drop(charge);
        Ok(())
    }
}
