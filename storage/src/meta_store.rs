//! The narrow interface storage needs from an ordered key-value store. Keeping it narrow
//! (get, put, delete, ordered cursor, atomic batch with counter additions) lets another
//! ordered transactional store replace RocksDB (`crate::rocks_meta_store`) without touching
//! the S3 semantics.

use crate::error::Result;

/// The key spaces ("column families") of the metadata store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cf {
    Tenants,
    TenantNames,
    AccessKeys,
    Buckets,
    Objects,
    Uploads,
    Parts,
    Gc,
    /// Per-tenant usage counters, changed only by [`BatchOp::Add`].
    Usage,
    /// Bucket name -> tenants whose bucket of that name has CORS rules, for preflights.
    CorsIndex,
    /// Per-file reference counters of data files shared between objects (see `data_refs`),
    /// changed only by [`BatchOp::Add`].
    Refs,
}

impl Cf {
    pub const ALL: [Cf; 11] = [
        Cf::Tenants,
        Cf::TenantNames,
        Cf::AccessKeys,
        Cf::Buckets,
        Cf::Objects,
        Cf::Uploads,
        Cf::Parts,
        Cf::Gc,
        Cf::Usage,
        Cf::CorsIndex,
        Cf::Refs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Cf::Tenants => "tenants",
            Cf::TenantNames => "tenant_names",
            Cf::AccessKeys => "access_keys",
            Cf::Buckets => "buckets",
            Cf::Objects => "objects",
            Cf::Uploads => "uploads",
            Cf::Parts => "parts",
            Cf::Gc => "gc",
            Cf::Usage => "usage",
            Cf::CorsIndex => "cors_index",
            Cf::Refs => "refs",
        }
    }
}

/// One write of a batch.
#[derive(Debug, Clone)]
pub enum BatchOp {
    Put {
        cf: Cf,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        cf: Cf,
        key: Vec<u8>,
    },
    /// Adds `deltas` element-wise to the counters stored at `key` (absent counters are 0).
    /// Concurrent batches add up whatever order they land in, so no lock is needed to keep
    /// a counter exact.
    Add {
        cf: Cf,
        key: Vec<u8>,
        deltas: Vec<i64>,
    },
}

/// Writes applied all together or not at all.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub ops: Vec<BatchOp>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put(&mut self, cf: Cf, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(BatchOp::Put {
            cf,
            key: key.into(),
            value: value.into(),
        });
    }

    pub fn delete(&mut self, cf: Cf, key: impl Into<Vec<u8>>) {
        self.ops.push(BatchOp::Delete {
            cf,
            key: key.into(),
        });
    }

    pub fn add(&mut self, cf: Cf, key: impl Into<Vec<u8>>, deltas: &[i64]) {
        self.ops.push(BatchOp::Add {
            cf,
            key: key.into(),
            deltas: deltas.to_vec(),
        });
    }
}

/// Counters as stored: consecutive little-endian `i64`s. A trailing partial value (never
/// written by this code) is ignored.
pub fn decode_counters(bytes: &[u8]) -> Vec<i64> {
    bytes
        .chunks_exact(8)
        .map(|c| {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(c);
            i64::from_le_bytes(raw)
        })
        .collect()
}

pub fn encode_counters(counters: &[i64]) -> Vec<u8> {
    counters.iter().flat_map(|c| c.to_le_bytes()).collect()
}

/// `existing + delta`, element-wise, the longer length winning.
pub(crate) fn add_counters(existing: &[i64], delta: &[i64]) -> Vec<i64> {
    let mut sum = existing.to_vec();
    if sum.len() < delta.len() {
        sum.resize(delta.len(), 0);
    }
    for (total, d) in sum.iter_mut().zip(delta) {
        *total = total.saturating_add(*d);
    }
    sum
}

/// Whether a write must reach stable storage before the call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// The write-ahead log is synced: the write survives a crash of the machine.
    Synced,
    /// Survives a crash of the process only; for bookkeeping that can be redone.
    Buffered,
}

/// A forward cursor over one key space, in byte order of the keys.
pub trait Cursor {
    /// Positions the cursor at the first key `>= key`.
    fn seek(&mut self, key: &[u8]);
    /// The entry at the cursor, then advances; `None` at the end.
    fn next_entry(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>>;
}

/// An ordered key-value store with atomic batches.
pub trait MetaStore: Send + Sync {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>>;
    fn put(&self, cf: Cf, key: &[u8], value: &[u8], durability: Durability) -> Result<()>;
    fn delete(&self, cf: Cf, key: &[u8], durability: Durability) -> Result<()>;
    fn write(&self, batch: Batch, durability: Durability) -> Result<()>;
    /// A cursor over `cf`, not going past `upper_bound` (exclusive) when given. It starts
    /// unpositioned: call [`Cursor::seek`] first.
    fn cursor<'a>(&'a self, cf: Cf, upper_bound: Option<Vec<u8>>) -> Result<Box<dyn Cursor + 'a>>;
    /// Makes overwritten and deleted values of `compact` unrecoverable from the store's
    /// files: flushes every key space (so no write-ahead log still holds them) and rewrites
    /// the files of `compact`. Used after destroying a tenant's keys.
    fn purge_stale(&self, compact: &[Cf]) -> Result<()>;
    /// Figures about the store's files and background work, for monitoring; `None` from a
    /// store that keeps none. Cheap enough to call on every scrape.
    fn stats(&self) -> Option<MetaStoreStats>;
}

/// What a store built of sorted files and background compactions (RocksDB) reports. A
/// figure the store could not give reads 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaStoreStats {
    /// One entry per key space, in [`Cf::ALL`] order.
    pub key_spaces: Vec<KeySpaceStats>,
    pub running_compactions: u64,
    pub running_flushes: u64,
    /// Failed flushes or compactions since the store was opened: non-zero is an incident.
    pub background_errors: u64,
    /// Writes are stopped until compaction catches up.
    pub writes_stopped: bool,
}

/// The files of one key space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpaceStats {
    pub cf: Cf,
    /// Sorted files of the current version.
    pub live_sst_bytes: u64,
    /// Every sorted file, including ones obsolete but still held (by a snapshot, an
    /// iterator or a pending deletion).
    pub total_sst_bytes: u64,
    /// RocksDB's estimate of the live data, after overwritten and deleted values are gone.
    pub estimated_live_data_bytes: u64,
    /// Bytes compaction has to rewrite to bring every level under its target size.
    pub pending_compaction_bytes: u64,
    /// Memtables, active and not yet flushed.
    pub memtable_bytes: u64,
    pub estimated_keys: u64,
}
