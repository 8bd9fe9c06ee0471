//! Access keys: what the admin interface shows of one, and its record with the sealed
//! secret.

use std::time::SystemTime;

use coffre_crypto::{AccessKeyId, KekVersion, Role, TenantId};
use serde::{Deserialize, Serialize};

use super::{unix_millis, unknown_version, Record};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessKeyState {
    Active,
    Disabled,
}

/// An access key as the admin interface shows it: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyInfo {
    pub id: AccessKeyId,
    pub tenant: TenantId,
    pub role: Role,
    pub buckets: Option<Vec<String>>,
    pub state: AccessKeyState,
    pub created: SystemTime,
}

/// `access_keys` value. The secret is sealed (see [`SealedSecret`]), never stored as is.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct AccessKeyRecord {
    pub tenant: TenantId,
    pub role: Role,
    pub buckets: Option<Vec<String>>,
    pub secret: SealedSecret,
    pub state: AccessKeyState,
    #[serde(with = "unix_millis")]
    pub created: SystemTime,
}

/// An access key's secret at rest: AES-256-GCM under
/// [`coffre_crypto::Kek::access_key_secret_key`] of the owning tenant's KEK `kek_version`
/// (which the root key wraps), bound to the access key id, the tenant id and the KEK
/// version, so that a record moved to another key id or tenant does not open. Sealing and
/// opening are in `access_keys`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SealedSecret {
    pub kek_version: KekVersion,
    /// Nonce | ciphertext | tag, as [`coffre_crypto::ValueKey::seal`] writes it.
    pub sealed: Vec<u8>,
}

/// Format 2 seals the secret; format 1 stored it in plaintext and was never deployed, so it
/// is refused with an error saying so.
const ACCESS_KEY_FORMAT_VERSION: u8 = 2;

impl Record for AccessKeyRecord {
    const KIND: &'static str = "access key";
    const VERSION: u8 = ACCESS_KEY_FORMAT_VERSION;

    fn decode_older(version: u8, _body: &[u8]) -> Result<Self> {
        match version {
            1 => Err(Error::Corrupt(
                "access key record: format 1 (plaintext secret) is no longer read; \
                 delete the key and create a new one"
                    .to_owned(),
            )),
            _ => Err(unknown_version(Self::KIND, version)),
        }
    }
}
