//! The metadata store, timed: the latency of each call by operation. A scan is one
//! observation, the time spent inside the store over the cursor's life (its seeks and
//! steps), not the time the caller kept it open.

use std::time::{Duration, Instant};

use coffre_storage::{Batch, Cf, Cursor, Durability, MetaStore, MetaStoreStats, Result, TxReads};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

use super::OpLabels;

/// A [`MetaStore`] that records each call of the one it wraps.
pub struct InstrumentedMetaStore {
    inner: Box<dyn MetaStore>,
    get: Histogram,
    begin: Histogram,
    tx_read: Histogram,
    commit: Histogram,
    scan: Histogram,
    purge: Histogram,
}

impl InstrumentedMetaStore {
    pub(super) fn new(inner: Box<dyn MetaStore>, duration: &Family<OpLabels, Histogram>) -> Self {
        let histogram = |op| duration.get_or_create(&OpLabels { op }).clone();
        Self {
            inner,
            get: histogram("get"),
            begin: histogram("begin"),
            tx_read: histogram("tx_read"),
            commit: histogram("commit"),
            scan: histogram("scan"),
            purge: histogram("purge"),
        }
    }
}

fn timed<T>(histogram: &Histogram, call: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let result = call();
    histogram.observe(started.elapsed().as_secs_f64());
    result
}

impl MetaStore for InstrumentedMetaStore {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        timed(&self.get, || self.inner.get(cf, key))
    }

    fn begin(&self) -> Result<Box<dyn TxReads + '_>> {
        let inner = timed(&self.begin, || self.inner.begin())?;
        Ok(Box::new(TimedTx { inner, store: self }))
    }

    fn cursor<'a>(&'a self, cf: Cf, upper_bound: Option<Vec<u8>>) -> Result<Box<dyn Cursor + 'a>> {
        let started = Instant::now();
        let inner = self.inner.cursor(cf, upper_bound)?;
        Ok(Box::new(TimedCursor {
            inner,
            histogram: &self.scan,
            spent: started.elapsed(),
        }))
    }

    fn purge_stale(&self, compact: &[Cf]) -> Result<()> {
        timed(&self.purge, || self.inner.purge_stale(compact))
    }

    fn stats(&self) -> Option<MetaStoreStats> {
        self.inner.stats()
    }

    fn fold_counters(&self) -> Result<u64> {
        self.inner.fold_counters()
    }
}

/// A transaction whose reads (`tx_read`) and commit (`commit`, conflicts included) are timed.
struct TimedTx<'a> {
    inner: Box<dyn TxReads + 'a>,
    store: &'a InstrumentedMetaStore,
}

impl TxReads for TimedTx<'_> {
    fn get(&mut self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        timed(&self.store.tx_read, || self.inner.get(cf, key))
    }

    fn scan(
        &mut self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        timed(&self.store.tx_read, || {
            self.inner.scan(cf, start, end, limit)
        })
    }

    fn peek(&mut self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        timed(&self.store.get, || self.inner.peek(cf, key))
    }

    fn get_for_write(&mut self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        timed(&self.store.tx_read, || self.inner.get_for_write(cf, key))
    }

    fn commit(self: Box<Self>, batch: Batch, durability: Durability) -> Result<()> {
        let commit = &self.store.commit;
        timed(commit, || self.inner.commit(batch, durability))
    }
}

struct TimedCursor<'a> {
    inner: Box<dyn Cursor + 'a>,
    histogram: &'a Histogram,
    spent: Duration,
}

impl Cursor for TimedCursor<'_> {
    fn seek(&mut self, key: &[u8]) {
        let started = Instant::now();
        self.inner.seek(key);
        self.spent += started.elapsed();
    }

    fn next_entry(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let started = Instant::now();
        let entry = self.inner.next_entry();
        self.spent += started.elapsed();
        entry
    }
}

impl Drop for TimedCursor<'_> {
    fn drop(&mut self) {
        self.histogram.observe(self.spent.as_secs_f64());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use coffre_storage::{MemoryMetaStore, Tx};

    use crate::config::MetricsConfig;
    use crate::metrics::Metrics;

    use super::*;

    #[test]
    fn each_call_is_observed_once_by_operation_and_a_scan_once_in_all() {
        let metrics = Metrics::new(&MetricsConfig::default());
        let store = metrics.instrument_meta_store(Box::new(MemoryMetaStore::new()));
        let mut tx = Tx::new(store.begin().unwrap());
        tx.put(Cf::Objects, b"a".to_vec(), b"1".to_vec());
        assert_eq!(tx.get(Cf::Objects, b"z").unwrap(), None);
        tx.commit(Durability::Synced).unwrap();
        let mut tx = Tx::new(store.begin().unwrap());
        tx.put(Cf::Objects, b"b".to_vec(), b"2".to_vec());
        tx.put(Cf::Objects, b"c".to_vec(), b"3".to_vec());
        tx.commit(Durability::Synced).unwrap();
        assert_eq!(store.get(Cf::Objects, b"b").unwrap(), Some(b"2".to_vec()));
        let mut cursor = store.cursor(Cf::Objects, None).unwrap();
        cursor.seek(b"");
        let mut seen = 0;
        while cursor.next_entry().unwrap().is_some() {
            seen += 1;
        }
        drop(cursor);
        assert_eq!(seen, 3);
        assert_eq!(
            store.stats(),
            None,
            "the in-memory store keeps no file figures"
        );

        let text = metrics.render();
        for line in [
            "coffre_meta_operation_duration_seconds_count{op=\"begin\"} 2",
            "coffre_meta_operation_duration_seconds_count{op=\"tx_read\"} 1",
            "coffre_meta_operation_duration_seconds_count{op=\"commit\"} 2",
            "coffre_meta_operation_duration_seconds_count{op=\"get\"} 1",
            "coffre_meta_operation_duration_seconds_count{op=\"scan\"} 1",
            "coffre_meta_operation_duration_seconds_count{op=\"purge\"} 0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
