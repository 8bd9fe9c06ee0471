//! Tenant keys (`tenant_keys_in_hsm`): one persistent AES-256 key per tenant and KEK
//! version, with the root keys' attributes (private, sensitive, non-extractable, encrypt
//! and decrypt only). Labelled `<key label>/tenant/<tenant id>/v<version>` and identified
//! by `CKA_ID` = tenant id (16 bytes) | version (4 bytes, big-endian), so that a restarted
//! server finds them, and an auditor can list and see the destruction of each one in the
//! token.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::Session;

use super::{aes_secret_keys, pkcs11_error, sealing_key_attributes};
use crate::ids::TenantId;
use crate::key_hierarchy::KekVersion;
use crate::EncryptionError;

/// The label of `tenant`'s key for KEK `version`.
pub fn tenant_key_label(key_label: &str, tenant: TenantId, version: KekVersion) -> String {
    format!("{}v{}", tenant_prefix(key_label, tenant), version.get())
}

fn tenant_prefix(key_label: &str, tenant: TenantId) -> String {
    format!("{key_label}/tenant/{tenant}/")
}

fn tenant_key_id(tenant: TenantId, version: KekVersion) -> Vec<u8> {
    let mut id = Vec::with_capacity(20);
    id.extend_from_slice(tenant.as_bytes());
    id.extend_from_slice(&version.get().to_be_bytes());
    id
}

/// Creates `tenant`'s key for `version`, destroying first any key of that name: one left by
/// an attempt whose tenant record was never written (a new version is never in the record).
pub(super) fn generate(
    session: &Session,
    key_label: &str,
    tenant: TenantId,
    version: KekVersion,
) -> Result<ObjectHandle, EncryptionError> {
    for orphan in matching(session, key_label, tenant, version)? {
        session
            .destroy_object(orphan)
            .map_err(pkcs11_error("destroying an orphan tenant key"))?;
    }
    let mut template = aes_secret_keys();
    template.extend(sealing_key_attributes(
        tenant_key_label(key_label, tenant, version),
        tenant_key_id(tenant, version),
    ));
    session
        .generate_key(&Mechanism::AesKeyGen, &template)
        .map_err(pkcs11_error(format!(
            "generating the tenant key of {tenant} {version}"
        )))
}

/// `tenant`'s key for `version`, if the token holds it.
pub(super) fn find(
    session: &Session,
    key_label: &str,
    tenant: TenantId,
    version: KekVersion,
) -> Result<Option<ObjectHandle>, EncryptionError> {
    let mut found = matching(session, key_label, tenant, version)?;
    if found.len() > 1 {
        return Err(EncryptionError::Pkcs11Setup(format!(
            "two keys labelled {:?}",
            tenant_key_label(key_label, tenant, version)
        )));
    }
    Ok(found.pop())
}

/// Every key of `tenant` in the token, by KEK version, oldest first.
pub(super) fn find_all(
    session: &Session,
    key_label: &str,
    tenant: TenantId,
) -> Result<Vec<(KekVersion, ObjectHandle)>, EncryptionError> {
    let prefix = tenant_prefix(key_label, tenant);
    // PKCS#11 matches whole attributes only: list the AES keys and pick the tenant's.
    let handles = session
        .find_objects(&aes_secret_keys())
        .map_err(pkcs11_error("finding tenant keys"))?;
    let mut keys = Vec::new();
    for handle in handles {
        let attributes = session
            .get_attributes(handle, &[AttributeType::Label, AttributeType::Id])
            .map_err(pkcs11_error("reading a key's label and id"))?;
        let version = attributes.iter().find_map(|a| match a {
            Attribute::Label(label) => std::str::from_utf8(label)
                .ok()?
                .strip_prefix(&prefix)?
                .strip_prefix('v')?
                .parse::<u32>()
                .ok()
                .map(KekVersion::new),
            _ => None,
        });
        let Some(version) = version else {
            continue;
        };
        let id_agrees = attributes
            .iter()
            .any(|a| matches!(a, Attribute::Id(id) if *id == tenant_key_id(tenant, version)));
        if id_agrees {
            keys.push((version, handle));
        }
    }
    keys.sort_by_key(|(v, _)| *v);
    Ok(keys)
}

fn matching(
    session: &Session,
    key_label: &str,
    tenant: TenantId,
    version: KekVersion,
) -> Result<Vec<ObjectHandle>, EncryptionError> {
    let mut template = aes_secret_keys();
    template.extend([
        Attribute::Id(tenant_key_id(tenant, version)),
        Attribute::Label(tenant_key_label(key_label, tenant, version).into_bytes()),
    ]);
    session
        .find_objects(&template)
        .map_err(pkcs11_error("finding a tenant key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_ids_name_tenant_and_version() {
        let tenant = TenantId::random();
        let label = tenant_key_label("coffre-root", tenant, KekVersion::new(3));
        assert_eq!(label, format!("coffre-root/tenant/{tenant}/v3"));
        let id = tenant_key_id(tenant, KekVersion::new(3));
        assert_eq!(&id[..16], tenant.as_bytes());
        assert_eq!(&id[16..], &[0, 0, 0, 3]);
    }
}
