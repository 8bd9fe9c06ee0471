//! An in-memory [`MetaStore`]: the reference the behaviour tests hold RocksDB and
//! PostgreSQL to, and a store for tests that need no durability. Transactions are validated
//! by the same [`ConflictIndex`] as RocksDB's; their reads see the latest state (no
//! snapshot), which validation makes safe: a read of anything written since the
//! transaction began fails its commit.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use crate::conflict_index::{ConflictIndex, Tracked};
use crate::error::Result;
use crate::meta_store::{
    add_counters, decode_counters, encode_counters, Batch, BatchOp, Cf, Cursor, Durability,
    MetaStore, MetaStoreStats, TxReads,
};

type Tables = BTreeMap<Cf, BTreeMap<Vec<u8>, Vec<u8>>>;

#[derive(Default)]
pub struct MemoryMetaStore {
    tables: Mutex<Tables>,
    conflicts: ConflictIndex,
}

impl MemoryMetaStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        // A panic elsewhere cannot leave a map half-updated: batches apply after validation.
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl MetaStore for MemoryMetaStore {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.tables().get(&cf).and_then(|t| t.get(key)).cloned())
    }

    fn begin(&self) -> Result<Box<dyn TxReads + '_>> {
        Ok(Box::new(MemoryTx {
            store: self,
            tracked: Tracked::begin(&self.conflicts),
        }))
    }

    /// Nothing to do: overwritten values are gone from memory at once.
    fn purge_stale(&self, _compact: &[Cf]) -> Result<()> {
        Ok(())
    }

    fn stats(&self) -> Option<MetaStoreStats> {
        None
    }

    fn cursor<'a>(&'a self, cf: Cf, upper_bound: Option<Vec<u8>>) -> Result<Box<dyn Cursor + 'a>> {
        Ok(Box::new(MemoryCursor {
            store: self,
            cf,
            position: None,
            upper_bound,
        }))
    }
}

impl MemoryMetaStore {
    fn apply(&self, batch: Batch) {
        let mut tables = self.tables();
        for op in batch.ops {
            match op {
                BatchOp::Put { cf, key, value } => {
                    tables.entry(cf).or_default().insert(key, value);
                }
                BatchOp::Delete { cf, key } => {
                    tables.entry(cf).or_default().remove(&key);
                }
                BatchOp::Add { cf, key, deltas } => {
                    let table = tables.entry(cf).or_default();
                    let existing = table
                        .get(&key)
                        .map(|v| decode_counters(v))
                        .unwrap_or_default();
                    table.insert(key, encode_counters(&add_counters(&existing, &deltas)));
                }
            }
        }
    }

    fn scan(
        &self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        if end.is_some_and(|end| start >= end) {
            return Vec::new();
        }
        let tables = self.tables();
        let Some(table) = tables.get(&cf) else {
            return Vec::new();
        };
        let upper = end.map_or(Bound::Unbounded, |end| Bound::Excluded(end.to_vec()));
        table
            .range((Bound::Included(start.to_vec()), upper))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

struct MemoryTx<'a> {
    store: &'a MemoryMetaStore,
    tracked: Tracked<'a>,
}

impl TxReads for MemoryTx<'_> {
    fn get(&mut self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.tracked.read_key(cf, key);
        self.store.get(cf, key)
    }

    fn scan(
        &mut self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let found = self.store.scan(cf, start, end, limit);
        self.tracked.read_scan(cf, start, end, limit, &found);
        Ok(found)
    }

    fn peek(&mut self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.store.get(cf, key)
    }

    /// A validated read, as every read here.
    fn get_for_write(&mut self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get(cf, key)
    }

    fn commit(self: Box<Self>, batch: Batch, _: Durability) -> Result<()> {
        let store = self.store;
        self.tracked.commit(batch, |batch| {
            store.apply(batch);
            Ok(())
        })
    }
}

struct MemoryCursor<'a> {
    store: &'a MemoryMetaStore,
    cf: Cf,
    /// `None` until the first seek, like an unpositioned RocksDB iterator.
    position: Option<Bound<Vec<u8>>>,
    upper_bound: Option<Vec<u8>>,
}

impl Cursor for MemoryCursor<'_> {
    fn seek(&mut self, key: &[u8]) {
        self.position = Some(Bound::Included(key.to_vec()));
    }

    fn next_entry(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let Some(position) = self.position.clone() else {
            return Ok(None);
        };
        let tables = self.store.tables();
        let Some(table) = tables.get(&self.cf) else {
            return Ok(None);
        };
        let entry = table
            .range((position, Bound::Unbounded))
            .next()
            .filter(|(key, _)| self.upper_bound.as_ref().is_none_or(|b| key < &b))
            .map(|(key, value)| (key.clone(), value.clone()));
        if let Some((key, _)) = &entry {
            self.position = Some(Bound::Excluded(key.clone()));
        } else {
            self.position = None;
        }
        Ok(entry)
    }
}
