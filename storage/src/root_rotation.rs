//! Root key rotation. The key provider makes a new root key version current, every tenant's
//! wrapped KEKs are rewrapped under it (one synced write per tenant), then the older root
//! versions that no KEK uses any more are destroyed in the provider: the line leaves the
//! `local-file` key file, the key object is destroyed in the `pkcs11` token. KEKs, DEKs
//! and object data do not change; only each KEK's wrapped form does.
//!
//! Crash safety: the new version is durable in the provider (key file rewritten and
//! synced, or token object created) before anything is wrapped under it. Every wrapped KEK
//! names the root version that wraps it, so each tenant stays readable whichever side of
//! its rewrap a crash falls, as long as both versions exist. An old version is destroyed
//! only after every tenant record has been read back, under the admin lock, without a KEK
//! under it; the stale copies of the records are then purged from the store's files. A
//! rotation a crash interrupted is finished at the next start
//! ([`Store::resume_root_rotation`]).
//!
//! KEKs wrapped under tenant keys in the HSM (`tenant_keys_in_hsm`) are not under any root
//! version: a root rotation leaves them as they are (their tenant keys are not wrapped by the
//! root key; a tenant KEK rotation replaces them).
//!
//! The provider's root key versions belong to this store's metadata: two deployments must
//! not share one key file or one token key label.

use std::collections::BTreeMap;

use coffre_crypto::{AdminScope, MaintenanceScope, RootKeyVersion, TenantId, WrappedKek};

use crate::cluster::{advance_key_epoch, Lease};
use crate::error::{Error, Result};
use crate::keys;
use crate::meta_store::{Cf, Durability};
use crate::records::{Record, TenantRecord};
use crate::store::{read, Store};

/// What a root rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootRotation {
    /// The current root key version.
    pub root_version: RootKeyVersion,
    /// Tenants whose records were rewritten, and the KEKs rewrapped in them.
    pub tenants: usize,
    pub keks: usize,
    /// Older root versions destroyed in the provider.
    pub retired: Vec<RootKeyVersion>,
}

/// The root keys, as the admin interface shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootKeyStatus {
    /// `local-file` or `pkcs11`.
    pub provider: &'static str,
    pub current: RootKeyVersion,
    /// Every version the provider holds, oldest first.
    pub versions: Vec<RootKeyVersion>,
    /// How many tenant KEKs each version wraps.
    pub keks: BTreeMap<RootKeyVersion, usize>,
}

impl Store {
    /// Rotates the root key: a new version, every KEK rewrapped under it, the older
    /// versions destroyed. On error the older versions are kept, and everything stays
    /// readable; calling it again (or restarting) finishes the job.
    pub fn rotate_root_key(&self, _admin: &AdminScope) -> Result<RootRotation> {
        let _rotation = self.shared.keys.root_rotation();
        let provider = self.shared.keys.provider();
        let version = provider.rotate_root()?;
        tracing::info!(provider = provider.kind(), root_version = %version, "root key rotated");
        self.finish_root_rotation(None)
    }

    /// Finishes a root rotation that a crash interrupted: rewraps the KEKs still under an
    /// older root version and destroys the versions no KEK uses. `None` when there was
    /// nothing to finish.
    pub fn resume_root_rotation(
        &self,
        maint: &MaintenanceScope,
        lease: &Lease,
    ) -> Result<Option<RootRotation>> {
        let _rotation = self.shared.keys.root_rotation();
        let status = self.root_status()?;
        let stale = status.keks.keys().any(|v| *v != status.current);
        if status.versions.len() <= 1 && !stale {
            return Ok(None);
        }
        tracing::info!(
            task = maint.task(),
            current = %status.current,
            versions = ?status.versions.iter().map(|v| v.get()).collect::<Vec<_>>(),
            "finishing an interrupted root key rotation"
        );
        self.finish_root_rotation(Some(lease)).map(Some)
    }

    /// Fails closed, at start, when the root key provider is not the one that wrapped the
    /// tenants' KEKs: for every root version some KEK names, one such KEK must unwrap. A
    /// wrong key file path or token label (which would mint a fresh root) is refused with a
    /// message naming the tenants' versions, instead of a server whose every read fails.
    pub fn check_root_key(&self, _maint: &MaintenanceScope) -> Result<()> {
        let provider = self.shared.keys.provider();
        let mut checked = std::collections::BTreeSet::new();
        for tenant in self.all_tenants()? {
            for wrapped in &tenant.keks {
                let Some(version) = wrapped.root_version() else {
                    continue; // Under a tenant key in the HSM, not under the root.
                };
                if !checked.insert(version) {
                    continue;
                }
                if let Err(e) = provider.unwrap_kek(tenant.id, wrapped) {
                    return Err(Error::InvalidConfig(format!(
                        "the {} root key provider cannot open the KEKs the metadata store holds \
                         (root version {version} of tenant {}: {e}); is [key_provider] the \
                         one this store was created with? Refusing to start rather than serve \
                         nothing. (A local key file created by this start is left at its path.)",
                        provider.kind(),
                        tenant.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// The provider's root key versions and what they wrap.
    pub fn root_key_status(&self, _admin: &AdminScope) -> Result<RootKeyStatus> {
        self.root_status()
    }

    fn root_status(&self) -> Result<RootKeyStatus> {
        let provider = self.shared.keys.provider();
        let mut keks = BTreeMap::new();
        for tenant in self.all_tenants()? {
            for root_version in tenant.keks.iter().filter_map(WrappedKek::root_version) {
                *keks.entry(root_version).or_insert(0) += 1;
            }
        }
        Ok(RootKeyStatus {
            provider: provider.kind(),
            current: provider.current_root_version(),
            versions: provider.root_versions(),
            keks,
        })
    }

    /// Rewraps every KEK not under the current root version, then destroys the versions no
    /// KEK uses. The caller holds the root rotation lock.
    fn finish_root_rotation(&self, lease: Option<&Lease>) -> Result<RootRotation> {
        let provider = self.shared.keys.provider();
        let current = provider.current_root_version();
        let (mut tenants, mut keks) = (0, 0);
        // Tenant by tenant, one transaction each. A tenant that fails does not stop the
        // others; nothing is retired then.
        let mut failed = None;
        for id in self.all_tenants()?.into_iter().map(|t| t.id) {
            match self.rewrap_tenant_keks(id) {
                Ok(rewrapped) => {
                    tenants += usize::from(rewrapped > 0);
                    keks += rewrapped;
                }
                Err(e) => {
                    tracing::error!(tenant = %id, error = %e,
                        "root rotation: a tenant's KEKs could not be rewrapped; \
                         the older root versions are kept");
                    failed.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        let retired = {
            // Tenant creation in this process waits. A tenant created while the loop ran may
            // have wrapped its KEK just before the rotation: move whatever is left, then
            // check.
            let _guard = self.admin_lock();
            for tenant in self.all_tenants()? {
                let rewrapped = self.rewrap_tenant_keks(tenant.id)?;
                tenants += usize::from(rewrapped > 0);
                keks += rewrapped;
            }
            let in_use: Vec<RootKeyVersion> = self
                .all_tenants()?
                .iter()
                .flat_map(|t| t.keks.iter().filter_map(WrappedKek::root_version))
                .collect();
            let doomed: Vec<RootKeyVersion> = provider
                .root_versions()
                .into_iter()
                .filter(|v| *v != current && !in_use.contains(v))
                .collect();
            if !doomed.is_empty() {
                // Every node drops its cached KEKs, and a collector that lost its lease
                // destroys nothing.
                self.transact(Durability::Synced, |tx| {
                    if let Some(lease) = lease {
                        lease.check(tx)?;
                    }
                    advance_key_epoch(tx)
                })?;
            }
            let mut retired = Vec::new();
            for version in provider.root_versions() {
                if version != current && !in_use.contains(&version) {
                    provider.destroy_root(version)?;
                    tracing::info!(provider = provider.kind(), root_version = %version,
                        "retired root key version destroyed");
                    retired.push(version);
                }
            }
            retired
        };
        if !retired.is_empty() {
            // The tenant records as they were before the rewrap hold KEKs under the
            // destroyed versions: useless now, but not left in the store's files either.
            self.purge_shredded_keys()?;
        }
        Ok(RootRotation {
            root_version: current,
            tenants,
            keks,
            retired,
        })
    }

    /// Rewraps the KEKs of `id` that the current root version does not wrap, in one synced
    /// write. The caller holds the admin lock. Returns how many were rewrapped.
    fn rewrap_tenant_keks(&self, id: TenantId) -> Result<usize> {
        let provider = self.shared.keys.provider();
        let current = provider.current_root_version();
        self.transact(Durability::Synced, |tx| {
            let Some(mut tenant) = read::<TenantRecord>(tx, Cf::Tenants, &keys::tenant(id))? else {
                return Ok(0);
            };
            let mut rewrapped = 0;
            for wrapped in &mut tenant.keks {
                if wrapped.root_version().is_some_and(|v| v != current) {
                    *wrapped = provider.rewrap_kek(id, wrapped)?;
                    rewrapped += 1;
                }
            }
            if rewrapped > 0 {
                tx.put(Cf::Tenants, keys::tenant(id), tenant.encode()?);
            }
            Ok(rewrapped)
        })
    }

    /// Every tenant record, those being deleted included.
    pub(crate) fn all_tenants(&self) -> Result<Vec<TenantRecord>> {
        let mut tenants = Vec::new();
        let mut cursor = self.meta().cursor(Cf::Tenants, None)?;
        cursor.seek(&[]);
        while let Some((_, value)) = cursor.next_entry()? {
            tenants.push(TenantRecord::decode(&value)?);
        }
        Ok(tenants)
    }
}

#[cfg(test)]
mod tests;
