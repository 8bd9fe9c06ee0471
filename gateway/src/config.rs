//! Configuration, read in two steps: a raw serde view of the TOML file (unknown keys are an
//! error), merged with environment variables and flags, then validated once into [`Config`]
//! whose fields are typed values. Nothing downstream re-parses a string.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use coffre_storage::ArrayConfig;

use crate::audit::AuditConfig;
use serde::Deserialize;

use crate::admin::token::TokenSource;
use crate::tls::TlsFiles;

mod metrics;
pub use metrics::{BucketLabel, MetricsConfig, RawMetrics, MAX_BUCKET_LABELS};

mod key_rotation;
pub use key_rotation::{KeyRotationConfig, RawKeyRotation};

mod key_provider;
use key_provider::resolve_key_provider;
pub use key_provider::{KeyProviderConfig, RawKeyProvider};

mod arrays;
use arrays::resolve_arrays;
pub use arrays::RawArray;

mod audit;
use audit::resolve_audit;

mod tls;
use tls::{non_empty, tls_files};

mod bootstrap;
pub use bootstrap::{BootstrapConfig, RawBootstrap};

mod limits;
pub use limits::{LimitsConfig, RawLimits};

mod metadata;
pub use metadata::{MetadataConfig, RawMetadata};

/// The file as written by an operator.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub data_dir: Option<PathBuf>,
    pub s3_listen: Option<String>,
    pub admin_listen: Option<String>,
    /// Base domain for virtual-host style requests (`bucket.<domain>`).
    pub domain: Option<String>,
    pub region: Option<String>,
    /// Objects up to this many bytes are stored inside their metadata record.
    pub inline_max_bytes: Option<u64>,
    /// Seconds between garbage-collection passes.
    pub gc_interval_secs: Option<u64>,
    pub log_level: Option<String>,
    pub log_format: Option<String>,
    /// The admin bearer token's file; when unset, `<data_dir>/admin-token` is generated.
    pub admin_token_file: Option<PathBuf>,
    /// Where the audit trail is written (default `<data_dir>/audit`).
    pub audit_dir: Option<PathBuf>,
    /// `refuse` (default): serve nothing while the audit trail cannot be written;
    /// `continue`: keep serving, log and count the failures.
    pub audit_on_failure: Option<String>,
    /// PEM certificate chain and key of the S3 listener (both or neither): TLS when set.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// The S3 listener serves plain HTTP but is reached only through a TLS terminator (a
    /// load balancer or proxy) the operator trusts: SSE-C is accepted on it.
    pub trusted_tls_terminator: Option<bool>,
    /// PEM certificate chain and key of the admin listener (both or neither).
    pub admin_tls_cert_file: Option<PathBuf>,
    pub admin_tls_key_file: Option<PathBuf>,
    /// PEM CA certificates: when set, admin clients must present a certificate they issued.
    pub admin_client_ca_file: Option<PathBuf>,
    #[serde(default)]
    pub arrays: Vec<RawArray>,
    /// Where the root key lives (default: a local file, for development).
    pub key_provider: Option<RawKeyProvider>,
    /// Labels of the per-tenant and per-bucket series of `/metrics`.
    pub metrics: Option<RawMetrics>,
    /// Pace of the background rewrap after a tenant KEK rotation.
    pub key_rotation: Option<RawKeyRotation>,
    /// What the first start creates (the `default` tenant).
    pub bootstrap: Option<RawBootstrap>,
    /// Caps on connections and requests in flight, and deadlines on slow clients.
    pub limits: Option<RawLimits>,
    /// Where the metadata lives: RocksDB (default) or PostgreSQL.
    pub metadata: Option<RawMetadata>,
    /// This gateway's name among those sharing the metadata store (default: the host name).
    /// Unique per node: a node's leases and write intents are known by it.
    pub node_name: Option<String>,
}

/// Values given on the command line or in the environment; each wins over the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub s3_listen: Option<String>,
    pub admin_listen: Option<String>,
    pub domain: Option<String>,
    pub region: Option<String>,
    pub log_level: Option<String>,
    pub admin_token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub metadata: MetadataConfig,
    pub node_name: String,
    pub s3_listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub domain: Option<String>,
    pub region: String,
    pub inline_max: usize,
    pub gc_interval: std::time::Duration,
    pub arrays: Vec<ArrayConfig>,
    pub log_level: String,
    pub log_format: LogFormat,
    pub admin_token: TokenSource,
    pub audit: AuditConfig,
    pub key_provider: KeyProviderConfig,
    /// TLS of the S3 listener; plain HTTP when `None`.
    pub s3_tls: Option<TlsFiles>,
    /// The plain-HTTP S3 listener is behind a trusted TLS terminator (SSE-C is accepted).
    pub trusted_tls_terminator: bool,
    /// TLS (and optional client certificates) of the admin listener; plain HTTP when `None`.
    pub admin_tls: Option<TlsFiles>,
    pub metrics: MetricsConfig,
    pub key_rotation: KeyRotationConfig,
    pub bootstrap: BootstrapConfig,
    pub limits: LimitsConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

fn invalid(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        message: message.into(),
    }
}

impl RawConfig {
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }
}

pub const DEFAULT_INLINE_MAX: u64 = 64 * 1024;
const MAX_INLINE_MAX: u64 = 1024 * 1024;

impl Config {
    pub fn resolve(raw: RawConfig, overrides: Overrides) -> Result<Self, ConfigError> {
        let data_dir = overrides
            .data_dir
            .or(raw.data_dir)
            .unwrap_or_else(|| PathBuf::from("./data"));
        if data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        let s3_listen = parse_addr(
            "s3_listen",
            overrides.s3_listen.or(raw.s3_listen).as_deref(),
            "127.0.0.1:9000",
        )?;
        let admin_listen = parse_addr(
            "admin_listen",
            overrides.admin_listen.or(raw.admin_listen).as_deref(),
            "127.0.0.1:9001",
        )?;
        if s3_listen == admin_listen && s3_listen.port() != 0 {
            return Err(invalid(
                "admin_listen",
                "must differ from s3_listen: the admin API has its own listener",
            ));
        }
        let domain = match overrides.domain.or(raw.domain) {
            None => None,
            Some(d) if d.is_empty() => None,
            Some(d) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                let valid = d.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
                if !valid {
                    return Err(invalid("domain", format!("'{d}' is not a DNS name")));
                }
                Some(d)
            }
        };
        let region = overrides
            .region
            .or(raw.region)
            .unwrap_or_else(|| "us-east-1".to_owned());
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid(
                "region",
                format!("'{region}' is not a region name"),
            ));
        }
        let inline_max = raw.inline_max_bytes.unwrap_or(DEFAULT_INLINE_MAX);
        if inline_max > MAX_INLINE_MAX {
            return Err(invalid(
                "inline_max_bytes",
                format!("at most {MAX_INLINE_MAX} (metadata records stay small)"),
            ));
        }
        let gc_interval = std::time::Duration::from_secs(raw.gc_interval_secs.unwrap_or(60));
        if gc_interval.is_zero() {
            return Err(invalid("gc_interval_secs", "must be at least 1"));
        }

        let arrays = resolve_arrays(raw.arrays, &data_dir)?;

        let log_level = overrides
            .log_level
            .or(raw.log_level)
            .unwrap_or_else(|| "info".to_owned());
        if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
            return Err(invalid(
                "log_level",
                format!("'{log_level}' is not a filter"),
            ));
        }
        let log_format = match raw.log_format.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(invalid(
                    "log_format",
                    format!("'{other}': expected text or json"),
                ))
            }
        };

        let admin_token = match overrides.admin_token_file.or(raw.admin_token_file) {
            Some(path) if path.as_os_str().is_empty() => {
                return Err(invalid("admin_token_file", "must not be empty"))
            }
            Some(path) => TokenSource::Configured(path),
            None => TokenSource::Generated(data_dir.join("admin-token")),
        };

        let audit = resolve_audit(raw.audit_dir, raw.audit_on_failure.as_deref(), &data_dir)?;
        let key_provider = resolve_key_provider(raw.key_provider, &data_dir)?;
        let metrics = MetricsConfig::resolve(raw.metrics)?;
        let key_rotation = KeyRotationConfig::resolve(raw.key_rotation)?;
        let bootstrap = BootstrapConfig::resolve(raw.bootstrap);
        let limits = LimitsConfig::resolve(raw.limits)?;
        let s3_tls = tls_files(
            ("tls_cert_file", raw.tls_cert_file),
            ("tls_key_file", raw.tls_key_file),
        )?;
        // A listener that serves TLS itself is secure whatever this says.
        let trusted_tls_terminator = raw.trusted_tls_terminator.unwrap_or(false);
        let mut admin_tls = tls_files(
            ("admin_tls_cert_file", raw.admin_tls_cert_file),
            ("admin_tls_key_file", raw.admin_tls_key_file),
        )?;
        if let Some(ca) = raw.admin_client_ca_file {
            let Some(admin_tls) = admin_tls.as_mut() else {
                return Err(invalid(
                    "admin_client_ca_file",
                    "needs admin_tls_cert_file and admin_tls_key_file: client certificates \
                     are checked by TLS",
                ));
            };
            admin_tls.client_ca = Some(non_empty("admin_client_ca_file", ca)?);
        }
        Ok(Self {
            s3_tls,
            trusted_tls_terminator,
            admin_tls,
            key_provider,
            metrics,
            key_rotation,
            bootstrap,
            limits,
            audit,
            admin_token,
            metadata: MetadataConfig::resolve(raw.metadata, &data_dir)?,
            node_name: resolve_node_name(raw.node_name)?,
            data_dir,
            s3_listen,
            admin_listen,
            domain,
            region,
            inline_max: inline_max as usize,
            gc_interval,
            arrays,
            log_level,
            log_format,
        })
    }
}

/// The node name as given, or the host name; letters, digits, `.`, `_` and `-`, at most 64.
fn resolve_node_name(given: Option<String>) -> Result<String, ConfigError> {
    let name = match given {
        Some(name) => name,
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "coffre".to_owned()),
    };
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !valid {
        return Err(invalid(
            "node_name",
            format!("'{name}': 1 to 64 letters, digits, '.', '_' or '-'"),
        ));
    }
    Ok(name)
}

fn parse_addr(
    field: &'static str,
    value: Option<&str>,
    default: &str,
) -> Result<SocketAddr, ConfigError> {
    let value = value.unwrap_or(default);
    value.parse().map_err(|_| {
        invalid(
            field,
            format!("'{value}' is not an address:port (e.g. 127.0.0.1:9000)"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("test.toml"),
            message: e.to_string(),
        })?;
        Config::resolve(raw, Overrides::default())
    }

    #[test]
    fn defaults_are_the_embedded_setup() {
        let config = parse("").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.s3_listen.to_string(), "127.0.0.1:9000");
        assert_eq!(config.admin_listen.to_string(), "127.0.0.1:9001");
        assert_eq!(
            config.metadata,
            MetadataConfig::Rocks {
                dir: PathBuf::from("./data/meta")
            }
        );
        assert_eq!(config.arrays.len(), 1);
        assert_eq!(config.arrays[0].path, PathBuf::from("./data/arrays/0"));
        assert_eq!(
            config.admin_token,
            TokenSource::Generated(PathBuf::from("./data/admin-token"))
        );
        let configured = parse("admin_token_file = \"/etc/coffre/admin-token\"")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            configured.admin_token,
            TokenSource::Configured(PathBuf::from("/etc/coffre/admin-token"))
        );
    }

    #[test]
    fn flags_override_the_file() {
        let raw: RawConfig = toml::from_str("s3_listen = \"127.0.0.1:7000\"\n").unwrap_or_default();
        let config = Config::resolve(
            raw,
            Overrides {
                s3_listen: Some("127.0.0.1:7100".into()),
                ..Overrides::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.s3_listen.port(), 7100);
    }

    #[test]
    fn the_example_in_deploy_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/coffre.example.toml");
        let raw = RawConfig::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let config = Config::resolve(raw, Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.arrays.len(), 2);
        assert_eq!(config.domain.as_deref(), Some("s3.example.net"));
        assert_eq!(config.log_format, LogFormat::Json);
        // Resolving it opened no HSM: this machine need not have the module or the PIN.
        assert_eq!(config.key_provider.kind(), "pkcs11");
        assert_eq!(config.metrics.bucket_labels.len(), 1);
    }

    #[test]
    fn the_cluster_examples_in_deploy_are_valid_and_differ_only_in_their_node_names() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/cluster");
        let mut names = Vec::new();
        for file in ["gw1.toml", "gw2.toml", "gw3.toml"] {
            let raw = RawConfig::from_file(&dir.join(file)).unwrap_or_else(|e| panic!("{e}"));
            let config =
                Config::resolve(raw, Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
            assert!(matches!(config.metadata, MetadataConfig::Postgres { .. }));
            assert_eq!(config.arrays.len(), 2);
            names.push(config.node_name);
        }
        assert_eq!(names, ["gw1", "gw2", "gw3"]);
    }

    #[test]
    fn a_plain_s3_listener_may_be_declared_behind_a_trusted_tls_terminator() {
        let config = parse("").unwrap_or_else(|e| panic!("{e}"));
        assert!(!config.trusted_tls_terminator);
        let config = parse("trusted_tls_terminator = true").unwrap_or_else(|e| panic!("{e}"));
        assert!(config.trusted_tls_terminator);
        assert!(matches!(
            parse("trusted_tls_terminator = \"yes\""),
            Err(ConfigError::Parse { .. })
        ));
    }

    #[test]
    fn bad_config_is_refused_with_the_field_named() {
        for (text, field) in [
            ("s3_listen = \"nowhere\"", "s3_listen"),
            ("domain = \"bad domain\"", "domain"),
            ("inline_max_bytes = 99999999", "inline_max_bytes"),
            ("log_format = \"xml\"", "log_format"),
            (
                "[[arrays]]\nname = \"a\"\npath = \"/x\"\n[[arrays]]\nname = \"a\"\npath = \"/y\"",
                "arrays",
            ),
            (
                "[[arrays]]\nname = \"a\"\npath = \"/x\"\nweight = 0",
                "arrays",
            ),
            ("[key_provider]\nkind = \"vault\"", "key_provider"),
            ("tls_cert_file = \"/c\"", "tls_key_file"),
            ("tls_key_file = \"/k\"", "tls_cert_file"),
            ("admin_tls_cert_file = \"/c\"", "admin_tls_key_file"),
            ("admin_client_ca_file = \"/ca\"", "admin_client_ca_file"),
            (
                "tls_cert_file = \"\"\ntls_key_file = \"/k\"",
                "tls_cert_file",
            ),
            (
                "[key_provider]\nkind = \"pkcs11\"\npin_file = \"/p\"",
                "key_provider",
            ),
            (
                "[key_provider]\nkind = \"pkcs11\"\ntoken_label = \"t\"",
                "key_provider",
            ),
            (
                "[key_provider]\nkind = \"pkcs11\"\ntoken_label = \"t\"\npin_file = \"/p\"\n\
                 path = \"/k\"",
                "key_provider",
            ),
            (
                "[key_provider]\nkind = \"local-file\"\ntoken_label = \"t\"",
                "key_provider",
            ),
            (
                "[key_provider]\nkind = \"local-file\"\ntenant_keys_in_hsm = true",
                "key_provider",
            ),
        ] {
            match parse(text) {
                Err(ConfigError::Invalid { field: f, .. }) => assert_eq!(f, field, "{text}"),
                other => panic!("{text}: expected an error on {field}, got {other:?}"),
            }
        }
        for text in [
            "unknown_key = 1",
            "[key_provider]\nkind = \"local-file\"\npaht = \"/k\"",
            "[key_provider]\npath = \"/k\"",
        ] {
            assert!(
                matches!(parse(text), Err(ConfigError::Parse { .. })),
                "{text}"
            );
        }
    }
}
