//! The narrow interface storage needs from an ordered key-value store, and its RocksDB
//! implementation. Keeping it narrow (get, put, delete, ordered cursor, atomic batch with
//! counter additions) lets another ordered transactional store replace RocksDB without
//! touching the S3 semantics.

use std::path::Path;

use rocksdb::{
    BottommostLevelCompaction, ColumnFamily, ColumnFamilyDescriptor, CompactOptions,
    DBCompressionType, DBRawIteratorWithThreadMode, Options, ReadOptions, WriteBatch, WriteOptions,
    DB,
};

use crate::error::{Error, Result};

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
}

impl Cf {
    pub const ALL: [Cf; 10] = [
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

/// The RocksDB merge operator behind [`BatchOp::Add`].
fn merge_counters(
    _key: &[u8],
    existing: Option<&[u8]>,
    operands: &rocksdb::MergeOperands,
) -> Option<Vec<u8>> {
    let mut total = existing.map(decode_counters).unwrap_or_default();
    for operand in operands {
        total = add_counters(&total, &decode_counters(operand));
    }
    Some(encode_counters(&total))
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
}

/// RocksDB, one column family per [`Cf`], no compression (the crate is built without codecs;
/// values are mostly ciphertext anyway).
pub struct RocksMetaStore {
    db: DB,
}

impl RocksMetaStore {
    pub fn open(dir: &Path) -> Result<Self> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_compression_type(DBCompressionType::None);
        let descriptors = Cf::ALL.iter().map(|cf| {
            let mut cf_options = Options::default();
            cf_options.set_compression_type(DBCompressionType::None);
            cf_options.set_merge_operator_associative("coffre.add_counters", merge_counters);
            ColumnFamilyDescriptor::new(cf.name(), cf_options)
        });
        let db = DB::open_cf_descriptors(&options, dir, descriptors)?;
        Ok(Self { db })
    }

    fn handle(&self, cf: Cf) -> Result<&ColumnFamily> {
        self.db
            .cf_handle(cf.name())
            .ok_or_else(|| Error::Meta(format!("column family {} missing", cf.name())))
    }
}

fn write_options(durability: Durability) -> WriteOptions {
    let mut options = WriteOptions::default();
    options.set_sync(durability == Durability::Synced);
    options
}

impl MetaStore for RocksMetaStore {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.handle(cf)?, key)?)
    }

    fn put(&self, cf: Cf, key: &[u8], value: &[u8], durability: Durability) -> Result<()> {
        let mut batch = Batch::new();
        batch.put(cf, key, value);
        self.write(batch, durability)
    }

    fn delete(&self, cf: Cf, key: &[u8], durability: Durability) -> Result<()> {
        let mut batch = Batch::new();
        batch.delete(cf, key);
        self.write(batch, durability)
    }

    fn write(&self, batch: Batch, durability: Durability) -> Result<()> {
        let mut rocks_batch = WriteBatch::default();
        for op in batch.ops {
            match op {
                BatchOp::Put { cf, key, value } => rocks_batch.put_cf(self.handle(cf)?, key, value),
                BatchOp::Delete { cf, key } => rocks_batch.delete_cf(self.handle(cf)?, key),
                BatchOp::Add { cf, key, deltas } => {
                    rocks_batch.merge_cf(self.handle(cf)?, key, encode_counters(&deltas))
                }
            }
        }
        self.db.write_opt(rocks_batch, &write_options(durability))?;
        Ok(())
    }

    fn cursor<'a>(&'a self, cf: Cf, upper_bound: Option<Vec<u8>>) -> Result<Box<dyn Cursor + 'a>> {
        let mut options = ReadOptions::default();
        if let Some(bound) = upper_bound {
            options.set_iterate_upper_bound(bound);
        }
        let iter = self.db.raw_iterator_cf_opt(self.handle(cf)?, options);
        Ok(Box::new(RocksCursor { iter }))
    }

    fn purge_stale(&self, compact: &[Cf]) -> Result<()> {
        // A WAL file is dropped once every key space with writes in it is flushed.
        for cf in Cf::ALL {
            self.db.flush_cf(self.handle(cf)?)?;
        }
        self.db.flush_wal(true)?;
        let mut options = CompactOptions::default();
        // Rewrite the bottommost files too: that is where the old versions may sit.
        options.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
        for cf in compact {
            self.db
                .compact_range_cf_opt(self.handle(*cf)?, None::<&[u8]>, None::<&[u8]>, &options);
        }
        Ok(())
    }
}

struct RocksCursor<'a> {
    iter: DBRawIteratorWithThreadMode<'a, DB>,
}

impl Cursor for RocksCursor<'_> {
    fn seek(&mut self, key: &[u8]) {
        self.iter.seek(key);
    }

    fn next_entry(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        if !self.iter.valid() {
            self.iter.status()?;
            return Ok(None);
        }
        let entry = match (self.iter.key(), self.iter.value()) {
            (Some(key), Some(value)) => (key.to_vec(), value.to_vec()),
            _ => return Ok(None),
        };
        self.iter.next();
        Ok(Some(entry))
    }
}
