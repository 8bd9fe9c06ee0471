//! The store: its configuration, opening, and the state shared by every call and by the
//! writers and readers it hands out.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use coffre_crypto::{KeyProvider, TenantId};
use rand::RngCore;

use crate::arrays::{ArrayConfig, Arrays};
use crate::error::{Error, Result};
use crate::keys;
use crate::meta_store::{Batch, Cf, Durability, MetaStore, Tx};
use crate::multipart_upload::MIN_PART_SIZE;
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
    /// Every part of a completed multipart upload but the last is at least this large
    /// ([`MIN_PART_SIZE`] as on S3; smaller only in tests).
    pub min_part_size: u64,
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
            min_part_size: MIN_PART_SIZE,
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
    pub min_part_size: u64,
    /// Identifies this process's pending writes: intents from another boot id belong to a
    /// process that is gone.
    pub boot_id: [u8; 16],
    pub usage: UsageTracker,
    /// Held by tenant creation and root rotation in this process, so that a root version
    /// is not retired while a KEK wrapped under it is being committed here. (Across nodes,
    /// see the README's cluster notes.)
    pub admin: std::sync::Mutex<()>,
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
                min_part_size: config.min_part_size,
                boot_id,
                admin: std::sync::Mutex::new(()),
                usage: UsageTracker::default(),
                keys: TenantKeys::new(keys, config.kek_cache_capacity, config.kek_cache_ttl),
                stats: Arc::new(stats),
            }),
        })
    }

    /// The store whose state writers and readers share.
    pub(crate) fn from_shared(shared: &Arc<Shared>) -> Store {
        Store {
            shared: Arc::clone(shared),
        }
    }

    pub(crate) fn meta(&self) -> &dyn MetaStore {
        self.shared.meta.as_ref()
    }

    pub(crate) fn get_record<R: Record>(&self, cf: Cf, key: &[u8]) -> Result<Option<R>> {
        self.meta().get(cf, key)?.map(|v| R::decode(&v)).transpose()
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

/// How many times a transaction runs at most before its conflicts are reported.
const TRANSACTION_ATTEMPTS: u32 = 24;
/// How long a transaction keeps being run again before its conflicts are reported.
const TRANSACTION_DEADLINE: Duration = Duration::from_secs(3);
/// The pause after the first conflict; it doubles with each further one up to
/// [`MAX_BACKOFF`], with full jitter so that the transactions that collided spread out.
const FIRST_BACKOFF: Duration = Duration::from_micros(200);
const MAX_BACKOFF: Duration = Duration::from_millis(25);

impl Store {
    /// Runs `body` in a transaction and commits its writes with `durability`, running it
    /// again from the start when another transaction changed what it read (at most
    /// [`TRANSACTION_ATTEMPTS`] times within [`TRANSACTION_DEADLINE`], then `Conflict`). `body` may therefore run more than
    /// once: it must not have effects outside the transaction, except through values it
    /// returns, which the caller acts on once the commit is done.
    pub(crate) fn transact<T>(
        &self,
        durability: Durability,
        mut body: impl FnMut(&mut Tx<'_>) -> Result<T>,
    ) -> Result<T> {
        let started = std::time::Instant::now();
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=TRANSACTION_ATTEMPTS {
            let mut tx = Tx::new(self.meta().begin()?);
            let outcome = body(&mut tx).and_then(|value| tx.commit(durability).map(|()| value));
            match outcome {
                Err(Error::Conflict)
                    if attempt < TRANSACTION_ATTEMPTS
                        && started.elapsed() < TRANSACTION_DEADLINE =>
                {
                    self.shared.stats.transaction_retried();
                    let jitter = f64::from(rand::random::<u32>() % 1000) / 1000.0;
                    std::thread::sleep(backoff.mul_f64(jitter));
                    backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
                }
                Err(Error::Conflict) => {
                    self.shared.stats.transaction_gave_up();
                    return Err(Error::Conflict);
                }
                outcome => return outcome,
            }
        }
        Err(Error::Conflict)
    }
}

impl Store {
    /// Writes `batch` in a transaction that reads nothing: for writes that no concurrent
    /// change can invalidate (a new random key, the removal of one's own entry), and for
    /// tests that plant raw records.
    pub(crate) fn write_blind(&self, batch: Batch, durability: Durability) -> Result<()> {
        // Still retried: a store may refuse even a commit that read nothing (PostgreSQL's
        // serializable isolation counts the rows a DELETE looked for as read).
        self.transact(durability, |tx| {
            tx.write(batch.clone());
            Ok(())
        })
    }
}

#[cfg(test)]
impl Store {
    /// Plants a raw value, as a test that tampers with records does.
    pub(crate) fn put_raw(
        &self,
        cf: Cf,
        key: &[u8],
        value: &[u8],
        durability: Durability,
    ) -> Result<()> {
        let mut batch = Batch::new();
        batch.put(cf, key, value);
        self.write_blind(batch, durability)
    }
}

/// `key`'s record as `tx` sees it.
pub(crate) fn read<R: Record>(tx: &mut Tx<'_>, cf: Cf, key: &[u8]) -> Result<Option<R>> {
    tx.get(cf, key)?.map(|v| R::decode(&v)).transpose()
}

/// The record at `key`, read to be replaced or deleted by `tx` (see [`Tx::get_for_write`]).
pub(crate) fn read_for_write<R: Record>(tx: &mut Tx<'_>, cf: Cf, key: &[u8]) -> Result<Option<R>> {
    tx.get_for_write(cf, key)?
        .map(|v| R::decode(&v))
        .transpose()
}

/// Fails with `NoSuchBucket` unless `bucket` is still the live incarnation of its name: a
/// write into a deleted bucket would leave unreachable data behind. The transaction depends
/// on it, so a deletion of the bucket that commits first makes it fail.
pub(crate) fn check_bucket_live(
    tx: &mut Tx<'_>,
    tenant: TenantId,
    bucket: &BucketRecord,
) -> Result<()> {
    match read::<BucketRecord>(tx, Cf::Buckets, &keys::bucket(tenant, &bucket.name))? {
        Some(live) if live.id == bucket.id => Ok(()),
        _ => Err(Error::NoSuchBucket),
    }
}

/// The tenant's record, unless it is gone or being deleted: a request authenticated just
/// before a deletion must not create anything under it.
pub(crate) fn live_tenant(tx: &mut Tx<'_>, tenant: TenantId) -> Result<TenantRecord> {
    match read::<TenantRecord>(tx, Cf::Tenants, &keys::tenant(tenant))? {
        Some(record) if record.state != TenantState::Deleting => Ok(record),
        _ => Err(Error::NoSuchTenant),
    }
}

/// The unit tests' store: metadata in memory, one array named `array` and a root key file,
/// both under `dir`.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn test_store(dir: &std::path::Path, array: &str) -> Store {
    let arrays = vec![ArrayConfig {
        name: array.into(),
        path: dir.join(array),
        weight: 1,
        site: None,
    }];
    let keys = coffre_crypto::LocalFileKeyProvider::open_or_create(dir.join("root.key")).unwrap();
    Store::with_meta_store(
        StoreConfig::new(dir.join("meta"), arrays),
        Box::new(crate::MemoryMetaStore::new()),
        Arc::new(keys),
    )
    .unwrap()
}
