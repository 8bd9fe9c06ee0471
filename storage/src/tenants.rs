//! Tenants: the admin operations on them (create, list, update, suspend, resume). Deleting
//! one is in `tenant_deletion`, its access keys in `access_keys`.

use coffre_crypto::{AdminScope, TenantId};

use crate::error::{Error, Result};
use crate::keys;
use crate::meta_store::{Cf, Durability};
use crate::records::{now, Quotas, Record, TenantNameRecord, TenantRecord, TenantState};
use crate::store::{live_tenant, Store};

/// What an operator chooses for a tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantSettings {
    /// Array names or site labels its data files may be placed on; empty: any array.
    pub placement: Vec<String>,
    pub quotas: Quotas,
}

/// A partial update: `None` leaves a setting as it is; for quotas, `Some(None)` removes
/// the limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantUpdate {
    pub placement: Option<Vec<String>>,
    pub quota_bytes: Option<Option<u64>>,
    pub quota_objects: Option<Option<u64>>,
    pub quota_uploads: Option<Option<u64>>,
}

impl Store {
    /// A new, active tenant with a fresh KEK (version 1, wrapped by the root key, or by a
    /// tenant key in the HSM with `tenant_keys_in_hsm`).
    /// `TenantExists` if the name is taken, `InvalidPlacement` if the placement names an
    /// unknown array or site.
    pub fn create_tenant(
        &self,
        _admin: &AdminScope,
        name: &str,
        settings: TenantSettings,
    ) -> Result<TenantRecord> {
        self.shared.arrays.validate_placement(&settings.placement)?;
        let _guard = self.admin_lock();
        let name_key = keys::tenant_name(name);
        if self.meta().get(Cf::TenantNames, &name_key)?.is_some() {
            return Err(Error::TenantExists);
        }
        let id = TenantId::random();
        let (kek, wrapped_kek) = self.shared.keys.generate(id)?;
        let tenant = TenantRecord {
            id,
            name: name.to_owned(),
            created: now(),
            state: TenantState::Active,
            placement: settings.placement,
            quotas: settings.quotas,
            kek_version: wrapped_kek.kek_version,
            keks: vec![wrapped_kek],
            rotation: None,
            // No upload yet: the counter counts them all from the first.
            uploads_counted: true,
            counts_record_bytes: true,
        };
        let (record, name_record) = (
            tenant.encode()?,
            TenantNameRecord { tenant: tenant.id }.encode()?,
        );
        let created = self.transact(Durability::Synced, |tx| {
            // In the transaction: two nodes creating the same name conflict.
            if tx.get(Cf::TenantNames, &name_key)?.is_some() {
                return Err(Error::TenantExists);
            }
            tx.put(Cf::Tenants, keys::tenant(tenant.id), record.clone());
            tx.put(Cf::TenantNames, name_key.clone(), name_record.clone());
            Ok(())
        });
        if let Err(e) = created {
            self.shared.keys.discard_new_tenant(id);
            return Err(e);
        }
        self.shared.keys.remember(id, kek);
        Ok(tenant)
    }

    pub fn tenant_by_name(&self, _admin: &AdminScope, name: &str) -> Result<Option<TenantRecord>> {
        let Some(entry) =
            self.get_record::<TenantNameRecord>(Cf::TenantNames, &keys::tenant_name(name))?
        else {
            return Ok(None);
        };
        self.get_record(Cf::Tenants, &keys::tenant(entry.tenant))
    }

    /// `NoSuchTenant` if absent; a tenant being deleted is still returned.
    pub fn tenant(&self, _admin: &AdminScope, id: TenantId) -> Result<TenantRecord> {
        self.get_record(Cf::Tenants, &keys::tenant(id))?
            .ok_or(Error::NoSuchTenant)
    }

    /// All tenants but those being deleted, sorted by name.
    pub fn list_tenants(&self, _admin: &AdminScope) -> Result<Vec<TenantRecord>> {
        let mut tenants = Vec::new();
        let mut cursor = self.meta().cursor(Cf::Tenants, None)?;
        cursor.seek(&[]);
        while let Some((_, value)) = cursor.next_entry()? {
            let tenant = TenantRecord::decode(&value)?;
            if tenant.state != TenantState::Deleting {
                tenants.push(tenant);
            }
        }
        tenants.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(tenants)
    }

    /// Changes placement and quotas. New placement applies to files written from now on;
    /// a lowered quota refuses growth from now on and deletes nothing.
    pub fn update_tenant(
        &self,
        _admin: &AdminScope,
        id: TenantId,
        update: TenantUpdate,
    ) -> Result<TenantRecord> {
        if let Some(placement) = &update.placement {
            self.shared.arrays.validate_placement(placement)?;
        }
        self.change_tenant(id, |tenant| {
            if let Some(placement) = &update.placement {
                tenant.placement = placement.clone();
            }
            if let Some(bytes) = update.quota_bytes {
                tenant.quotas.bytes = bytes;
            }
            if let Some(objects) = update.quota_objects {
                tenant.quotas.objects = objects;
            }
            if let Some(uploads) = update.quota_uploads {
                tenant.quotas.uploads = uploads;
            }
        })
    }

    /// Suspends a tenant: every request with its keys is refused from now on; nothing of
    /// it is deleted.
    pub fn suspend_tenant(&self, admin: &AdminScope, id: TenantId) -> Result<TenantRecord> {
        self.set_tenant_state(admin, id, TenantState::Suspended)
    }

    /// Lets a suspended tenant's keys work again.
    pub fn resume_tenant(&self, admin: &AdminScope, id: TenantId) -> Result<TenantRecord> {
        self.set_tenant_state(admin, id, TenantState::Active)
    }

    fn set_tenant_state(
        &self,
        _admin: &AdminScope,
        id: TenantId,
        state: TenantState,
    ) -> Result<TenantRecord> {
        self.change_tenant(id, |tenant| tenant.state = state)
    }

    /// Reads the tenant's record (`NoSuchTenant` if gone or being deleted), applies
    /// `change`, and writes it back, in one transaction.
    fn change_tenant(
        &self,
        id: TenantId,
        change: impl Fn(&mut TenantRecord),
    ) -> Result<TenantRecord> {
        self.transact(Durability::Synced, |tx| {
            let mut tenant = live_tenant(tx, id)?;
            change(&mut tenant);
            tx.put(Cf::Tenants, keys::tenant(id), tenant.encode()?);
            Ok(tenant)
        })
    }

    pub(crate) fn admin_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // A poisoned lock guards no data.
        self.shared.admin.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The tenant, unless it is absent or being deleted (`NoSuchTenant`).
    pub(crate) fn existing_tenant(&self, admin: &AdminScope, id: TenantId) -> Result<TenantRecord> {
        match self.tenant(admin, id)? {
            tenant if tenant.state == TenantState::Deleting => Err(Error::NoSuchTenant),
            tenant => Ok(tenant),
        }
    }
}
