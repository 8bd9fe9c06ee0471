//! The RocksDB implementation of [`MetaStore`]: one column family per [`Cf`], one
//! `WriteBatch` per commit. Transactions read from a RocksDB snapshot and are validated by
//! the [`ConflictIndex`] (RocksDB is embedded: this process is its only writer). Behind the `rocksdb` feature (on by default) so that crates which
//! only need the storage types, such as the compile-fail tests of the tenant boundary, do not
//! build RocksDB's C++.

use std::path::Path;

use rocksdb::properties::{self, PropName};
use rocksdb::{
    BottommostLevelCompaction, ColumnFamily, ColumnFamilyDescriptor, CompactOptions,
    DBCompressionType, DBRawIteratorWithThreadMode, Options, ReadOptions, SnapshotWithThreadMode,
    WriteBatch, WriteOptions, DB,
};

use crate::conflict_index::{ConflictIndex, Tracked};
use crate::error::{Error, Result};
use crate::meta_store::{
    add_counters, decode_counters, encode_counters, Batch, BatchOp, Cf, Cursor, Durability,
    KeySpaceStats, MetaStore, MetaStoreStats, TxReads,
};

impl From<rocksdb::Error> for Error {
    fn from(err: rocksdb::Error) -> Self {
        Error::Meta(err.into_string())
    }
}

/// RocksDB, one column family per [`Cf`], no compression (the crate is built without codecs;
/// values are mostly ciphertext anyway).
pub struct RocksMetaStore {
    db: DB,
    conflicts: ConflictIndex,
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
        Ok(Self {
            db,
            conflicts: ConflictIndex::default(),
        })
    }

    fn handle(&self, cf: Cf) -> Result<&ColumnFamily> {
        self.db
            .cf_handle(cf.name())
            .ok_or_else(|| Error::Meta(format!("column family {} missing", cf.name())))
    }

    /// An integer property of the whole database; 0 if RocksDB does not give it.
    fn db_property(&self, name: &PropName) -> u64 {
        self.db.property_int_value(name).ok().flatten().unwrap_or(0)
    }

    /// An integer property of one key space; 0 if RocksDB does not give it.
    fn cf_property(&self, cf: &ColumnFamily, name: &PropName) -> u64 {
        self.db
            .property_int_value_cf(cf, name)
            .ok()
            .flatten()
            .unwrap_or(0)
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

    fn begin(&self) -> Result<Box<dyn TxReads + '_>> {
        // The conflict index first: the snapshot must hold every commit it counts as seen.
        let tracked = Tracked::begin(&self.conflicts);
        Ok(Box::new(RocksTx {
            store: self,
            tracked,
            db_snapshot: self.db.snapshot(),
        }))
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

    /// Read from RocksDB's in-memory properties: no I/O, a few microseconds in all.
    fn stats(&self) -> Option<MetaStoreStats> {
        let key_spaces = Cf::ALL
            .into_iter()
            .filter_map(|cf| {
                let handle = self.handle(cf).ok()?;
                let property = |name| self.cf_property(handle, name);
                Some(KeySpaceStats {
                    cf,
                    live_sst_bytes: property(properties::LIVE_SST_FILES_SIZE),
                    total_sst_bytes: property(properties::TOTAL_SST_FILES_SIZE),
                    estimated_live_data_bytes: property(properties::ESTIMATE_LIVE_DATA_SIZE),
                    pending_compaction_bytes: property(
                        properties::ESTIMATE_PENDING_COMPACTION_BYTES,
                    ),
                    memtable_bytes: property(properties::CUR_SIZE_ALL_MEM_TABLES),
                    estimated_keys: property(properties::ESTIMATE_NUM_KEYS),
                })
            })
            .collect();
        Some(MetaStoreStats {
            key_spaces,
            running_compactions: self.db_property(properties::NUM_RUNNING_COMPACTIONS),
            running_flushes: self.db_property(properties::NUM_RUNNING_FLUSHES),
            background_errors: self.db_property(properties::BACKGROUND_ERRORS),
            writes_stopped: self.db_property(properties::IS_WRITE_STOPPED) != 0,
        })
    }
}

impl RocksMetaStore {
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
}

struct RocksTx<'a> {
    store: &'a RocksMetaStore,
    tracked: Tracked<'a>,
    db_snapshot: SnapshotWithThreadMode<'a, DB>,
}

impl TxReads for RocksTx<'_> {
    fn get(&mut self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.tracked.read_key(cf, key);
        Ok(self.db_snapshot.get_cf(self.store.handle(cf)?, key)?)
    }

    fn scan(
        &mut self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut options = ReadOptions::default();
        options.set_snapshot(&self.db_snapshot);
        if let Some(end) = end {
            options.set_iterate_upper_bound(end.to_vec());
        }
        let mut iter = self
            .store
            .db
            .raw_iterator_cf_opt(self.store.handle(cf)?, options);
        iter.seek(start);
        let mut found = Vec::new();
        while found.len() < limit && iter.valid() {
            if let (Some(key), Some(value)) = (iter.key(), iter.value()) {
                found.push((key.to_vec(), value.to_vec()));
            }
            iter.next();
        }
        iter.status()?;
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

    fn commit(self: Box<Self>, batch: Batch, durability: Durability) -> Result<()> {
        let store = self.store;
        // The RocksDB snapshot goes before the commit: it is of no use any more.
        drop(self.db_snapshot);
        self.tracked
            .commit(batch, |batch| store.write(batch, durability))
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stats_give_every_key_space_and_see_flushed_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksMetaStore::open(dir.path()).unwrap();
        let stats = store.stats().unwrap();
        let spaces: Vec<Cf> = stats.key_spaces.iter().map(|s| s.cf).collect();
        assert_eq!(spaces, Cf::ALL);
        assert!(stats.key_spaces.iter().all(|s| s.live_sst_bytes == 0));

        let mut batch = Batch::new();
        for i in 0u32..100 {
            batch.put(Cf::Objects, i.to_be_bytes(), vec![7u8; 1000]);
        }
        let mut tx = store.begin().unwrap();
        tx.get(Cf::Objects, b"none").unwrap();
        tx.commit(batch, Durability::Synced).unwrap();
        let objects = |stats: &MetaStoreStats| stats.key_spaces[Cf::Objects as usize].clone();
        let before_flush = objects(&store.stats().unwrap());
        assert!(before_flush.memtable_bytes > 100_000, "{before_flush:?}");
        assert_eq!(before_flush.estimated_keys, 100);

        store.purge_stale(&[]).unwrap();
        let stats = store.stats().unwrap();
        let flushed = objects(&stats);
        assert!(flushed.live_sst_bytes > 100_000, "{flushed:?}");
        assert!(flushed.total_sst_bytes >= flushed.live_sst_bytes);
        assert_eq!(objects(&stats).cf, Cf::Objects);
        assert_eq!(stats.key_spaces[Cf::Gc as usize].live_sst_bytes, 0);
        assert_eq!((stats.background_errors, stats.writes_stopped), (0, false));
    }
}
