//! Prometheus metrics: request counts and latencies by operation and status, bytes, in-flight
//! requests, rejections by reason, per-tenant figures (tenant label only: the set of
//! tenants is bounded by the operator; `[metrics] tenant_labels` turns them off), per-bucket
//! figures for the buckets listed in `[metrics] bucket_labels`, audit trail health and build
//! info. Storage's figures ([`store_figures`]), the root key provider's latency
//! ([`key_provider`]) and the metadata store's ([`meta_store`]) come from layers around
//! those components. Rendered in the Prometheus text format on the admin listener's
//! `/metrics`.

mod key_provider;
mod meta_store;
mod store_figures;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};

use coffre_crypto::KeyProvider;
use coffre_storage::{MetaStore, Store};

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::audit::AuditStats;
use crate::config::MetricsConfig;
use crate::s3::S3ErrorCode;
use key_provider::KeyProviderFamilies;
pub use key_provider::{InstrumentedKeyProvider, KeyProviderLabels};
pub use meta_store::InstrumentedMetaStore;
use store_figures::StoreFigures;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub op: &'static str,
    pub code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    pub op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabels {
    pub tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ArrayLabels {
    pub array: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BucketLabels {
    pub tenant: String,
    pub bucket: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IntegrityLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<OpLabels, Histogram>,
    first_byte: Histogram,
    received: Family<OpLabels, Counter>,
    sent: Family<OpLabels, Counter>,
    in_flight: Gauge,
    rejected: Family<ReasonLabels, Counter>,
    /// Whether requests are counted per tenant.
    tenant_labels: bool,
    tenant_requests: Family<TenantLabels, Counter>,
    tenant_received: Family<TenantLabels, Counter>,
    tenant_sent: Family<TenantLabels, Counter>,
    /// Tenant id -> the names of its buckets counted on their own; set once the tenants
    /// named in the configuration are known.
    bucket_labels: OnceLock<HashMap<String, HashSet<String>>>,
    bucket_requests: Family<BucketLabels, Counter>,
    bucket_received: Family<BucketLabels, Counter>,
    bucket_sent: Family<BucketLabels, Counter>,
    audit_failures: Gauge<u64, AtomicU64>,
    audit_records: Gauge<u64, AtomicU64>,
    audit_refused: Gauge<u64, AtomicU64>,
    audit_summarized: Gauge<u64, AtomicU64>,
    kek_cache_hits: Gauge<u64, AtomicU64>,
    kek_cache_misses: Gauge<u64, AtomicU64>,
    kek_cache_entries: Gauge<u64, AtomicU64>,
    array_free: Family<ArrayLabels, Gauge<u64, AtomicU64>>,
    array_size: Family<ArrayLabels, Gauge<u64, AtomicU64>>,
    store: StoreFigures,
    key_provider_duration: Family<KeyProviderLabels, Histogram>,
    key_provider_errors: Family<KeyProviderLabels, Counter>,
    meta_duration: Family<OpLabels, Histogram>,
}

/// One finished S3 request, as the pipeline saw it.
pub struct RequestOutcome<'a> {
    pub op: &'static str,
    pub status: u16,
    pub error: Option<S3ErrorCode>,
    pub tenant: Option<&'a str>,
    pub bucket: Option<&'a str>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub seconds: f64,
}

impl Metrics {
    pub fn new(config: &MetricsConfig) -> Self {
        let mut registry = Registry::with_prefix("coffre");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "S3 requests by operation and HTTP status",
            requests.clone(),
        );
        let duration = Family::<OpLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "request_duration_seconds",
            "Time from request to response headers, by operation",
            duration.clone(),
        );
        let first_byte = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "get_first_byte_seconds",
            "GetObject time to the first byte of the response",
            first_byte.clone(),
        );
        let received = Family::<OpLabels, Counter>::default();
        registry.register("received_bytes", "Payload bytes received", received.clone());
        let sent = Family::<OpLabels, Counter>::default();
        registry.register("sent_bytes", "Payload bytes sent", sent.clone());
        let in_flight = Gauge::default();
        registry.register(
            "requests_in_flight",
            "S3 requests being served",
            in_flight.clone(),
        );
        let rejected = Family::<ReasonLabels, Counter>::default();
        // Every reason is exported from the start, at 0, so rules never see an absent series.
        for reason in REJECTION_REASONS {
            rejected.get_or_create(&ReasonLabels { reason }).inc_by(0);
        }
        registry.register(
            "rejected_requests",
            "Requests refused, by reason (auth, signature, time_skew, malformed, quota, \
             slow_down: over a requests-in-flight limit, timeout: a client too slow, \
             connections: a connection over a connection cap)",
            rejected.clone(),
        );
        let tenant_requests = Family::<TenantLabels, Counter>::default();
        registry.register(
            "tenant_requests",
            "S3 requests by tenant id",
            tenant_requests.clone(),
        );
        let tenant_received = Family::<TenantLabels, Counter>::default();
        registry.register(
            "tenant_received_bytes",
            "Payload bytes received by tenant id",
            tenant_received.clone(),
        );
        let tenant_sent = Family::<TenantLabels, Counter>::default();
        registry.register(
            "tenant_sent_bytes",
            "Payload bytes sent by tenant id",
            tenant_sent.clone(),
        );
        let bucket_requests = Family::<BucketLabels, Counter>::default();
        registry.register(
            "bucket_requests",
            "S3 requests by bucket, for the buckets listed in [metrics] bucket_labels",
            bucket_requests.clone(),
        );
        let bucket_received = Family::<BucketLabels, Counter>::default();
        registry.register(
            "bucket_received_bytes",
            "Payload bytes received by bucket, for the buckets listed in [metrics] bucket_labels",
            bucket_received.clone(),
        );
        let bucket_sent = Family::<BucketLabels, Counter>::default();
        registry.register(
            "bucket_sent_bytes",
            "Payload bytes sent by bucket, for the buckets listed in [metrics] bucket_labels",
            bucket_sent.clone(),
        );
        let audit_failures = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "audit_write_failures",
            "Audit records that could not be written (a non-zero value is an incident)",
            audit_failures.clone(),
        );
        let audit_records = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "audit_records_written",
            "Audit records durably written since start",
            audit_records.clone(),
        );
        let audit_refused = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "audit_refused_requests",
            "Requests refused (SlowDown) because the audit queue had no place for their record",
            audit_refused.clone(),
        );
        let audit_summarized = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "audit_summarized_requests",
            "Unauthenticated requests counted in summary records instead of recorded one by one",
            audit_summarized.clone(),
        );
        let kek_cache_hits = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "kek_cache_hits",
            "Tenant key lookups served from the in-memory KEK cache since start",
            kek_cache_hits.clone(),
        );
        let kek_cache_misses = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "kek_cache_misses",
            "Tenant key lookups that needed the root key provider since start",
            kek_cache_misses.clone(),
        );
        let kek_cache_entries = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "kek_cache_entries",
            "Unwrapped tenant keys held in memory",
            kek_cache_entries.clone(),
        );
        let array_free = Family::<ArrayLabels, Gauge<u64, AtomicU64>>::default();
        registry.register(
            "array_free_bytes",
            "Bytes available on each storage array's file system",
            array_free.clone(),
        );
        let array_size = Family::<ArrayLabels, Gauge<u64, AtomicU64>>::default();
        registry.register(
            "array_size_bytes",
            "Size of each storage array's file system",
            array_size.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build_info", "Coffre build information", build);
        let store = StoreFigures::register(&mut registry);
        let key_provider_duration = Family::<KeyProviderLabels, Histogram>::new_with_constructor(
            // 50 us (a key file) to 1.6 s (a remote HSM having a bad day).
            || Histogram::new(exponential_buckets(0.00005, 2.0, 16)),
        );
        registry.register(
            "key_provider_duration_seconds",
            "Root key provider calls (KEK wrap, unwrap, ...) by op and provider kind",
            key_provider_duration.clone(),
        );
        let key_provider_errors = Family::<KeyProviderLabels, Counter>::default();
        registry.register(
            "key_provider_errors",
            "Root key provider calls that failed, by op and provider kind",
            key_provider_errors.clone(),
        );
        let meta_duration = Family::<OpLabels, Histogram>::new_with_constructor(|| {
            // 2 us (a read from the memtable) to 1 s (a synced write on a struggling disk).
            Histogram::new(exponential_buckets(0.000002, 2.0, 20))
        });
        registry.register(
            "meta_operation_duration_seconds",
            "Metadata store calls by op (get, begin, tx_read, commit, scan, purge); a scan \
             is the time spent in the store over one cursor's life, a commit includes the \
             ones refused by a conflict",
            meta_duration.clone(),
        );
        Self {
            registry,
            requests,
            duration,
            first_byte,
            received,
            sent,
            in_flight,
            rejected,
            tenant_labels: config.tenant_labels,
            tenant_requests,
            tenant_received,
            tenant_sent,
            bucket_labels: OnceLock::new(),
            bucket_requests,
            bucket_received,
            bucket_sent,
            audit_failures,
            audit_records,
            audit_refused,
            audit_summarized,
            kek_cache_hits,
            kek_cache_misses,
            kek_cache_entries,
            array_free,
            array_size,
            store,
            key_provider_duration,
            key_provider_errors,
            meta_duration,
        }
    }

    /// Counts the requests and bytes of these buckets, `(tenant id, bucket name)`, under
    /// their own labels from now on. Only the first call has an effect.
    pub fn label_buckets(&self, buckets: impl IntoIterator<Item = (String, String)>) {
        let mut by_tenant: HashMap<String, HashSet<String>> = HashMap::new();
        for (tenant, bucket) in buckets {
            by_tenant.entry(tenant).or_default().insert(bucket);
        }
        let _ = self.bucket_labels.set(by_tenant);
    }

    /// `provider`, with each of its calls timed and its failures counted.
    pub fn instrument_key_provider(&self, provider: Arc<dyn KeyProvider>) -> Arc<dyn KeyProvider> {
        let families = KeyProviderFamilies {
            duration: self.key_provider_duration.clone(),
            errors: self.key_provider_errors.clone(),
            integrity_failures: self.store.integrity_failures.clone(),
        };
        Arc::new(InstrumentedKeyProvider::new(provider, families))
    }

    /// `meta`, with each of its calls timed.
    pub fn instrument_meta_store(&self, meta: Box<dyn MetaStore>) -> Box<dyn MetaStore> {
        Box::new(InstrumentedMetaStore::new(meta, &self.meta_duration))
    }

    /// Marks a request as started; the guard marks it finished when dropped.
    pub fn start_request(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    pub fn observe(&self, outcome: &RequestOutcome<'_>) {
        let op = OpLabels { op: outcome.op };
        self.requests
            .get_or_create(&RequestLabels {
                op: outcome.op,
                code: outcome.status,
            })
            .inc();
        self.duration.get_or_create(&op).observe(outcome.seconds);
        if outcome.op == "GetObject" && outcome.status < 300 {
            self.first_byte.observe(outcome.seconds);
        }
        self.received.get_or_create(&op).inc_by(outcome.bytes_in);
        self.sent.get_or_create(&op).inc_by(outcome.bytes_out);
        if let Some(reason) = outcome.error.and_then(rejection_reason) {
            self.rejected.get_or_create(&ReasonLabels { reason }).inc();
        }
        let Some(tenant) = outcome.tenant else { return };
        if self.tenant_labels {
            let labels = TenantLabels {
                tenant: tenant.to_owned(),
            };
            self.tenant_requests.get_or_create(&labels).inc();
            self.tenant_received
                .get_or_create(&labels)
                .inc_by(outcome.bytes_in);
            self.tenant_sent
                .get_or_create(&labels)
                .inc_by(outcome.bytes_out);
        }
        let listed = |bucket: &&str| {
            self.bucket_labels
                .get()
                .and_then(|labels| labels.get(tenant))
                .is_some_and(|buckets| buckets.contains(*bucket))
        };
        if let Some(bucket) = outcome.bucket.filter(listed) {
            let labels = BucketLabels {
                tenant: tenant.to_owned(),
                bucket: bucket.to_owned(),
            };
            self.bucket_requests.get_or_create(&labels).inc();
            self.bucket_received
                .get_or_create(&labels)
                .inc_by(outcome.bytes_in);
            self.bucket_sent
                .get_or_create(&labels)
                .inc_by(outcome.bytes_out);
        }
    }

    /// Counts a refusal that is not an S3 response: a connection closed over a connection
    /// cap (`connections`), a response cut because its reader was too slow (`timeout`).
    pub fn reject(&self, reason: &'static str) {
        self.rejected.get_or_create(&ReasonLabels { reason }).inc();
    }

    pub fn set_audit(&self, stats: &AuditStats) {
        self.audit_records.set(stats.written);
        self.audit_failures.set(stats.failures);
        self.audit_refused.set(stats.refused);
        self.audit_summarized.set(stats.summarized);
    }

    pub fn set_kek_cache(&self, hits: u64, misses: u64, entries: u64) {
        self.kek_cache_hits.set(hits);
        self.kek_cache_misses.set(misses);
        self.kek_cache_entries.set(entries);
    }

    /// Storage's counters, the garbage collector's backlog and the metadata store's figures.
    pub fn set_store(&self, store: &Store) {
        self.store.refresh(store);
    }

    pub fn set_array_space(&self, array: &str, free: u64, size: u64) {
        let labels = ArrayLabels {
            array: array.to_owned(),
        };
        self.array_free.get_or_create(&labels).set(free);
        self.array_size.get_or_create(&labels).set(size);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(&MetricsConfig::default())
    }
}

pub struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

const REJECTION_REASONS: [&str; 8] = [
    "auth",
    "signature",
    "time_skew",
    "malformed",
    "quota",
    "slow_down",
    "timeout",
    "connections",
];

/// Why a request was refused, for the `rejected_requests` reasons; `None` for outcomes
/// that are not refusals (NoSuchKey and the like).
pub fn rejection_reason(code: S3ErrorCode) -> Option<&'static str> {
    use S3ErrorCode as C;
    Some(match code {
        C::AccessDenied | C::InvalidAccessKeyId => "auth",
        C::SignatureDoesNotMatch | C::XAmzContentSHA256Mismatch => "signature",
        C::RequestTimeTooSkewed => "time_skew",
        C::QuotaExceeded => "quota",
        C::SlowDown => "slow_down",
        C::RequestTimeout => "timeout",
        C::AuthorizationHeaderMalformed
        | C::AuthorizationQueryParametersError
        | C::MalformedXML
        | C::InvalidArgument
        | C::InvalidRequest
        | C::InvalidDigest
        | C::BadDigest
        | C::IncompleteBody
        | C::MissingContentLength
        | C::MissingSecurityHeader => "malformed",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_operation_status_and_tenant() {
        let metrics = Metrics::default();
        for status in [200, 200, 404] {
            metrics.observe(&RequestOutcome {
                op: "GetObject",
                status,
                error: (status == 404).then_some(S3ErrorCode::NoSuchKey),
                tenant: Some("t1"),
                bucket: Some("b"),
                bytes_in: 0,
                bytes_out: 10,
                seconds: 0.002,
            });
        }
        metrics.observe(&RequestOutcome {
            op: "PutObject",
            status: 403,
            error: Some(S3ErrorCode::SignatureDoesNotMatch),
            tenant: None,
            bucket: Some("b"),
            bytes_in: 0,
            bytes_out: 0,
            seconds: 0.001,
        });
        let text = metrics.render();
        for line in [
            "coffre_requests_total{op=\"GetObject\",code=\"200\"} 2",
            "coffre_requests_total{op=\"GetObject\",code=\"404\"} 1",
            "coffre_rejected_requests_total{reason=\"signature\"} 1",
            "coffre_tenant_requests_total{tenant=\"t1\"} 3",
            "coffre_sent_bytes_total{op=\"GetObject\"} 30",
            "coffre_request_duration_seconds_count{op=\"GetObject\"} 3",
            "coffre_requests_in_flight 0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(
            text.contains("coffre_rejected_requests_total{reason=\"auth\"} 0"),
            "NoSuchKey is not a rejection"
        );
        assert!(!text.contains("bucket=\""), "no bucket is listed:\n{text}");
    }

    fn put<'a>(tenant: &'a str, bucket: &'a str, bytes_in: u64) -> RequestOutcome<'a> {
        RequestOutcome {
            op: "PutObject",
            status: 200,
            error: None,
            tenant: Some(tenant),
            bucket: Some(bucket),
            bytes_in,
            bytes_out: 0,
            seconds: 0.001,
        }
    }

    #[test]
    fn only_listed_buckets_of_their_own_tenant_get_series() {
        let metrics = Metrics::default();
        metrics.label_buckets([("t1".to_owned(), "listed".to_owned())]);
        for outcome in [
            put("t1", "listed", 5),
            put("t1", "listed", 7),
            put("t1", "other", 1),
            put("t2", "listed", 1),
        ] {
            metrics.observe(&outcome);
        }
        let text = metrics.render();
        for line in [
            "coffre_bucket_requests_total{tenant=\"t1\",bucket=\"listed\"} 2",
            "coffre_bucket_received_bytes_total{tenant=\"t1\",bucket=\"listed\"} 12",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(!text.contains("bucket=\"other\""), "{text}");
        assert!(!text.contains("tenant=\"t2\",bucket"), "{text}");
    }

    #[test]
    fn tenant_labels_can_be_turned_off() {
        let config = MetricsConfig {
            tenant_labels: false,
            bucket_labels: Vec::new(),
        };
        let metrics = Metrics::new(&config);
        metrics.observe(&put("t1", "b", 5));
        let text = metrics.render();
        assert!(text.contains("coffre_requests_total{op=\"PutObject\",code=\"200\"} 1"));
        assert!(!text.contains("tenant=\""), "{text}");
    }
}
