//! Newtypes for identifiers and secrets, so that a bucket id can never be passed where a tenant
//! id is expected and a secret can never reach a log line.

use std::fmt;

use rand::{distributions::Alphanumeric, Rng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("not a valid {0}")]
    Invalid(&'static str),
}

macro_rules! random_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name([u8; 16]);

        impl $name {
            /// A fresh identifier from the OS CSPRNG.
            pub fn random() -> Self {
                let mut bytes = [0u8; 16];
                rand::rngs::OsRng.fill_bytes(&mut bytes);
                Self(bytes)
            }

            pub const fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(bytes)
            }

            pub const fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }

            /// Lowercase hex, 32 characters: the form used in paths and admin output.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            pub fn parse_hex(s: &str) -> Result<Self, IdError> {
                let mut bytes = [0u8; 16];
                hex::decode_to_slice(s, &mut bytes)
                    .map_err(|_| IdError::Invalid(stringify!($name)))?;
                Ok(Self(bytes))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }
    };
}

random_id!(
    /// A tenant: the unit of isolation.
    TenantId
);
random_id!(
    /// A bucket incarnation: a deleted and re-created bucket gets a new id, so it never sees
    /// the old bucket's objects.
    BucketId
);
random_id!(
    /// One stored object version, multipart upload or data file.
    ObjectId
);

/// An access key id as clients send it in the credential scope: 16 to 128 characters of
/// `[A-Z0-9]`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccessKeyId(String);

impl AccessKeyId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let ok = (16..=128).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::Invalid("AccessKeyId"))
        }
    }

    /// A new id in the AWS shape: `CO` followed by 18 random characters.
    pub fn generate() -> Self {
        let mut rng = rand::rngs::OsRng;
        let tail: String = (0..18)
            .map(|_| {
                let n = rng.gen_range(0..36u8);
                if n < 10 {
                    (b'0' + n) as char
                } else {
                    (b'A' + n - 10) as char
                }
            })
            .collect();
        Self(format!("CO{tail}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccessKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AccessKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccessKeyId({})", self.0)
    }
}

/// A secret access key. Zeroized on drop; `Debug` never shows it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey(String);

impl SecretKey {
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    /// 40 random alphanumeric characters, the length AWS uses.
    pub fn generate() -> Self {
        Self(
            rand::rngs::OsRng
                .sample_iter(&Alphanumeric)
                .take(40)
                .map(char::from)
                .collect(),
        )
    }

    /// The secret itself. Call sites are few and reviewed: signing-key derivation and the
    /// one-time display at creation.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// What an access key may do inside its tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Everything in the tenant.
    Admin,
    ReadWrite,
    ReadOnly,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_hex() {
        let id = TenantId::random();
        assert_eq!(TenantId::parse_hex(&id.to_hex()), Ok(id));
        assert!(TenantId::parse_hex("zz").is_err());
    }

    #[test]
    fn generated_access_keys_parse() {
        let key = AccessKeyId::generate();
        assert_eq!(AccessKeyId::parse(key.as_str()), Ok(key));
        assert!(AccessKeyId::parse("short").is_err());
        assert!(AccessKeyId::parse("lowercase0000000000").is_err());
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let secret = SecretKey::generate();
        assert_eq!(secret.expose().len(), 40);
        assert!(!format!("{secret:?}").contains(secret.expose()));
    }
}
