//! SSE-C: a key the client sends with every request on an object (S3's server-side
//! encryption with customer-provided keys), and what it does to the object's keys.
//!
//! The customer key never wraps anything that is stored and is never stored itself. It binds
//! the data instead: an SSE-C object's data keys come from [`Dek::with_customer_key`], an HKDF
//! of its DEK and the customer key, so reading the data takes both the tenant's KEK (to unwrap
//! the DEK) and the customer key. The DEK itself is wrapped as for any object, so KEK rotation
//! rewraps it without the customer key, and the value key (ETag, checksums, metadata, which
//! listings open) still comes from the plain DEK. What the record keeps is a
//! [`CustomerKeyCheck`], a PRF of the customer key under the DEK, to tell a wrong key from
//! damaged data; it says nothing about the key without the DEK.

use std::fmt;

use aws_lc_rs::hkdf::{Salt, HKDF_SHA256};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use md5::{Digest as _, Md5};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::Dek;
use crate::EncryptionError;

/// The only SSE-C algorithm S3 defines.
pub const SSE_C_ALGORITHM: &str = "AES256";

/// HKDF `info` = label | customer key: the DEK an SSE-C object's data keys derive from.
const SSE_C_DEK_LABEL: &[u8] = b"coffre/v1/sse-c-dek";
/// HKDF `info` = label | customer key: the check value stored with an SSE-C object.
const SSE_C_KEY_CHECK_LABEL: &[u8] = b"coffre/v1/sse-c-key-check";

/// A customer-provided 256-bit key, as sent in `x-amz-server-side-encryption-customer-key`.
/// Zeroized on drop, redacted in `Debug`, not `Clone`: it lives for one request.
pub struct CustomerKey(Zeroizing<[u8; 32]>);

/// Why the SSE-C headers of a request do not give a key, in the order
/// [`CustomerKey::from_headers`] checks them (S3's: the algorithm first, and the MD5 before
/// the key's length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CustomerKeyError {
    #[error("the customer key algorithm is missing")]
    MissingAlgorithm,
    #[error("the customer key algorithm is not AES256")]
    UnsupportedAlgorithm,
    #[error("the customer key is missing")]
    MissingKey,
    #[error("the MD5 of the customer key is missing")]
    MissingKeyMd5,
    #[error("the MD5 given is not the MD5 of the customer key")]
    KeyMd5Mismatch,
    #[error("the customer key is not the base64 of 32 bytes")]
    InvalidKey,
}

impl CustomerKey {
    /// The key from the three SSE-C header values (algorithm, base64 key, base64 MD5 of the
    /// key): `None` when none is given; an error when only some are, when the algorithm is
    /// not AES256, when the key is not 32 bytes, or when the MD5 is not the key's.
    pub fn from_headers(
        algorithm: Option<&str>,
        key: Option<&str>,
        key_md5: Option<&str>,
    ) -> Result<Option<Self>, CustomerKeyError> {
        if algorithm.is_none() && key.is_none() && key_md5.is_none() {
            return Ok(None);
        }
        let algorithm = algorithm.ok_or(CustomerKeyError::MissingAlgorithm)?;
        if algorithm.trim() != SSE_C_ALGORITHM {
            return Err(CustomerKeyError::UnsupportedAlgorithm);
        }
        let key = key.ok_or(CustomerKeyError::MissingKey)?;
        let key_md5 = key_md5.ok_or(CustomerKeyError::MissingKeyMd5)?;
        let decoded = Zeroizing::new(
            BASE64
                .decode(key.trim())
                .map_err(|_| CustomerKeyError::InvalidKey)?,
        );
        let given_md5 = BASE64
            .decode(key_md5.trim())
            .map_err(|_| CustomerKeyError::KeyMd5Mismatch)?;
        let md5: [u8; 16] = Md5::digest(decoded.as_slice()).into();
        if !bool::from(md5.as_slice().ct_eq(&given_md5)) {
            return Err(CustomerKeyError::KeyMd5Mismatch);
        }
        let bytes: &[u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| CustomerKeyError::InvalidKey)?;
        Ok(Some(Self::from_bytes(bytes)))
    }

    /// A key from its raw bytes (tests, tools).
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(Zeroizing::new(*bytes))
    }

    /// The base64 MD5 of the key, as `x-amz-server-side-encryption-customer-key-MD5` carries
    /// it: computed for a response, never stored.
    pub fn key_md5_base64(&self) -> String {
        BASE64.encode(self.md5())
    }

    fn md5(&self) -> [u8; 16] {
        Md5::digest(self.0.as_slice()).into()
    }
}

impl fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CustomerKey(<redacted>)")
    }
}

/// What an SSE-C object's record keeps to recognise its customer key: HKDF-SHA-256(DEK,
/// "coffre/v1/sse-c-key-check" | customer key). Without the DEK it is a random-looking value;
/// with it, checking a guess costs a guess of a 256-bit key. Compare it only through
/// [`Dek::matches_customer_key`] (its `==` is constant-time too).
#[derive(Clone, Copy, Serialize, Deserialize)]
pub struct CustomerKeyCheck([u8; 32]);

impl PartialEq for CustomerKeyCheck {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for CustomerKeyCheck {}

impl fmt::Debug for CustomerKeyCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CustomerKeyCheck(..)")
    }
}

impl Dek {
    /// The DEK an SSE-C object's data is sealed under: HKDF-SHA-256(DEK,
    /// "coffre/v1/sse-c-dek" | customer key). Its part keys are derived from it as from any
    /// DEK ([`Dek::part_key`]); its value key is not used (values stay under the plain DEK).
    pub fn with_customer_key(&self, key: &CustomerKey) -> Result<Dek, EncryptionError> {
        derive(self.secret_bytes(), SSE_C_DEK_LABEL, key).map(Dek::from_bytes)
    }

    /// The check value to store with an object sealed under [`Dek::with_customer_key`].
    pub fn customer_key_check(
        &self,
        key: &CustomerKey,
    ) -> Result<CustomerKeyCheck, EncryptionError> {
        derive(self.secret_bytes(), SSE_C_KEY_CHECK_LABEL, key)
            .map(|bytes| CustomerKeyCheck(*bytes))
    }

    /// Whether `key` is the customer key `check` was made with (under this DEK), in
    /// constant time.
    pub fn matches_customer_key(
        &self,
        key: &CustomerKey,
        check: &CustomerKeyCheck,
    ) -> Result<bool, EncryptionError> {
        Ok(self.customer_key_check(key)? == *check)
    }
}

fn derive(
    dek: &[u8; 32],
    label: &[u8],
    key: &CustomerKey,
) -> Result<Zeroizing<[u8; 32]>, EncryptionError> {
    let prk = Salt::new(HKDF_SHA256, &[]).extract(dek);
    let info = [label, key.0.as_slice()];
    let okm = prk
        .expand(&info, HKDF_SHA256)
        .map_err(|_| EncryptionError::Refused("HKDF expand"))?;
    let mut bytes = Zeroizing::new([0u8; 32]);
    okm.fill(bytes.as_mut())
        .map_err(|_| EncryptionError::Refused("HKDF expand"))?;
    Ok(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn headers_for(bytes: &[u8]) -> (String, String) {
        (BASE64.encode(bytes), BASE64.encode(Md5::digest(bytes)))
    }

    fn parse(
        algorithm: Option<&str>,
        key: Option<&str>,
        md5: Option<&str>,
    ) -> Result<Option<CustomerKey>, CustomerKeyError> {
        CustomerKey::from_headers(algorithm, key, md5)
    }

    #[test]
    fn no_headers_is_no_key_and_a_full_set_is_one() {
        assert!(parse(None, None, None).unwrap().is_none());
        let (key, md5) = headers_for(&[7u8; 32]);
        let parsed = parse(Some("AES256"), Some(&key), Some(&md5))
            .unwrap()
            .unwrap();
        assert_eq!(parsed.0.as_slice(), &[7u8; 32]);
        assert_eq!(parsed.key_md5_base64(), md5);
    }

    #[test]
    fn each_missing_or_bad_header_has_its_error_in_order() {
        use CustomerKeyError::*;
        let (key, md5) = headers_for(&[7u8; 32]);
        let (short, short_md5) = headers_for(&[7u8; 31]);
        let (other, _) = headers_for(&[8u8; 32]);
        let err = |a, k, m| parse(a, k, m).err();
        assert_eq!(err(None, Some(&key), Some(&md5)), Some(MissingAlgorithm));
        assert_eq!(err(None, None, Some(&md5)), Some(MissingAlgorithm));
        assert_eq!(
            err(Some("AES128"), Some(&key), Some(&md5)),
            Some(UnsupportedAlgorithm)
        );
        assert_eq!(err(Some(""), None, None), Some(UnsupportedAlgorithm));
        assert_eq!(err(Some("AES256"), None, Some(&md5)), Some(MissingKey));
        assert_eq!(err(Some("AES256"), Some(&key), None), Some(MissingKeyMd5));
        assert_eq!(
            err(Some("AES256"), Some(&other), Some(&md5)),
            Some(KeyMd5Mismatch)
        );
        assert_eq!(
            err(Some("AES256"), Some(&key), Some("%%%")),
            Some(KeyMd5Mismatch)
        );
        // The MD5 is checked before the length: a short key with another key's MD5 is a
        // mismatch, with its own MD5 an invalid key.
        assert_eq!(
            err(Some("AES256"), Some(&short), Some(&md5)),
            Some(KeyMd5Mismatch)
        );
        assert_eq!(
            err(Some("AES256"), Some(&short), Some(&short_md5)),
            Some(InvalidKey)
        );
        assert_eq!(
            err(Some("AES256"), Some("not base64!"), Some(&md5)),
            Some(InvalidKey)
        );
    }

    #[test]
    fn the_key_is_redacted() {
        let key = CustomerKey::from_bytes(&[0xAB; 32]);
        let shown = format!("{key:?}");
        assert_eq!(shown, "CustomerKey(<redacted>)");
        let check = Dek::generate().customer_key_check(&key).unwrap();
        assert_eq!(format!("{check:?}"), "CustomerKeyCheck(..)");
    }

    #[test]
    fn the_data_dek_needs_both_the_dek_and_the_customer_key() {
        let dek = Dek::generate();
        let key = CustomerKey::from_bytes(&[1; 32]);
        let data = dek.with_customer_key(&key).unwrap();
        assert_ne!(data.secret_bytes(), dek.secret_bytes());
        // Deterministic: the same DEK and key give the same data DEK.
        assert_eq!(
            dek.with_customer_key(&key).unwrap().secret_bytes(),
            data.secret_bytes()
        );
        let other_key = CustomerKey::from_bytes(&[2; 32]);
        assert_ne!(
            dek.with_customer_key(&other_key).unwrap().secret_bytes(),
            data.secret_bytes()
        );
        assert_ne!(
            Dek::generate()
                .with_customer_key(&key)
                .unwrap()
                .secret_bytes(),
            data.secret_bytes()
        );
        // A segment sealed under the SSE-C part key does not open under the plain one.
        let mut sealed = vec![0u8; 32];
        let tag = data
            .part_key(0)
            .unwrap()
            .seal_in_place([0u8; 12], &mut sealed)
            .unwrap();
        sealed.extend_from_slice(tag.as_ref());
        let mut copy = sealed.clone();
        assert!(dek
            .part_key(0)
            .unwrap()
            .open_in_place([0u8; 12], &mut copy)
            .is_err());
        assert!(data
            .part_key(0)
            .unwrap()
            .open_in_place([0u8; 12], &mut sealed)
            .is_ok());
    }

    #[test]
    fn the_check_recognises_the_key_and_reveals_neither_key() {
        let dek = Dek::generate();
        let key = CustomerKey::from_bytes(&[3; 32]);
        let check = dek.customer_key_check(&key).unwrap();
        assert!(dek.matches_customer_key(&key, &check).unwrap());
        let wrong = CustomerKey::from_bytes(&[4; 32]);
        assert!(!dek.matches_customer_key(&wrong, &check).unwrap());
        assert!(!Dek::generate().matches_customer_key(&key, &check).unwrap());
        // Neither the key, nor the data DEK, nor the key's MD5 is the check value.
        assert_ne!(&check.0, key.0.as_ref());
        assert_ne!(
            &check.0,
            dek.with_customer_key(&key).unwrap().secret_bytes()
        );
        assert!(!check.0.windows(16).any(|w| w == key.md5()));
    }

    proptest! {
        #[test]
        fn any_key_round_trips_through_its_headers(bytes in any::<[u8; 32]>()) {
            let (key, md5) = headers_for(&bytes);
            let parsed = parse(Some("AES256"), Some(&key), Some(&md5)).unwrap().unwrap();
            prop_assert_eq!(parsed.0.as_slice(), &bytes);
        }

        #[test]
        fn any_other_length_is_an_invalid_key(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assume!(bytes.len() != 32);
            let (key, md5) = headers_for(&bytes);
            prop_assert_eq!(
                parse(Some("AES256"), Some(&key), Some(&md5)).err(),
                Some(CustomerKeyError::InvalidKey)
            );
        }

        #[test]
        fn a_flipped_bit_is_an_md5_mismatch_or_a_wrong_key(
            bytes in any::<[u8; 32]>(),
            bit in 0usize..256,
        ) {
            let (_, md5) = headers_for(&bytes);
            let mut flipped = bytes;
            flipped[bit / 8] ^= 1 << (bit % 8);
            let (key, flipped_md5) = headers_for(&flipped);
            // Sent with the original key's MD5: refused before any key is used.
            prop_assert_eq!(
                parse(Some("AES256"), Some(&key), Some(&md5)).err(),
                Some(CustomerKeyError::KeyMd5Mismatch)
            );
            // Sent consistently: a well-formed key that the check does not recognise.
            let dek = Dek::generate();
            let check = dek.customer_key_check(&CustomerKey::from_bytes(&bytes)).unwrap();
            let other = parse(Some("AES256"), Some(&key), Some(&flipped_md5)).unwrap().unwrap();
            prop_assert!(!dek.matches_customer_key(&other, &check).unwrap());
            let from_other = dek.with_customer_key(&other).unwrap();
            let from_original = dek.with_customer_key(&CustomerKey::from_bytes(&bytes)).unwrap();
            prop_assert_ne!(from_other.secret_bytes(), from_original.secret_bytes());
        }
    }
}
