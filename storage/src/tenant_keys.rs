//! Tenant key-encryption keys and the DEKs they wrap.
//!
//! A tenant's KEK versions are created with it and by its rotations (`key_rotation`),
//! wrapped by the root key provider and kept in its record. With the `pkcs11` provider's
//! `tenant_keys_in_hsm`, each new version is wrapped under a tenant key of its own in the
//! token instead, and destroying the tenant (or retiring the version) destroys that token
//! object too: every copy of the wrapped KEK, in the store's files or in backups, is then
//! useless even with the root key. Unwrapped KEKs live in a
//! bounded [`KekCache`], so the provider (an HSM round trip) is not on the per-request path
//! once a KEK is cached. Deleting a tenant destroys its wrapped KEKs first
//! (crypto-shredding), then makes RocksDB drop every stale copy of them; the end of a KEK
//! rotation does the same for the versions it retires.
//!
//! A DEK is bound to (tenant, bucket id, object key, object id, version 0): Coffre keeps one
//! version per key, and the object id already names it. A multipart upload's DEK is
//! wrapped for the upload id, which becomes the object id, so completion reuses it as is.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use coffre_crypto::{
    BucketId, Dek, DekContext, Kek, KekCache, KekCacheStats, KekVersion, KeyProvider, ObjectId,
    TenantId, WrappedDek, WrappedKek,
};

use crate::cluster::advance_key_epoch;
use crate::error::{Error, Result};
use crate::keys;
use crate::meta_store::{Cf, Durability, Tx};
use crate::records::{Record, TenantRecord, TenantState};
use crate::sealed_records::{StoredObject, StoredUpload};
use crate::store::{live_tenant, Store};

/// The root key provider and the cache of unwrapped KEKs.
pub(crate) struct TenantKeys {
    provider: Arc<dyn KeyProvider>,
    cache: KekCache,
    /// Shared while a KEK is read from its record and cached, exclusive while KEKs are
    /// destroyed: a KEK read before its destruction is never cached after it.
    shredding: RwLock<()>,
    /// Held through a root rotation: one at a time.
    root_rotation: Mutex<()>,
    /// Tells the key rotation schedule when a tenant's KEK nears its limit of DEK wraps.
    pub(crate) wraps: WrapWatch,
}

impl TenantKeys {
    pub fn new(provider: Arc<dyn KeyProvider>, capacity: usize, ttl: Duration) -> Self {
        Self {
            provider,
            cache: KekCache::new(capacity, ttl),
            shredding: RwLock::new(()),
            root_rotation: Mutex::new(()),
            wraps: WrapWatch::default(),
        }
    }

    /// KEK version 1 of a new tenant, and its wrapped form for the record.
    pub fn generate(&self, tenant: TenantId) -> Result<(Arc<Kek>, WrappedKek)> {
        self.generate_version(tenant, KekVersion::FIRST)
    }

    /// A fresh KEK `version` of `tenant`, wrapped under the current root key or under a
    /// new tenant key in the HSM (`tenant_keys_in_hsm`).
    pub fn generate_version(
        &self,
        tenant: TenantId,
        version: KekVersion,
    ) -> Result<(Arc<Kek>, WrappedKek)> {
        let kek = Kek::generate(version)?;
        let wrapped = self.provider.wrap_new_kek(tenant, &kek)?;
        Ok((Arc::new(kek), wrapped))
    }

    /// Undoes [`TenantKeys::generate`] for a tenant whose record could not be written:
    /// destroys the tenant key it may have made in the HSM (best effort: the tenant never
    /// existed, and its id is never used again).
    pub fn discard_new_tenant(&self, tenant: TenantId) {
        if let Err(e) = self.provider.destroy_tenant_keys(tenant, None) {
            tracing::warn!(tenant = %tenant, error = %e,
                "the tenant key of a tenant never created could not be destroyed in the HSM");
        }
    }

    /// Caches a KEK just created.
    pub fn remember(&self, tenant: TenantId, kek: Arc<Kek>) {
        self.cache.insert(tenant, kek);
    }

    /// Forgets every cached KEK (keys were destroyed somewhere in the cluster).
    pub fn forget_all(&self) {
        self.cache.clear();
    }

    pub fn provider(&self) -> &dyn KeyProvider {
        self.provider.as_ref()
    }

    // A poisoned lock guards no data.
    fn reading(&self) -> RwLockReadGuard<'_, ()> {
        self.shredding.read().unwrap_or_else(|p| p.into_inner())
    }

    fn shredding(&self) -> RwLockWriteGuard<'_, ()> {
        self.shredding.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn root_rotation(&self) -> MutexGuard<'_, ()> {
        self.root_rotation.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl std::fmt::Debug for TenantKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantKeys")
            .field("provider", &self.provider.kind())
            .field("cache", &self.cache)
            .finish()
    }
}

/// Counts one more DEK wrapped under `version` of `tenant`, in the transaction that commits
/// it: the wrap uses a random 96-bit nonce, safe for about 2^32 wraps under one key, and the
/// count lets a rotation come well before (see `Store::rotate_worn_keks`). The stored
/// counter is the truth; `watch` also counts the wrap in memory, so that the key rotation
/// schedule is woken as soon as the tenant may have reached its limit.
pub(crate) fn count_dek_wrap(
    tx: &mut Tx<'_>,
    watch: &WrapWatch,
    tenant: TenantId,
    version: KekVersion,
) {
    tx.add(Cf::Usage, keys::kek_wraps(tenant, version.get()), &[1]);
    watch.counted(tenant, version);
}

/// The schedule's trigger: how many more DEK wraps each tenant's current KEK version may
/// make before it is due for rotation, as the last check of the stored counters
/// (`Store::rotate_worn_keks`) found it, counted down in memory by this node's wraps. The
/// hook is called when a tenant's headroom reaches zero, once until the next check: it
/// only asks for a check of the stored counters, which decides. The count is a hint that
/// errs early, never late (a transaction run again counts its wrap again; a wrap counted
/// while a check runs is taken off what the check found, whether or not it saw it); wraps
/// made by other nodes sharing the store are not seen here, only by the checks.
///
/// A wrap is counted here inside its transaction, before it commits: the check the hook
/// asks for may read the stored count just before the commit that wears the version. So a
/// check that finds a tenant not yet due after the hook fired for it leaves the check
/// *pending* for `SETTLE` (the time a transaction may take, retries included): the schedule
/// checks again shortly until the count is seen or the time has passed.
#[derive(Default)]
pub(crate) struct WrapWatch {
    state: Mutex<WatchState>,
}

#[derive(Default)]
struct WatchState {
    hook: Option<Arc<dyn Fn() + Send + Sync>>,
    /// Headroom of a KEK version no check has seen (a new tenant's or a new version's).
    limit: u64,
    /// Per tenant: its current KEK version as last seen, and the wraps it may still make.
    headroom: HashMap<TenantId, (KekVersion, u64)>,
    /// Per tenant: the wraps counted here since the hook was installed.
    counted: HashMap<TenantId, u64>,
    /// Tenants already warned that they hold more live DEKs than the limit.
    warned: HashSet<TenantId>,
    /// Tenants the hook fired for, and when, until a check finds them due or `SETTLE`
    /// has passed.
    fired: HashMap<TenantId, Instant>,
}

/// How long after the hook fired for a tenant a check that does not find it due is
/// repeated: longer than a transaction takes, retries included (3 s).
const SETTLE: Duration = Duration::from_secs(5);

/// What [`WrapWatch::mark`] saw: when, and the wraps counted so far, per tenant.
pub(crate) struct WrapMark {
    at: Instant,
    counted: HashMap<TenantId, u64>,
}

impl WrapWatch {
    /// Calls `hook` whenever a tenant's KEK version reaches the wraps the last check left
    /// it, or `limit` for a version no check has seen.
    pub fn install(&self, limit: u64, hook: Arc<dyn Fn() + Send + Sync>) {
        let mut state = self.lock();
        state.limit = limit;
        state.hook = Some(hook);
    }

    /// Taken before a check reads the stored counters.
    pub fn mark(&self) -> WrapMark {
        let counted = self.lock().counted.clone();
        WrapMark {
            at: Instant::now(),
            counted,
        }
    }

    /// What a check of the stored counters, begun at `mark`, found: each tenant's current
    /// version, the wraps it may make before its next rotation is due (zero: no trigger
    /// until the next check) and whether it is not yet due (false for a tenant the check
    /// rotated, or left alone during a rewrap). The wraps counted here since `mark` are
    /// taken off; if that leaves a tenant none, the hook is called, unless they made it
    /// fire already. Tenants not listed get the whole limit.
    pub fn reset(
        &self,
        mark: &WrapMark,
        headroom: impl IntoIterator<Item = (TenantId, KekVersion, u64, bool)>,
    ) {
        let hook = {
            let mut state = self.lock();
            let mut crossed = false;
            let mut fresh = HashMap::new();
            let mut fired = std::mem::take(&mut state.fired);
            for (tenant, version, found, not_yet_due) in headroom {
                let now = state.counted.get(&tenant).copied().unwrap_or(0);
                let before = mark.counted.get(&tenant).copied().unwrap_or(0);
                let left = found.saturating_sub(now.saturating_sub(before));
                fresh.insert(tenant, (version, left));
                if !not_yet_due {
                    fired.remove(&tenant);
                } else if found > 0
                    && left == 0
                    // Unless those wraps made the hook fire already.
                    && fired.get(&tenant).is_none_or(|at| *at < mark.at)
                {
                    fired.insert(tenant, Instant::now());
                    crossed = true;
                }
            }
            fired.retain(|tenant, at| fresh.contains_key(tenant) && at.elapsed() < SETTLE);
            state.fired = fired;
            state.headroom = fresh;
            match &state.hook {
                Some(hook) if crossed => Arc::clone(hook),
                _ => return,
            }
        };
        hook();
    }

    /// Whether the last check may have missed a wrap that the hook fired for (see the
    /// type's documentation): the schedule should check again shortly.
    pub fn pending(&self) -> bool {
        self.lock().fired.values().any(|at| at.elapsed() < SETTLE)
    }

    /// Whether `tenant` is to be warned now (true once per tenant and process).
    pub fn warn_once(&self, tenant: TenantId) -> bool {
        self.lock().warned.insert(tenant)
    }

    pub(crate) fn counted(&self, tenant: TenantId, version: KekVersion) {
        let hook = {
            let mut state = self.lock();
            let Some(hook) = state.hook.clone() else {
                return;
            };
            *state.counted.entry(tenant).or_insert(0) += 1;
            let limit = state.limit;
            let entry = state.headroom.entry(tenant).or_insert((version, limit));
            if entry.0 < version {
                *entry = (version, limit);
            } else if entry.0 > version {
                // A wrap under a version older than the one seen: not the current one.
                return;
            }
            match entry.1 {
                0 => return,
                left => entry.1 = left - 1,
            }
            if entry.1 > 0 {
                return;
            }
            state.fired.insert(tenant, Instant::now());
            hook
        };
        hook();
    }

    // A poisoned lock guards only hints.
    fn lock(&self) -> MutexGuard<'_, WatchState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a DEK is bound to.
pub(crate) fn dek_context(
    tenant: TenantId,
    bucket: BucketId,
    key: &str,
    object: ObjectId,
) -> DekContext<'_> {
    DekContext {
        tenant,
        bucket,
        key,
        object,
        version: 0,
    }
}

impl Store {
    /// Hits and misses of the KEK cache, for metrics.
    pub fn kek_cache_stats(&self) -> KekCacheStats {
        self.shared.keys.cache.stats()
    }

    /// A KEK version of `tenant`: from the cache, or unwrapped by the key provider and
    /// cached. `NoSuchTenant` once the tenant is deleted (its KEKs are gone).
    pub(crate) fn kek(&self, tenant: TenantId, version: KekVersion) -> Result<Arc<Kek>> {
        self.kept_kek(tenant, version)?.ok_or_else(|| {
            Error::Corrupt(format!(
                "tenant {tenant} no longer has KEK {version}: a rotation retired it"
            ))
        })
    }

    /// Like [`Store::kek`], but `None` when a KEK rotation retired `version` (the tenant
    /// has a newer current version): whatever it wrapped was rewrapped before.
    fn kept_kek(&self, tenant: TenantId, version: KekVersion) -> Result<Option<Arc<Kek>>> {
        let held = &self.shared.keys;
        if let Some(kek) = held.cache.get(tenant, version) {
            return Ok(Some(kek));
        }
        let _reading = held.reading();
        let record = self
            .get_record::<TenantRecord>(Cf::Tenants, &keys::tenant(tenant))?
            .ok_or(Error::NoSuchTenant)?;
        let Some(wrapped) = record.keks.iter().find(|k| k.kek_version == version) else {
            return match record.state {
                TenantState::Deleting => Err(Error::NoSuchTenant),
                _ if version < record.kek_version => Ok(None),
                _ => Err(Error::Corrupt(format!(
                    "tenant {tenant} has no KEK {version}"
                ))),
            };
        };
        let kek = Arc::new(held.provider.unwrap_kek(tenant, wrapped)?);
        held.cache.insert(tenant, kek.clone());
        Ok(Some(kek))
    }

    /// Wraps a new object's (or upload's) DEK under the KEK version current in `tx`, which
    /// depends on it: a rotation or retirement committing first makes the transaction run
    /// again, so no DEK is ever committed under a version already retired. Fails if the
    /// tenant is gone or being deleted. The wrap is counted against that version.
    pub(crate) fn wrap_dek_in(
        &self,
        tx: &mut Tx<'_>,
        context: (TenantId, BucketId, &str, ObjectId),
        dek: &Dek,
    ) -> Result<WrappedDek> {
        let (tenant, bucket, key, object) = context;
        let record = live_tenant(tx, tenant)?;
        let kek = self.kek(tenant, record.kek_version)?;
        let wrapped = kek.wrap_dek(dek, &dek_context(tenant, bucket, key, object))?;
        count_dek_wrap(tx, &self.shared.keys.wraps, tenant, wrapped.kek_version);
        Ok(wrapped)
    }

    /// Opens the DEK of `key` (object `object` in `bucket`): an integrity error if the
    /// record was tampered with or belongs to another tenant, bucket, key or object.
    ///
    /// A caller may hold a copy of a record read just before a KEK rotation rewrapped it
    /// and retired the KEK version it names: the DEK is then opened from the record as it
    /// now is, provided it is still the same object (or upload).
    pub(crate) fn unwrap_dek(
        &self,
        tenant: TenantId,
        bucket: BucketId,
        key: &str,
        object: ObjectId,
        wrapped: &WrappedDek,
    ) -> Result<Dek> {
        let context = dek_context(tenant, bucket, key, object);
        match self.kept_kek(tenant, wrapped.kek_version)? {
            Some(kek) => kek
                .unwrap_dek(wrapped, &context)
                .map_err(|e| Error::integrity(key, e)),
            None => {
                let current = self.current_wrapped_dek(tenant, bucket, key, object)?;
                match current {
                    Some(current) if current.kek_version != wrapped.kek_version => self
                        .kek(tenant, current.kek_version)?
                        .unwrap_dek(&current, &context)
                        .map_err(|e| Error::integrity(key, e)),
                    _ => Err(Error::Integrity {
                        object: key.to_owned(),
                        reason: format!(
                            "its DEK names KEK {}, which a rotation retired",
                            wrapped.kek_version
                        ),
                    }),
                }
            }
        }
    }

    /// The wrapped DEK stored now for object `object` under `key`, or for the upload of
    /// that id.
    fn current_wrapped_dek(
        &self,
        tenant: TenantId,
        bucket: BucketId,
        key: &str,
        object: ObjectId,
    ) -> Result<Option<WrappedDek>> {
        let stored: Option<StoredObject> =
            self.get_record(Cf::Objects, &keys::object(tenant, bucket, key.as_bytes()))?;
        if let Some(stored) = stored.filter(|s| s.id == object) {
            return Ok(Some(stored.dek));
        }
        let upload: Option<StoredUpload> =
            self.get_record(Cf::Uploads, &keys::upload_by_id(tenant, bucket, object))?;
        Ok(upload.filter(|u| u.key == key).map(|u| u.dek))
    }

    /// Crypto-shredding, step one: in one transaction, `prepare` makes its other writes and
    /// returns the tenant's record, which is written without its wrapped KEKs; then the
    /// tenant's cached KEKs are forgotten. From then on nothing of the tenant can be
    /// decrypted through this store.
    pub(crate) fn shred_tenant_keys(
        &self,
        mut prepare: impl FnMut(&mut Tx<'_>) -> Result<TenantRecord>,
    ) -> Result<()> {
        let held = &self.shared.keys;
        let (id, destroyed) = self.transact(Durability::Synced, |tx| {
            let mut tenant = prepare(tx)?;
            let destroyed = tenant.keks.len();
            tenant.keks.clear();
            tx.put(Cf::Tenants, keys::tenant(tenant.id), tenant.encode()?);
            advance_key_epoch(tx)?;
            Ok((tenant.id, destroyed))
        })?;
        // After the commit, under the exclusive lock: a reader that read the record before
        // the commit holds the shared lock until it has cached what it read, so it is done
        // when this evicts; one that reads after the commit finds no KEK. (Not held across
        // the transaction: its body may need KEKs itself, which take the shared lock.)
        {
            let _shredding = held.shredding();
            held.cache.evict_tenant(id);
        }
        tracing::info!(tenant = %id, destroyed, "tenant key-encryption keys destroyed");
        Ok(())
    }

    /// The end of a KEK rotation: in one transaction, `prepare` makes its other writes and
    /// returns the tenant's record without the versions it retires, and which those are
    /// (`None`: nothing to do); the record is written, and the retired versions' cached
    /// KEKs are forgotten. Like [`Store::shred_tenant_keys`], followed by
    /// [`Store::purge_shredded_keys`].
    pub(crate) fn destroy_retired_keks(
        &self,
        mut prepare: impl FnMut(&mut Tx<'_>) -> Result<Option<(TenantRecord, Vec<KekVersion>)>>,
    ) -> Result<Option<(TenantRecord, Vec<KekVersion>)>> {
        let held = &self.shared.keys;
        let outcome = self.transact(Durability::Synced, |tx| {
            let outcome = prepare(tx)?;
            if let Some((tenant, _)) = &outcome {
                tx.put(Cf::Tenants, keys::tenant(tenant.id), tenant.encode()?);
                advance_key_epoch(tx)?;
            }
            Ok(outcome)
        })?;
        let Some((tenant, retired)) = &outcome else {
            return Ok(outcome);
        };
        {
            // As in `shred_tenant_keys`: after the commit, under the exclusive lock.
            let _shredding = held.shredding();
            for version in retired {
                held.cache.evict(tenant.id, *version);
            }
        }
        tracing::info!(
            tenant = %tenant.id,
            retired = ?retired.iter().map(|v| v.get()).collect::<Vec<_>>(),
            current = %tenant.kek_version,
            "retired key-encryption key versions destroyed"
        );
        Ok(outcome)
    }

    /// Crypto-shredding in the HSM: destroys the tenant keys of `tenant` for the KEK
    /// versions below `below` (all of them when `None`). Nothing to do unless the provider
    /// holds tenant keys; what is already gone is not an error, so a deletion or retirement
    /// that a crash or an HSM outage interrupted is finished by running it again.
    pub(crate) fn destroy_hsm_tenant_keys(
        &self,
        tenant: TenantId,
        below: Option<KekVersion>,
    ) -> Result<()> {
        let provider = self.shared.keys.provider();
        let destroyed = provider.destroy_tenant_keys(tenant, below)?;
        if !destroyed.is_empty() {
            tracing::info!(
                tenant = %tenant,
                provider = provider.kind(),
                destroyed = ?destroyed.iter().map(|v| v.get()).collect::<Vec<_>>(),
                "tenant keys destroyed in the HSM"
            );
        }
        Ok(())
    }

    /// Crypto-shredding, step two: makes RocksDB drop the stale copies of destroyed
    /// KEKs (memtables and write-ahead logs flushed, the tenants' files rewritten), so that
    /// not even the metadata files hold them. Wrapped KEKs live only in tenant records.
    pub(crate) fn purge_shredded_keys(&self) -> Result<()> {
        self.meta().purge_stale(&[Cf::Tenants])
    }
}
