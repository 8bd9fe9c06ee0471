//! The tenant record (state, quotas, wrapped KEKs, KEK rotation progress), the formats
//! earlier builds wrote it in, and the `tenant_names` index.

use std::time::SystemTime;

use coffre_crypto::key_hierarchy::WRAP_NONCE_LEN;
use coffre_crypto::{KekVersion, KekWrapper, RootKeyVersion, TenantId, WrappedKek};
use serde::{Deserialize, Serialize};

use super::{decode_body, unix_millis, unknown_version, Record};
use crate::error::Result;

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
    /// Bytes of object data, including the parts of unfinished multipart uploads, and of
    /// object and upload records if the tenant counts them (`counts_record_bytes`).
    pub bytes: Option<u64>,
    pub objects: Option<u64>,
    /// Multipart uploads in progress at once (created, neither completed nor aborted).
    pub uploads: Option<u64>,
}

/// Quotas as formats 2 to 5 store them.
#[derive(Serialize, Deserialize)]
struct QuotasV1 {
    bytes: Option<u64>,
    objects: Option<u64>,
}

impl From<QuotasV1> for Quotas {
    fn from(old: QuotasV1) -> Self {
        Quotas {
            bytes: old.bytes,
            objects: old.objects,
            uploads: None,
        }
    }
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
    /// Whether the `uploads` usage counter counts every upload in progress. Tenants
    /// created by earlier builds (formats 1 to 5) may have uploads no counter saw: their
    /// first upload created, completed or aborted counts them, in its transaction (see
    /// `usage`), and sets this.
    pub uploads_counted: bool,
    /// Whether the `bytes` usage counter counts the tenant's records (each object's and
    /// upload's key and metadata as stored) besides object data. Tenants of earlier builds
    /// (formats 1 to 5) count data only, as their counters were built: their objects'
    /// records were never counted, so deleting them must not uncount them.
    pub counts_record_bytes: bool,
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
/// `tenant_keys_in_hsm`, a tenant key in the HSM; formats 3 and 4 name a root version),
/// format 6 the `uploads` quota, `uploads_counted` and `counts_record_bytes`.
/// Tenants of formats 1 and 2 have no keys (none were ever deployed): they decode, but
/// cannot store or read data.
const TENANT_FORMAT_VERSION: u8 = 6;

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
            quotas: QuotasV1,
        }
        #[derive(Deserialize)]
        struct TenantRecordV3 {
            id: TenantId,
            name: String,
            #[serde(with = "unix_millis")]
            created: SystemTime,
            state: TenantState,
            placement: Vec<String>,
            quotas: QuotasV1,
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
            quotas: QuotasV1,
            keks: Vec<RootWrappedKekV1>,
            kek_version: KekVersion,
            rotation: Option<KekRotation>,
        }
        #[derive(Deserialize)]
        struct TenantRecordV5 {
            id: TenantId,
            name: String,
            #[serde(with = "unix_millis")]
            created: SystemTime,
            state: TenantState,
            placement: Vec<String>,
            quotas: QuotasV1,
            keks: Vec<WrappedKek>,
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
                    uploads_counted: false,
                    counts_record_bytes: false,
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
                    quotas: v2.quotas.into(),
                    keks: Vec::new(),
                    kek_version: KekVersion::FIRST,
                    rotation: None,
                    uploads_counted: false,
                    counts_record_bytes: false,
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
                    quotas: v3.quotas.into(),
                    keks: v3.keks.into_iter().map(WrappedKek::from).collect(),
                    kek_version: v3.kek_version,
                    rotation: None,
                    uploads_counted: false,
                    counts_record_bytes: false,
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
                    quotas: v4.quotas.into(),
                    keks: v4.keks.into_iter().map(WrappedKek::from).collect(),
                    kek_version: v4.kek_version,
                    rotation: v4.rotation,
                    uploads_counted: false,
                    counts_record_bytes: false,
                })
            }
            5 => {
                let v5: TenantRecordV5 = decode_body(Self::KIND, body)?;
                Ok(TenantRecord {
                    id: v5.id,
                    name: v5.name,
                    created: v5.created,
                    state: v5.state,
                    placement: v5.placement,
                    quotas: v5.quotas.into(),
                    keks: v5.keks,
                    kek_version: v5.kek_version,
                    rotation: v5.rotation,
                    uploads_counted: false,
                    counts_record_bytes: false,
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::records::from_millis;

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
            quotas: QuotasV1,
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
            quotas: QuotasV1 {
                bytes: Some(10),
                objects: None,
            },
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
            quotas: QuotasV1,
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
            quotas: QuotasV1 {
                bytes: Some(10),
                objects: None,
            },
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

        // Formats 5 and later tell a KEK under a tenant key in the HSM from one under the
        // root.
        let mut in_hsm = tenant.clone();
        in_hsm.keks[0].wrapper = KekWrapper::TenantKey;
        let encoded = in_hsm.encode().unwrap();
        assert_eq!(encoded[0], TENANT_FORMAT_VERSION);
        let decoded = TenantRecord::decode(&encoded).unwrap();
        assert_eq!(decoded.keks[0].root_version(), None);
        assert_eq!(decoded, in_hsm);
        assert_ne!(encoded, tenant.encode().unwrap());
    }

    #[test]
    fn format_5_tenants_have_no_upload_quota_and_uncounted_uploads() {
        #[derive(Serialize)]
        struct V5<'a> {
            id: TenantId,
            name: &'a str,
            created: u64,
            state: TenantState,
            placement: Vec<String>,
            quotas: QuotasV1,
            keks: Vec<WrappedKek>,
            kek_version: KekVersion,
            rotation: Option<KekRotation>,
        }
        let kek = WrappedKek {
            wrapper: KekWrapper::TenantKey,
            kek_version: KekVersion::FIRST,
            nonce: [3; 12],
            ciphertext: vec![4; 48],
        };
        let v5 = V5 {
            id: TenantId::random(),
            name: "five",
            created: 1234,
            state: TenantState::Active,
            placement: vec!["a1".into()],
            quotas: QuotasV1 {
                bytes: Some(7),
                objects: Some(8),
            },
            keks: vec![kek.clone()],
            kek_version: KekVersion::FIRST,
            rotation: None,
        };
        let tenant = TenantRecord::decode(&postcard::to_extend(&v5, vec![5]).unwrap()).unwrap();
        assert_eq!(
            tenant.quotas,
            Quotas {
                bytes: Some(7),
                objects: Some(8),
                uploads: None
            }
        );
        assert_eq!(tenant.keks, vec![kek]);
        assert!(!tenant.uploads_counted);
        assert!(!tenant.counts_record_bytes);

        // Format 6 keeps them.
        let mut counted = tenant;
        counted.quotas.uploads = Some(9);
        counted.uploads_counted = true;
        counted.counts_record_bytes = true;
        let encoded = counted.encode().unwrap();
        assert_eq!(encoded[0], 6);
        assert_eq!(TenantRecord::decode(&encoded).unwrap(), counted);
    }
}
