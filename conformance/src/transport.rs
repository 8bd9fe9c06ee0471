//! How the tests reach the S3 listener: plain HTTP, or HTTPS when `COFFRE_TEST_TRANSPORT=https`
//! (some SDKs send trailing checksums only over HTTPS, so conformance/run runs the SDK suites
//! both ways). Over HTTPS every server the harness starts serves a certificate issued by a
//! certificate authority generated once per test process, and every client the harness builds
//! trusts that authority and nothing else.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::{ClientConfig, RootCertStore};

/// The environment variable that chooses the transport: `http` (the default) or `https`.
pub const TRANSPORT_ENV: &str = "COFFRE_TEST_TRANSPORT";

/// The transport of the S3 listener of the servers the harness starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Http,
    Https,
}

impl Transport {
    /// The transport `COFFRE_TEST_TRANSPORT` asks for; any other value than `http`, `https`
    /// or nothing fails the test rather than silently testing plain HTTP.
    pub fn from_env() -> Self {
        match std::env::var(TRANSPORT_ENV).as_deref() {
            Err(std::env::VarError::NotPresent) | Ok("" | "http") => Transport::Http,
            Ok("https") => Transport::Https,
            Ok(other) => panic!("{TRANSPORT_ENV}={other:?}: expected `http` or `https`"),
            Err(e) => panic!("{TRANSPORT_ENV}: {e}"),
        }
    }
}

/// The certificate authority of this test process.
pub(crate) struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    client_config: Arc<ClientConfig>,
}

/// The certificate and key files of a server.
pub(crate) struct ServerCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The test process's CA, generated on first use.
pub(crate) fn test_ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(TestCa::generate)
}

impl TestCa {
    fn generate() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, "coffre conformance test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("a CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("a self-signed CA");

        let mut roots = RootCertStore::empty();
        roots.add(issuer.der().clone()).expect("the CA as a root");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let client_config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        TestCa {
            issuer,
            client_config: Arc::new(client_config),
        }
    }

    /// The CA certificate (PEM).
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A rustls client configuration trusting this CA only.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig::clone(&self.client_config)
    }

    /// Issues a server certificate for 127.0.0.1, localhost and `domain` with its
    /// subdomains (virtual-host buckets), written with its key and the CA certificate into
    /// `dir` as PEM files.
    pub fn issue_server_cert(&self, dir: &Path, domain: Option<&str>) -> ServerCert {
        let mut names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        if let Some(domain) = domain {
            names.push(domain.to_string());
            names.push(format!("*.{domain}"));
        }
        let mut params = CertificateParams::new(names).expect("server certificate names");
        params
            .distinguished_name
            .push(DnType::CommonName, "coffre test server");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("a server key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("a server certificate");

        std::fs::create_dir_all(dir).expect("create the TLS directory");
        let issued = ServerCert {
            cert: dir.join("s3.crt"),
            key: dir.join("s3.key"),
        };
        std::fs::write(dir.join("ca.pem"), self.pem()).expect("write ca.pem");
        std::fs::write(&issued.cert, cert.pem()).expect("write the server certificate");
        std::fs::write(&issued.key, key.serialize_pem()).expect("write the server key");
        issued
    }
}
