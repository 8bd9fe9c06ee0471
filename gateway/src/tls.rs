//! TLS for the listeners: a rustls `ServerConfig` built from PEM files, swapped atomically
//! when the files are reloaded (SIGHUP), so that new connections get the new certificate
//! while open ones keep theirs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// The PEM files of one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// When set, clients must present a certificate issued by one of these CAs.
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {message}")]
    Read {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("{what} {path} holds no PEM {expected}")]
    Empty {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
    #[error("client CA file {path}: {message}")]
    ClientCa { path: PathBuf, message: String },
    #[error("certificate {cert} with key {key}: {source}")]
    Config {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
}

/// A listener's TLS settings, reloadable from its files.
#[derive(Debug)]
pub struct ReloadableTls {
    files: TlsFiles,
    current: ArcSwap<ServerConfig>,
}

impl ReloadableTls {
    /// Reads the files; any problem is an error naming the file.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let config = server_config(&files)?;
        Ok(Self {
            files,
            current: ArcSwap::from_pointee(config),
        })
    }

    /// Reads the files again. On error the previous configuration stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&self.files)?;
        self.current.store(Arc::new(config));
        Ok(())
    }

    /// An acceptor for one new connection, with the configuration current right now.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.load_full())
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }
}

/// TLS 1.3, and TLS 1.2 with ECDHE key exchange and AEAD suites only. These are exactly the
/// defaults of rustls 0.23's aws-lc-rs provider (`DEFAULT_CIPHER_SUITES`: the three TLS 1.3
/// suites and `TLS_ECDHE_{ECDSA,RSA}_WITH_{AES_128_GCM,AES_256_GCM,CHACHA20_POLY1305}`;
/// rustls implements no CBC, RSA key exchange or TLS < 1.2), checked by a test below.
/// The aws-lc-rs provider is named explicitly so that no second crypto library is needed.
fn server_config(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs = read_certs("certificate file", &files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::Empty {
            what: "key file",
            path: files.key.clone(),
            expected: "private key",
        },
        other => TlsError::Read {
            what: "key file",
            path: files.key.clone(),
            message: other.to_string(),
        },
    })?;
    let config_error = |source| TlsError::Config {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(config_error)?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs("client CA file", path)? {
                roots.add(cert).map_err(|e| TlsError::ClientCa {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::ClientCa {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(config_error)?;
    // Both listeners speak HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn read_certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read_error = |e: rustls::pki_types::pem::Error| TlsError::Read {
        what,
        path: path.to_owned(),
        message: e.to_string(),
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(read_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_error)?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.to_owned(),
            expected: "certificate",
        });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::{CipherSuite, SupportedCipherSuite};

    fn write_cert(dir: &Path, name: &str) -> TlsFiles {
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .and_then(|p| p.self_signed(&key))
            .unwrap_or_else(|e| panic!("{e}"));
        let files = TlsFiles {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
            client_ca: None,
        };
        std::fs::write(&files.cert, cert.pem()).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&files.key, key.serialize_pem()).unwrap_or_else(|e| panic!("{e}"));
        files
    }

    #[test]
    fn only_tls13_and_ecdhe_aead_tls12_suites_are_offered() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let tls =
            ReloadableTls::load(write_cert(dir.path(), "a")).unwrap_or_else(|e| panic!("{e}"));
        let config = tls.current.load_full();
        let suites: Vec<CipherSuite> = config
            .crypto_provider()
            .cipher_suites
            .iter()
            .map(SupportedCipherSuite::suite)
            .collect();
        use CipherSuite::*;
        assert_eq!(
            suites,
            vec![
                TLS13_AES_256_GCM_SHA384,
                TLS13_AES_128_GCM_SHA256,
                TLS13_CHACHA20_POLY1305_SHA256,
                TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
                TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            ]
        );
    }

    #[test]
    fn a_bad_new_certificate_keeps_the_old_one() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let files = write_cert(dir.path(), "a");
        let tls = ReloadableTls::load(files.clone()).unwrap_or_else(|e| panic!("{e}"));
        let before = tls.current.load_full();
        std::fs::write(&files.cert, "not a certificate").unwrap_or_else(|e| panic!("{e}"));
        let err = tls
            .reload()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("a.crt"), "{err}");
        assert!(Arc::ptr_eq(&before, &tls.current.load_full()));

        write_cert(dir.path(), "a");
        tls.reload().unwrap_or_else(|e| panic!("{e}"));
        assert!(!Arc::ptr_eq(&before, &tls.current.load_full()));
    }

    #[test]
    fn missing_or_mismatched_files_are_named() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let a = write_cert(dir.path(), "a");
        let b = write_cert(dir.path(), "b");
        let missing = TlsFiles {
            key: dir.path().join("nope.key"),
            ..a.clone()
        };
        let err = ReloadableTls::load(missing).err().map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("nope.key"));
        let mismatched = TlsFiles { key: b.key, ..a };
        let err = ReloadableTls::load(mismatched).err().map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("a.crt"));
    }
}
