//! Deleting a tenant: first, in one transaction, its keys go, its name is freed and its
//! key-encryption keys are destroyed, so nothing of it is reachable or readable any more;
//! its tenant keys in the HSM (`tenant_keys_in_hsm`) are destroyed next; then its buckets, objects, uploads and parts are removed in bounded batches and its data
//! files queued for garbage collection. A crash in between leaves the tenant in the
//! `Deleting` state, which [`Store::resume_tenant_deletions`] finishes.

use coffre_crypto::{AdminScope, MaintenanceScope, TenantId};

use crate::access_keys::access_keys_in;
use crate::cluster::Lease;
use crate::error::{Error, Result};
use crate::keys;
use crate::meta_store::{Cf, Durability, Tx};
use crate::objects::queue_locations;
use crate::records::{BucketRecord, Record, TenantNameRecord, TenantRecord, TenantState};
use crate::sealed_records::{StoredObject, StoredPartRecord};
use crate::store::{live_tenant, read, Store};

/// Records removed per batch while purging a tenant.
const PURGE_BATCH: usize = 1000;

impl Store {
    /// Deletes a tenant. Without `force`, `TenantNotEmpty` while it has any bucket; with it,
    /// everything it stores goes. Its keys stop working when the first batch is written,
    /// before this returns.
    pub fn delete_tenant(&self, _admin: &AdminScope, id: TenantId, force: bool) -> Result<()> {
        // One transaction marks the tenant deleted, removes its keys and name, and destroys
        // its KEKs (crypto-shredding). Every write of the tenant reads its record or its
        // bucket in its own transaction, so none commits after this one under it.
        self.shred_tenant_keys(|tx| {
            let mut tenant = live_tenant(tx, id)?;
            let tenant_prefix = keys::tenant(id);
            if !force && tx.any_with_prefix(Cf::Buckets, &tenant_prefix)? {
                return Err(Error::TenantNotEmpty);
            }
            for (key, _) in access_keys_in(tx, id)? {
                tx.delete(Cf::AccessKeys, keys::access_key(key.as_str()));
            }
            let name_key = keys::tenant_name(&tenant.name);
            let named = read::<TenantNameRecord>(tx, Cf::TenantNames, &name_key)?;
            if named.is_some_and(|n| n.tenant == id) {
                tx.delete(Cf::TenantNames, name_key);
            }
            tenant.state = TenantState::Deleting;
            Ok(tenant)
        })?;
        // The record says `Deleting` from now on, so a failure here (an HSM outage) is
        // retried by `resume_tenant_deletions` at the next start.
        self.destroy_hsm_tenant_keys(id, None)?;
        self.purge_shredded_keys()?;
        tracing::info!(tenant = %id, force, "tenant deleted; purging its records");
        self.purge_tenant(id, None)
    }

    /// Finishes the deletions a crash interrupted. Returns how many tenants were purged.
    pub fn resume_tenant_deletions(
        &self,
        maint: &MaintenanceScope,
        lease: &Lease,
    ) -> Result<usize> {
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
            self.purge_tenant(*id, Some(lease))?;
        }
        Ok(deleting.len())
    }

    /// Removes the records of `id`, being deleted; with `lease` (a resumed deletion, in
    /// the background), only while this node holds it.
    fn purge_tenant(&self, id: TenantId, lease: Option<&Lease>) -> Result<()> {
        let prefix = keys::tenant(id);
        // The tenant is `Deleting`: no write of it commits any more (each reads the
        // tenant's record or its bucket in its transaction).
        self.purge_prefix(Cf::Buckets, &prefix, lease, |tx, value| {
            let bucket = BucketRecord::decode(value)?;
            tx.delete(Cf::CorsIndex, keys::cors_index(&bucket.name, id));
            Ok(())
        })?;
        self.purge_prefix(Cf::Objects, &prefix, lease, |tx, value| {
            let object = StoredObject::decode(value)?;
            self.change_refs(tx, id, [], object.parts.iter().map(|p| &p.location))
        })?;
        self.purge_prefix(Cf::Parts, &prefix, lease, |tx, value| {
            let part = StoredPartRecord::decode(value)?;
            queue_locations(tx, id, [&part.location])
        })?;
        self.purge_prefix(Cf::Uploads, &prefix, lease, |_, _| Ok(()))?;
        // No record of the tenant is left to reference a file: every file is queued, and
        // without its counter garbage collection removes it.
        self.purge_prefix(Cf::Refs, &prefix, lease, |_, _| Ok(()))?;
        // Its usage and per-KEK wrap counters.
        self.purge_prefix(Cf::Usage, &prefix, lease, |_, _| Ok(()))?;
        self.transact(Durability::Synced, |tx| {
            tx.delete(Cf::Usage, keys::usage(id));
            tx.delete(Cf::Tenants, keys::tenant(id));
            Ok(())
        })?;
        self.shared.usage.remove(id);
        Ok(())
    }

    /// Deletes every record of `cf` under `prefix`, at most [`PURGE_BATCH`] per
    /// transaction, letting `on_record` add to each (garbage-collection entries for the
    /// record's data).
    fn purge_prefix(
        &self,
        cf: Cf,
        prefix: &[u8],
        lease: Option<&Lease>,
        mut on_record: impl FnMut(&mut Tx<'_>, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let end = keys::prefix_end(prefix);
        loop {
            let removed = self.transact(Durability::Synced, |tx| {
                if let Some(lease) = lease {
                    lease.check(tx)?;
                }
                let entries = tx.scan(cf, prefix, end.as_deref(), PURGE_BATCH)?;
                for (key, value) in &entries {
                    on_record(tx, value)?;
                    tx.delete(cf, key.clone());
                }
                Ok(entries.len())
            })?;
            if removed == 0 {
                return Ok(());
            }
        }
    }
}
