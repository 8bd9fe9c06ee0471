//! The values of the metadata store: serde structs encoded with postcard behind a leading
//! format-version byte. A value with an unknown version is [`Error::Corrupt`], never guessed
//! at; a new layout gets a new version and a decoder for the old one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use coffre_crypto::key_hierarchy::WRAP_NONCE_LEN;
use coffre_crypto::{
    AccessKeyId, BucketId, CustomerKeyCheck, KekVersion, KekWrapper, NoncePrefix, ObjectId, Role,
    RootKeyVersion, TenantId, WrappedDek, WrappedKek,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::error::{Error, Result};

/// The only record layout this build writes and reads.
pub(crate) const FORMAT_VERSION: u8 = 1;

/// A value of the metadata store.
pub(crate) trait Record: Serialize + DeserializeOwned {
    /// What the record is, for error messages.
    const KIND: &'static str;
    /// The layout this build writes.
    const VERSION: u8 = FORMAT_VERSION;

    fn encode(&self) -> Result<Vec<u8>> {
        postcard::to_extend(self, vec![Self::VERSION])
            .map_err(|e| Error::Corrupt(format!("encoding {}: {e}", Self::KIND)))
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        match bytes.split_first() {
            Some((&version, body)) if version == Self::VERSION => decode_body(Self::KIND, body),
            Some((&version, body)) => Self::decode_older(version, body),
            None => Err(Error::Corrupt(format!("{} record: empty", Self::KIND))),
        }
    }

    /// Layouts written by earlier builds that this one still reads; none by default.
    fn decode_older(version: u8, _body: &[u8]) -> Result<Self> {
        Err(unknown_version(Self::KIND, version))
    }
}

/// One postcard value filling `body` exactly.
pub(crate) fn decode_body<T: DeserializeOwned>(kind: &str, body: &[u8]) -> Result<T> {
    let (record, rest) = postcard::take_from_bytes(body)
        .map_err(|e| Error::Corrupt(format!("{kind} record: {e}")))?;
    if rest.is_empty() {
        Ok(record)
    } else {
        Err(Error::Corrupt(format!("{kind} record: trailing bytes")))
    }
}

pub(crate) fn unknown_version(kind: &str, version: u8) -> Error {
    Error::Corrupt(format!("{kind} record: unknown format version {version}"))
}

/// Times are stored as milliseconds since the Unix epoch, the precision S3 shows.
pub(crate) mod unix_millis {
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
    /// Every request with its keys is refused; nothing is deleted.
    Suspended,
    /// Being deleted: its keys are gone, its name is free, and its records and data files
    /// are being removed (resumed after a crash by [`crate::Store::resume_tenant_deletions`]).
    Deleting,
}

/// Limits on what a tenant stores; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quotas {
    /// Bytes of object data, including the parts of unfinished multipart uploads.
    pub bytes: Option<u64>,
    pub objects: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRecord {
    pub id: TenantId,
    pub name: String,
    #[serde(with = "unix_millis")]
    pub created: SystemTime,
    pub state: TenantState,
    /// Array names or site labels the tenant's data files may be placed on; empty: any.
    pub placement: Vec<String>,
    pub quotas: Quotas,
    /// The tenant's key-encryption keys, each wrapped by a root key version or by its own
    /// tenant key in the HSM; emptied when the tenant is deleted (crypto-shredding).
    pub keks: Vec<WrappedKek>,
    /// The KEK version that wraps new DEKs.
    pub kek_version: KekVersion,
    /// The latest KEK rotation: where its rewrap of the DEKs is while it runs (so that a
    /// restart resumes it), what it did once finished. `None`: never rotated.
    pub rotation: Option<KekRotation>,
}

/// A tenant's KEK rotation (see `key_rotation`): every DEK wrapped by an older KEK version
/// is rewrapped to `target`, then the older versions are destroyed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KekRotation {
    /// The KEK version DEKs move to: the one the rotation created.
    pub target: KekVersion,
    #[serde(with = "unix_millis")]
    pub started: SystemTime,
    /// Passes begun over the tenant's uploads and objects. The first moves the DEKs; the
    /// rotation ends with a pass that finds none left to move.
    pub passes: u32,
    /// DEKs rewrapped, all passes together.
    pub rewrapped: u64,
    /// Object and upload records examined, all passes together.
    pub scanned: u64,
    pub state: RotationState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RotationState {
    /// A pass is under way, or waiting for the next one.
    Rewrapping(RewrapCursor),
    /// Every DEK is under `target`; the older KEK versions (`destroyed`) are gone from the
    /// record, and once `purged`, from the metadata store's files too.
    Finished {
        #[serde(with = "unix_millis")]
        finished: SystemTime,
        destroyed: Vec<KekVersion>,
        purged: bool,
    },
}

/// Where a rewrap pass is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewrapCursor {
    pub phase: RewrapPhase,
    /// The last key handled in the phase's key space; empty: from the start.
    pub after: Vec<u8>,
    #[serde(with = "unix_millis")]
    pub pass_started: SystemTime,
    /// DEKs this pass rewrapped.
    pub pass_rewrapped: u64,
    /// DEKs under an older KEK version that this pass could not open (a damaged record):
    /// while any is left, the older versions are kept.
    pub pass_unreadable: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RewrapPhase {
    /// Multipart uploads in progress (first, so that completions mostly carry moved DEKs).
    Uploads,
    Objects,
    /// The pass is over; the next one waits for the retirement grace period.
    Settling,
    /// The pass found DEKs it could not open: the older KEK versions stay until an operator
    /// acts (a new rotation starts over).
    Blocked,
}

/// Format 2 added placement and quotas, format 3 the wrapped KEKs, format 4 the KEK
/// rotation, format 5 what wraps each KEK (a root key version or, with
/// `tenant_keys_in_hsm`, a tenant key in the HSM; formats 3 and 4 name a root version).
/// Tenants of formats 1 and 2 have no keys (none were ever deployed): they decode, but
/// cannot store or read data.
const TENANT_FORMAT_VERSION: u8 = 5;

/// A wrapped KEK as formats 3 and 4 store it: always under a root key version.
#[derive(Serialize, Deserialize)]
struct RootWrappedKekV1 {
    root_version: RootKeyVersion,
    kek_version: KekVersion,
    nonce: [u8; WRAP_NONCE_LEN],
    ciphertext: Vec<u8>,
}

impl From<RootWrappedKekV1> for WrappedKek {
    fn from(old: RootWrappedKekV1) -> Self {
        WrappedKek {
            wrapper: KekWrapper::Root(old.root_version),
            kek_version: old.kek_version,
            nonce: old.nonce,
            ciphertext: old.ciphertext,
        }
    }
}

impl Record for TenantRecord {
    const KIND: &'static str = "tenant";
    const VERSION: u8 = TENANT_FORMAT_VERSION;

    fn decode_older(version: u8, body: &[u8]) -> Result<Self> {
        #[derive(Deserialize)]
        struct TenantRecordV1 {
            id: TenantId,
            name: String,
            #[serde(with = "unix_millis")]
            created: SystemTime,
            state: TenantState,
        }
        #[derive(Deserialize)]
        struct TenantRecordV2 {
            id: TenantId,
            name: String,
            #[serde(with = "unix_millis")]
            created: SystemTime,
            state: TenantState,
            placement: Vec<String>,
            quotas: Quotas,
        }
        #[derive(Deserialize)]
        struct TenantRecordV3 {
            id: TenantId,
            name: String,
            #[serde(with = "unix_millis")]
            created: SystemTime,
            state: TenantState,
            placement: Vec<String>,
            quotas: Quotas,
            keks: Vec<RootWrappedKekV1>,
            kek_version: KekVersion,
        }
        #[derive(Deserialize)]
        struct TenantRecordV4 {
            id: TenantId,
            name: String,
            #[serde(with = "unix_millis")]
            created: SystemTime,
            state: TenantState,
            placement: Vec<String>,
            quotas: Quotas,
            keks: Vec<RootWrappedKekV1>,
            kek_version: KekVersion,
            rotation: Option<KekRotation>,
        }
        match version {
            1 => {
                let v1: TenantRecordV1 = decode_body(Self::KIND, body)?;
                Ok(TenantRecord {
                    id: v1.id,
                    name: v1.name,
                    created: v1.created,
                    state: v1.state,
                    placement: Vec::new(),
                    quotas: Quotas::default(),
                    keks: Vec::new(),
                    kek_version: KekVersion::FIRST,
                    rotation: None,
                })
            }
            2 => {
                let v2: TenantRecordV2 = decode_body(Self::KIND, body)?;
                Ok(TenantRecord {
                    id: v2.id,
                    name: v2.name,
                    created: v2.created,
                    state: v2.state,
                    placement: v2.placement,
                    quotas: v2.quotas,
                    keks: Vec::new(),
                    kek_version: KekVersion::FIRST,
                    rotation: None,
                })
            }
            3 => {
                let v3: TenantRecordV3 = decode_body(Self::KIND, body)?;
                Ok(TenantRecord {
                    id: v3.id,
                    name: v3.name,
                    created: v3.created,
                    state: v3.state,
                    placement: v3.placement,
                    quotas: v3.quotas,
                    keks: v3.keks.into_iter().map(WrappedKek::from).collect(),
                    kek_version: v3.kek_version,
                    rotation: None,
                })
            }
            4 => {
                let v4: TenantRecordV4 = decode_body(Self::KIND, body)?;
                Ok(TenantRecord {
                    id: v4.id,
                    name: v4.name,
                    created: v4.created,
                    state: v4.state,
                    placement: v4.placement,
                    quotas: v4.quotas,
                    keks: v4.keks.into_iter().map(WrappedKek::from).collect(),
                    kek_version: v4.kek_version,
                    rotation: v4.rotation,
                })
            }
            _ => Err(unknown_version(Self::KIND, version)),
        }
    }
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRecord {
    pub name: String,
    pub id: BucketId,
    #[serde(with = "unix_millis")]
    pub created: SystemTime,
    pub region: String,
    /// The bucket's CORS rules, in the order given; empty: no CORS configuration. Kept in
    /// plaintext: they are answered to unauthenticated browser preflights, which cannot
    /// open anything sealed under the tenant's keys, and they are public by design.
    pub cors: Vec<CorsRule>,
}

/// One rule of a bucket's CORS configuration, as S3's `CORSRule` holds it. The gateway
/// validates and matches it; storage only keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    pub id: Option<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age_seconds: Option<u32>,
}

/// Format 2 added the CORS rules; format 1 buckets have none.
const BUCKET_FORMAT_VERSION: u8 = 2;

impl Record for BucketRecord {
    const KIND: &'static str = "bucket";
    const VERSION: u8 = BUCKET_FORMAT_VERSION;

    fn decode_older(version: u8, body: &[u8]) -> Result<Self> {
        #[derive(Deserialize)]
        struct BucketRecordV1 {
            name: String,
            id: BucketId,
            #[serde(with = "unix_millis")]
            created: SystemTime,
            region: String,
        }
        match version {
            1 => {
                let v1: BucketRecordV1 = decode_body(Self::KIND, body)?;
                Ok(BucketRecord {
                    name: v1.name,
                    id: v1.id,
                    created: v1.created,
                    region: v1.region,
                    cors: Vec::new(),
                })
            }
            _ => Err(unknown_version(Self::KIND, version)),
        }
    }
}

/// `cors_index` value: the bucket incarnation that has CORS rules (see `bucket_cors`); an
/// entry that no longer names the live incarnation is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CorsIndexEntry {
    pub bucket: BucketId,
}

impl Record for CorsIndexEntry {
    const KIND: &'static str = "cors index";
}

/// What the gateway knows about an object's content, in plaintext: set by the gateway and
/// handed back by storage. At rest the ETag, the checksum values, the user metadata
/// values and the tags are sealed under the object's DEK (see `sealed_records`); the size, the content
/// headers (Content-Type and the like), the user metadata names and the checksum
/// algorithms stay plaintext.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    /// The object's tag set, (key, value) sorted by key, keys unique. Sealed at rest, keys
    /// and values alike.
    pub tags: Vec<(String, String)>,
    /// (algorithm such as "CRC32", base64 value).
    pub checksums: Vec<(String, String)>,
    /// "FULL_OBJECT" or "COMPOSITE".
    pub checksum_type: Option<String>,
}

/// Where a part's sealed bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataLocation {
    /// Small data kept in the record itself, sealed like a file body.
    Inline(Vec<u8>),
    /// A data file `<array>/<tenant>/<ab>/<cd>/<file>` on the array named `array`.
    File { array: String, file: ObjectId },
}

/// One part of an object's data, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartLayout {
    /// 0 for a single PUT, the S3 part number for a completed multipart upload; the part
    /// key is derived from it.
    pub part_number: u32,
    /// Plaintext bytes in this part: the source of truth for offsets, never the file size.
    pub size: u64,
    pub location: DataLocation,
    /// The part's own checksums (algorithm name, base64), for GetObjectAttributes.
    pub checksums: Vec<(String, String)>,
    /// The nonce prefix its segments were sealed with (authoritative; the file header
    /// repeats it).
    pub(crate) nonce: NoncePrefix,
}

/// An object as storage hands it out: plaintext metadata, and the wrapped DEK its data
/// and sealed values are bound to. Only storage creates one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRecord {
    pub key: String,
    /// This version's identity, for binding keys to it.
    pub id: ObjectId,
    pub meta: ObjectMeta,
    pub last_modified: SystemTime,
    pub parts: Vec<PartLayout>,
    /// The bucket incarnation it was read from: part of the DEK's context.
    pub(crate) bucket: BucketId,
    pub(crate) dek: WrappedDek,
    /// Set for an SSE-C object: its data needs the customer key this recognises.
    pub(crate) customer_key_check: Option<CustomerKeyCheck>,
}

impl ObjectRecord {
    /// Whether the object was stored with a customer key (SSE-C): reading its data, or
    /// anything beyond what a listing shows, takes that key.
    pub fn is_sse_c(&self) -> bool {
        self.customer_key_check.is_some()
    }
}

/// What the gateway knows about an uploaded part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartInfo {
    /// Without quotes.
    pub etag: String,
    pub size: u64,
    pub checksums: Vec<(String, String)>,
}

/// An uploaded part, plaintext (its ETag and checksums are sealed at rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRecord {
    pub part_number: u32,
    pub etag: String,
    pub size: u64,
    pub last_modified: SystemTime,
    pub checksums: Vec<(String, String)>,
    pub location: DataLocation,
    pub(crate) nonce: NoncePrefix,
}

/// A multipart upload, plaintext. Its DEK, created with it, becomes the object's DEK: the
/// upload id is the object's id, so the wrapped DEK's context is already the object's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    /// Lowercase hex of an [`ObjectId`]: URL-safe.
    pub upload_id: String,
    pub key: String,
    pub initiated: SystemTime,
    /// Content headers and metadata given at creation; size and etag are empty.
    pub meta: ObjectMeta,
    pub(crate) dek: WrappedDek,
    /// Set for an upload created with a customer key (SSE-C): every part needs that key.
    pub(crate) customer_key_check: Option<CustomerKeyCheck>,
}

impl UploadRecord {
    /// Whether the upload was created with a customer key (SSE-C).
    pub fn is_sse_c(&self) -> bool {
        self.customer_key_check.is_some()
    }
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
            cors: vec![CorsRule {
                allowed_origins: vec!["*".into()],
                allowed_methods: vec!["GET".into()],
                max_age_seconds: Some(60),
                ..CorsRule::default()
            }],
        }
    }

    #[test]
    fn format_1_buckets_read_without_cors() {
        #[derive(Serialize)]
        struct V1<'a> {
            name: &'a str,
            id: BucketId,
            created: u64,
            region: &'a str,
        }
        let id = BucketId::random();
        let v1 = V1 {
            name: "old",
            id,
            created: 1234,
            region: "r",
        };
        let bytes = postcard::to_extend(&v1, vec![1]).unwrap();
        let bucket = BucketRecord::decode(&bytes).unwrap();
        assert_eq!((bucket.name.as_str(), bucket.id), ("old", id));
        assert!(bucket.cors.is_empty());
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
    fn format_1_tenants_read_as_unlimited_and_unpinned() {
        #[derive(Serialize)]
        struct V1<'a> {
            id: TenantId,
            name: &'a str,
            created: u64,
            state: TenantState,
        }
        let id = TenantId::random();
        let v1 = V1 {
            id,
            name: "old",
            created: 1234,
            state: TenantState::Suspended,
        };
        let bytes = postcard::to_extend(&v1, vec![1]).unwrap();
        let tenant = TenantRecord::decode(&bytes).unwrap();
        assert_eq!((tenant.id, tenant.name.as_str()), (id, "old"));
        assert_eq!(tenant.state, TenantState::Suspended);
        assert_eq!(tenant.quotas, Quotas::default());
        assert!(tenant.placement.is_empty());
        assert_eq!(
            TenantRecord::decode(&tenant.encode().unwrap()).unwrap(),
            tenant
        );
        assert!(matches!(
            TenantRecord::decode(&[9, 0]),
            Err(Error::Corrupt(_))
        ));
    }

    #[test]
    fn format_3_tenants_keep_their_keys_and_read_as_never_rotated() {
        #[derive(Serialize)]
        struct V3<'a> {
            id: TenantId,
            name: &'a str,
            created: u64,
            state: TenantState,
            placement: Vec<String>,
            quotas: Quotas,
            keks: Vec<RootWrappedKekV1>,
            kek_version: KekVersion,
        }
        let old_kek = || RootWrappedKekV1 {
            root_version: RootKeyVersion::new(2),
            kek_version: KekVersion::FIRST,
            nonce: [7; 12],
            ciphertext: vec![9; 48],
        };
        let kek = WrappedKek::from(old_kek());
        assert_eq!(kek.root_version(), Some(RootKeyVersion::new(2)));
        let id = TenantId::random();
        let v3 = V3 {
            id,
            name: "keyed",
            created: 1234,
            state: TenantState::Active,
            placement: vec!["a1".into()],
            quotas: Quotas::default(),
            keks: vec![old_kek()],
            kek_version: KekVersion::FIRST,
        };
        let bytes = postcard::to_extend(&v3, vec![3]).unwrap();
        let tenant = TenantRecord::decode(&bytes).unwrap();
        assert_eq!(tenant.keks, vec![kek]);
        assert_eq!(tenant.kek_version, KekVersion::FIRST);
        assert_eq!(tenant.rotation, None);
        let mut rotated = tenant.clone();
        rotated.rotation = Some(KekRotation {
            target: KekVersion::new(2),
            started: from_millis(5),
            passes: 1,
            rewrapped: 3,
            scanned: 4,
            state: RotationState::Rewrapping(RewrapCursor {
                phase: RewrapPhase::Objects,
                after: b"cursor".to_vec(),
                pass_started: from_millis(6),
                pass_rewrapped: 3,
                pass_unreadable: 0,
            }),
        });
        let encoded = rotated.encode().unwrap();
        assert_eq!(encoded[0], TENANT_FORMAT_VERSION);
        assert_eq!(TenantRecord::decode(&encoded).unwrap(), rotated);
    }

    #[test]
    fn format_4_tenants_keep_their_rotation_and_keys_under_the_root() {
        #[derive(Serialize)]
        struct V4<'a> {
            id: TenantId,
            name: &'a str,
            created: u64,
            state: TenantState,
            placement: Vec<String>,
            quotas: Quotas,
            keks: Vec<RootWrappedKekV1>,
            kek_version: KekVersion,
            rotation: Option<KekRotation>,
        }
        let rotation = KekRotation {
            target: KekVersion::new(2),
            started: from_millis(5),
            passes: 2,
            rewrapped: 1,
            scanned: 1,
            state: RotationState::Finished {
                finished: from_millis(9),
                destroyed: vec![KekVersion::FIRST],
                purged: true,
            },
        };
        let v4 = V4 {
            id: TenantId::random(),
            name: "rotated",
            created: 1234,
            state: TenantState::Active,
            placement: Vec::new(),
            quotas: Quotas::default(),
            keks: vec![RootWrappedKekV1 {
                root_version: RootKeyVersion::new(3),
                kek_version: KekVersion::new(2),
                nonce: [1; 12],
                ciphertext: vec![2; 48],
            }],
            kek_version: KekVersion::new(2),
            rotation: Some(rotation.clone()),
        };
        let tenant = TenantRecord::decode(&postcard::to_extend(&v4, vec![4]).unwrap()).unwrap();
        assert_eq!(tenant.rotation, Some(rotation));
        assert_eq!(
            tenant.keks[0].wrapper,
            KekWrapper::Root(RootKeyVersion::new(3))
        );
        assert_eq!(tenant.keks[0].ciphertext, vec![2; 48]);

        // Format 5 tells a KEK under a tenant key in the HSM from one under the root.
        let mut in_hsm = tenant.clone();
        in_hsm.keks[0].wrapper = KekWrapper::TenantKey;
        let encoded = in_hsm.encode().unwrap();
        assert_eq!(encoded[0], 5);
        let decoded = TenantRecord::decode(&encoded).unwrap();
        assert_eq!(decoded.keks[0].root_version(), None);
        assert_eq!(decoded, in_hsm);
        assert_ne!(encoded, tenant.encode().unwrap());
    }

    #[test]
    fn unknown_version_truncation_and_trailing_bytes_are_corrupt() {
        let mut bytes = bucket().encode().unwrap();
        bytes[0] = 9;
        assert!(matches!(
            BucketRecord::decode(&bytes),
            Err(Error::Corrupt(_))
        ));
        bytes[0] = BUCKET_FORMAT_VERSION;
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
