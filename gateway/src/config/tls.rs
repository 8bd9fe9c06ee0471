//! TLS of the S3 and admin listeners: a certificate and its key for each. Only the paths
//! are checked here.

use std::path::PathBuf;

use super::{invalid, ConfigError};
use crate::tls::TlsFiles;

/// A certificate and its key, both or neither. The files are read when the listener
/// starts (so that `check-config` works away from the server), not here.
pub(super) fn tls_files(
    (cert_field, cert): (&'static str, Option<PathBuf>),
    (key_field, key): (&'static str, Option<PathBuf>),
) -> Result<Option<TlsFiles>, ConfigError> {
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert: non_empty(cert_field, cert)?,
            key: non_empty(key_field, key)?,
            client_ca: None,
        })),
        (Some(_), None) => Err(invalid(
            key_field,
            format!("missing: {cert_field} is set, and TLS needs both the certificate and its key"),
        )),
        (None, Some(_)) => Err(invalid(
            cert_field,
            format!("missing: {key_field} is set, and TLS needs both the certificate and its key"),
        )),
    }
}

pub(super) fn non_empty(field: &'static str, path: PathBuf) -> Result<PathBuf, ConfigError> {
    if path.as_os_str().is_empty() {
        Err(invalid(field, "must not be empty"))
    } else {
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;

    #[test]
    fn tls_is_configured_per_listener() {
        let config = parse("").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((config.s3_tls, config.admin_tls), (None, None));
        let config = parse(
            "tls_cert_file = \"/c\"\ntls_key_file = \"/k\"\n\
             admin_tls_cert_file = \"/ac\"\nadmin_tls_key_file = \"/ak\"\n\
             admin_client_ca_file = \"/ca\"",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.s3_tls,
            Some(TlsFiles {
                cert: PathBuf::from("/c"),
                key: PathBuf::from("/k"),
                client_ca: None
            })
        );
        assert_eq!(
            config.admin_tls,
            Some(TlsFiles {
                cert: PathBuf::from("/ac"),
                key: PathBuf::from("/ak"),
                client_ca: Some(PathBuf::from("/ca"))
            })
        );
    }
}
