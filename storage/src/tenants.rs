//! Tenants and their access keys: admin operations, and the credential lookup that
//! authentication performs before any scope exists.

use coffre_crypto::{AccessKeyId, AdminScope, Credential, Role, SecretKey, TenantId};

use crate::error::{Error, Result};
use crate::keys;
use crate::meta_store::{Batch, Cf, Durability};
use crate::records::{
    now, AccessKeyRecord, AccessKeyState, Record, TenantNameRecord, TenantRecord, TenantState,
};
use crate::store::Store;

impl Store {
    /// A new, active tenant. `TenantExists` if the name is taken.
    pub fn create_tenant(&self, _admin: &AdminScope, name: &str) -> Result<TenantRecord> {
        let _guard = self.shared.locks.admin();
        let name_key = keys::tenant_name(name);
        if self.meta().get(Cf::TenantNames, &name_key)?.is_some() {
            return Err(Error::TenantExists);
        }
        let tenant = TenantRecord {
            id: TenantId::random(),
            name: name.to_owned(),
            created: now(),
            state: TenantState::Active,
        };
        let mut batch = Batch::new();
        batch.put(Cf::Tenants, keys::tenant(tenant.id), tenant.encode()?);
        batch.put(
            Cf::TenantNames,
            name_key,
            TenantNameRecord { tenant: tenant.id }.encode()?,
        );
        self.meta().write(batch, Durability::Synced)?;
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

    pub fn tenant(&self, _admin: &AdminScope, id: TenantId) -> Result<TenantRecord> {
        self.get_record(Cf::Tenants, &keys::tenant(id))?
            .ok_or(Error::NoSuchTenant)
    }

    /// All tenants, sorted by name.
    pub fn list_tenants(&self, _admin: &AdminScope) -> Result<Vec<TenantRecord>> {
        let mut tenants = Vec::new();
        let mut cursor = self.meta().cursor(Cf::Tenants, None)?;
        cursor.seek(&[]);
        while let Some((_, value)) = cursor.next_entry()? {
            tenants.push(TenantRecord::decode(&value)?);
        }
        tenants.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(tenants)
    }

    /// Enables or disables a tenant: a disabled tenant's keys stop authenticating.
    pub fn set_tenant_state(
        &self,
        admin: &AdminScope,
        id: TenantId,
        state: TenantState,
    ) -> Result<()> {
        let _guard = self.shared.locks.admin();
        let mut tenant = self.tenant(admin, id)?;
        tenant.state = state;
        self.meta().put(
            Cf::Tenants,
            &keys::tenant(id),
            &tenant.encode()?,
            Durability::Synced,
        )
    }

    /// A new key for `tenant`, shown once: the secret cannot be read back through the admin
    /// interface.
    pub fn create_access_key(
        &self,
        admin: &AdminScope,
        tenant: TenantId,
        role: Role,
        buckets: Option<Vec<String>>,
    ) -> Result<(AccessKeyId, SecretKey)> {
        self.tenant(admin, tenant)?;
        let _guard = self.shared.locks.admin();
        let (id, secret) = loop {
            let id = AccessKeyId::generate();
            if self
                .meta()
                .get(Cf::AccessKeys, &keys::access_key(id.as_str()))?
                .is_none()
            {
                break (id, SecretKey::generate());
            }
        };
        let record = AccessKeyRecord {
            tenant,
            role,
            buckets,
            secret: secret.expose().to_owned(),
            state: AccessKeyState::Active,
            created: now(),
        };
        self.meta().put(
            Cf::AccessKeys,
            &keys::access_key(id.as_str()),
            &record.encode()?,
            Durability::Synced,
        )?;
        Ok((id, secret))
    }

    /// Enables or disables an access key. `Ok(false)` if the key does not exist.
    pub fn set_access_key_state(
        &self,
        _admin: &AdminScope,
        key: &AccessKeyId,
        state: AccessKeyState,
    ) -> Result<bool> {
        let _guard = self.shared.locks.admin();
        let db_key = keys::access_key(key.as_str());
        let Some(mut record) = self.get_record::<AccessKeyRecord>(Cf::AccessKeys, &db_key)? else {
            return Ok(false);
        };
        record.state = state;
        self.meta().put(
            Cf::AccessKeys,
            &db_key,
            &record.encode()?,
            Durability::Synced,
        )?;
        Ok(true)
    }

    /// Used by authentication, before any scope exists. `None` when the key is unknown or
    /// disabled or its tenant is not active.
    pub fn credential(&self, key: &AccessKeyId) -> Result<Option<Credential>> {
        let Some(record) =
            self.get_record::<AccessKeyRecord>(Cf::AccessKeys, &keys::access_key(key.as_str()))?
        else {
            return Ok(None);
        };
        if record.state != AccessKeyState::Active {
            return Ok(None);
        }
        let tenant: Option<TenantRecord> =
            self.get_record(Cf::Tenants, &keys::tenant(record.tenant))?;
        if tenant.is_none_or(|t| t.state != TenantState::Active) {
            return Ok(None);
        }
        Ok(Some(Credential {
            access_key: key.clone(),
            secret: SecretKey::new(record.secret.clone()),
            tenant: record.tenant,
            role: record.role,
            buckets: record.buckets.clone(),
        }))
    }
}
