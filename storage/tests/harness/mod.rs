//! What every storage test needs: a store in a fresh directory (on RocksDB, PostgreSQL and
//! the in-memory metadata store), and short ways to write and read objects.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod postgres;

use std::path::{Path, PathBuf};

use std::sync::Arc;

use coffre_crypto::{AdminScope, KeyProvider, LocalFileKeyProvider, TenantId, TenantScope};
use coffre_storage::{
    ArrayConfig, BucketRecord, MemoryMetaStore, ObjectMeta, ObjectRecord, PostgresConfig,
    PostgresMetaStore, Store, StoreConfig, TenantSettings, UploadAddress, WriteTarget, WrittenData,
};

pub const INLINE_MAX: usize = 1024;
/// Small parts, so that multipart tests need not write 5 MiB each.
pub const MIN_PART_SIZE: u64 = 100;

pub fn config(dir: &Path) -> StoreConfig {
    let arrays = [("a1", 1), ("a2", 2)]
        .into_iter()
        .map(|(name, weight)| ArrayConfig {
            name: name.into(),
            path: dir.join("arrays").join(name),
            weight,
            site: None,
        })
        .collect();
    StoreConfig {
        inline_max: INLINE_MAX,
        min_part_size: MIN_PART_SIZE,
        ..StoreConfig::new(dir.join("meta"), arrays)
    }
}

/// The root key provider of the store in `dir` (a local key file, created on first use).
pub fn root_keys(dir: &Path) -> Arc<dyn KeyProvider> {
    Arc::new(LocalFileKeyProvider::open_or_create(dir.join("root.key")).unwrap())
}

pub fn open_rocks(dir: &Path) -> Store {
    Store::open(config(dir), root_keys(dir)).unwrap()
}

pub fn open_memory(dir: &Path) -> Store {
    Store::with_meta_store(
        config(dir),
        Box::new(MemoryMetaStore::new()),
        root_keys(dir),
    )
    .unwrap()
}

/// A store whose metadata is in a fresh database of the test PostgreSQL server.
pub fn open_postgres(dir: &Path) -> Store {
    Store::with_meta_store(
        config(dir),
        Box::new(PostgresMetaStore::open(&postgres_config(postgres::fresh_database())).unwrap()),
        root_keys(dir),
    )
    .unwrap()
}

/// A second node: a store over the same arrays, root key and PostgreSQL database (`url`)
/// as another, as a gateway on another machine sees them.
pub fn open_postgres_node(dir: &Path, url: &str) -> Store {
    Store::with_meta_store(
        config(dir),
        Box::new(PostgresMetaStore::open(&postgres_config(url.to_owned())).unwrap()),
        root_keys(dir),
    )
    .unwrap()
}

pub fn postgres_config(url: String) -> PostgresConfig {
    PostgresConfig {
        url,
        password: None,
        pool_size: 8,
        connect_timeout: std::time::Duration::from_secs(5),
    }
}

/// Runs `check` against a store on each metadata store implementation.
pub fn each_store(check: impl Fn(&Store, &Path)) {
    for open in [open_rocks as fn(&Path) -> Store, open_memory, open_postgres] {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        check(&store, dir.path());
    }
}

/// The lease of background `job` for a test, as the only node.
pub fn lease(store: &Store, job: &str) -> coffre_storage::Lease {
    store
        .acquire_lease(job, "test-node", coffre_storage::DEFAULT_LEASE)
        .unwrap()
        .expect("no other node holds the lease")
}

/// The scope of a new tenant (without quotas, placed anywhere).
pub fn scope(store: &Store) -> TenantScope {
    tenant_scope(store, TenantSettings::default())
}

pub fn tenant_scope(store: &Store, settings: TenantSettings) -> TenantScope {
    let name = format!("t{}", TenantId::random().to_hex());
    let tenant = store
        .create_tenant(&AdminScope::local_operator(), &name, settings)
        .unwrap();
    TenantScope::for_tests(tenant.id)
}

pub fn meta_for(data: &[u8]) -> ObjectMeta {
    ObjectMeta {
        size: data.len() as u64,
        etag: format!("etag-{}-{}", data.len(), data.first().copied().unwrap_or(0)),
        content_type: Some("application/octet-stream".into()),
        ..ObjectMeta::default()
    }
}

/// Writes `data` for a single PUT in slices of at most `slice` bytes.
pub fn write(
    store: &Store,
    scope: &TenantScope,
    bucket: &BucketRecord,
    data: &[u8],
    slice: usize,
) -> WrittenData {
    write_for(store, scope, bucket, WriteTarget::Object, data, slice)
}

/// Writes `data` for part `part_number` of an upload in slices of at most `slice` bytes.
pub fn write_part(
    store: &Store,
    scope: &TenantScope,
    bucket: &BucketRecord,
    upload: &UploadAddress,
    part_number: u32,
    data: &[u8],
    slice: usize,
) -> WrittenData {
    let target = WriteTarget::Part {
        upload: upload.clone(),
        part_number,
    };
    write_for(store, scope, bucket, target, data, slice)
}

pub fn write_for(
    store: &Store,
    scope: &TenantScope,
    bucket: &BucketRecord,
    target: WriteTarget,
    data: &[u8],
    slice: usize,
) -> WrittenData {
    let mut writer = store.data_writer(scope, bucket, target, None).unwrap();
    for chunk in data.chunks(slice.max(1)) {
        writer.write(chunk).unwrap();
    }
    writer.finish().unwrap()
}

pub fn put(
    store: &Store,
    scope: &TenantScope,
    bucket: &BucketRecord,
    key: &str,
    data: &[u8],
) -> ObjectRecord {
    let written = write(store, scope, bucket, data, 1000);
    store
        .put_object(scope, bucket, key, meta_for(data), written)
        .unwrap()
}

pub fn read_range(
    store: &Store,
    scope: &TenantScope,
    object: &ObjectRecord,
    start: u64,
    end: u64,
    chunk: usize,
) -> coffre_storage::Result<Vec<u8>> {
    let mut reader = store.object_reader(scope, object, None)?;
    let mut out = Vec::new();
    reader.read_range(start, end, chunk, &mut |bytes| {
        assert!(bytes.len() <= chunk.max(1));
        out.extend_from_slice(&bytes);
        true
    })?;
    Ok(out)
}

pub fn read_all(store: &Store, scope: &TenantScope, object: &ObjectRecord) -> Vec<u8> {
    read_range(store, scope, object, 0, u64::MAX, 4096).unwrap()
}

/// Every file under the arrays, temp files included.
pub fn array_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(path: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(path) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir.join("arrays"), &mut out);
    out.sort();
    out
}

/// Deterministic bytes of any length.
pub fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

/// The files under `dir` that contain `needle` (to look for plaintext or key material).
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|path| {
            let content = std::fs::read(path).unwrap_or_default();
            content.windows(needle.len()).any(|w| w == needle)
        })
        .collect()
}
