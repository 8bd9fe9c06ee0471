//! Tenant key-encryption keys and their wrapped form.

use std::fmt;

use aws_lc_rs::aead::LessSafeKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::kdf::aes_key;
use super::{random_key, WRAP_NONCE_LEN};
use crate::ids::TenantId;
use crate::EncryptionError;

const KEK_WRAP_LABEL: &[u8] = b"coffre/v1/kek-wrap";
const TENANT_KEY_WRAP_LABEL: &[u8] = b"coffre/v1/kek-wrap/tenant-key";

macro_rules! key_version {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(u32);

        impl $name {
            pub const FIRST: Self = Self(1);

            pub const fn new(version: u32) -> Self {
                Self(version)
            }

            pub const fn get(self) -> u32 {
                self.0
            }

            /// The version after this one, `None` past `u32::MAX`.
            pub fn next(self) -> Option<Self> {
                self.0.checked_add(1).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "v{}", self.0)
            }
        }
    };
}

key_version!(
    /// A version of a tenant's KEK: rotation adds one, old versions stay readable until
    /// every DEK is rewrapped.
    KekVersion
);
key_version!(
    /// A version of the root key held by the key provider.
    RootKeyVersion
);

/// One version of a tenant's key-encryption key. Zeroized on drop (aws-lc clears its
/// expanded copy); share it with `Arc`, never clone it.
pub struct Kek {
    version: KekVersion,
    bytes: Zeroizing<[u8; 32]>,
    aead: LessSafeKey,
}

impl Kek {
    /// A fresh KEK from the OS CSPRNG, to be wrapped by the key provider and stored.
    pub fn generate(version: KekVersion) -> Result<Self, EncryptionError> {
        Self::from_bytes(version, random_key())
    }

    pub fn version(&self) -> KekVersion {
        self.version
    }

    pub(crate) fn from_bytes(
        version: KekVersion,
        bytes: Zeroizing<[u8; 32]>,
    ) -> Result<Self, EncryptionError> {
        let aead = aes_key(&bytes)?;
        Ok(Self {
            version,
            bytes,
            aead,
        })
    }

    /// For the key provider only: the bytes it wraps.
    pub(crate) fn secret_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    pub(super) fn aead(&self) -> &LessSafeKey {
        &self.aead
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kek({}, <redacted>)", self.version)
    }
}

/// What seals a wrapped KEK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KekWrapper {
    /// A root key version of the provider, shared by every tenant.
    Root(RootKeyVersion),
    /// The tenant's own key for this KEK version, a persistent object in the `pkcs11` token
    /// (`tenant_keys_in_hsm`). Destroying that object makes every copy of the wrapped KEK
    /// useless, whatever root key is at hand.
    TenantKey,
}

/// A tenant KEK sealed (AES-256-GCM) under a root key or under the tenant's own key in the
/// HSM: what the tenant record stores, one per KEK version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKek {
    pub wrapper: KekWrapper,
    pub kek_version: KekVersion,
    pub nonce: [u8; WRAP_NONCE_LEN],
    /// The KEK's ciphertext and tag (48 bytes).
    pub ciphertext: Vec<u8>,
}

impl WrappedKek {
    /// The root key version that wraps it; `None` when a tenant key in the HSM does.
    pub fn root_version(&self) -> Option<RootKeyVersion> {
        match self.wrapper {
            KekWrapper::Root(version) => Some(version),
            KekWrapper::TenantKey => None,
        }
    }
}

/// Label | tenant | KEK version | root key version: what every provider binds a wrapped KEK
/// to.
pub(crate) fn kek_wrap_associated_data(
    tenant: TenantId,
    kek_version: KekVersion,
    root_version: RootKeyVersion,
) -> Vec<u8> {
    let mut ad = Vec::with_capacity(KEK_WRAP_LABEL.len() + 24);
    ad.extend_from_slice(KEK_WRAP_LABEL);
    ad.extend_from_slice(tenant.as_bytes());
    ad.extend_from_slice(&kek_version.get().to_be_bytes());
    ad.extend_from_slice(&root_version.get().to_be_bytes());
    ad
}

/// Label | tenant | KEK version: what a KEK wrapped under its tenant key is bound to (the
/// key itself is the tenant's and the version's).
pub(crate) fn tenant_key_wrap_associated_data(
    tenant: TenantId,
    kek_version: KekVersion,
) -> Vec<u8> {
    let mut ad = Vec::with_capacity(TENANT_KEY_WRAP_LABEL.len() + 20);
    ad.extend_from_slice(TENANT_KEY_WRAP_LABEL);
    ad.extend_from_slice(tenant.as_bytes());
    ad.extend_from_slice(&kek_version.get().to_be_bytes());
    ad
}
