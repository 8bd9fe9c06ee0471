//! Counters the store keeps for monitoring: AES-256-GCM work on object data, integrity
//! failures by what failed to open, data files written to each array, and what the last
//! garbage-collection pass found. Plain atomics, counted since the store was opened and read
//! by whoever exports them (the gateway's `/metrics`); nothing here knows about Prometheus.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::error::{Error, Result};
use crate::gc::GcStats;
use crate::meta_store::MetaStoreStats;
use crate::store::Store;

/// What failed to authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntegrityKind {
    /// Object data, inline or in a data file: a sealed segment whose tag does not verify
    /// (tampered, truncated, reordered, swapped with another object's), or a data file whose
    /// header or length does not match its part.
    Data,
    /// An object's or upload's DEK, wrapped under the tenant's KEK.
    WrappedDek,
    /// A value sealed in a record: ETag, checksum, user metadata value, tag set, or an
    /// access key's secret.
    SealedValue,
}

impl IntegrityKind {
    pub const ALL: [IntegrityKind; 3] = [
        IntegrityKind::Data,
        IntegrityKind::WrappedDek,
        IntegrityKind::SealedValue,
    ];

    /// `data`, `wrapped_dek` or `sealed_value`: for logs and metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            IntegrityKind::Data => "data",
            IntegrityKind::WrappedDek => "wrapped_dek",
            IntegrityKind::SealedValue => "sealed_value",
        }
    }
}

/// Sealing (writing) or opening (reading) a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AeadOp {
    Seal,
    Open,
}

impl AeadOp {
    pub const ALL: [AeadOp; 2] = [AeadOp::Seal, AeadOp::Open];

    /// `seal` or `open`.
    pub fn name(self) -> &'static str {
        match self {
            AeadOp::Seal => "seal",
            AeadOp::Open => "open",
        }
    }
}

/// Data files written to one array since the store was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayWrites {
    pub array: String,
    /// Files renamed into place (durable).
    pub files: u64,
    /// Their bytes as stored: header and sealed segments.
    pub bytes: u64,
}

/// The garbage-collection queue as the last pass found it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcBacklog {
    /// Data superseded or deleted by a committed change, awaiting removal.
    pub queued: u64,
    /// Intents of writes by a process that is gone: orphan files to remove.
    pub orphaned: u64,
    /// Intents of this process's writes in progress, left alone.
    pub in_progress: u64,
    /// Entries the pass had to keep: a file it could not remove, or on an array no longer
    /// configured. Non-zero for long means data that is never collected.
    pub retained: u64,
}

/// Garbage collection since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcFigures {
    pub passes: u64,
    pub failed_passes: u64,
    pub files_removed: u64,
    pub bytes_removed: u64,
    /// From the last pass that completed.
    pub backlog: GcBacklog,
}

/// The store's monitoring counters. `Send + Sync`; shared by the store and its readers.
#[derive(Debug)]
pub struct StoreStats {
    segments: [AtomicU64; 2],
    integrity_failures: [AtomicU64; 3],
    /// One entry per configured array, in configuration order.
    arrays: Vec<ArrayCounters>,
    gc: GcCounters,
    /// Transactions run again after a conflict, and those that ran out of attempts.
    transactions_retried: AtomicU64,
    transactions_gave_up: AtomicU64,
}

#[derive(Debug)]
struct ArrayCounters {
    name: String,
    files: AtomicU64,
    bytes: AtomicU64,
}

#[derive(Debug, Default)]
struct GcCounters {
    passes: AtomicU64,
    failed_passes: AtomicU64,
    files_removed: AtomicU64,
    bytes_removed: AtomicU64,
    queued: AtomicU64,
    orphaned: AtomicU64,
    in_progress: AtomicU64,
    retained: AtomicU64,
}

impl StoreStats {
    pub(crate) fn new<'a>(arrays: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            segments: Default::default(),
            integrity_failures: Default::default(),
            arrays: arrays
                .into_iter()
                .map(|name| ArrayCounters {
                    name: name.to_owned(),
                    files: AtomicU64::new(0),
                    bytes: AtomicU64::new(0),
                })
                .collect(),
            gc: GcCounters::default(),
            transactions_retried: AtomicU64::new(0),
            transactions_gave_up: AtomicU64::new(0),
        }
    }

    /// Transactions run again because another one changed what they read.
    pub fn transactions_retried(&self) -> u64 {
        self.transactions_retried.load(Relaxed)
    }

    /// Transactions that still conflicted at their last attempt (the client got an error).
    pub fn transactions_gave_up(&self) -> u64 {
        self.transactions_gave_up.load(Relaxed)
    }

    pub(crate) fn transaction_retried(&self) {
        self.transactions_retried.fetch_add(1, Relaxed);
    }

    pub(crate) fn transaction_gave_up(&self) {
        self.transactions_gave_up.fetch_add(1, Relaxed);
    }

    /// Object data segments sealed or opened (64 KiB of plaintext each, the last one of a
    /// part shorter). Opens that failed are not counted here but as integrity failures.
    pub fn segments(&self, op: AeadOp) -> u64 {
        self.segments[op as usize].load(Relaxed)
    }

    pub fn integrity_failures(&self, kind: IntegrityKind) -> u64 {
        self.integrity_failures[kind as usize].load(Relaxed)
    }

    /// Every configured array, written to or not.
    pub fn array_writes(&self) -> Vec<ArrayWrites> {
        self.arrays
            .iter()
            .map(|a| ArrayWrites {
                array: a.name.clone(),
                files: a.files.load(Relaxed),
                bytes: a.bytes.load(Relaxed),
            })
            .collect()
    }

    pub fn gc(&self) -> GcFigures {
        let gc = &self.gc;
        GcFigures {
            passes: gc.passes.load(Relaxed),
            failed_passes: gc.failed_passes.load(Relaxed),
            files_removed: gc.files_removed.load(Relaxed),
            bytes_removed: gc.bytes_removed.load(Relaxed),
            backlog: GcBacklog {
                queued: gc.queued.load(Relaxed),
                orphaned: gc.orphaned.load(Relaxed),
                in_progress: gc.in_progress.load(Relaxed),
                retained: gc.retained.load(Relaxed),
            },
        }
    }

    pub(crate) fn count_segments(&self, op: AeadOp, segments: u64) {
        self.segments[op as usize].fetch_add(segments, Relaxed);
    }

    pub(crate) fn count_integrity_failure(&self, kind: IntegrityKind) {
        self.integrity_failures[kind as usize].fetch_add(1, Relaxed);
    }

    pub(crate) fn count_file_written(&self, array: &str, bytes: u64) {
        if let Some(counters) = self.arrays.iter().find(|a| a.name == array) {
            counters.files.fetch_add(1, Relaxed);
            counters.bytes.fetch_add(bytes, Relaxed);
        }
    }

    /// One garbage-collection pass: what it removed, and the queue as it found it (kept
    /// from the previous pass when this one failed part-way).
    pub(crate) fn count_gc_pass(&self, result: &Result<GcStats>, backlog: &GcBacklog) {
        let gc = &self.gc;
        gc.passes.fetch_add(1, Relaxed);
        let Ok(removed) = result else {
            gc.failed_passes.fetch_add(1, Relaxed);
            return;
        };
        gc.files_removed.fetch_add(removed.files_removed, Relaxed);
        gc.bytes_removed.fetch_add(removed.bytes_removed, Relaxed);
        gc.queued.store(backlog.queued, Relaxed);
        gc.orphaned.store(backlog.orphaned, Relaxed);
        gc.in_progress.store(backlog.in_progress, Relaxed);
        gc.retained.store(backlog.retained, Relaxed);
    }
}

/// Counts an [`Error::Integrity`] as a failure of `kind` on its way up.
pub(crate) trait CountIntegrity {
    fn count_integrity(self, stats: &StoreStats, kind: IntegrityKind) -> Self;
}

impl<T> CountIntegrity for Result<T> {
    fn count_integrity(self, stats: &StoreStats, kind: IntegrityKind) -> Self {
        if let Err(Error::Integrity { .. }) = &self {
            stats.count_integrity_failure(kind);
        }
        self
    }
}

impl Store {
    /// The store's monitoring counters, since it was opened.
    pub fn stats(&self) -> &StoreStats {
        &self.shared.stats
    }

    /// What the metadata store reports about its files and background work; `None` for a
    /// store that keeps no such figures (the in-memory one).
    pub fn meta_store_stats(&self) -> Option<MetaStoreStats> {
        self.meta().stats()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use coffre_crypto::{AdminScope, TenantScope, SEGMENT_LEN};

    use super::*;

    use crate::keys;
    use crate::meta_store::{Cf, Durability};
    use crate::records::{BucketRecord, ObjectMeta, ObjectRecord, Record};
    use crate::sealed_records::StoredObject;

    use crate::{TenantSettings, WriteTarget};

    fn store(dir: &Path) -> Store {
        crate::store::test_store(dir, "a")
    }

    fn tenant(store: &Store) -> (TenantScope, BucketRecord) {
        let admin = AdminScope::local_operator();
        let tenant = store
            .create_tenant(&admin, "t", TenantSettings::default())
            .unwrap();
        let scope = TenantScope::for_tests(tenant.id);
        let bucket = store.create_bucket(&scope, "b", "r").unwrap();
        (scope, bucket)
    }

    fn put(store: &Store, scope: &TenantScope, bucket: &BucketRecord, key: &str, len: usize) {
        let mut writer = store
            .data_writer(scope, bucket, WriteTarget::Object, None)
            .unwrap();
        writer.write(&vec![7u8; len]).unwrap();
        let meta = ObjectMeta {
            size: len as u64,
            etag: format!("etag-{key}"),
            ..ObjectMeta::default()
        };
        store
            .put_object(scope, bucket, key, meta, writer.finish().unwrap())
            .unwrap();
    }

    fn read(store: &Store, scope: &TenantScope, object: &ObjectRecord) -> Result<()> {
        store
            .object_reader(scope, object, None)?
            .read_range(0, u64::MAX, 4096, &mut |_| true)
    }

    #[test]
    fn segments_and_data_files_are_counted_as_they_are_written_and_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let (scope, bucket) = tenant(&store);
        put(&store, &scope, &bucket, "small", 10);
        put(&store, &scope, &bucket, "large", 3 * SEGMENT_LEN + 1);
        let stats = store.stats();
        assert_eq!(stats.segments(AeadOp::Seal), 1 + 4);
        let writes = stats.array_writes();
        let file_len = 16 + 3 * SEGMENT_LEN as u64 + 1 + 4 * 16;
        assert_eq!(
            (writes[0].files, writes[0].bytes),
            (1, file_len),
            "inline data is no file"
        );

        let large = store.object(&scope, &bucket, "large").unwrap();
        read(&store, &scope, &large).unwrap();
        assert_eq!(stats.segments(AeadOp::Open), 4);
        let mut reader = store.object_reader(&scope, &large, None).unwrap();
        reader.read_range(10, 20, 4096, &mut |_| true).unwrap();
        assert_eq!(
            stats.segments(AeadOp::Open),
            5,
            "a range opens only its segments"
        );
        for kind in IntegrityKind::ALL {
            assert_eq!(stats.integrity_failures(kind), 0, "{kind:?}");
        }
    }

    #[test]
    fn integrity_failures_are_counted_by_what_failed_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let (scope, bucket) = tenant(&store);
        let tenant = scope.tenant_id();
        put(&store, &scope, &bucket, "a", 2 * SEGMENT_LEN);
        put(&store, &scope, &bucket, "b", 10);
        let stats = store.stats();
        let failures = || IntegrityKind::ALL.map(|kind| stats.integrity_failures(kind));

        // A flipped bit in the data file.
        let a = store.object(&scope, &bucket, "a").unwrap();
        let file = std::fs::read_dir(dir.path().join("a").join(tenant.to_hex()))
            .unwrap()
            .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
            .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
            .map(|f| f.unwrap().path())
            .find(|p| p.is_file())
            .unwrap();
        let mut sealed = std::fs::read(&file).unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        std::fs::write(&file, &sealed).unwrap();
        assert!(matches!(
            read(&store, &scope, &a),
            Err(Error::Integrity { .. })
        ));
        assert_eq!(failures(), [1, 0, 0]);

        // A record moved under another key: its DEK is bound to the key it was written for.
        let raw = |key: &str| {
            let db_key = keys::object(tenant, bucket.id, key.as_bytes());
            store.meta().get(Cf::Objects, &db_key).unwrap().unwrap()
        };
        let put_raw = |key: &str, value: &[u8]| {
            let db_key = keys::object(tenant, bucket.id, key.as_bytes());
            store
                .transact(Durability::Buffered, |tx| {
                    tx.put(Cf::Objects, db_key.clone(), value.to_vec());
                    Ok(())
                })
                .unwrap();
        };
        put_raw("moved", &raw("b"));
        assert!(matches!(
            store.object(&scope, &bucket, "moved"),
            Err(Error::Integrity { .. })
        ));
        assert_eq!(failures(), [1, 1, 0]);

        // Another object's sealed values under this object's DEK.
        let mut b = StoredObject::decode(&raw("b")).unwrap();
        b.meta = StoredObject::decode(&raw("a")).unwrap().meta;
        put_raw("b", &b.encode().unwrap());
        assert!(matches!(
            store.object(&scope, &bucket, "b"),
            Err(Error::Integrity { .. })
        ));
        assert_eq!(failures(), [1, 1, 1]);
    }

    #[test]
    fn only_integrity_errors_are_counted_and_by_kind() {
        let stats = StoreStats::new(["a"]);
        let integrity = || -> Result<()> {
            Err(Error::Integrity {
                object: "k".into(),
                reason: "tag".into(),
            })
        };
        let _ = integrity().count_integrity(&stats, IntegrityKind::WrappedDek);
        let _ = Err::<(), _>(Error::NoSuchKey).count_integrity(&stats, IntegrityKind::Data);
        let _ = Ok(()).count_integrity(&stats, IntegrityKind::Data);
        assert_eq!(stats.integrity_failures(IntegrityKind::WrappedDek), 1);
        assert_eq!(stats.integrity_failures(IntegrityKind::Data), 0);
        assert_eq!(stats.integrity_failures(IntegrityKind::SealedValue), 0);
    }

    #[test]
    fn files_are_counted_per_configured_array() {
        let stats = StoreStats::new(["a", "b"]);
        stats.count_file_written("b", 100);
        stats.count_file_written("b", 20);
        stats.count_file_written("gone", 5);
        let writes = stats.array_writes();
        assert_eq!(writes.len(), 2);
        assert_eq!((writes[0].files, writes[0].bytes), (0, 0));
        assert_eq!(
            (writes[1].array.as_str(), writes[1].files, writes[1].bytes),
            ("b", 2, 120)
        );
    }

    #[test]
    fn a_failed_gc_pass_keeps_the_previous_backlog() {
        let stats = StoreStats::new(["a"]);
        let backlog = GcBacklog {
            queued: 3,
            orphaned: 1,
            in_progress: 2,
            retained: 0,
        };
        let removed = GcStats {
            files_removed: 4,
            bytes_removed: 40,
        };
        stats.count_gc_pass(&Ok(removed), &backlog);
        stats.count_gc_pass(&Err(Error::Meta("down".into())), &GcBacklog::default());
        let gc = stats.gc();
        assert_eq!((gc.passes, gc.failed_passes), (2, 1));
        assert_eq!((gc.files_removed, gc.bytes_removed), (4, 40));
        assert_eq!(gc.backlog, backlog);
    }
}
