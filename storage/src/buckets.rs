//! Buckets: a per-tenant namespace of names, each bound to a random id under which its
//! objects and uploads live.

use coffre_crypto::{BucketId, TenantScope};

use crate::error::{Error, Result};
use crate::keys;
use crate::meta_store::{Cf, Durability};
use crate::records::{now, BucketRecord, Record};
use crate::store::{live_tenant, read, Store};

impl Store {
    /// `BucketAlreadyOwnedByYou` if this tenant has the name; other tenants' buckets of the
    /// same name are irrelevant. `NoSuchTenant` if the tenant was deleted meanwhile.
    pub fn create_bucket(
        &self,
        scope: &TenantScope,
        name: &str,
        region: &str,
    ) -> Result<BucketRecord> {
        let key = keys::bucket(scope.tenant_id(), name);
        let bucket = BucketRecord {
            name: name.to_owned(),
            id: BucketId::random(),
            created: now(),
            region: region.to_owned(),
            cors: Vec::new(),
        };
        let value = bucket.encode()?;
        self.transact(Durability::Synced, |tx| {
            live_tenant(tx, scope.tenant_id())?;
            if tx.get(Cf::Buckets, &key)?.is_some() {
                return Err(Error::BucketAlreadyOwnedByYou);
            }
            tx.put(Cf::Buckets, key.clone(), value.clone());
            Ok(())
        })?;
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
        let tenant = scope.tenant_id();
        let bucket_key = keys::bucket(tenant, name);
        self.transact(Durability::Synced, |tx| {
            let bucket: BucketRecord =
                read(tx, Cf::Buckets, &bucket_key)?.ok_or(Error::NoSuchBucket)?;
            // The scans make the deletion conflict with any write into the bucket that
            // commits first; such a write, committing later, finds the bucket gone.
            let prefix = keys::bucket_prefix(tenant, bucket.id);
            for cf in [Cf::Objects, Cf::Uploads] {
                if tx.any_with_prefix(cf, &prefix)? {
                    return Err(Error::BucketNotEmpty);
                }
            }
            tx.delete(Cf::Buckets, bucket_key.clone());
            tx.delete(Cf::CorsIndex, keys::cors_index(name, tenant));
            Ok(())
        })
    }
}
