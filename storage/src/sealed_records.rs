//! The stored forms of objects, uploads and parts: what the metadata store holds for them.
//!
//! The ETag, the checksum values and the user metadata values are sealed with the object's
//! value key ([`coffre_crypto::Dek::value_key`]), each bound to a field name so that no
//! sealed value can stand in for another:
//!
//! - object (and upload, whose DEK becomes the object's): `etag`, `checksum:<ALGORITHM>`,
//!   `meta:<name>`, and `tags` for the whole tag set (keys and values together, so that
//!   neither a tag key nor the pairing of keys with values is readable at rest);
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
    decode_body, unix_millis, unknown_version, DataLocation, ObjectMeta, ObjectRecord, PartLayout,
    PartRecord, Record, UploadRecord,
};

/// Format 2: the first with sealed values and wrapped DEKs (format 1 stored plaintext and
/// was never deployed, so it is not read).
const SEALED_FORMAT_VERSION: u8 = 2;
/// Objects and uploads of format 3 add the sealed tag set; format 2 ones read as untagged.
const TAGGED_FORMAT_VERSION: u8 = 3;

const ETAG: &str = "etag";
const TAGS: &str = "tags";

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

    /// The tag set as one sealed value; `None` when there are no tags.
    fn seal_tags(&self, tags: &[(String, String)]) -> Result<Option<Vec<u8>>> {
        if tags.is_empty() {
            return Ok(None);
        }
        let plain = postcard::to_stdvec(tags)
            .map_err(|e| Error::Corrupt(format!("encoding tags of {}: {e}", self.object)))?;
        Ok(Some(self.key.seal(TAGS.as_bytes(), &plain)?))
    }

    fn open_tags(&self, sealed: Option<&[u8]>) -> Result<Vec<(String, String)>> {
        let Some(sealed) = sealed else {
            return Ok(Vec::new());
        };
        let plain = self
            .key
            .open(TAGS.as_bytes(), sealed)
            .map_err(|e| Error::integrity(self.object, e))?;
        postcard::from_bytes(&plain).map_err(|_| Error::Integrity {
            object: self.object.to_owned(),
            reason: "sealed tags do not decode".to_owned(),
        })
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
    /// The tag set, sealed whole; `None`: no tags.
    tags: Option<Vec<u8>>,
}

/// [`SealedMeta`] of format 2, without tags.
#[derive(Deserialize)]
struct SealedMetaV2 {
    size: u64,
    etag: Vec<u8>,
    content_type: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    expires: Option<String>,
    user_metadata: Vec<(String, Vec<u8>)>,
    checksums: Vec<(String, Vec<u8>)>,
    checksum_type: Option<String>,
}

impl From<SealedMetaV2> for SealedMeta {
    fn from(v2: SealedMetaV2) -> Self {
        Self {
            size: v2.size,
            etag: v2.etag,
            content_type: v2.content_type,
            content_encoding: v2.content_encoding,
            content_disposition: v2.content_disposition,
            content_language: v2.content_language,
            cache_control: v2.cache_control,
            expires: v2.expires,
            user_metadata: v2.user_metadata,
            checksums: v2.checksums,
            checksum_type: v2.checksum_type,
            tags: None,
        }
    }
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
            tags: values.seal_tags(&meta.tags)?,
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
            tags: values.open_tags(self.tags.as_deref())?,
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
    const VERSION: u8 = TAGGED_FORMAT_VERSION;

    fn decode_older(version: u8, body: &[u8]) -> Result<Self> {
        #[derive(Deserialize)]
        struct StoredObjectV2 {
            key: String,
            id: ObjectId,
            dek: WrappedDek,
            meta: SealedMetaV2,
            #[serde(with = "unix_millis")]
            last_modified: SystemTime,
            parts: Vec<StoredPart>,
        }
        match version {
            SEALED_FORMAT_VERSION => {
                let v2: StoredObjectV2 = decode_body(Self::KIND, body)?;
                Ok(Self {
                    key: v2.key,
                    id: v2.id,
                    dek: v2.dek,
                    meta: v2.meta.into(),
                    last_modified: v2.last_modified,
                    parts: v2.parts,
                })
            }
            _ => Err(unknown_version(Self::KIND, version)),
        }
    }
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

    /// Replaces the tag set, leaving every other value as sealed before. `key` must be the
    /// object's value key.
    pub fn replace_tags(&mut self, tags: &[(String, String)], key: &ValueKey) -> Result<()> {
        self.meta.tags = Values {
            key,
            object: &self.key,
        }
        .seal_tags(tags)?;
        Ok(())
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
    const VERSION: u8 = TAGGED_FORMAT_VERSION;

    fn decode_older(version: u8, body: &[u8]) -> Result<Self> {
        #[derive(Deserialize)]
        struct StoredUploadV2 {
            upload_id: String,
            key: String,
            #[serde(with = "unix_millis")]
            initiated: SystemTime,
            dek: WrappedDek,
            meta: SealedMetaV2,
        }
        match version {
            SEALED_FORMAT_VERSION => {
                let v2: StoredUploadV2 = decode_body(Self::KIND, body)?;
                Ok(Self {
                    upload_id: v2.upload_id,
                    key: v2.key,
                    initiated: v2.initiated,
                    dek: v2.dek,
                    meta: v2.meta.into(),
                })
            }
            _ => Err(unknown_version(Self::KIND, version)),
        }
    }
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
                tags: vec![("project".into(), "zephyr".into())],
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
        for plain in [
            "the-etag", "one", "two", "AAAAAA==", "BBBBBB==", "project", "zephyr",
        ] {
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
    fn tags_are_replaced_alone_and_bound_to_their_object() {
        let dek = Dek::generate();
        let key = dek.value_key().unwrap();
        let mut record = record(&dek);
        let mut stored = StoredObject::seal(&record, &key).unwrap();
        let tags = vec![
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), String::new()),
        ];
        stored.replace_tags(&tags, &key).unwrap();
        record.meta.tags = tags;
        assert_eq!(stored.clone().open(record.bucket, &key).unwrap(), record);
        stored.replace_tags(&[], &key).unwrap();
        assert_eq!(stored.meta.tags, None);

        // Another object's sealed tags do not open here, nor does another sealed value.
        let other_dek = Dek::generate();
        let other =
            StoredObject::seal(&self::record(&other_dek), &other_dek.value_key().unwrap()).unwrap();
        let mut swapped = StoredObject::seal(&record, &key).unwrap();
        swapped.meta.tags = other.meta.tags.clone();
        assert!(matches!(
            swapped.open(record.bucket, &key),
            Err(Error::Integrity { .. })
        ));
        let mut swapped = StoredObject::seal(&record, &key).unwrap();
        swapped.meta.tags = Some(swapped.meta.etag.clone());
        assert!(matches!(
            swapped.open(record.bucket, &key),
            Err(Error::Integrity { .. })
        ));
    }

    #[test]
    fn format_2_objects_read_as_untagged() {
        let dek = Dek::generate();
        let key = dek.value_key().unwrap();
        let mut record = record(&dek);
        record.meta.tags.clear();
        let s = StoredObject::seal(&record, &key).unwrap();
        let m = &s.meta;
        // Postcard writes a struct as the tuple of its fields.
        let v2 = (
            &s.key,
            s.id,
            &s.dek,
            (
                m.size,
                &m.etag,
                &m.content_type,
                &m.content_encoding,
                &m.content_disposition,
                &m.content_language,
                &m.cache_control,
                &m.expires,
                &m.user_metadata,
                &m.checksums,
                &m.checksum_type,
            ),
            crate::records::to_millis(s.last_modified),
            &s.parts,
        );
        let bytes = postcard::to_extend(&v2, vec![SEALED_FORMAT_VERSION]).unwrap();
        let decoded = StoredObject::decode(&bytes).unwrap();
        assert_eq!(decoded.open(record.bucket, &key).unwrap(), record);
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
