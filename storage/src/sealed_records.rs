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
//! algorithms and data locations stay plaintext. An SSE-C object or upload also keeps the
//! [`CustomerKeyCheck`] of its customer key (never the key). The plaintext forms ([`ObjectRecord`],
//! [`UploadRecord`], [`PartRecord`]) are not [`Record`]s, so they cannot be written as is.

use std::time::SystemTime;

use coffre_crypto::{BucketId, CustomerKeyCheck, NoncePrefix, ObjectId, ValueKey, WrappedDek};
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
/// Objects and uploads of format 4 add the SSE-C key check; older ones read as not SSE-C.
const SSE_C_FORMAT_VERSION: u8 = 4;
/// Objects of format 5 add the layout seal; older ones read without one (see
/// [`StoredObject::layout_seal`]).
const LAYOUT_FORMAT_VERSION: u8 = 5;
/// Objects of format 6 record whether CompleteMultipartUpload made them, under the layout
/// seal; older ones are taken as multipart when their ETag has the `-N` suffix (see
/// [`StoredObject::multipart`]).
const MULTIPART_FORMAT_VERSION: u8 = 6;

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

/// What the layout seal authenticates, as its associated data: the object's id and size,
/// then every part in order (number, size, where its data is, nonce prefix), then (from
/// format 6) whether the object is multipart. Inline data is named by its length only: its
/// bytes are sealed segments already.
fn layout_field(
    id: ObjectId,
    size: u64,
    parts: &[(u32, u64, &DataLocation, &NoncePrefix)],
    multipart: Option<bool>,
) -> Vec<u8> {
    let mut field = b"layout|".to_vec();
    field.extend_from_slice(id.as_bytes());
    field.extend_from_slice(&size.to_be_bytes());
    field.extend_from_slice(&(parts.len() as u64).to_be_bytes());
    for (number, size, location, nonce) in parts {
        field.extend_from_slice(&number.to_be_bytes());
        field.extend_from_slice(&size.to_be_bytes());
        match location {
            DataLocation::Inline(bytes) => {
                field.push(b'I');
                field.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
            }
            DataLocation::File { array, file } => {
                field.push(b'F');
                field.extend_from_slice(&(array.len() as u64).to_be_bytes());
                field.extend_from_slice(array.as_bytes());
                field.extend_from_slice(file.as_bytes());
            }
        }
        field.extend_from_slice(nonce.as_bytes());
    }
    match multipart {
        Some(true) => field.extend_from_slice(b"|multipart"),
        Some(false) => field.extend_from_slice(b"|single"),
        None => {}
    }
    field
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
    /// Set for an SSE-C object.
    pub customer_key_check: Option<CustomerKeyCheck>,
    /// An empty value sealed under the object's value key with its layout (id, size, every
    /// part's number, size, location and nonce, in order) as associated data: a record whose
    /// parts were reordered, dropped, duplicated or pointed elsewhere does not open. `None`
    /// only for records written before format 5, which carry no layout seal.
    pub layout_seal: Option<Vec<u8>>,
    /// Whether CompleteMultipartUpload made the object, authenticated by the layout seal.
    /// `None` only for records written before format 6: those made by a completion are the
    /// ones whose ETag ends in `-N` (copies never kept a multipart ETag).
    pub multipart: Option<bool>,
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
    const VERSION: u8 = MULTIPART_FORMAT_VERSION;

    fn decode_older(version: u8, body: &[u8]) -> Result<Self> {
        /// Format 5: no multipart flag.
        #[derive(Deserialize)]
        struct StoredObjectV5 {
            key: String,
            id: ObjectId,
            dek: WrappedDek,
            meta: SealedMeta,
            #[serde(with = "unix_millis")]
            last_modified: SystemTime,
            parts: Vec<StoredPart>,
            customer_key_check: Option<CustomerKeyCheck>,
            layout_seal: Option<Vec<u8>>,
        }
        if version == LAYOUT_FORMAT_VERSION {
            let v5: StoredObjectV5 = decode_body(Self::KIND, body)?;
            return Ok(Self {
                key: v5.key,
                id: v5.id,
                dek: v5.dek,
                meta: v5.meta,
                last_modified: v5.last_modified,
                parts: v5.parts,
                customer_key_check: v5.customer_key_check,
                layout_seal: v5.layout_seal,
                multipart: None,
            });
        }
        /// Format 4: no layout seal.
        #[derive(Deserialize)]
        struct StoredObjectV4 {
            key: String,
            id: ObjectId,
            dek: WrappedDek,
            meta: SealedMeta,
            #[serde(with = "unix_millis")]
            last_modified: SystemTime,
            parts: Vec<StoredPart>,
            customer_key_check: Option<CustomerKeyCheck>,
        }
        if version == SSE_C_FORMAT_VERSION {
            let v4: StoredObjectV4 = decode_body(Self::KIND, body)?;
            return Ok(Self {
                key: v4.key,
                id: v4.id,
                dek: v4.dek,
                meta: v4.meta,
                last_modified: v4.last_modified,
                parts: v4.parts,
                customer_key_check: v4.customer_key_check,
                layout_seal: None,
                multipart: None,
            });
        }
        /// Formats 2 and 3: no key check; format 2 has no tags either (`M`).
        #[derive(Deserialize)]
        struct StoredObjectV2<M> {
            key: String,
            id: ObjectId,
            dek: WrappedDek,
            meta: M,
            #[serde(with = "unix_millis")]
            last_modified: SystemTime,
            parts: Vec<StoredPart>,
        }
        let older = |v: StoredObjectV2<SealedMeta>| Self {
            key: v.key,
            id: v.id,
            dek: v.dek,
            meta: v.meta,
            last_modified: v.last_modified,
            parts: v.parts,
            customer_key_check: None,
            layout_seal: None,
            multipart: None,
        };
        match version {
            SEALED_FORMAT_VERSION => {
                let v2: StoredObjectV2<SealedMetaV2> = decode_body(Self::KIND, body)?;
                Ok(older(StoredObjectV2 {
                    key: v2.key,
                    id: v2.id,
                    dek: v2.dek,
                    meta: v2.meta.into(),
                    last_modified: v2.last_modified,
                    parts: v2.parts,
                }))
            }
            TAGGED_FORMAT_VERSION => decode_body(Self::KIND, body).map(older),
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
        let layout: Vec<_> = record
            .parts
            .iter()
            .map(|p| (p.part_number, p.size, &p.location, &p.nonce))
            .collect();
        Ok(Self {
            key: record.key.clone(),
            id: record.id,
            dek: record.dek.clone(),
            meta: SealedMeta::seal(&record.meta, &values)?,
            last_modified: record.last_modified,
            customer_key_check: record.customer_key_check,
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
            layout_seal: Some(key.seal(
                &layout_field(record.id, record.meta.size, &layout, Some(record.multipart)),
                b"",
            )?),
            multipart: Some(record.multipart),
        })
    }

    /// Fails with `Integrity` unless the layout is the one sealed (records older than
    /// format 5 have no seal and pass).
    fn check_layout(&self, key: &ValueKey) -> Result<()> {
        let Some(seal) = &self.layout_seal else {
            return Ok(());
        };
        let parts: Vec<_> = self
            .parts
            .iter()
            .map(|p| (p.part_number, p.size, &p.location, &p.nonce))
            .collect();
        let field = layout_field(self.id, self.meta.size, &parts, self.multipart);
        key.open(&field, seal).map_err(|e| Error::Integrity {
            object: self.key.clone(),
            reason: format!("its part layout does not authenticate ({e})"),
        })?;
        Ok(())
    }

    /// The plaintext record; `bucket` is the incarnation it was read from.
    pub fn open(self, bucket: BucketId, key: &ValueKey) -> Result<ObjectRecord> {
        self.check_layout(key)?;
        let values = Values {
            key,
            object: &self.key,
        };
        let meta = self.meta.open(&values)?;
        let multipart = self.multipart.unwrap_or_else(|| meta.etag.contains('-'));
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
            customer_key_check: self.customer_key_check,
            multipart,
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
    /// Set for an upload created with SSE-C.
    pub customer_key_check: Option<CustomerKeyCheck>,
}

impl Record for StoredUpload {
    const KIND: &'static str = "upload";
    const VERSION: u8 = SSE_C_FORMAT_VERSION;

    fn decode_older(version: u8, body: &[u8]) -> Result<Self> {
        /// Formats 2 and 3: no key check; format 2 has no tags either (`M`).
        #[derive(Deserialize)]
        struct StoredUploadV2<M> {
            upload_id: String,
            key: String,
            #[serde(with = "unix_millis")]
            initiated: SystemTime,
            dek: WrappedDek,
            meta: M,
        }
        let older = |v: StoredUploadV2<SealedMeta>| Self {
            upload_id: v.upload_id,
            key: v.key,
            initiated: v.initiated,
            dek: v.dek,
            meta: v.meta,
            customer_key_check: None,
        };
        match version {
            SEALED_FORMAT_VERSION => {
                let v2: StoredUploadV2<SealedMetaV2> = decode_body(Self::KIND, body)?;
                Ok(older(StoredUploadV2 {
                    upload_id: v2.upload_id,
                    key: v2.key,
                    initiated: v2.initiated,
                    dek: v2.dek,
                    meta: v2.meta.into(),
                }))
            }
            TAGGED_FORMAT_VERSION => decode_body(Self::KIND, body).map(older),
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
            upload_id: record.upload_id(),
            key: record.key.clone(),
            initiated: record.initiated,
            dek: record.dek.clone(),
            meta: SealedMeta::seal(&record.meta, &values)?,
            customer_key_check: record.customer_key_check,
        })
    }

    pub fn open(self, key: &ValueKey) -> Result<UploadRecord> {
        let meta = self.meta.open(&Values {
            key,
            object: &self.key,
        })?;
        let id = ObjectId::parse_hex(&self.upload_id).map_err(|_| Error::Integrity {
            object: self.key.clone(),
            reason: "its upload id is not an object id".to_owned(),
        })?;
        Ok(UploadRecord {
            id,
            key: self.key,
            initiated: self.initiated,
            meta,
            dek: self.dek,
            customer_key_check: self.customer_key_check,
        })
    }
}

#[cfg(test)]
mod tests;
