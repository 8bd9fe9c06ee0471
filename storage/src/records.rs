//! The values of the metadata store: serde structs encoded with postcard behind a leading
//! format-version byte. A value with an unknown version is [`Error::Corrupt`], never guessed
//! at; a new layout gets a new version and a decoder for the old one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use coffre_crypto::{BucketId, ObjectId, Role, TenantId};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use zeroize::Zeroize;

use crate::error::{Error, Result};

/// The only record layout this build writes and reads.
pub(crate) const FORMAT_VERSION: u8 = 1;

/// A value of the metadata store.
pub(crate) trait Record: Serialize + DeserializeOwned {
    /// What the record is, for error messages.
    const KIND: &'static str;

    fn encode(&self) -> Result<Vec<u8>> {
        postcard::to_extend(self, vec![FORMAT_VERSION])
            .map_err(|e| Error::Corrupt(format!("encoding {}: {e}", Self::KIND)))
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        match bytes.split_first() {
            Some((&FORMAT_VERSION, body)) => {
                let (record, rest) = postcard::take_from_bytes(body)
                    .map_err(|e| Error::Corrupt(format!("{} record: {e}", Self::KIND)))?;
                if rest.is_empty() {
                    Ok(record)
                } else {
                    Err(Error::Corrupt(format!(
                        "{} record: trailing bytes",
                        Self::KIND
                    )))
                }
            }
            Some((version, _)) => Err(Error::Corrupt(format!(
                "{} record: unknown format version {version}",
                Self::KIND
            ))),
            None => Err(Error::Corrupt(format!("{} record: empty", Self::KIND))),
        }
    }
}

/// Times are stored as milliseconds since the Unix epoch, the precision S3 shows.
mod unix_millis {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        time: &SystemTime,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        to_millis(*time).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<SystemTime, D::Error> {
        u64::deserialize(deserializer).map(from_millis)
    }
}

pub(crate) fn to_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

pub(crate) fn from_millis(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

/// Now, truncated to what a record keeps, so a returned record equals its stored form.
pub(crate) fn now() -> SystemTime {
    from_millis(to_millis(SystemTime::now()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TenantState {
    Active,
    /// Its keys no longer authenticate; its data stays until the tenant is deleted.
    Disabled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRecord {
    pub id: TenantId,
    pub name: String,
    #[serde(with = "unix_millis")]
    pub created: SystemTime,
    pub state: TenantState,
}

impl Record for TenantRecord {
    const KIND: &'static str = "tenant";
}

/// `tenant_names` value: the id of the tenant with that name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TenantNameRecord {
    pub tenant: TenantId,
}

impl Record for TenantNameRecord {
    const KIND: &'static str = "tenant name";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessKeyState {
    Active,
    Disabled,
}

/// `access_keys` value.
// The secret is stored as is until the root key exists to seal it (see DESIGN, "Hierarchy").
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct AccessKeyRecord {
    pub tenant: TenantId,
    pub role: Role,
    pub buckets: Option<Vec<String>>,
    pub secret: String,
    pub state: AccessKeyState,
    #[serde(with = "unix_millis")]
    pub created: SystemTime,
}

impl Drop for AccessKeyRecord {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl Record for AccessKeyRecord {
    const KIND: &'static str = "access key";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRecord {
    pub name: String,
    pub id: BucketId,
    #[serde(with = "unix_millis")]
    pub created: SystemTime,
    pub region: String,
}

impl Record for BucketRecord {
    const KIND: &'static str = "bucket";
}

/// What the gateway knows about an object's content: set by the gateway, stored as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub size: u64,
    /// Without quotes.
    pub etag: String,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<String>,
    pub user_metadata: Vec<(String, String)>,
    /// (algorithm such as "CRC32", base64 value).
    pub checksums: Vec<(String, String)>,
    /// "FULL_OBJECT" or "COMPOSITE".
    pub checksum_type: Option<String>,
}

/// Where a part's bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataLocation {
    /// Small data kept in the record itself.
    Inline(Vec<u8>),
    /// A data file `<array>/<tenant>/<ab>/<cd>/<file>` on the array named `array`.
    File { array: String, file: ObjectId },
}

/// One part of an object's data, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartLayout {
    /// 0 for a single PUT, the S3 part number for a completed multipart upload.
    pub part_number: u32,
    /// Plaintext bytes in this part: the source of truth for offsets, never the file size.
    pub size: u64,
    pub location: DataLocation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    pub key: String,
    /// This version's identity, for binding keys to it.
    pub id: ObjectId,
    pub meta: ObjectMeta,
    #[serde(with = "unix_millis")]
    pub last_modified: SystemTime,
    pub parts: Vec<PartLayout>,
}

impl Record for ObjectRecord {
    const KIND: &'static str = "object";
}

/// What the gateway knows about an uploaded part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartInfo {
    /// Without quotes.
    pub etag: String,
    pub size: u64,
    pub checksums: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    pub part_number: u32,
    pub etag: String,
    pub size: u64,
    #[serde(with = "unix_millis")]
    pub last_modified: SystemTime,
    pub checksums: Vec<(String, String)>,
    pub location: DataLocation,
}

impl Record for PartRecord {
    const KIND: &'static str = "part";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    /// Lowercase hex of an [`ObjectId`]: URL-safe.
    pub upload_id: String,
    pub key: String,
    #[serde(with = "unix_millis")]
    pub initiated: SystemTime,
    /// Content headers and metadata given at creation; size and etag are empty.
    pub meta: ObjectMeta,
}

impl Record for UploadRecord {
    const KIND: &'static str = "upload";
}

/// A data file, wherever it lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileLocation {
    pub tenant: TenantId,
    pub array: String,
    pub file: ObjectId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum GcState {
    /// Superseded or deleted: remove it.
    Queued,
    /// Being written by the process that booted with this id; if that process is gone,
    /// whatever it left (temp or final file) is an orphan.
    Pending { boot_id: [u8; 16] },
}

/// `gc` value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GcEntry {
    pub location: FileLocation,
    pub state: GcState,
}

impl Record for GcEntry {
    const KIND: &'static str = "gc";
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn bucket() -> BucketRecord {
        BucketRecord {
            name: "b".into(),
            id: BucketId::random(),
            created: now(),
            region: "us-east-1".into(),
        }
    }

    #[test]
    fn records_round_trip() {
        let record = bucket();
        assert_eq!(
            BucketRecord::decode(&record.encode().unwrap()).unwrap(),
            record
        );
    }

    #[test]
    fn unknown_version_truncation_and_trailing_bytes_are_corrupt() {
        let mut bytes = bucket().encode().unwrap();
        bytes[0] = 2;
        assert!(matches!(
            BucketRecord::decode(&bytes),
            Err(Error::Corrupt(_))
        ));
        bytes[0] = FORMAT_VERSION;
        assert!(matches!(
            BucketRecord::decode(&bytes[..bytes.len() - 1]),
            Err(Error::Corrupt(_))
        ));
        bytes.push(0);
        assert!(matches!(
            BucketRecord::decode(&bytes),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(BucketRecord::decode(&[]), Err(Error::Corrupt(_))));
    }
}
