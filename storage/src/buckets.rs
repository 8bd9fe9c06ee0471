//! Buckets: a per-tenant namespace of names, each bound to a random id under which its
//! objects and uploads live.

use coffre_crypto::{BucketId, TenantScope};

use crate::error::{Error, Result};
use crate::keys;
use crate::meta_store::{Batch, Cf, Durability};
use crate::records::{now, BucketRecord, Record};
use crate::store::Store;

impl Store {
    /// `BucketAlreadyOwnedByYou` if this tenant has the name; other tenants' buckets of the
    /// same name are irrelevant. `NoSuchTenant` if the tenant was deleted meanwhile.
    pub fn create_bucket(
        &self,
        scope: &TenantScope,
        name: &str,
        region: &str,
    ) -> Result<BucketRecord> {
        let _guard = self.shared.locks.buckets_exclusive();
        self.live_tenant(scope.tenant_id())?;
        let key = keys::bucket(scope.tenant_id(), name);
        if self.meta().get(Cf::Buckets, &key)?.is_some() {
            return Err(Error::BucketAlreadyOwnedByYou);
        }
        let bucket = BucketRecord {
            name: name.to_owned(),
            id: BucketId::random(),
            created: now(),
            region: region.to_owned(),
            cors: Vec::new(),
        };
        self.meta()
            .put(Cf::Buckets, &key, &bucket.encode()?, Durability::Synced)?;
        Ok(bucket)
    }

    /// The tenant's buckets, sorted by name.
    pub fn list_buckets(&self, scope: &TenantScope) -> Result<Vec<BucketRecord>> {
        let prefix = keys::bucket(scope.tenant_id(), "");
        let mut cursor = self.meta().cursor(Cf::Buckets, keys::prefix_end(&prefix))?;
        cursor.seek(&prefix);
        let mut buckets = Vec::new();
        while let Some((key, value)) = cursor.next_entry()? {
            if !key.starts_with(&prefix) {
                break;
            }
            buckets.push(BucketRecord::decode(&value)?);
        }
        Ok(buckets)
    }

    pub fn bucket(&self, scope: &TenantScope, name: &str) -> Result<BucketRecord> {
        self.get_record(Cf::Buckets, &keys::bucket(scope.tenant_id(), name))?
            .ok_or(Error::NoSuchBucket)
    }

    /// `BucketNotEmpty` while any object or in-progress upload remains.
    pub fn delete_bucket(&self, scope: &TenantScope, name: &str) -> Result<()> {
        let _guard = self.shared.locks.buckets_exclusive();
        let tenant = scope.tenant_id();
        let bucket = self.bucket(scope, name)?;
        let prefix = keys::bucket_prefix(tenant, bucket.id);
        for cf in [Cf::Objects, Cf::Uploads] {
            if self.any_with_prefix(cf, &prefix)? {
                return Err(Error::BucketNotEmpty);
            }
        }
        let mut batch = Batch::new();
        batch.delete(Cf::Buckets, keys::bucket(tenant, name));
        batch.delete(Cf::CorsIndex, keys::cors_index(name, tenant));
        self.meta().write(batch, Durability::Synced)
    }

    pub(crate) fn any_with_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<bool> {
        let mut cursor = self.meta().cursor(cf, keys::prefix_end(prefix))?;
        cursor.seek(prefix);
        Ok(cursor
            .next_entry()?
            .is_some_and(|(key, _)| key.starts_with(prefix)))
    }
}
