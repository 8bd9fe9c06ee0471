//! `[metrics]`: which labels the per-tenant and per-bucket series of `/metrics` carry. The
//! label sets stay bounded by what the operator writes here: tenant series come from the
//! tenants they create, bucket series only for the buckets listed.

use serde::Deserialize;

use super::{invalid, ConfigError};
use crate::admin::schema::valid_tenant_name;
use crate::s3::handlers::buckets::validate_bucket_name;

/// At most this many buckets get series of their own.
pub const MAX_BUCKET_LABELS: usize = 100;

/// The `[metrics]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// Per-tenant series (`coffre_tenant_*`, label `tenant`); default true.
    pub tenant_labels: Option<bool>,
    /// `"<tenant name>/<bucket>"`: buckets that get per-bucket series.
    #[serde(default)]
    pub bucket_labels: Vec<String>,
}

/// The validated `[metrics]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    pub tenant_labels: bool,
    pub bucket_labels: Vec<BucketLabel>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            tenant_labels: true,
            bucket_labels: Vec::new(),
        }
    }
}

/// A bucket that gets series of its own: bucket names are per tenant, so the tenant is part
/// of it. The name is resolved to the tenant's id when the server starts; the series carry
/// the id, as the `tenant` label does everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BucketLabel {
    pub tenant_name: String,
    pub bucket: String,
}

impl MetricsConfig {
    pub(super) fn resolve(raw: Option<RawMetrics>) -> Result<Self, ConfigError> {
        const FIELD: &str = "metrics";
        let raw = raw.unwrap_or_default();
        if raw.bucket_labels.len() > MAX_BUCKET_LABELS {
            return Err(invalid(
                FIELD,
                format!(
                    "bucket_labels lists {} buckets; at most {MAX_BUCKET_LABELS} get series of \
                     their own",
                    raw.bucket_labels.len()
                ),
            ));
        }
        let mut bucket_labels: Vec<BucketLabel> = Vec::new();
        for entry in &raw.bucket_labels {
            let bad = |why: &str| {
                invalid(
                    FIELD,
                    format!(
                        "bucket_labels entry '{entry}': {why} (expected \"<tenant name>/<bucket>\")"
                    ),
                )
            };
            let (tenant, bucket) = entry.split_once('/').ok_or_else(|| bad("no '/'"))?;
            if !valid_tenant_name(tenant) {
                return Err(bad("not a tenant name"));
            }
            if validate_bucket_name(bucket).is_err() {
                return Err(bad("not a bucket name"));
            }
            let label = BucketLabel {
                tenant_name: tenant.to_owned(),
                bucket: bucket.to_owned(),
            };
            if bucket_labels.contains(&label) {
                return Err(bad("listed twice"));
            }
            bucket_labels.push(label);
        }
        Ok(Self {
            tenant_labels: raw.tenant_labels.unwrap_or(true),
            bucket_labels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(tenant_labels: Option<bool>, buckets: &[&str]) -> Result<MetricsConfig, String> {
        MetricsConfig::resolve(Some(RawMetrics {
            tenant_labels,
            bucket_labels: buckets.iter().map(|b| b.to_string()).collect(),
        }))
        .map_err(|e| e.to_string())
    }

    #[test]
    fn tenant_labels_are_on_and_no_bucket_is_labelled_by_default() {
        assert_eq!(
            MetricsConfig::resolve(None).ok(),
            Some(MetricsConfig::default())
        );
        assert_eq!(
            resolve(Some(false), &[]).map(|c| c.tenant_labels),
            Ok(false)
        );
    }

    #[test]
    fn listed_buckets_are_a_tenant_name_and_a_bucket_name() {
        let labels = resolve(None, &["acme/backup", "acme-2/logs.2024"])
            .map(|c| c.bucket_labels)
            .unwrap_or_default();
        assert_eq!(
            labels,
            [("acme", "backup"), ("acme-2", "logs.2024")].map(|(t, b)| BucketLabel {
                tenant_name: t.into(),
                bucket: b.into(),
            })
        );
    }

    #[test]
    fn bad_bucket_entries_are_refused() {
        let too_many: Vec<String> = (0..=MAX_BUCKET_LABELS)
            .map(|i| format!("acme/bucket-{i}"))
            .collect();
        let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
        for entries in [
            vec!["backup"],
            vec!["Acme/backup"],
            vec!["acme/Bad_Name"],
            vec!["acme/backup/more"],
            vec!["acme/backup", "acme/backup"],
            too_many,
        ] {
            let result = resolve(None, &entries);
            assert!(
                matches!(&result, Err(e) if e.starts_with("metrics:")),
                "{entries:?}: {result:?}"
            );
        }
    }
}
