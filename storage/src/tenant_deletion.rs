//! Deleting a tenant: first, in one synced batch, its keys go, its name is freed and its
//! key-encryption keys are destroyed, so nothing of it is reachable or readable any more;
//! its tenant keys in the HSM (`tenant_keys_in_hsm`) are destroyed next; then its buckets, objects, uploads and parts are removed in bounded batches and its data
//! files queued for garbage collection. A crash in between leaves the tenant in the
//! `Deleting` state, which [`Store::resume_tenant_deletions`] finishes.

use coffre_crypto::{AdminScope, MaintenanceScope, TenantId};

use crate::error::{Error, Result};
use crate::keys;
use crate::meta_store::{Batch, Cf, Durability};
use crate::objects::queue_locations;
use crate::records::{BucketRecord, Record, TenantNameRecord, TenantRecord, TenantState};
use crate::sealed_records::{StoredObject, StoredPartRecord};
use crate::store::Store;

/// Records removed per batch while purging a tenant.
const PURGE_BATCH: usize = 1000;

impl Store {
    /// Deletes a tenant. Without `force`, `TenantNotEmpty` while it has any bucket; with it,
    /// everything it stores goes. Its keys stop working when the first batch is written,
    /// before this returns.
    pub fn delete_tenant(&self, admin: &AdminScope, id: TenantId, force: bool) -> Result<()> {
        {
            let _admin_guard = self.shared.locks.admin();
            // Exclusive: no bucket appears between the emptiness check and the state change.
            let _bucket_guard = self.shared.locks.buckets_exclusive();
            let mut tenant = self.existing_tenant(admin, id)?;
            let tenant_prefix = keys::tenant(id);
            if !force && self.any_with_prefix(Cf::Buckets, &tenant_prefix)? {
                return Err(Error::TenantNotEmpty);
            }
            let mut batch = Batch::new();
            for (key, _) in self.access_keys_of(id)? {
                batch.delete(Cf::AccessKeys, keys::access_key(key.as_str()));
            }
            let name_key = keys::tenant_name(&tenant.name);
            let named = self.get_record::<TenantNameRecord>(Cf::TenantNames, &name_key)?;
            if named.is_some_and(|n| n.tenant == id) {
                batch.delete(Cf::TenantNames, name_key);
            }
            tenant.state = TenantState::Deleting;
            // The tenant's KEKs go in the batch that marks it deleted (crypto-shredding).
            self.shred_tenant_keys(tenant, batch)?;
        }
        // The record says `Deleting` from now on, so a failure here (an HSM outage) is
        // retried by `resume_tenant_deletions` at the next start.
        self.destroy_hsm_tenant_keys(id, None)?;
        self.purge_shredded_keys()?;
        tracing::info!(tenant = %id, force, "tenant deleted; purging its records");
        self.purge_tenant(id)
    }

    /// Finishes the deletions a crash interrupted. Returns how many tenants were purged.
    pub fn resume_tenant_deletions(&self, maint: &MaintenanceScope) -> Result<usize> {
        let mut deleting = Vec::new();
        let mut cursor = self.meta().cursor(Cf::Tenants, None)?;
        cursor.seek(&[]);
        while let Some((_, value)) = cursor.next_entry()? {
            let tenant = TenantRecord::decode(&value)?;
            if tenant.state == TenantState::Deleting {
                deleting.push(tenant.id);
            }
        }
        drop(cursor);
        if !deleting.is_empty() {
            // A crash may have come between the destruction of the keys and the purge of
            // their stale copies.
            self.purge_shredded_keys()?;
        }
        for id in &deleting {
            tracing::info!(task = maint.task(), tenant = %id, "resuming a tenant deletion");
            self.destroy_hsm_tenant_keys(*id, None)?;
            self.purge_tenant(*id)?;
        }
        Ok(deleting.len())
    }

    fn purge_tenant(&self, id: TenantId) -> Result<()> {
        let prefix = keys::tenant(id);
        {
            // Once its buckets are gone no write can land under the tenant: every write
            // checks, under the shared bucket lock, that its bucket is live.
            let _bucket_guard = self.shared.locks.buckets_exclusive();
            self.purge_prefix(Cf::Buckets, &prefix, |batch, value| {
                let bucket = BucketRecord::decode(value)?;
                batch.delete(Cf::CorsIndex, keys::cors_index(&bucket.name, id));
                Ok(())
            })?;
        }
        self.purge_prefix(Cf::Objects, &prefix, |batch, value| {
            let object = StoredObject::decode(value)?;
            self.change_refs(batch, id, [], object.parts.iter().map(|p| &p.location))
        })?;
        self.purge_prefix(Cf::Parts, &prefix, |batch, value| {
            let part = StoredPartRecord::decode(value)?;
            queue_locations(batch, id, [&part.location])
        })?;
        self.purge_prefix(Cf::Uploads, &prefix, |_, _| Ok(()))?;
        // No record of the tenant is left to reference a file: every file is queued, and
        // without its counter garbage collection removes it.
        self.purge_prefix(Cf::Refs, &prefix, |_, _| Ok(()))?;
        let mut batch = Batch::new();
        batch.delete(Cf::Usage, keys::usage(id));
        batch.delete(Cf::Tenants, keys::tenant(id));
        self.meta().write(batch, Durability::Synced)?;
        self.shared.usage.remove(id);
        Ok(())
    }

    /// Deletes every record of `cf` under `prefix`, letting `on_record` add to each batch
    /// (garbage-collection entries for the record's data).
    fn purge_prefix(
        &self,
        cf: Cf,
        prefix: &[u8],
        mut on_record: impl FnMut(&mut Batch, &[u8]) -> Result<()>,
    ) -> Result<()> {
        loop {
            let mut batch = Batch::new();
            let mut removed = 0;
            {
                let mut cursor = self.meta().cursor(cf, keys::prefix_end(prefix))?;
                cursor.seek(prefix);
                while removed < PURGE_BATCH {
                    let Some((key, value)) = cursor.next_entry()? else {
                        break;
                    };
                    if !key.starts_with(prefix) {
                        break;
                    }
                    on_record(&mut batch, &value)?;
                    batch.delete(cf, key);
                    removed += 1;
                }
            }
            if removed == 0 {
                return Ok(());
            }
            self.meta().write(batch, Durability::Synced)?;
        }
    }
}
