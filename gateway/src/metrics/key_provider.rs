//! The root key provider, timed: every call's latency by operation and provider kind (an
//! HSM round trip is the slow part of a cold KEK), failures counted, and wrapped KEKs that
//! do not open counted as integrity failures.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use coffre_crypto::{
    EncryptionError, Kek, KekVersion, KeyProvider, RootKeyVersion, TenantId, WrappedKek,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

use super::IntegrityLabels;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeyProviderLabels {
    pub op: &'static str,
    pub provider: &'static str,
}

/// What the provider's calls are recorded in (handles onto the registered families).
#[derive(Clone)]
pub(super) struct KeyProviderFamilies {
    pub duration: Family<KeyProviderLabels, Histogram>,
    pub errors: Family<KeyProviderLabels, Counter>,
    pub integrity_failures: Family<IntegrityLabels, Counter>,
}

/// A [`KeyProvider`] that records each call of the one it wraps.
pub struct InstrumentedKeyProvider {
    inner: Arc<dyn KeyProvider>,
    families: KeyProviderFamilies,
}

impl InstrumentedKeyProvider {
    pub(super) fn new(inner: Arc<dyn KeyProvider>, families: KeyProviderFamilies) -> Self {
        // The calls of every request's cold path are exported from the start, at 0.
        for op in ["wrap", "unwrap"] {
            let labels = KeyProviderLabels {
                op,
                provider: inner.kind(),
            };
            let _ = families.duration.get_or_create(&labels);
            families.errors.get_or_create(&labels).inc_by(0);
        }
        Self { inner, families }
    }

    fn timed<T>(
        &self,
        op: &'static str,
        call: impl FnOnce(&dyn KeyProvider) -> Result<T, EncryptionError>,
    ) -> Result<T, EncryptionError> {
        let started = Instant::now();
        let result = call(self.inner.as_ref());
        let labels = KeyProviderLabels {
            op,
            provider: self.inner.kind(),
        };
        self.families
            .duration
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            self.families.errors.get_or_create(&labels).inc();
            if e.is_integrity_failure() {
                self.families
                    .integrity_failures
                    .get_or_create(&IntegrityLabels { kind: WRAPPED_KEK })
                    .inc();
            }
        }
        result
    }
}

/// The integrity failure kind of a wrapped KEK that does not open under the root key.
pub(super) const WRAPPED_KEK: &str = "wrapped_kek";

impl fmt::Debug for InstrumentedKeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstrumentedKeyProvider")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl KeyProvider for InstrumentedKeyProvider {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn current_root_version(&self) -> RootKeyVersion {
        self.inner.current_root_version()
    }

    fn root_versions(&self) -> Vec<RootKeyVersion> {
        self.inner.root_versions()
    }

    fn wrap_kek(&self, tenant: TenantId, kek: &Kek) -> Result<WrappedKek, EncryptionError> {
        self.timed("wrap", |inner| inner.wrap_kek(tenant, kek))
    }

    fn unwrap_kek(&self, tenant: TenantId, wrapped: &WrappedKek) -> Result<Kek, EncryptionError> {
        self.timed("unwrap", |inner| inner.unwrap_kek(tenant, wrapped))
    }

    fn rotate_root(&self) -> Result<RootKeyVersion, EncryptionError> {
        self.timed("rotate", |inner| inner.rotate_root())
    }

    fn destroy_root(&self, version: RootKeyVersion) -> Result<(), EncryptionError> {
        self.timed("destroy", |inner| inner.destroy_root(version))
    }

    // The wrapped provider's own rewrap (it may do both steps inside the HSM).
    fn rewrap_kek(
        &self,
        tenant: TenantId,
        wrapped: &WrappedKek,
    ) -> Result<WrappedKek, EncryptionError> {
        self.timed("rewrap", |inner| inner.rewrap_kek(tenant, wrapped))
    }

    fn wrap_new_kek(&self, tenant: TenantId, kek: &Kek) -> Result<WrappedKek, EncryptionError> {
        self.timed("wrap", |inner| inner.wrap_new_kek(tenant, kek))
    }

    fn tenant_keys(&self, tenant: TenantId) -> Result<Vec<KekVersion>, EncryptionError> {
        self.timed("find_tenant_keys", |inner| inner.tenant_keys(tenant))
    }

    fn destroy_tenant_keys(
        &self,
        tenant: TenantId,
        below: Option<KekVersion>,
    ) -> Result<Vec<KekVersion>, EncryptionError> {
        self.timed("destroy_tenant_keys", |inner| {
            inner.destroy_tenant_keys(tenant, below)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use coffre_crypto::{KekVersion, LocalFileKeyProvider};

    use crate::config::MetricsConfig;
    use crate::metrics::Metrics;

    use super::*;

    #[test]
    fn calls_are_timed_by_operation_and_a_kek_that_does_not_open_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Metrics::new(&MetricsConfig::default());
        let inner = LocalFileKeyProvider::open_or_create(dir.path().join("root.key")).unwrap();
        let keys = metrics.instrument_key_provider(Arc::new(inner));
        assert_eq!(keys.kind(), "local-file");
        let (tenant, other) = (TenantId::random(), TenantId::random());
        let wrapped = keys
            .wrap_kek(tenant, &Kek::generate(KekVersion::FIRST).unwrap())
            .unwrap();
        keys.unwrap_kek(tenant, &wrapped).unwrap();
        assert!(
            keys.unwrap_kek(other, &wrapped).is_err(),
            "bound to its tenant"
        );

        let text = metrics.render();
        for line in [
            "coffre_key_provider_duration_seconds_count{op=\"wrap\",provider=\"local-file\"} 1",
            "coffre_key_provider_duration_seconds_count{op=\"unwrap\",provider=\"local-file\"} 2",
            "coffre_key_provider_errors_total{op=\"unwrap\",provider=\"local-file\"} 1",
            "coffre_key_provider_errors_total{op=\"wrap\",provider=\"local-file\"} 0",
            "coffre_integrity_failures_total{kind=\"wrapped_kek\"} 1",
            "coffre_integrity_failures_total{kind=\"data\"} 0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
