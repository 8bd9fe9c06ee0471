//! `[metadata]`: where the metadata lives. RocksDB under `<data_dir>/meta` (the default, one
//! node), or PostgreSQL (several gateways sharing one database). The database password is
//! read from a file (0600) and never logged.

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
}

/// The validated `[metadata]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataConfig {
    /// RocksDB in this directory.
    Rocks { dir: PathBuf },
    Postgres {
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
                    .filter(|u| !u.is_empty())
                    .ok_or_else(|| invalid(FIELD, "kind = \"postgres\" needs url"))?;
                if !(url.starts_with("postgresql://") || url.starts_with("postgres://")) {
                    return Err(invalid(
                        FIELD,
                        "url must be postgresql://user@host:port/database",
                    ));
                }
                if url.parse::<postgres_url::Checked>().is_err() {
                    return Err(invalid(FIELD, "url is not a PostgreSQL connection URL"));
                }
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

/// The URL check, kept apart so that the config crate needs no database client.
mod postgres_url {
    /// A URL that parses as PostgreSQL connection settings.
    pub struct Checked;

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
            let database = path.split('?').next().unwrap_or("");
            if host.is_empty() || database.is_empty() {
                return Err(());
            }
            Ok(Checked)
        }
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
                url: "postgresql://coffre@db:5432/coffre".into(),
                password_file: Some(PathBuf::from("/etc/coffre/db-password")),
                pool_size: 32,
                connect_timeout: Duration::from_secs(2),
            }
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
        ] {
            let err = MetadataConfig::resolve(raw(text), Path::new("/d")).unwrap_err();
            assert!(err.to_string().contains(expected), "{text}: {err}");
        }
    }
}
