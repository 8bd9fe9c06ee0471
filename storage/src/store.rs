//! The store: its configuration, opening, and the state shared by every call and by the
//! writers and readers it hands out.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use coffre_crypto::{BucketId, KeyProvider, ObjectId, TenantId};
use rand::RngCore;

use crate::arrays::{ArrayConfig, Arrays};
use crate::error::{Error, Result};
use crate::keys;
use crate::meta_store::{Cf, MetaStore};
use crate::records::{BucketRecord, Record, TenantRecord, TenantState};
use crate::stats::StoreStats;
use crate::tenant_keys::TenantKeys;
use crate::usage::UsageTracker;

/// Objects up to this size are kept in their metadata record by default.
pub const DEFAULT_INLINE_MAX: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The RocksDB directory.
    pub meta_dir: PathBuf,
    pub arrays: Vec<ArrayConfig>,
    /// Data of at most this many bytes stays inline in its record, without a file.
    pub inline_max: usize,
    /// Unwrapped tenant KEKs kept in memory at most.
    pub kek_cache_capacity: usize,
    /// How long an unwrapped KEK stays cached.
    pub kek_cache_ttl: Duration,
}

/// Default [`StoreConfig::kek_cache_capacity`].
pub const DEFAULT_KEK_CACHE_CAPACITY: usize = 4096;
/// Default [`StoreConfig::kek_cache_ttl`].
pub const DEFAULT_KEK_CACHE_TTL: Duration = Duration::from_secs(15 * 60);

impl StoreConfig {
    /// A configuration with the default inline threshold and KEK cache.
    pub fn new(meta_dir: PathBuf, arrays: Vec<ArrayConfig>) -> Self {
        Self {
            meta_dir,
            arrays,
            inline_max: DEFAULT_INLINE_MAX,
            kek_cache_capacity: DEFAULT_KEK_CACHE_CAPACITY,
            kek_cache_ttl: DEFAULT_KEK_CACHE_TTL,
        }
    }
}

/// Metadata in an ordered store, data on arrays. `Send + Sync`; clones share one store.
#[derive(Clone)]
pub struct Store {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub meta: Box<dyn MetaStore>,
    pub arrays: Arrays,
    pub inline_max: usize,
    /// Identifies this process's pending writes: intents from another boot id belong to a
    /// process that is gone.
    pub boot_id: [u8; 16],
    pub locks: Locks,
    pub usage: UsageTracker,
    /// The root key provider and the unwrapped tenant KEKs.
    pub keys: TenantKeys,
    /// Monitoring counters; object readers keep a handle after the call that made them.
    pub stats: Arc<StoreStats>,
}

impl Store {
    /// Creates the metadata directory and array roots as needed and opens RocksDB. `keys`
    /// holds the root key that wraps every tenant's KEKs.
    #[cfg(feature = "rocksdb")]
    pub fn open(config: StoreConfig, keys: Arc<dyn KeyProvider>) -> Result<Store> {
        std::fs::create_dir_all(&config.meta_dir)?;
        let meta = crate::rocks_meta_store::RocksMetaStore::open(&config.meta_dir)?;
        Self::with_meta_store(config, Box::new(meta), keys)
    }

    /// A store over any [`MetaStore`]; `config.meta_dir` is not used.
    pub fn with_meta_store(
        config: StoreConfig,
        meta: Box<dyn MetaStore>,
        keys: Arc<dyn KeyProvider>,
    ) -> Result<Store> {
        let stats = StoreStats::new(config.arrays.iter().map(|a| a.name.as_str()));
        let arrays = Arrays::new(config.arrays)?;
        let mut boot_id = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut boot_id);
        Ok(Store {
            shared: Arc::new(Shared {
                meta,
                arrays,
                inline_max: config.inline_max,
                boot_id,
                locks: Locks::new(),
                usage: UsageTracker::default(),
                keys: TenantKeys::new(keys, config.kek_cache_capacity, config.kek_cache_ttl),
                stats: Arc::new(stats),
            }),
        })
    }

    pub(crate) fn meta(&self) -> &dyn MetaStore {
        self.shared.meta.as_ref()
    }

    pub(crate) fn get_record<R: Record>(&self, cf: Cf, key: &[u8]) -> Result<Option<R>> {
        self.meta().get(cf, key)?.map(|v| R::decode(&v)).transpose()
    }

    /// Fails with `NoSuchBucket` unless `bucket` is still the live incarnation of its name:
    /// a write into a deleted bucket would leave unreachable data behind.
    pub(crate) fn check_bucket_live(&self, tenant: TenantId, bucket: &BucketRecord) -> Result<()> {
        match self.get_record::<BucketRecord>(Cf::Buckets, &keys::bucket(tenant, &bucket.name))? {
            Some(live) if live.id == bucket.id => Ok(()),
            _ => Err(Error::NoSuchBucket),
        }
    }

    /// The tenant's record, unless it is gone or being deleted: a request authenticated
    /// just before a deletion must not create anything under it.
    pub(crate) fn live_tenant(&self, tenant: TenantId) -> Result<TenantRecord> {
        match self.get_record::<TenantRecord>(Cf::Tenants, &keys::tenant(tenant))? {
            Some(record) if record.state != TenantState::Deleting => Ok(record),
            _ => Err(Error::NoSuchTenant),
        }
    }
}

const LOCK_STRIPES: usize = 64;

/// Serializes read-modify-write sequences on the metadata. Lock order: `admin`, then
/// `buckets`, then an `uploads` stripe, then an `objects` stripe.
pub(crate) struct Locks {
    admin: Mutex<()>,
    /// Shared by object and upload writes, exclusive for creating and deleting buckets.
    buckets: RwLock<()>,
    objects: [Mutex<()>; LOCK_STRIPES],
    uploads: [Mutex<()>; LOCK_STRIPES],
}

// A poisoned lock guards no data (the state is in the metadata store), so it is still usable.
impl Locks {
    fn new() -> Self {
        Self {
            admin: Mutex::new(()),
            buckets: RwLock::new(()),
            objects: std::array::from_fn(|_| Mutex::new(())),
            uploads: std::array::from_fn(|_| Mutex::new(())),
        }
    }

    pub fn admin(&self) -> MutexGuard<'_, ()> {
        self.admin.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn buckets_shared(&self) -> RwLockReadGuard<'_, ()> {
        self.buckets.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn buckets_exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.buckets.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn object(&self, tenant: TenantId, bucket: BucketId, key: &str) -> MutexGuard<'_, ()> {
        let stripe = stripe(&(tenant, bucket, key));
        self.objects[stripe]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The locks of two object keys (a copy's source and destination), taken in stripe
    /// order so that two copies between the same keys in opposite directions cannot
    /// deadlock; one lock when both keys fall in the same stripe.
    pub fn object_pair(
        &self,
        a: (TenantId, BucketId, &str),
        b: (TenantId, BucketId, &str),
    ) -> (MutexGuard<'_, ()>, Option<MutexGuard<'_, ()>>) {
        let lock = |stripe: usize| {
            self.objects[stripe]
                .lock()
                .unwrap_or_else(|p| p.into_inner())
        };
        let (first, second) = (stripe(&a), stripe(&b));
        match first.cmp(&second) {
            std::cmp::Ordering::Equal => (lock(first), None),
            std::cmp::Ordering::Less => (lock(first), Some(lock(second))),
            std::cmp::Ordering::Greater => {
                let low = lock(second);
                (low, Some(lock(first)))
            }
        }
    }

    pub fn upload(&self, upload: ObjectId) -> MutexGuard<'_, ()> {
        let stripe = stripe(&upload);
        self.uploads[stripe]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

fn stripe(value: &impl Hash) -> usize {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    (hasher.finish() % LOCK_STRIPES as u64) as usize
}
