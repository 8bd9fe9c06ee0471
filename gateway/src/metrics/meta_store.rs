//! The metadata store, timed: the latency of each call by operation. A scan is one
//! observation, the time spent inside the store over the cursor's life (its seeks and
//! steps), not the time the caller kept it open.

use std::time::{Duration, Instant};

use coffre_storage::{Batch, Cf, Cursor, Durability, MetaStore, MetaStoreStats, Result};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

use super::OpLabels;

/// A [`MetaStore`] that records each call of the one it wraps.
pub struct InstrumentedMetaStore {
    inner: Box<dyn MetaStore>,
    get: Histogram,
    put: Histogram,
    delete: Histogram,
    batch: Histogram,
    scan: Histogram,
    purge: Histogram,
}

impl InstrumentedMetaStore {
    /// Resolves every operation's histogram once: no family lookup per call.
    pub(super) fn new(inner: Box<dyn MetaStore>, duration: &Family<OpLabels, Histogram>) -> Self {
        let histogram = |op| duration.get_or_create(&OpLabels { op }).clone();
        Self {
            inner,
            get: histogram("get"),
            put: histogram("put"),
            delete: histogram("delete"),
            batch: histogram("batch"),
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

    fn put(&self, cf: Cf, key: &[u8], value: &[u8], durability: Durability) -> Result<()> {
        timed(&self.put, || self.inner.put(cf, key, value, durability))
    }

    fn delete(&self, cf: Cf, key: &[u8], durability: Durability) -> Result<()> {
        timed(&self.delete, || self.inner.delete(cf, key, durability))
    }

    fn write(&self, batch: Batch, durability: Durability) -> Result<()> {
        timed(&self.batch, || self.inner.write(batch, durability))
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
}

/// Adds up the time spent in the store; observed once, when the scan is over.
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
    use coffre_storage::MemoryMetaStore;

    use crate::config::MetricsConfig;
    use crate::metrics::Metrics;

    use super::*;

    #[test]
    fn each_call_is_observed_once_by_operation_and_a_scan_once_in_all() {
        let metrics = Metrics::new(&MetricsConfig::default());
        let store = metrics.instrument_meta_store(Box::new(MemoryMetaStore::new()));
        store
            .put(Cf::Objects, b"a", b"1", Durability::Synced)
            .unwrap();
        let mut batch = Batch::new();
        batch.put(Cf::Objects, b"b".to_vec(), b"2".to_vec());
        batch.put(Cf::Objects, b"c".to_vec(), b"3".to_vec());
        store.write(batch, Durability::Synced).unwrap();
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
            "coffre_meta_operation_duration_seconds_count{op=\"put\"} 1",
            "coffre_meta_operation_duration_seconds_count{op=\"batch\"} 1",
            "coffre_meta_operation_duration_seconds_count{op=\"get\"} 1",
            "coffre_meta_operation_duration_seconds_count{op=\"scan\"} 1",
            "coffre_meta_operation_duration_seconds_count{op=\"delete\"} 0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
