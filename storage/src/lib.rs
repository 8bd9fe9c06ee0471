//! Coffre's storage: tenants, access keys, buckets, objects and multipart uploads as records
//! in an ordered metadata store (RocksDB), object data inline in those records or in
//! immutable files on storage arrays, and the garbage collector for superseded data.
//!
//! Everything stored is encrypted under the owning tenant's keys (DESIGN, "Encryption at
//! rest"): object data in sealed segments, ETags, checksums, user metadata values and tags
//! sealed in their records, DEKs wrapped by the tenant's KEK, KEKs by the root key provider
//! given to [`Store::open`]. The API hands out plaintext; nothing plaintext is written,
//! except bucket CORS rules, which are public by design (see `bucket_cors`).
//!
//! The API is synchronous; the gateway calls it from blocking tasks. Every call on tenant
//! data takes a [`coffre_crypto::TenantScope`], whose tenant id is the prefix of every
//! metadata key and data path the call touches. The one exception is
//! [`Store::preflight_cors_rules`], which answers unauthenticated browser preflights with
//! rules tenants published, and nothing else.

mod access_keys;
mod arrays;
mod bucket_cors;
mod buckets;
mod cluster;
mod conflict_index;
mod data_file;
mod data_refs;
mod data_writer;
mod error;
mod gc;
mod key_rotation;
mod keys;
mod list_objects;
mod list_uploads;
mod memory_meta_store;
mod meta_store;
mod multipart_upload;
mod object_copy;
mod object_reader;
mod object_tags;
mod objects;
#[cfg(feature = "postgres")]
mod postgres_meta_store;
mod records;
#[cfg(feature = "rocksdb")]
mod rocks_meta_store;
mod root_rotation;
mod sealed_records;
mod stats;
mod store;
mod tenant_deletion;
mod tenant_keys;
mod tenants;
mod usage;

pub use access_keys::KeyLookup;
pub use arrays::{space as array_space, ArrayConfig, ARRAY_RESERVE_BYTES};
pub use bucket_cors::MAX_PREFLIGHT_TENANTS;
pub use cluster::{Lease, LeaseInfo, DEFAULT_LEASE, NODE_TIMEOUT};
pub use data_writer::{DataWriter, WriteTarget, WrittenData};
pub use error::{Error, Result};
pub use gc::GcStats;
pub use key_rotation::{
    RewrapSettings, RewrapStep, DEFAULT_MAX_DEK_WRAPS, DEFAULT_RETIRE_GRACE, DEFAULT_REWRAP_BATCH,
};
pub use list_objects::{ListEntry, ListPage, ListQuery, ObjectSummary};
pub use list_uploads::{UploadListPage, UploadListQuery};
pub use memory_meta_store::MemoryMetaStore;
pub use meta_store::{
    Batch, BatchOp, Cf, Cursor, Durability, KeySpaceStats, MetaStore, MetaStoreStats, Tx, TxReads,
};
pub use multipart_upload::{ChosenPart, Completion, UploadAddress, UploadChecksum, MIN_PART_SIZE};
pub use object_reader::ObjectReader;
#[cfg(feature = "postgres")]
pub use postgres_meta_store::{PostgresConfig, PostgresMetaStore, SCHEMA_VERSION};
pub use records::{
    AccessKeyInfo, AccessKeyState, BucketRecord, CorsRule, DataLocation, LeaseRecord, NodeRecord,
    ObjectMeta, ObjectRecord, PartInfo, PartLayout, PartRecord, Quotas, TenantRecord, TenantState,
    UploadRecord,
};
pub use records::{KekRotation, RewrapCursor, RewrapPhase, RotationState};
#[cfg(feature = "rocksdb")]
pub use rocks_meta_store::RocksMetaStore;
pub use root_rotation::{RootKeyStatus, RootRotation};
pub use stats::{AeadOp, ArrayWrites, GcBacklog, GcFigures, IntegrityKind, StoreStats};
pub use store::{
    Store, StoreConfig, DEFAULT_INLINE_MAX, DEFAULT_KEK_CACHE_CAPACITY, DEFAULT_KEK_CACHE_TTL,
};
pub use tenants::{TenantSettings, TenantUpdate};
pub use usage::Usage;
