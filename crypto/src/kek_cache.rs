//! Unwrapped tenant KEKs kept in memory, so that a KEK unwrap (an HSM round trip) is not on
//! the per-request path.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::ids::TenantId;
use crate::key_hierarchy::{Kek, KekVersion, WrappedKek};
use crate::key_provider::KeyProvider;
use crate::EncryptionError;

struct Entry {
    kek: Arc<Kek>,
    loaded: Instant,
}

/// A bounded cache of unwrapped KEKs with a time to live. An evicted or expired KEK is
/// zeroized once the last request holding its `Arc` finishes.
pub struct KekCache {
    entries: Mutex<HashMap<(TenantId, KekVersion), Entry>>,
    capacity: usize,
    ttl: Duration,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Counters for metrics (`coffre_kek_cache_{hits,misses}_total`, entries as a gauge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KekCacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: usize,
}

impl KekCache {
    /// At most `capacity` KEKs (at least one), each kept at most `ttl` after its unwrap.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            ttl,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The KEK `wrapped` holds for `tenant`: from the cache, or unwrapped by `provider` and
    /// cached. Blocks on a miss (the provider may be an HSM). Concurrent misses for the
    /// same KEK may both unwrap; the cache keeps one.
    pub fn get_or_unwrap(
        &self,
        tenant: TenantId,
        wrapped: &WrappedKek,
        provider: &dyn KeyProvider,
    ) -> Result<Arc<Kek>, EncryptionError> {
        if let Some(kek) = self.get(tenant, wrapped.kek_version) {
            return Ok(kek);
        }
        let kek = Arc::new(provider.unwrap_kek(tenant, wrapped)?);
        self.insert(tenant, kek.clone());
        Ok(kek)
    }

    /// A cached, unexpired KEK; counts a hit or a miss.
    pub fn get(&self, tenant: TenantId, version: KekVersion) -> Option<Arc<Kek>> {
        let mut entries = self.lock();
        let found = match entries.get(&(tenant, version)) {
            Some(entry) if entry.loaded.elapsed() < self.ttl => Some(entry.kek.clone()),
            Some(_) => {
                entries.remove(&(tenant, version));
                None
            }
            None => None,
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Caches `kek` (a freshly generated one, for instance), evicting expired entries and
    /// then the oldest if the cache is full.
    pub fn insert(&self, tenant: TenantId, kek: Arc<Kek>) {
        let mut entries = self.lock();
        let key = (tenant, kek.version());
        if !entries.contains_key(&key) && entries.len() >= self.capacity {
            entries.retain(|_, e| e.loaded.elapsed() < self.ttl);
            if entries.len() >= self.capacity {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, e)| e.loaded)
                    .map(|(k, _)| *k);
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(
            key,
            Entry {
                kek,
                loaded: Instant::now(),
            },
        );
    }

    /// Forgets every KEK of `tenant`: on tenant deletion (crypto-shredding) and after its
    /// KEK versions change.
    pub fn evict_tenant(&self, tenant: TenantId) {
        self.lock().retain(|(t, _), _| *t != tenant);
    }

    /// Forgets one KEK version of `tenant`: after that version was destroyed (the end of
    /// a KEK rotation), so that it does not outlive its destruction in memory.
    pub fn evict(&self, tenant: TenantId, version: KekVersion) {
        self.lock().remove(&(tenant, version));
    }

    /// Forgets everything (shutdown).
    pub fn clear(&self) {
        self.lock().clear();
    }

    pub fn stats(&self) -> KekCacheStats {
        KekCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.lock().len(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(TenantId, KekVersion), Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for KekCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KekCache")
            .field("capacity", &self.capacity)
            .field("ttl", &self.ttl)
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key_provider::LocalFileKeyProvider;

    fn provider() -> (tempfile::TempDir, LocalFileKeyProvider) {
        let dir = tempfile::tempdir().unwrap();
        let provider = LocalFileKeyProvider::open_or_create(dir.path().join("root.key")).unwrap();
        (dir, provider)
    }

    #[test]
    fn second_lookup_is_a_hit() {
        let (_dir, provider) = provider();
        let tenant = TenantId::random();
        let wrapped = provider
            .wrap_kek(tenant, &Kek::generate(KekVersion::FIRST).unwrap())
            .unwrap();
        let cache = KekCache::new(4, Duration::from_secs(60));
        let first = cache.get_or_unwrap(tenant, &wrapped, &provider).unwrap();
        let second = cache.get_or_unwrap(tenant, &wrapped, &provider).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(
            cache.stats(),
            KekCacheStats {
                hits: 1,
                misses: 1,
                entries: 1
            }
        );
    }

    #[test]
    fn bounded_and_expiring() {
        let cache = KekCache::new(2, Duration::from_secs(60));
        let tenants: Vec<_> = (0..3).map(|_| TenantId::random()).collect();
        for t in &tenants {
            cache.insert(*t, Arc::new(Kek::generate(KekVersion::FIRST).unwrap()));
        }
        assert_eq!(cache.stats().entries, 2);
        assert!(
            cache.get(tenants[0], KekVersion::FIRST).is_none(),
            "oldest evicted"
        );
        assert!(cache.get(tenants[2], KekVersion::FIRST).is_some());

        let cache = KekCache::new(2, Duration::ZERO);
        cache.insert(
            tenants[0],
            Arc::new(Kek::generate(KekVersion::FIRST).unwrap()),
        );
        assert!(
            cache.get(tenants[0], KekVersion::FIRST).is_none(),
            "expired"
        );
        assert_eq!(cache.stats().entries, 0);
    }

    #[test]
    fn evicting_a_tenant_forgets_all_its_versions() {
        let cache = KekCache::new(8, Duration::from_secs(60));
        let (a, b) = (TenantId::random(), TenantId::random());
        for version in [KekVersion::FIRST, KekVersion::new(2)] {
            cache.insert(a, Arc::new(Kek::generate(version).unwrap()));
        }
        cache.insert(b, Arc::new(Kek::generate(KekVersion::FIRST).unwrap()));
        cache.evict_tenant(a);
        assert_eq!(cache.stats().entries, 1);
        assert!(cache.get(b, KekVersion::FIRST).is_some());
    }

    #[test]
    fn evicting_a_version_keeps_the_others() {
        let cache = KekCache::new(8, Duration::from_secs(60));
        let (a, b) = (TenantId::random(), TenantId::random());
        for version in [KekVersion::FIRST, KekVersion::new(2)] {
            cache.insert(a, Arc::new(Kek::generate(version).unwrap()));
            cache.insert(b, Arc::new(Kek::generate(version).unwrap()));
        }
        cache.evict(a, KekVersion::FIRST);
        assert!(cache.get(a, KekVersion::FIRST).is_none());
        assert!(cache.get(a, KekVersion::new(2)).is_some());
        assert!(cache.get(b, KekVersion::FIRST).is_some());
        assert_eq!(cache.stats().entries, 3);
    }
}
