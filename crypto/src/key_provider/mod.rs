//! Root-key providers: where the key that wraps every tenant KEK lives.
//!
//! - [`LocalFileKeyProvider`] (`local-file`): root keys in a 0600 file; development and the
//!   embedded default only.
//! - [`Pkcs11KeyProvider`] (`pkcs11`): non-extractable AES keys in an HSM token; wrapping and
//!   unwrapping happen inside the token.
//!
//! Both wrap with AES-256-GCM and the associated data tenant id | KEK version | root version,
//! and keep several root key versions so that root rotation can rewrap KEKs while every
//! stored KEK stays readable. Both are checked by one behaviour suite
//! (`crypto/tests/key_provider.rs`).
//!
//! With `tenant_keys_in_hsm`, the `pkcs11` provider wraps each new KEK version under a key of
//! its own, a persistent non-extractable object in the token named after the tenant and the
//! version, instead of under the shared root key ([`KekWrapper::TenantKey`]). Destroying
//! that object (tenant deletion, the end of a KEK rotation) is then the HSM's evidence that
//! every copy of the wrapped KEK, in the metadata store or in any backup of it, is useless.

use std::fmt;

use zeroize::Zeroizing;

use crate::ids::TenantId;
use crate::key_hierarchy::{Kek, KekVersion, KekWrapper, RootKeyVersion, WrappedKek};
use crate::EncryptionError;

mod local_file;
mod pkcs11;

pub use local_file::LocalFileKeyProvider;
pub use pkcs11::{
    root_key_label, tenant_key_label, Pkcs11Config, Pkcs11KeyProvider, DEFAULT_PKCS11_MODULE,
    DEFAULT_ROOT_KEY_LABEL,
};

/// Holds the root keys and wraps tenant KEKs with them. Calls may block (an HSM round trip):
/// call from a blocking context, and cache unwrapped KEKs ([`crate::KekCache`]).
pub trait KeyProvider: Send + Sync + fmt::Debug {
    /// `"local-file"` or `"pkcs11"`: for logs and metrics labels.
    fn kind(&self) -> &'static str;

    /// The root key version new wraps use.
    fn current_root_version(&self) -> RootKeyVersion;

    /// Every root key version this provider can unwrap with, oldest first.
    fn root_versions(&self) -> Vec<RootKeyVersion>;

    /// Seals `kek` for `tenant` under the current root key.
    fn wrap_kek(&self, tenant: TenantId, kek: &Kek) -> Result<WrappedKek, EncryptionError>;

    /// Opens a KEK of `tenant`; fails if it was wrapped for another tenant or KEK version,
    /// tampered with, or under a root key version this provider no longer has.
    fn unwrap_kek(&self, tenant: TenantId, wrapped: &WrappedKek) -> Result<Kek, EncryptionError>;

    /// Creates a new root key version and makes it current; older versions stay usable for
    /// unwrapping until [`destroy_root`](Self::destroy_root).
    fn rotate_root(&self) -> Result<RootKeyVersion, EncryptionError>;

    /// Destroys an old root key version (after every KEK has been rewrapped). Refuses the
    /// current version.
    fn destroy_root(&self, version: RootKeyVersion) -> Result<(), EncryptionError>;

    /// Unwraps and wraps again under the current root key: one step of root rotation.
    /// Refuses a KEK under a tenant key: the root key does not wrap it, and moving it under
    /// the root key would undo what the tenant key is for.
    fn rewrap_kek(
        &self,
        tenant: TenantId,
        wrapped: &WrappedKek,
    ) -> Result<WrappedKek, EncryptionError> {
        if wrapped.wrapper == KekWrapper::TenantKey {
            return Err(EncryptionError::Refused(
                "a KEK under a tenant key in the HSM is not rewrapped by root rotation",
            ));
        }
        let kek = self.unwrap_kek(tenant, wrapped)?;
        self.wrap_kek(tenant, &kek)
    }

    /// Wraps a new KEK version (tenant creation, KEK rotation): under the current root key,
    /// or, with `pkcs11` and `tenant_keys_in_hsm`, under a new tenant key created for
    /// `tenant` and `kek.version()` in the token (replacing an orphan of that name, left by
    /// an attempt whose record was never written).
    fn wrap_new_kek(&self, tenant: TenantId, kek: &Kek) -> Result<WrappedKek, EncryptionError>;

    /// The KEK versions of `tenant` whose tenant keys the provider holds, oldest first
    /// (always empty for `local-file`).
    fn tenant_keys(&self, tenant: TenantId) -> Result<Vec<KekVersion>, EncryptionError>;

    /// Destroys the tenant keys of `tenant` for the KEK versions below `below`, or all of
    /// them when `None`, and returns the versions destroyed. Destroying what is already gone
    /// is not an error, so that an interrupted deletion or retirement can be finished.
    fn destroy_tenant_keys(
        &self,
        tenant: TenantId,
        below: Option<KekVersion>,
    ) -> Result<Vec<KekVersion>, EncryptionError>;
}

/// The KEK out of an unwrapped plaintext, whatever produced it.
fn kek_from_plaintext(kek_version: KekVersion, plaintext: &[u8]) -> Result<Kek, EncryptionError> {
    let bytes: [u8; 32] = plaintext
        .try_into()
        .map_err(|_| EncryptionError::Integrity("unwrapped KEK has the wrong length"))?;
    Kek::from_bytes(kek_version, Zeroizing::new(bytes))
}

fn unknown_root(found: RootKeyVersion, known: &[RootKeyVersion]) -> EncryptionError {
    EncryptionError::KeyVersion {
        kind: "root key",
        found: found.get(),
        expected: known
            .iter()
            .map(|v| v.get().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    }
}
