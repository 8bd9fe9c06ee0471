//! `[metadata]`: where the metadata lives. RocksDB under `<data_dir>/meta` (the default, one
//! node), or PostgreSQL (several gateways sharing one database). The database password is
//! read from a file (0600) and never logged.
//!
//! TLS to PostgreSQL (`tls`, `ca_file`, `cert_file`, `key_file`) is passed to the store as
//! libpq's parameters in the URL's query (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`),
//! which a URL may also carry itself (one or the other); the store reads and checks the
//! files when it connects, at start.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{invalid, ConfigError};

const DEFAULT_POOL_SIZE: u32 = 32;
const MAX_POOL_SIZE: u32 = 1024;
const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 2;

/// The `[metadata]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetadata {
    /// `rocksdb` (default) or `postgres`.
    pub kind: Option<String>,
    /// postgres: `postgresql://user@host:port/database`.
    pub url: Option<String>,
    /// postgres: a file holding the password (mode 0600).
    pub password_file: Option<PathBuf>,
    /// postgres: connections for transactions, and as many for reads (default 32).
    pub pool_size: Option<u32>,
    /// postgres: seconds a request waits for a connection before `ServiceUnavailable`
    /// (default 2).
    pub connect_timeout_secs: Option<u64>,
    /// postgres: `disable`, `require` or `verify-full` (default: `disable` for a loopback
    /// host, `verify-full` otherwise).
    pub tls: Option<String>,
    /// postgres, verify-full: PEM CA certificates to trust (default: the system's).
    pub ca_file: Option<PathBuf>,
    /// postgres: a client certificate chain (PEM) for mutual TLS, with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// postgres: the client certificate's private key (PEM, mode 0600).
    pub key_file: Option<PathBuf>,
}

/// The validated `[metadata]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataConfig {
    /// RocksDB in this directory.
    Rocks { dir: PathBuf },
    Postgres {
        /// With the TLS settings as libpq's parameters in its query (`sslmode`, ...).
        url: String,
        password_file: Option<PathBuf>,
        pool_size: u32,
        connect_timeout: Duration,
    },
}

impl MetadataConfig {
    pub(super) fn resolve(
        raw: Option<RawMetadata>,
        data_dir: &std::path::Path,
    ) -> Result<Self, ConfigError> {
        const FIELD: &str = "metadata";
        let raw = raw.unwrap_or_default();
        match raw.kind.as_deref().unwrap_or("rocksdb") {
            "rocksdb" => {
                let postgres_only = [
                    ("url", raw.url.is_some()),
                    ("password_file", raw.password_file.is_some()),
                    ("pool_size", raw.pool_size.is_some()),
                    ("connect_timeout_secs", raw.connect_timeout_secs.is_some()),
                    ("tls", raw.tls.is_some()),
                    ("ca_file", raw.ca_file.is_some()),
                    ("cert_file", raw.cert_file.is_some()),
                    ("key_file", raw.key_file.is_some()),
                ];
                if let Some((name, _)) = postgres_only.iter().find(|(_, set)| *set) {
                    return Err(invalid(FIELD, format!("{name} is for kind = \"postgres\"")));
                }
                Ok(Self::Rocks {
                    dir: data_dir.join("meta"),
                })
            }
            "postgres" => {
                let url = raw
                    .url
                    .clone()
                    .filter(|u| !u.is_empty())
                    .ok_or_else(|| invalid(FIELD, "kind = \"postgres\" needs url"))?;
                if !(url.starts_with("postgresql://") || url.starts_with("postgres://")) {
                    return Err(invalid(
                        FIELD,
                        "url must be postgresql://user@host:port/database",
                    ));
                }
                let Ok(checked) = url.parse::<postgres_url::Checked>() else {
                    return Err(invalid(FIELD, "url is not a PostgreSQL connection URL"));
                };
                let url = with_tls(url, &checked, &raw)?;
                let pool_size = match raw.pool_size {
                    None => DEFAULT_POOL_SIZE,
                    Some(n @ 1..=MAX_POOL_SIZE) => n,
                    Some(n) => {
                        return Err(invalid(
                            FIELD,
                            format!("pool_size = {n}: between 1 and {MAX_POOL_SIZE}"),
                        ))
                    }
                };
                let connect_timeout = match raw.connect_timeout_secs {
                    None => Duration::from_secs(DEFAULT_CONNECT_TIMEOUT_SECS),
                    Some(s @ 1..=60) => Duration::from_secs(s),
                    Some(s) => {
                        return Err(invalid(
                            FIELD,
                            format!("connect_timeout_secs = {s}: between 1 and 60"),
                        ))
                    }
                };
                Ok(Self::Postgres {
                    url,
                    password_file: raw.password_file,
                    pool_size,
                    connect_timeout,
                })
            }
            other => Err(invalid(
                FIELD,
                format!("kind = \"{other}\": expected rocksdb or postgres"),
            )),
        }
    }
}

/// `url` with the TLS settings of `raw` added as libpq's parameters, after checking that
/// they fit together.
fn with_tls(
    url: String,
    checked: &postgres_url::Checked,
    raw: &RawMetadata,
) -> Result<String, ConfigError> {
    const FIELD: &str = "metadata";
    let in_url = checked.tls_parameters;
    let files = [
        ("ca_file", "sslrootcert", &raw.ca_file),
        ("cert_file", "sslcert", &raw.cert_file),
        ("key_file", "sslkey", &raw.key_file),
    ];
    if in_url && (raw.tls.is_some() || files.iter().any(|(_, _, f)| f.is_some())) {
        return Err(invalid(
            FIELD,
            "TLS is set both in the url (sslmode, sslrootcert, sslcert, sslkey) and by              tls/ca_file/cert_file/key_file: use one or the other",
        ));
    }
    if in_url {
        return Ok(url);
    }
    let mode = match raw.tls.as_deref() {
        None if checked.local => "disable",
        None => "verify-full",
        Some(mode @ ("disable" | "require" | "verify-full")) => mode,
        Some(other) => {
            return Err(invalid(
                FIELD,
                format!("tls = \"{other}\": expected disable, require or verify-full"),
            ))
        }
    };
    match mode {
        "disable" => {
            if let Some((name, _, _)) = files.iter().find(|(_, _, f)| f.is_some()) {
                let why = if raw.tls.is_none() {
                    " (the default for a loopback host): set tls = \"verify-full\""
                } else {
                    ""
                };
                return Err(invalid(
                    FIELD,
                    format!("{name} needs TLS, but tls is \"disable\"{why}"),
                ));
            }
        }
        "require" if raw.ca_file.is_some() => {
            return Err(invalid(
                FIELD,
                "ca_file is not used by tls = \"require\", which verifies nothing: use \
                 tls = \"verify-full\"",
            ))
        }
        _ => {}
    }
    if raw.cert_file.is_some() != raw.key_file.is_some() {
        return Err(invalid(FIELD, "cert_file and key_file go together"));
    }
    let mut url = url;
    let mut separator = if url.contains('?') { '&' } else { '?' };
    let mut add = |name: &str, value: &str| {
        use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
        const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_');
        url.push(separator);
        url.push_str(name);
        url.push('=');
        url.extend(utf8_percent_encode(value, UNRESERVED));
        separator = '&';
    };
    add("sslmode", mode);
    for (name, parameter, file) in files {
        if let Some(path) = file {
            let path = path
                .to_str()
                .ok_or_else(|| invalid(FIELD, format!("{name} {}: not UTF-8", path.display())))?;
            if path.is_empty() {
                return Err(invalid(FIELD, format!("{name} is empty")));
            }
            add(parameter, path);
        }
    }
    Ok(url)
}

/// The URL check, kept apart so that the config crate needs no database client.
mod postgres_url {
    /// A URL that parses as PostgreSQL connection settings.
    pub struct Checked {
        /// Every host is a loopback name or address, or a Unix socket directory.
        pub local: bool,
        /// The query has libpq's TLS parameters (`sslmode`, `sslrootcert`, ...).
        pub tls_parameters: bool,
    }

    impl std::str::FromStr for Checked {
        type Err = ();

        fn from_str(url: &str) -> Result<Self, ()> {
            let rest = url
                .strip_prefix("postgresql://")
                .or_else(|| url.strip_prefix("postgres://"))
                .ok_or(())?;
            // user[:password]@host[:port]/database[?options]
            let (authority, path) = rest.split_once('/').ok_or(())?;
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let (database, query) = path.split_once('?').unwrap_or((path, ""));
            if host.is_empty() || database.is_empty() {
                return Err(());
            }
            let tls_parameters = query.split('&').any(|pair| {
                let key = pair.split('=').next().unwrap_or("");
                matches!(key, "sslmode" | "sslrootcert" | "sslcert" | "sslkey")
            });
            Ok(Checked {
                local: host.split(',').all(is_local),
                tls_parameters,
            })
        }
    }

    /// `host[:port]`: a loopback name or address, or a Unix socket (an absolute path, written
    /// `%2F...` in a URL).
    fn is_local(host_port: &str) -> bool {
        let host = match host_port.strip_prefix('[') {
            // [v6]:port
            Some(rest) => rest.split(']').next().unwrap_or(""),
            None => host_port.split(':').next().unwrap_or(""),
        };
        host.eq_ignore_ascii_case("localhost")
            || host.starts_with("%2F")
            || host.starts_with("%2f")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::*;

    fn raw(text: &str) -> Option<RawMetadata> {
        Some(toml::from_str(text).unwrap())
    }

    #[test]
    fn rocksdb_is_the_default_and_lives_under_the_data_directory() {
        assert_eq!(
            MetadataConfig::resolve(None, Path::new("/d")).unwrap(),
            MetadataConfig::Rocks {
                dir: PathBuf::from("/d/meta")
            }
        );
    }

    #[test]
    fn postgres_takes_a_url_and_defaults() {
        let config = MetadataConfig::resolve(
            raw("kind = \"postgres\"\nurl = \"postgresql://coffre@db:5432/coffre\"\npassword_file = \"/etc/coffre/db-password\""),
            Path::new("/d"),
        )
        .unwrap();
        assert_eq!(
            config,
            MetadataConfig::Postgres {
                // Not a loopback host: verified TLS, trusting the system's CAs.
                url: "postgresql://coffre@db:5432/coffre?sslmode=verify-full".into(),
                password_file: Some(PathBuf::from("/etc/coffre/db-password")),
                pool_size: 32,
                connect_timeout: Duration::from_secs(2),
            }
        );
    }

    fn url_of(text: &str) -> String {
        match MetadataConfig::resolve(raw(text), Path::new("/d")).unwrap() {
            MetadataConfig::Postgres { url, .. } => url,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tls_is_off_by_default_on_loopback_only() {
        for host in [
            "127.0.0.1:5432",
            "localhost",
            "[::1]:5432",
            "%2Fvar%2Frun%2Fpostgresql",
        ] {
            assert_eq!(
                url_of(&format!(
                    "kind = \"postgres\"\nurl = \"postgresql://u@{host}/d?options=-cx%3D1\""
                )),
                format!("postgresql://u@{host}/d?options=-cx%3D1&sslmode=disable"),
            );
        }
        for host in ["10.0.0.5", "db.example.net:5432", "127.0.0.1,db2"] {
            assert!(
                url_of(&format!(
                    "kind = \"postgres\"\nurl = \"postgresql://u@{host}/d\""
                ))
                .ends_with("/d?sslmode=verify-full"),
                "{host}"
            );
        }
    }

    #[test]
    fn tls_settings_become_libpq_parameters() {
        assert_eq!(
            url_of(
                "kind = \"postgres\"\nurl = \"postgresql://u@127.0.0.1/d\"\ntls = \"verify-full\"\n\
                 ca_file = \"/etc/coffre/db ca.pem\"\ncert_file = \"/c.pem\"\nkey_file = \"/k.pem\""
            ),
            "postgresql://u@127.0.0.1/d?sslmode=verify-full\
             &sslrootcert=%2Fetc%2Fcoffre%2Fdb%20ca.pem&sslcert=%2Fc.pem&sslkey=%2Fk.pem"
        );
        assert_eq!(
            url_of("kind = \"postgres\"\nurl = \"postgresql://u@db/d\"\ntls = \"require\""),
            "postgresql://u@db/d?sslmode=require"
        );
        // Set in the url itself: left as it is.
        assert_eq!(
            url_of("kind = \"postgres\"\nurl = \"postgresql://u@db/d?sslmode=require\""),
            "postgresql://u@db/d?sslmode=require"
        );
    }

    #[test]
    fn mistakes_are_named() {
        for (text, expected) in [
            ("kind = \"postgres\"", "needs url"),
            (
                "kind = \"postgres\"\nurl = \"mysql://x/y\"",
                "postgresql://",
            ),
            (
                "kind = \"postgres\"\nurl = \"postgresql://u@h:1\"",
                "not a PostgreSQL",
            ),
            (
                "kind = \"postgres\"\nurl = \"postgresql://u@h/d\"\npool_size = 0",
                "pool_size",
            ),
            ("url = \"postgresql://u@h/d\"", "is for kind"),
            ("kind = \"etcd\"", "expected rocksdb or postgres"),
            ("tls = \"require\"", "is for kind"),
            (
                "kind = \"postgres\"\nurl = \"postgresql://u@h/d\"\ntls = \"prefer\"",
                "expected disable, require or verify-full",
            ),
            (
                "kind = \"postgres\"\nurl = \"postgresql://u@127.0.0.1/d\"\nca_file = \"/ca\"",
                "ca_file needs TLS",
            ),
            (
                "kind = \"postgres\"\nurl = \"postgresql://u@h/d\"\ntls = \"require\"\nca_file = \"/ca\"",
                "verifies nothing",
            ),
            (
                "kind = \"postgres\"\nurl = \"postgresql://u@h/d\"\ncert_file = \"/c\"",
                "cert_file and key_file go together",
            ),
            (
                "kind = \"postgres\"\nurl = \"postgresql://u@h/d?sslmode=disable\"\ntls = \"require\"",
                "one or the other",
            ),
        ] {
            let err = MetadataConfig::resolve(raw(text), Path::new("/d")).unwrap_err();
            assert!(err.to_string().contains(expected), "{text}: {err}");
        }
    }
}
