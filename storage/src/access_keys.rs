//! Access keys: the admin operations on them, and the credential lookup that
//! authentication performs before any scope exists.
//!
//! Secrets are stored sealed under the root key, through the owning tenant's KEK: each is
//! sealed with AES-256-GCM under [`coffre_crypto::Kek::access_key_secret_key`] (HKDF of the
//! tenant's current KEK with its own label), with associated data binding it to the access
//! key id, the tenant id and the KEK version ([`secret_binding`]). The record keeps the
//! sealed form and the KEK version ([`SealedSecret`]). A record copied under another key id
//! or rewritten for another tenant fails to open (an integrity error), and deleting the
//! tenant shreds its KEKs, and with them every secret. [`Store::credential`] opens the
//! secret through the KEK cache: after the first lookup of a tenant, no root key provider
//! round trip, only an HKDF derivation and one AES-GCM open of 56 bytes.

use coffre_crypto::{AccessKeyId, AdminScope, Credential, KekVersion, Role, SecretKey, TenantId};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::keys;
use crate::meta_store::{Cf, Durability, Tx};
use crate::records::{
    now, AccessKeyInfo, AccessKeyRecord, AccessKeyState, Record, SealedSecret, TenantRecord,
    TenantState,
};
use crate::stats::{CountIntegrity, IntegrityKind};
use crate::store::{live_tenant, read, Store};

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
        self.existing_tenant(admin, tenant)?;
        let secret = SecretKey::generate();
        let id = self.transact(Durability::Synced, |tx| {
            // Sealed under the KEK version current in the transaction that stores it: a
            // rotation committing first makes this run again under the new version.
            let tenant_record = live_tenant(tx, tenant)?;
            let id = loop {
                let id = AccessKeyId::generate();
                if tx
                    .get(Cf::AccessKeys, &keys::access_key(id.as_str()))?
                    .is_none()
                {
                    break id;
                }
            };
            let record = AccessKeyRecord {
                tenant,
                role,
                buckets: buckets.clone(),
                secret: self.seal_secret(&id, &tenant_record, &secret)?,
                state: AccessKeyState::Active,
                created: now(),
            };
            tx.put(
                Cf::AccessKeys,
                keys::access_key(id.as_str()),
                record.encode()?,
            );
            Ok(id)
        })?;
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
            found.extend(entry_of(tenant, &key, &value)?);
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
        let db_key = keys::access_key(key.as_str());
        let record = self.transact(Durability::Synced, |tx| {
            let mut record: AccessKeyRecord =
                read(tx, Cf::AccessKeys, &db_key)?.ok_or(Error::NoSuchAccessKey)?;
            record.state = state;
            tx.put(Cf::AccessKeys, db_key.clone(), record.encode()?);
            Ok(record)
        })?;
        Ok(info(key.clone(), &record))
    }

    /// Removes an access key for good. `NoSuchAccessKey` if absent.
    pub fn delete_access_key(&self, _admin: &AdminScope, key: &AccessKeyId) -> Result<()> {
        let db_key = keys::access_key(key.as_str());
        self.transact(Durability::Synced, |tx| {
            if tx.get(Cf::AccessKeys, &db_key)?.is_none() {
                return Err(Error::NoSuchAccessKey);
            }
            tx.delete(Cf::AccessKeys, db_key.clone());
            Ok(())
        })
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
        if state == TenantState::Deleting {
            // Its KEKs, and with them its secrets, may already be gone.
            return Ok(KeyLookup::Unknown);
        }
        let credential = Credential {
            access_key: key.clone(),
            secret: self
                .open_secret(key, &record)
                .count_integrity(self.stats(), IntegrityKind::SealedValue)?,
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

impl Store {
    /// Seals `secret` of access key `id` under `tenant`'s current KEK.
    fn seal_secret(
        &self,
        id: &AccessKeyId,
        tenant: &TenantRecord,
        secret: &SecretKey,
    ) -> Result<SealedSecret> {
        let kek = self.kek(tenant.id, tenant.kek_version)?;
        let binding = secret_binding(id, tenant.id, kek.version());
        let sealed = kek
            .access_key_secret_key()?
            .seal(&binding, secret.expose().as_bytes())?;
        Ok(SealedSecret {
            kek_version: kek.version(),
            sealed,
        })
    }

    /// The secret of access key `id`: an integrity error if the record was tampered with,
    /// or moved from another key id or tenant.
    fn open_secret(&self, id: &AccessKeyId, record: &AccessKeyRecord) -> Result<SecretKey> {
        let kek = self.kek(record.tenant, record.secret.kek_version)?;
        let binding = secret_binding(id, record.tenant, record.secret.kek_version);
        let object = format!("access key {id}");
        let plain = Zeroizing::new(
            kek.access_key_secret_key()?
                .open(&binding, &record.secret.sealed)
                .map_err(|e| Error::integrity(&object, e))?,
        );
        let secret = std::str::from_utf8(&plain).map_err(|_| Error::Integrity {
            object,
            reason: "sealed secret is not UTF-8".to_owned(),
        })?;
        Ok(SecretKey::new(secret.to_owned()))
    }
}

// KEK rotation (see `key_rotation`).
impl Store {
    /// Seals every secret of `tenant`'s access keys that `kek` does not seal yet again
    /// under it, adding the records to `batch`. The caller holds the admin lock, which every
    /// access key write takes. Returns how many were resealed.
    pub(crate) fn reseal_access_keys(
        &self,
        tenant: TenantId,
        kek: &coffre_crypto::Kek,
        tx: &mut crate::meta_store::Tx<'_>,
    ) -> Result<usize> {
        let mut resealed = 0;
        for (id, mut record) in access_keys_in(tx, tenant)? {
            if record.secret.kek_version == kek.version() {
                continue;
            }
            let secret = self.open_secret(&id, &record)?;
            let binding = secret_binding(&id, tenant, kek.version());
            record.secret = SealedSecret {
                kek_version: kek.version(),
                sealed: kek
                    .access_key_secret_key()?
                    .seal(&binding, secret.expose().as_bytes())?,
            };
            tx.put(
                Cf::AccessKeys,
                keys::access_key(id.as_str()),
                record.encode()?,
            );
            resealed += 1;
        }
        Ok(resealed)
    }
}

/// The access keys of `tenant`, read in `tx` (a scan of all keys: there are few).
pub(crate) fn access_keys_in(
    tx: &mut Tx<'_>,
    tenant: TenantId,
) -> Result<Vec<(AccessKeyId, AccessKeyRecord)>> {
    let mut found = Vec::new();
    for (key, value) in tx.scan(Cf::AccessKeys, &[], None, usize::MAX)? {
        found.extend(entry_of(tenant, &key, &value)?);
    }
    Ok(found)
}

/// The access key stored at `key`, if it belongs to `tenant`.
fn entry_of(
    tenant: TenantId,
    key: &[u8],
    value: &[u8],
) -> Result<Option<(AccessKeyId, AccessKeyRecord)>> {
    let record = AccessKeyRecord::decode(value)?;
    if record.tenant != tenant {
        return Ok(None);
    }
    let id = std::str::from_utf8(key)
        .ok()
        .and_then(|k| AccessKeyId::parse(k).ok())
        .ok_or_else(|| Error::Corrupt("access key record with a bad id".into()))?;
    Ok(Some((id, record)))
}

/// What a sealed secret is bound to: label | access key id length (u64 big-endian) | id |
/// tenant id | KEK version (u32 big-endian).
fn secret_binding(id: &AccessKeyId, tenant: TenantId, kek_version: KekVersion) -> Vec<u8> {
    const LABEL: &[u8] = b"access-key-secret|";
    let id = id.as_str().as_bytes();
    let mut binding = Vec::with_capacity(LABEL.len() + 8 + id.len() + 16 + 4);
    binding.extend_from_slice(LABEL);
    binding.extend_from_slice(&(id.len() as u64).to_be_bytes());
    binding.extend_from_slice(id);
    binding.extend_from_slice(tenant.as_bytes());
    binding.extend_from_slice(&kek_version.get().to_be_bytes());
    binding
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {

    use super::*;
    use crate::TenantSettings;

    fn store(dir: &std::path::Path) -> Store {
        crate::store::test_store(dir, "a1")
    }

    fn tenant(store: &Store, name: &str) -> TenantId {
        store
            .create_tenant(
                &AdminScope::local_operator(),
                name,
                TenantSettings::default(),
            )
            .unwrap()
            .id
    }

    fn key(store: &Store, tenant: TenantId) -> (AccessKeyId, SecretKey) {
        store
            .create_access_key(&AdminScope::local_operator(), tenant, Role::Admin, None)
            .unwrap()
    }

    fn raw(store: &Store, id: &AccessKeyId) -> Vec<u8> {
        store
            .meta()
            .get(Cf::AccessKeys, &keys::access_key(id.as_str()))
            .unwrap()
            .unwrap()
    }

    fn put_raw(store: &Store, id: &AccessKeyId, bytes: &[u8]) {
        store
            .put_raw(
                Cf::AccessKeys,
                &keys::access_key(id.as_str()),
                bytes,
                Durability::Synced,
            )
            .unwrap();
    }

    fn secret_of(store: &Store, id: &AccessKeyId) -> Result<SecretKey> {
        match store.credential(id)? {
            KeyLookup::Active(credential) => Ok(credential.secret),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_secret_is_sealed_and_opens() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let alice = tenant(&store, "alice");
        let (id, secret) = key(&store, alice);
        let bytes = raw(&store, &id);
        assert_eq!(bytes[0], 2);
        let needle = secret.expose().as_bytes();
        assert!(!bytes.windows(needle.len()).any(|w| w == needle));
        let record = AccessKeyRecord::decode(&bytes).unwrap();
        assert_eq!(record.secret.kek_version, KekVersion::FIRST);
        assert_eq!(secret_of(&store, &id).unwrap().expose(), secret.expose());
    }

    #[track_caller]
    fn integrity(result: Result<SecretKey>) {
        assert!(matches!(result, Err(Error::Integrity { .. })), "{result:?}");
    }

    #[test]
    fn a_tampered_or_moved_secret_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let (alice, bob) = (tenant(&store, "alice"), tenant(&store, "bob"));
        let (a1, _) = key(&store, alice);
        let (a2, a2_secret) = key(&store, alice);
        let (b1, _) = key(&store, bob);

        // Any flipped bit of the sealed secret.
        let mut record = AccessKeyRecord::decode(&raw(&store, &a1)).unwrap();
        let last = record.secret.sealed.len() - 1;
        record.secret.sealed[last] ^= 1;
        put_raw(&store, &a1, &record.encode().unwrap());
        integrity(secret_of(&store, &a1));

        // Another key's record, of the same tenant or of another, copied under b1's id.
        let (a2_bytes, b1_bytes) = (raw(&store, &a2), raw(&store, &b1));
        put_raw(&store, &b1, &a2_bytes);
        integrity(secret_of(&store, &b1));
        // a2's record rewritten to belong to bob.
        let mut moved = AccessKeyRecord::decode(&a2_bytes).unwrap();
        moved.tenant = bob;
        put_raw(&store, &a2, &moved.encode().unwrap());
        integrity(secret_of(&store, &a2));
        // Bob's secret grafted into a record of alice's.
        let mut grafted = AccessKeyRecord::decode(&a2_bytes).unwrap();
        grafted.secret = AccessKeyRecord::decode(&b1_bytes).unwrap().secret;
        put_raw(&store, &a2, &grafted.encode().unwrap());
        integrity(secret_of(&store, &a2));

        // Put back as it was, it opens again.
        put_raw(&store, &a2, &a2_bytes);
        assert_eq!(secret_of(&store, &a2).unwrap().expose(), a2_secret.expose());
    }

    #[test]
    fn a_plaintext_format_1_record_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let alice = tenant(&store, "alice");
        let (id, _) = key(&store, alice);
        let v1 = (
            alice,
            Role::Admin,
            None::<Vec<String>>,
            "plaintext-secret",
            AccessKeyState::Active,
            0u64,
        );
        put_raw(&store, &id, &postcard::to_extend(&v1, vec![1]).unwrap());
        let err = store.credential(&id).unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt(m) if m.contains("format 1")),
            "{err}"
        );
        let admin = AdminScope::local_operator();
        assert!(matches!(
            store.list_access_keys(&admin, alice),
            Err(Error::Corrupt(_))
        ));
        // It can still be deleted.
        store.delete_access_key(&admin, &id).unwrap();
    }
}
