//! Access keys: the admin operations on them, and the credential lookup that
//! authentication performs before any scope exists.

use coffre_crypto::{AccessKeyId, AdminScope, Credential, Role, SecretKey, TenantId};

use crate::error::{Error, Result};
use crate::keys;
use crate::meta_store::{Cf, Durability};
use crate::records::{
    now, AccessKeyInfo, AccessKeyRecord, AccessKeyState, Record, TenantRecord, TenantState,
};
use crate::store::Store;

/// What authentication learns about an access key.
#[derive(Debug)]
pub enum KeyLookup {
    /// No such key, a disabled key, or a key whose tenant is gone.
    Unknown,
    /// The key's tenant may make requests.
    Active(Credential),
    /// The key's tenant is suspended: the signature is still checked (so that only the
    /// key's holder learns of the suspension), then the request is refused.
    Suspended(Credential),
}

impl Store {
    /// A new key for `tenant`, shown once: the secret cannot be read back through the admin
    /// interface.
    pub fn create_access_key(
        &self,
        admin: &AdminScope,
        tenant: TenantId,
        role: Role,
        buckets: Option<Vec<String>>,
    ) -> Result<(AccessKeyId, SecretKey)> {
        let _guard = self.shared.locks.admin();
        self.existing_tenant(admin, tenant)?;
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

    /// The tenant's keys, without their secrets, sorted by id.
    // A scan of all keys: there are few, and the admin interface alone asks.
    pub fn list_access_keys(
        &self,
        admin: &AdminScope,
        tenant: TenantId,
    ) -> Result<Vec<AccessKeyInfo>> {
        self.existing_tenant(admin, tenant)?;
        Ok(self
            .access_keys_of(tenant)?
            .into_iter()
            .map(|(id, record)| info(id, &record))
            .collect())
    }

    /// One key, without its secret. `NoSuchAccessKey` if absent.
    pub fn access_key(&self, _admin: &AdminScope, key: &AccessKeyId) -> Result<AccessKeyInfo> {
        let record = self
            .get_record::<AccessKeyRecord>(Cf::AccessKeys, &keys::access_key(key.as_str()))?
            .ok_or(Error::NoSuchAccessKey)?;
        Ok(info(key.clone(), &record))
    }

    /// Every key of `tenant` with its record.
    pub(crate) fn access_keys_of(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<(AccessKeyId, AccessKeyRecord)>> {
        let mut found = Vec::new();
        let mut cursor = self.meta().cursor(Cf::AccessKeys, None)?;
        cursor.seek(&[]);
        while let Some((key, value)) = cursor.next_entry()? {
            let record = AccessKeyRecord::decode(&value)?;
            if record.tenant != tenant {
                continue;
            }
            let id = std::str::from_utf8(&key)
                .ok()
                .and_then(|k| AccessKeyId::parse(k).ok())
                .ok_or_else(|| Error::Corrupt("access key record with a bad id".into()))?;
            found.push((id, record));
        }
        Ok(found)
    }

    /// Enables or disables an access key: a disabled key stops authenticating at once.
    /// `NoSuchAccessKey` if absent.
    pub fn set_access_key_state(
        &self,
        _admin: &AdminScope,
        key: &AccessKeyId,
        state: AccessKeyState,
    ) -> Result<AccessKeyInfo> {
        let _guard = self.shared.locks.admin();
        let db_key = keys::access_key(key.as_str());
        let mut record = self
            .get_record::<AccessKeyRecord>(Cf::AccessKeys, &db_key)?
            .ok_or(Error::NoSuchAccessKey)?;
        record.state = state;
        self.meta().put(
            Cf::AccessKeys,
            &db_key,
            &record.encode()?,
            Durability::Synced,
        )?;
        Ok(info(key.clone(), &record))
    }

    /// Removes an access key for good. `NoSuchAccessKey` if absent.
    pub fn delete_access_key(&self, _admin: &AdminScope, key: &AccessKeyId) -> Result<()> {
        let _guard = self.shared.locks.admin();
        let db_key = keys::access_key(key.as_str());
        if self.meta().get(Cf::AccessKeys, &db_key)?.is_none() {
            return Err(Error::NoSuchAccessKey);
        }
        self.meta()
            .delete(Cf::AccessKeys, &db_key, Durability::Synced)
    }

    /// Used by authentication, before any scope exists.
    pub fn credential(&self, key: &AccessKeyId) -> Result<KeyLookup> {
        let Some(record) =
            self.get_record::<AccessKeyRecord>(Cf::AccessKeys, &keys::access_key(key.as_str()))?
        else {
            return Ok(KeyLookup::Unknown);
        };
        if record.state != AccessKeyState::Active {
            return Ok(KeyLookup::Unknown);
        }
        let tenant: Option<TenantRecord> =
            self.get_record(Cf::Tenants, &keys::tenant(record.tenant))?;
        let Some(state) = tenant.map(|t| t.state) else {
            return Ok(KeyLookup::Unknown);
        };
        let credential = Credential {
            access_key: key.clone(),
            secret: SecretKey::new(record.secret.clone()),
            tenant: record.tenant,
            role: record.role,
            buckets: record.buckets.clone(),
        };
        Ok(match state {
            TenantState::Active => KeyLookup::Active(credential),
            TenantState::Suspended => KeyLookup::Suspended(credential),
            TenantState::Deleting => KeyLookup::Unknown,
        })
    }
}

fn info(id: AccessKeyId, record: &AccessKeyRecord) -> AccessKeyInfo {
    AccessKeyInfo {
        id,
        tenant: record.tenant,
        role: record.role,
        buckets: record.buckets.clone(),
        state: record.state,
        created: record.created,
    }
}
