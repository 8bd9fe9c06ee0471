//! The key that seals access key secrets in the metadata store.

use super::kdf::derive_aes_key;
use super::{Kek, ValueKey};
use crate::EncryptionError;

/// HKDF `info` of the access key secret key: distinct from every other derivation.
const ACCESS_KEY_SECRET_LABEL: &[u8] = b"coffre/v1/access-key-secret";

impl Kek {
    /// The key that seals the secrets of this tenant's access keys: HKDF-SHA-256(KEK,
    /// "coffre/v1/access-key-secret"). The KEK itself only wraps DEKs; this derived key
    /// seals short secrets, each bound by the caller to its key id, tenant and KEK version
    /// through the `field` of [`ValueKey::seal`]. The root key wraps the KEK, so a secret
    /// sealed under it is sealed under the root key too, and is shredded with the tenant.
    pub fn access_key_secret_key(&self) -> Result<ValueKey, EncryptionError> {
        derive_aes_key(self.secret_bytes(), &[ACCESS_KEY_SECRET_LABEL]).map(ValueKey::new)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use zeroize::Zeroizing;

    use super::*;
    use crate::{Dek, KekVersion};

    #[test]
    fn secrets_open_under_the_same_kek_only() {
        let kek = Kek::generate(KekVersion::FIRST).unwrap();
        let sealed = kek
            .access_key_secret_key()
            .unwrap()
            .seal(b"AKID|tenant|v1", b"the-secret")
            .unwrap();
        assert!(!sealed.windows(10).any(|w| w == b"the-secret"));
        // Derived again from the same KEK bytes (as after an unwrap): it opens.
        let same = Kek::from_bytes(KekVersion::FIRST, Zeroizing::new(*kek.secret_bytes())).unwrap();
        let key = same.access_key_secret_key().unwrap();
        assert_eq!(key.open(b"AKID|tenant|v1", &sealed).unwrap(), b"the-secret");
        assert!(key.open(b"AKID|other|v1", &sealed).is_err());
        let other = Kek::generate(KekVersion::FIRST).unwrap();
        assert!(other
            .access_key_secret_key()
            .unwrap()
            .open(b"AKID|tenant|v1", &sealed)
            .is_err());
    }

    #[test]
    fn the_key_differs_from_the_kek_and_object_value_keys() {
        // A DEK with the KEK's bytes derives its value key with another label.
        let kek = Kek::generate(KekVersion::FIRST).unwrap();
        let sealed = kek
            .access_key_secret_key()
            .unwrap()
            .seal(b"f", b"x")
            .unwrap();
        let dek = Dek::from_bytes(Zeroizing::new(*kek.secret_bytes()));
        assert!(dek.value_key().unwrap().open(b"f", &sealed).is_err());
    }
}
