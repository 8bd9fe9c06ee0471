//! The stored forms of objects, uploads and parts: what the metadata store holds for them.
//!
//! The ETag, the checksum values and the user metadata values are sealed with the object's
//! value key ([`coffre_crypto::Dek::value_key`]), each bound to a field name so that no
//! sealed value can stand in for another:
//!
//! - object (and upload, whose DEK becomes the object's): `etag`, `checksum:<ALGORITHM>`,
//!   `meta:<name>`;
//! - part `n`: `part:<n>:etag`, `part:<n>:checksum:<ALGORITHM>`.
//!
//! Sizes, times, content headers (Content-Type and the like), user metadata names, checksum
//! algorithms and data locations stay plaintext. The plaintext forms ([`ObjectRecord`],
//! [`UploadRecord`], [`PartRecord`]) are not [`Record`]s, so they cannot be written as is.

use std::time::SystemTime;

use coffre_crypto::{BucketId, NoncePrefix, ObjectId, ValueKey, WrappedDek};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::records::{
    unix_millis, DataLocation, ObjectMeta, ObjectRecord, PartLayout, PartRecord, Record,
    UploadRecord,
};

/// Format 2: the first with sealed values and wrapped DEKs (format 1 stored plaintext and
/// was never deployed, so it is not read).
const SEALED_FORMAT_VERSION: u8 = 2;

const ETAG: &str = "etag";

fn checksum_field(algorithm: &str) -> String {
    format!("checksum:{algorithm}")
}

fn meta_field(name: &str) -> String {
    format!("meta:{name}")
}

fn part_field(part_number: u32, field: &str) -> String {
    format!("part:{part_number}:{field}")
}

/// Seals and opens the values of one object, naming it in integrity errors.
struct Values<'a> {
    key: &'a ValueKey,
    object: &'a str,
}

impl Values<'_> {
    fn seal(&self, field: &str, value: &str) -> Result<Vec<u8>> {
        Ok(self.key.seal(field.as_bytes(), value.as_bytes())?)
    }

    fn open(&self, field: &str, sealed: &[u8]) -> Result<String> {
        let plain = self
            .key
            .open(field.as_bytes(), sealed)
            .map_err(|e| Error::integrity(self.object, e))?;
        String::from_utf8(plain).map_err(|_| Error::Integrity {
            object: self.object.to_owned(),
            reason: format!("sealed {field} is not UTF-8"),
        })
    }

    fn seal_checksums(
        &self,
        part: Option<u32>,
        checksums: &[(String, String)],
    ) -> Result<Vec<(String, Vec<u8>)>> {
        checksums
            .iter()
            .map(|(algorithm, value)| {
                let field = checksum_field(algorithm);
                let field = match part {
                    Some(n) => part_field(n, &field),
                    None => field,
                };
                Ok((algorithm.clone(), self.seal(&field, value)?))
            })
            .collect()
    }

    fn open_checksums(
        &self,
        part: Option<u32>,
        checksums: Vec<(String, Vec<u8>)>,
    ) -> Result<Vec<(String, String)>> {
        checksums
            .into_iter()
            .map(|(algorithm, sealed)| {
                let field = checksum_field(&algorithm);
                let field = match part {
                    Some(n) => part_field(n, &field),
                    None => field,
                };
                let value = self.open(&field, &sealed)?;
                Ok((algorithm, value))
            })
            .collect()
    }
}

/// [`ObjectMeta`] at rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SealedMeta {
    size: u64,
    etag: Vec<u8>,
    content_type: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    expires: Option<String>,
    /// (name, sealed value).
    user_metadata: Vec<(String, Vec<u8>)>,
    /// (algorithm, sealed value).
    checksums: Vec<(String, Vec<u8>)>,
    checksum_type: Option<String>,
}

impl SealedMeta {
    fn seal(meta: &ObjectMeta, values: &Values<'_>) -> Result<Self> {
        Ok(Self {
            size: meta.size,
            etag: values.seal(ETAG, &meta.etag)?,
            content_type: meta.content_type.clone(),
            content_encoding: meta.content_encoding.clone(),
            content_disposition: meta.content_disposition.clone(),
            content_language: meta.content_language.clone(),
            cache_control: meta.cache_control.clone(),
            expires: meta.expires.clone(),
            user_metadata: meta
                .user_metadata
                .iter()
                .map(|(name, value)| Ok((name.clone(), values.seal(&meta_field(name), value)?)))
                .collect::<Result<_>>()?,
            checksums: values.seal_checksums(None, &meta.checksums)?,
            checksum_type: meta.checksum_type.clone(),
        })
    }

    fn open(self, values: &Values<'_>) -> Result<ObjectMeta> {
        Ok(ObjectMeta {
            size: self.size,
            etag: values.open(ETAG, &self.etag)?,
            content_type: self.content_type,
            content_encoding: self.content_encoding,
            content_disposition: self.content_disposition,
            content_language: self.content_language,
            cache_control: self.cache_control,
            expires: self.expires,
            user_metadata: self
                .user_metadata
                .into_iter()
                .map(|(name, sealed)| {
                    let value = values.open(&meta_field(&name), &sealed)?;
                    Ok((name, value))
                })
                .collect::<Result<_>>()?,
            checksums: values.open_checksums(None, self.checksums)?,
            checksum_type: self.checksum_type,
        })
    }
}

/// `objects` value: an [`ObjectRecord`] at rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredObject {
    pub key: String,
    pub id: ObjectId,
    pub dek: WrappedDek,
    pub meta: SealedMeta,
    #[serde(with = "unix_millis")]
    pub last_modified: SystemTime,
    pub parts: Vec<StoredPart>,
}

/// A [`PartLayout`] at rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredPart {
    pub part_number: u32,
    pub size: u64,
    pub location: DataLocation,
    pub nonce: NoncePrefix,
    /// (algorithm, sealed value).
    pub checksums: Vec<(String, Vec<u8>)>,
}

impl Record for StoredObject {
    const KIND: &'static str = "object";
    const VERSION: u8 = SEALED_FORMAT_VERSION;
}

impl StoredObject {
    pub fn seal(record: &ObjectRecord, key: &ValueKey) -> Result<Self> {
        let values = Values {
            key,
            object: &record.key,
        };
        Ok(Self {
            key: record.key.clone(),
            id: record.id,
            dek: record.dek.clone(),
            meta: SealedMeta::seal(&record.meta, &values)?,
            last_modified: record.last_modified,
            parts: record
                .parts
                .iter()
                .map(|part| {
                    Ok(StoredPart {
                        part_number: part.part_number,
                        size: part.size,
                        location: part.location.clone(),
                        nonce: part.nonce,
                        checksums: values
                            .seal_checksums(Some(part.part_number), &part.checksums)?,
                    })
                })
                .collect::<Result<_>>()?,
        })
    }

    /// The plaintext record; `bucket` is the incarnation it was read from.
    pub fn open(self, bucket: BucketId, key: &ValueKey) -> Result<ObjectRecord> {
        let values = Values {
            key,
            object: &self.key,
        };
        let meta = self.meta.open(&values)?;
        let parts = self
            .parts
            .into_iter()
            .map(|part| {
                Ok(PartLayout {
                    part_number: part.part_number,
                    size: part.size,
                    location: part.location,
                    nonce: part.nonce,
                    checksums: values.open_checksums(Some(part.part_number), part.checksums)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(ObjectRecord {
            key: self.key,
            id: self.id,
            meta,
            last_modified: self.last_modified,
            parts,
            bucket,
            dek: self.dek,
        })
    }

    /// Only the ETag, for listings.
    pub fn open_etag(&self, key: &ValueKey) -> Result<String> {
        Values {
            key,
            object: &self.key,
        }
        .open(ETAG, &self.meta.etag)
    }

    /// Plaintext bytes of all parts.
    pub fn size(&self) -> u64 {
        self.meta.size
    }
}

/// `parts` value: a [`PartRecord`] at rest, sealed with its upload's value key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredPartRecord {
    pub part_number: u32,
    pub etag: Vec<u8>,
    pub size: u64,
    #[serde(with = "unix_millis")]
    pub last_modified: SystemTime,
    pub checksums: Vec<(String, Vec<u8>)>,
    pub location: DataLocation,
    pub nonce: NoncePrefix,
}

impl Record for StoredPartRecord {
    const KIND: &'static str = "part";
    const VERSION: u8 = SEALED_FORMAT_VERSION;
}

impl StoredPartRecord {
    /// `object` is the upload's key, for integrity errors.
    pub fn seal(record: &PartRecord, key: &ValueKey, object: &str) -> Result<Self> {
        let values = Values { key, object };
        let n = record.part_number;
        Ok(Self {
            part_number: n,
            etag: values.seal(&part_field(n, ETAG), &record.etag)?,
            size: record.size,
            last_modified: record.last_modified,
            checksums: values.seal_checksums(Some(n), &record.checksums)?,
            location: record.location.clone(),
            nonce: record.nonce,
        })
    }

    pub fn open(self, key: &ValueKey, object: &str) -> Result<PartRecord> {
        let values = Values { key, object };
        let n = self.part_number;
        Ok(PartRecord {
            part_number: n,
            etag: values.open(&part_field(n, ETAG), &self.etag)?,
            size: self.size,
            last_modified: self.last_modified,
            checksums: values.open_checksums(Some(n), self.checksums)?,
            location: self.location,
            nonce: self.nonce,
        })
    }
}

/// `uploads` value: an [`UploadRecord`] at rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredUpload {
    pub upload_id: String,
    pub key: String,
    #[serde(with = "unix_millis")]
    pub initiated: SystemTime,
    pub dek: WrappedDek,
    pub meta: SealedMeta,
}

impl Record for StoredUpload {
    const KIND: &'static str = "upload";
    const VERSION: u8 = SEALED_FORMAT_VERSION;
}

impl StoredUpload {
    pub fn seal(record: &UploadRecord, key: &ValueKey) -> Result<Self> {
        let values = Values {
            key,
            object: &record.key,
        };
        Ok(Self {
            upload_id: record.upload_id.clone(),
            key: record.key.clone(),
            initiated: record.initiated,
            dek: record.dek.clone(),
            meta: SealedMeta::seal(&record.meta, &values)?,
        })
    }

    pub fn open(self, key: &ValueKey) -> Result<UploadRecord> {
        let meta = self.meta.open(&Values {
            key,
            object: &self.key,
        })?;
        Ok(UploadRecord {
            upload_id: self.upload_id,
            key: self.key,
            initiated: self.initiated,
            meta,
            dek: self.dek,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::records::now;
    use coffre_crypto::{Dek, DekContext, Kek, KekVersion, TenantId};

    fn record(dek: &Dek) -> ObjectRecord {
        let kek = Kek::generate(KekVersion::FIRST).unwrap();
        let (bucket, id) = (BucketId::random(), ObjectId::random());
        let context = DekContext {
            tenant: TenantId::random(),
            bucket,
            key: "k",
            object: id,
            version: 0,
        };
        ObjectRecord {
            key: "k".into(),
            id,
            meta: ObjectMeta {
                size: 3,
                etag: "the-etag".into(),
                user_metadata: vec![("a".into(), "one".into()), ("b".into(), "two".into())],
                checksums: vec![("CRC32".into(), "AAAAAA==".into())],
                ..ObjectMeta::default()
            },
            last_modified: now(),
            parts: vec![PartLayout {
                part_number: 0,
                size: 3,
                location: DataLocation::Inline(vec![1, 2, 3]),
                checksums: vec![("CRC32".into(), "BBBBBB==".into())],
                nonce: NoncePrefix::random(),
            }],
            bucket,
            dek: kek.wrap_dek(dek, &context).unwrap(),
        }
    }

    #[test]
    fn objects_round_trip_and_hold_no_plaintext_value() {
        let dek = Dek::generate();
        let key = dek.value_key().unwrap();
        let record = record(&dek);
        let encoded = StoredObject::seal(&record, &key).unwrap().encode().unwrap();
        for plain in ["the-etag", "one", "two", "AAAAAA==", "BBBBBB=="] {
            assert!(
                !encoded.windows(plain.len()).any(|w| w == plain.as_bytes()),
                "{plain} in the clear"
            );
        }
        let stored = StoredObject::decode(&encoded).unwrap();
        assert_eq!(stored.open_etag(&key).unwrap(), "the-etag");
        assert_eq!(stored.open(record.bucket, &key).unwrap(), record);
    }

    #[test]
    fn swapped_values_or_another_key_fail() {
        let dek = Dek::generate();
        let key = dek.value_key().unwrap();
        let record = record(&dek);
        let mut stored = StoredObject::seal(&record, &key).unwrap();
        let first = stored.meta.user_metadata[0].1.clone();
        stored.meta.user_metadata[0].1 = stored.meta.user_metadata[1].1.clone();
        stored.meta.user_metadata[1].1 = first;
        assert!(matches!(
            stored.open(record.bucket, &key),
            Err(Error::Integrity { .. })
        ));

        let mut stored = StoredObject::seal(&record, &key).unwrap();
        stored.meta.etag = stored.meta.user_metadata[0].1.clone();
        assert!(matches!(
            stored.open(record.bucket, &key),
            Err(Error::Integrity { .. })
        ));

        let other = Dek::generate().value_key().unwrap();
        let stored = StoredObject::seal(&record, &key).unwrap();
        assert!(matches!(
            stored.open(record.bucket, &other),
            Err(Error::Integrity { .. })
        ));
    }

    #[test]
    fn plaintext_format_1_records_are_refused() {
        let dek = Dek::generate();
        let mut bytes = StoredObject::seal(&record(&dek), &dek.value_key().unwrap())
            .unwrap()
            .encode()
            .unwrap();
        bytes[0] = 1;
        assert!(matches!(
            StoredObject::decode(&bytes),
            Err(Error::Corrupt(_))
        ));
    }
}
