//! The key hierarchy: root key (held by a [`crate::KeyProvider`]) -> tenant [`Kek`]
//! (versioned, stored as a [`WrappedKek`]) -> random [`Dek`] per object version (stored as a
//! [`WrappedDek`] bound to its [`DekContext`]) -> per-part keys and the value key (HKDF).
//! A KEK also derives the key that seals its tenant's access key secrets
//! ([`Kek::access_key_secret_key`]). An SSE-C object's data keys derive from its DEK and the
//! client's [`CustomerKey`] ([`Dek::with_customer_key`]).
//!
//! Key material is zeroized on drop, redacted in `Debug` and not `Clone`.

mod customer_key;
mod dek;
mod kdf;
mod kek;
mod secret_key;
mod value_key;

pub use customer_key::{CustomerKey, CustomerKeyCheck, CustomerKeyError, SSE_C_ALGORITHM};
pub use dek::{Dek, DekContext, WrappedDek};
pub use kek::{Kek, KekVersion, KekWrapper, RootKeyVersion, WrappedKek};
pub use value_key::ValueKey;

pub(crate) use kdf::aes_key;
pub(crate) use kek::{kek_wrap_associated_data, tenant_key_wrap_associated_data};

/// AES-GCM nonce length of the key wraps.
pub const WRAP_NONCE_LEN: usize = 12;

pub(crate) fn random_nonce() -> [u8; WRAP_NONCE_LEN] {
    use rand::RngCore;
    let mut nonce = [0u8; WRAP_NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    nonce
}

pub(crate) fn random_key() -> zeroize::Zeroizing<[u8; 32]> {
    use rand::RngCore;
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(key.as_mut());
    key
}

#[cfg(test)]
mod tests;
