//! What storage counts, exported: AES-256-GCM segment operations, integrity failures,
//! data files and bytes written per array, the garbage collector's backlog, and RocksDB's
//! figures. Read from the store at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};

use coffre_storage::{AeadOp, IntegrityKind, Store};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::key_provider::WRAPPED_KEK;
use super::{ArrayLabels, IntegrityLabels, OpLabels};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CfLabels {
    cf: &'static str,
}

type U64Gauge = Gauge<u64, AtomicU64>;

pub(super) struct StoreFigures {
    encryption_operations: Family<OpLabels, Counter>,
    pub integrity_failures: Family<IntegrityLabels, Counter>,
    files_written: Family<ArrayLabels, Counter>,
    bytes_written: Family<ArrayLabels, Counter>,
    gc_backlog: Family<StateLabels, U64Gauge>,
    gc_retained: U64Gauge,
    gc_removed_files: Counter,
    gc_removed_bytes: Counter,
    gc_passes: Family<ResultLabels, Counter>,
    transactions_retried: Counter,
    transactions_gave_up: Counter,
    rocksdb: RocksDbFigures,
}

/// Gauges of the RocksDB metadata store; absent with a store that keeps no such figures.
struct RocksDbFigures {
    live_sst: Family<CfLabels, U64Gauge>,
    total_sst: Family<CfLabels, U64Gauge>,
    live_data: Family<CfLabels, U64Gauge>,
    pending_compaction: Family<CfLabels, U64Gauge>,
    memtables: Family<CfLabels, U64Gauge>,
    keys: Family<CfLabels, U64Gauge>,
    running_compactions: U64Gauge,
    running_flushes: U64Gauge,
    background_errors: U64Gauge,
    writes_stopped: U64Gauge,
}

/// Storage keeps its own counters; an exported one follows it. `fetch_max`: a scrape that
/// read an older value cannot move a counter back.
fn follow(counter: &Counter, value: u64) {
    counter.inner().fetch_max(value, Ordering::Relaxed);
}

impl StoreFigures {
    pub fn register(registry: &mut Registry) -> Self {
        let encryption_operations = Family::<OpLabels, Counter>::default();
        for op in AeadOp::ALL {
            encryption_operations
                .get_or_create(&OpLabels { op: op.name() })
                .inc_by(0);
        }
        registry.register(
            "encryption_operations",
            "AES-256-GCM operations on object data, by op (seal, open): one per 64 KiB segment",
            encryption_operations.clone(),
        );
        let integrity_failures = Family::<IntegrityLabels, Counter>::default();
        let kinds = IntegrityKind::ALL.map(IntegrityKind::name);
        for kind in kinds.into_iter().chain([WRAPPED_KEK]) {
            integrity_failures
                .get_or_create(&IntegrityLabels { kind })
                .inc_by(0);
        }
        registry.register(
            "integrity_failures",
            "Stored bytes that failed authentication, by kind (data, wrapped_dek, sealed_value, \
             wrapped_kek): tampering, corruption or a bug; every one is an incident",
            integrity_failures.clone(),
        );
        let files_written = Family::<ArrayLabels, Counter>::default();
        registry.register(
            "data_files_written",
            "Data files written (synced and renamed into place), by array",
            files_written.clone(),
        );
        let bytes_written = Family::<ArrayLabels, Counter>::default();
        registry.register(
            "array_written_bytes",
            "Bytes of data files written, header and sealed segments, by array",
            bytes_written.clone(),
        );
        let gc_backlog = Family::<StateLabels, U64Gauge>::default();
        registry.register(
            "gc_backlog_files",
            "Entries of the garbage-collection queue when the last pass ran, by state: queued \
             (superseded or deleted data), orphaned (a dead process's writes), in_progress",
            gc_backlog.clone(),
        );
        let gc_retained = U64Gauge::default();
        registry.register(
            "gc_retained_files",
            "Entries the last garbage-collection pass could not collect (removal failed or \
             unknown array)",
            gc_retained.clone(),
        );
        let gc_removed_files = Counter::default();
        registry.register(
            "gc_removed_files",
            "Data files removed by the garbage collector",
            gc_removed_files.clone(),
        );
        let gc_removed_bytes = Counter::default();
        registry.register(
            "gc_removed_bytes",
            "Bytes of data files removed by the garbage collector",
            gc_removed_bytes.clone(),
        );
        let gc_passes = Family::<ResultLabels, Counter>::default();
        registry.register(
            "gc_passes",
            "Garbage-collection passes, by result (ok, failed)",
            gc_passes.clone(),
        );
        let transactions_retried = Counter::default();
        registry.register(
            "meta_transactions_retried",
            "Metadata transactions run again because another one changed what they read",
            transactions_retried.clone(),
        );
        let transactions_gave_up = Counter::default();
        registry.register(
            "meta_transactions_gave_up",
            "Metadata transactions still conflicting at their last attempt (answered 503 SlowDown)",
            transactions_gave_up.clone(),
        );
        Self {
            transactions_retried,
            transactions_gave_up,
            encryption_operations,
            integrity_failures,
            files_written,
            bytes_written,
            gc_backlog,
            gc_retained,
            gc_removed_files,
            gc_removed_bytes,
            gc_passes,
            rocksdb: RocksDbFigures::register(registry),
        }
    }

    /// Copies the store's figures into the exported series.
    pub fn refresh(&self, store: &Store) {
        let stats = store.stats();
        for op in AeadOp::ALL {
            let counter = self
                .encryption_operations
                .get_or_create(&OpLabels { op: op.name() });
            follow(&counter, stats.segments(op));
        }
        for kind in IntegrityKind::ALL {
            let labels = IntegrityLabels { kind: kind.name() };
            follow(
                &self.integrity_failures.get_or_create(&labels),
                stats.integrity_failures(kind),
            );
        }
        for writes in stats.array_writes() {
            let labels = ArrayLabels {
                array: writes.array,
            };
            follow(&self.files_written.get_or_create(&labels), writes.files);
            follow(&self.bytes_written.get_or_create(&labels), writes.bytes);
        }
        let gc = stats.gc();
        for (state, files) in [
            ("queued", gc.backlog.queued),
            ("orphaned", gc.backlog.orphaned),
            ("in_progress", gc.backlog.in_progress),
        ] {
            self.gc_backlog
                .get_or_create(&StateLabels { state })
                .set(files);
        }
        self.gc_retained.set(gc.backlog.retained);
        follow(&self.gc_removed_files, gc.files_removed);
        follow(&self.gc_removed_bytes, gc.bytes_removed);
        for (result, passes) in [
            ("ok", gc.passes.saturating_sub(gc.failed_passes)),
            ("failed", gc.failed_passes),
        ] {
            follow(
                &self.gc_passes.get_or_create(&ResultLabels { result }),
                passes,
            );
        }
        follow(&self.transactions_retried, stats.transactions_retried());
        follow(&self.transactions_gave_up, stats.transactions_gave_up());
        self.rocksdb.refresh(store);
    }
}

impl RocksDbFigures {
    fn register(registry: &mut Registry) -> Self {
        let mut per_cf = |name: &str, help: &str| {
            let family = Family::<CfLabels, U64Gauge>::default();
            registry.register(name, help, family.clone());
            family
        };
        let live_sst = per_cf(
            "rocksdb_live_sst_bytes",
            "Metadata: sorted files of the current version, by column family",
        );
        let total_sst = per_cf(
            "rocksdb_sst_bytes",
            "Metadata: every sorted file, obsolete ones still held included, by column family",
        );
        let live_data = per_cf(
            "rocksdb_estimated_live_data_bytes",
            "Metadata: RocksDB's estimate of the live data, by column family",
        );
        let pending_compaction = per_cf(
            "rocksdb_pending_compaction_bytes",
            "Metadata: bytes compaction has to rewrite, by column family",
        );
        let memtables = per_cf(
            "rocksdb_memtable_bytes",
            "Metadata: memtables not yet flushed, by column family",
        );
        let keys = per_cf(
            "rocksdb_estimated_keys",
            "Metadata: estimated number of keys, by column family (gc: the collection queue)",
        );
        let mut gauge = |name: &str, help: &str| {
            let gauge = U64Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        Self {
            live_sst,
            total_sst,
            live_data,
            pending_compaction,
            memtables,
            keys,
            running_compactions: gauge(
                "rocksdb_running_compactions",
                "Metadata: compactions running",
            ),
            running_flushes: gauge(
                "rocksdb_running_flushes",
                "Metadata: memtable flushes running",
            ),
            background_errors: gauge(
                "rocksdb_background_errors",
                "Metadata: failed flushes or compactions since start (non-zero is an incident)",
            ),
            writes_stopped: gauge(
                "rocksdb_writes_stopped",
                "Metadata: 1 while writes are stopped until compaction catches up",
            ),
        }
    }

    fn refresh(&self, store: &Store) {
        let Some(stats) = store.meta_store_stats() else {
            return;
        };
        for space in &stats.key_spaces {
            let labels = CfLabels {
                cf: space.cf.name(),
            };
            for (family, value) in [
                (&self.live_sst, space.live_sst_bytes),
                (&self.total_sst, space.total_sst_bytes),
                (&self.live_data, space.estimated_live_data_bytes),
                (&self.pending_compaction, space.pending_compaction_bytes),
                (&self.memtables, space.memtable_bytes),
                (&self.keys, space.estimated_keys),
            ] {
                family.get_or_create(&labels).set(value);
            }
        }
        self.running_compactions.set(stats.running_compactions);
        self.running_flushes.set(stats.running_flushes);
        self.background_errors.set(stats.background_errors);
        self.writes_stopped.set(u64::from(stats.writes_stopped));
    }
}
