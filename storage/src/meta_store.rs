//! The narrow interface storage needs from an ordered, transactional key-value store: get,
//! ordered scan, put, delete and counter addition inside serializable transactions, plus
//! plain reads and cursors for listings. Storage is written once over it; RocksDB
//! (`crate::rocks_meta_store`, one node), PostgreSQL (`crate::postgres_meta_store`, a
//! cluster) and memory (tests) implement it.

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
    /// The gateways sharing the store, the leases of background jobs, and the epoch of
    /// destroyed keys that tells every node to drop its cached KEKs (see `cluster`).
    Cluster,
}

impl Cf {
    pub const ALL: [Cf; 12] = [
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
        Cf::Cluster,
    ];

    /// A key space of counters, changed by additions ([`Tx::add`]) as well as puts.
    pub fn is_counter(self) -> bool {
        matches!(self, Cf::Usage | Cf::Refs)
    }

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
            Cf::Cluster => "cluster",
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

/// A forward cursor over one key space, in byte order of the keys. Outside any
/// transaction: for listings, which S3 does not promise to be a snapshot.
pub trait Cursor {
    /// Positions the cursor at the first key `>= key`.
    fn seek(&mut self, key: &[u8]);
    /// The entry at the cursor, then advances; `None` at the end.
    fn next_entry(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>>;
}

/// The reads of one transaction, as a backend serves them. Every read made through
/// [`TxReads::get`] and [`TxReads::scan`] is one the transaction depends on: the commit
/// fails with [`Error::Conflict`](crate::Error::Conflict) if another transaction changed
/// what it read (a key, or any key of a scanned range, absent ones included) after this
/// one began. Writes are buffered by [`Tx`] and handed to [`TxReads::commit`] at the end.
pub trait TxReads {
    fn get(&mut self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// The entries with `start <= key < end` (no end: to the last key), in key order, at
    /// most `limit` of them.
    fn scan(
        &mut self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// The latest committed value, without the transaction depending on it: for figures
    /// such as usage counters, read to check a quota, that concurrent writers only add to.
    fn peek(&mut self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// `key`'s value, read by a transaction that then puts or deletes the key: the commit
    /// fails with `Conflict` unless the key still holds that value. Backends that validate
    /// every read read it as [`TxReads::get`]. PostgreSQL checks it with the
    /// write itself (an insert that must not find the key, an update or delete that must
    /// find this value), so that the read takes no predicate lock on its index page, which
    /// would make every concurrent write of a neighbouring key a serialization conflict.
    /// Never for counters. (No default: a wrapper must forward it, not read with `get`.)
    fn get_for_write(&mut self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Applies `batch` atomically if nothing read was changed meanwhile, else fails with
    /// `Conflict` and applies nothing.
    fn commit(self: Box<Self>, batch: Batch, durability: Durability) -> Result<()>;
}

/// A transaction: reads through the backend, writes buffered here until [`Tx::commit`].
/// Reads see the transaction's own writes. Dropping it without committing abandons it.
pub struct Tx<'a> {
    reads: Box<dyn TxReads + 'a>,
    batch: Batch,
    /// Values already read from the backend: a transaction reads one snapshot, so a second
    /// read of a key (a tenant's record, checked by several steps) costs no round trip.
    read_cache: std::collections::HashMap<(Cf, Vec<u8>), Option<Vec<u8>>>,
}

impl<'a> Tx<'a> {
    pub fn new(reads: Box<dyn TxReads + 'a>) -> Self {
        Self {
            reads,
            batch: Batch::new(),
            read_cache: Default::default(),
        }
    }

    fn read_through(&mut self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(value) = self.read_cache.get(&(cf, key.to_vec())) {
            return Ok(value.clone());
        }
        let value = self.reads.get(cf, key)?;
        self.read_cache.insert((cf, key.to_vec()), value.clone());
        Ok(value)
    }

    /// `key`'s value as this transaction sees it.
    pub fn get(&mut self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        // The last put or delete of the key decides; counter additions after it add up.
        let last_set = self.batch.ops.iter().rposition(|op| op.is_set_of(cf, key));
        let (base, adds_from) = match last_set {
            Some(i) => match &self.batch.ops[i] {
                BatchOp::Put { value, .. } => (Some(value.clone()), i + 1),
                _ => (None, i + 1),
            },
            None => (self.read_through(cf, key)?, 0),
        };
        Ok(apply_adds(base, &self.batch.ops[adds_from..], cf, key))
    }

    /// The entries with `start <= key < end` as this transaction sees them, at most `limit`.
    pub fn scan(
        &mut self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if end.is_some_and(|end| start >= end) {
            // An empty range: nothing to read, nothing to depend on.
            return Ok(Vec::new());
        }
        let in_range = |key: &[u8]| key >= start && end.is_none_or(|end| key < end);
        let own: std::collections::BTreeSet<Vec<u8>> = self
            .batch
            .ops
            .iter()
            .filter(|op| op.cf() == cf && in_range(op.key()))
            .map(|op| op.key().to_vec())
            .collect();
        // Own writes may hide up to `own.len()` of the stored entries.
        let stored = self
            .reads
            .scan(cf, start, end, limit.saturating_add(own.len()))?;
        let mut merged: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = stored
            .into_iter()
            .filter(|(key, _)| !own.contains(key))
            .collect();
        for key in own {
            if let Some(value) = self.get(cf, &key)? {
                merged.insert(key, value);
            }
        }
        Ok(merged.into_iter().take(limit).collect())
    }

    /// `key`'s value as this transaction sees it, read to be replaced: the transaction must
    /// then put or delete `key`, and commits only if nobody changed it meanwhile (see
    /// [`TxReads::get_for_write`]). A transaction that ends up not writing the key did not
    /// depend on the value on every backend: use [`Tx::get`] for a value that decides
    /// anything but the key's own replacement.
    pub fn get_for_write(&mut self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        debug_assert!(!cf.is_counter(), "counters are added to, not replaced");
        let written = self.batch.ops.iter().any(|op| op.is_set_of(cf, key));
        if written || self.read_cache.contains_key(&(cf, key.to_vec())) {
            return self.get(cf, key);
        }
        let value = self.reads.get_for_write(cf, key)?;
        self.read_cache.insert((cf, key.to_vec()), value.clone());
        Ok(value)
    }

    /// Whether any key starts with `prefix`; the transaction depends on the answer.
    pub fn any_with_prefix(&mut self, cf: Cf, prefix: &[u8]) -> Result<bool> {
        let end = crate::keys::prefix_end(prefix);
        Ok(!self.scan(cf, prefix, end.as_deref(), 1)?.is_empty())
    }

    /// See [`TxReads::peek`].
    pub fn peek(&mut self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.reads.peek(cf, key)
    }

    pub fn put(&mut self, cf: Cf, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.batch.put(cf, key, value);
    }

    pub fn delete(&mut self, cf: Cf, key: impl Into<Vec<u8>>) {
        self.batch.delete(cf, key);
    }

    /// Adds to counters without reading them: concurrent additions never conflict.
    pub fn add(&mut self, cf: Cf, key: impl Into<Vec<u8>>, deltas: &[i64]) {
        self.batch.add(cf, key, deltas);
    }

    /// Appends the writes of `batch`.
    pub fn write(&mut self, batch: Batch) {
        self.batch.ops.extend(batch.ops);
    }

    pub fn commit(self, durability: Durability) -> Result<()> {
        self.reads.commit(self.batch, durability)
    }
}

fn apply_adds(base: Option<Vec<u8>>, ops: &[BatchOp], cf: Cf, key: &[u8]) -> Option<Vec<u8>> {
    let mut value = base;
    for op in ops {
        if let BatchOp::Add {
            cf: op_cf,
            key: op_key,
            deltas,
        } = op
        {
            if *op_cf == cf && op_key.as_slice() == key {
                let existing = value.as_deref().map(decode_counters).unwrap_or_default();
                value = Some(encode_counters(&add_counters(&existing, deltas)));
            }
        }
    }
    value
}

impl BatchOp {
    pub fn cf(&self) -> Cf {
        match self {
            BatchOp::Put { cf, .. } | BatchOp::Delete { cf, .. } | BatchOp::Add { cf, .. } => *cf,
        }
    }

    pub fn key(&self) -> &[u8] {
        match self {
            BatchOp::Put { key, .. } | BatchOp::Delete { key, .. } | BatchOp::Add { key, .. } => {
                key
            }
        }
    }

    /// A put or delete of exactly `key` in `cf`.
    fn is_set_of(&self, cf: Cf, key: &[u8]) -> bool {
        !matches!(self, BatchOp::Add { .. }) && self.cf() == cf && self.key() == key
    }
}

/// An ordered key-value store with serializable transactions.
///
/// Every change goes through a transaction ([`MetaStore::begin`]), whose commit fails with
/// [`Error::Conflict`](crate::Error::Conflict) when another committed transaction changed
/// what it read; the caller runs it again (`Store::transact`). Counter additions
/// ([`Tx::add`]) commute and never conflict with each other. Plain reads and cursors see
/// the latest committed state, outside any transaction.
pub trait MetaStore: Send + Sync {
    /// The latest committed value of `key`.
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Starts a transaction.
    fn begin(&self) -> Result<Box<dyn TxReads + '_>>;
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
    /// Folds counter additions kept apart (PostgreSQL's delta rows) into their counters, so
    /// that reading a counter stays one row however many writes added to it. Returns how
    /// many additions were folded; nothing to do for a store that merges them itself.
    fn fold_counters(&self) -> Result<u64> {
        Ok(0)
    }
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
