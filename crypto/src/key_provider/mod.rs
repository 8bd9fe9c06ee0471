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

use std::fmt;

use zeroize::Zeroizing;

use crate::ids::TenantId;
use crate::key_hierarchy::{Kek, KekVersion, RootKeyVersion, WrappedKek};
use crate::EncryptionError;

mod local_file;
mod pkcs11;

pub use local_file::LocalFileKeyProvider;
pub use pkcs11::{
    root_key_label, Pkcs11Config, Pkcs11KeyProvider, DEFAULT_PKCS11_MODULE, DEFAULT_ROOT_KEY_LABEL,
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
    fn rewrap_kek(
        &self,
        tenant: TenantId,
        wrapped: &WrappedKek,
    ) -> Result<WrappedKek, EncryptionError> {
        let kek = self.unwrap_kek(tenant, wrapped)?;
        self.wrap_kek(tenant, &kek)
    }
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
