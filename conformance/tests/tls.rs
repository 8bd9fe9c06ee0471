//! TLS on both listeners: the SDK over HTTPS (trailing checksums, GET, multipart), refusal of
//! plain HTTP and TLS 1.1, certificate reload on SIGHUP without dropping open connections,
//! and client certificates on the admin listener. A test CA is generated for every test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use coffre_conformance::{pseudo_random_bytes, TestServer};
use http_body_util::Empty;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A test certificate authority and a directory for the PEM files it issues.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    dir: TempDir,
}

/// A certificate and its key as PEM files.
struct Issued {
    cert: PathBuf,
    key: PathBuf,
    der: CertificateDer<'static>,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), issuer.pem()).unwrap();
        TestCa { issuer, dir }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    fn pem_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A server certificate for 127.0.0.1, written to `<name>.crt` and `<name>.key`.
    fn server_cert(&self, name: &str) -> Issued {
        self.issue(name, ExtendedKeyUsagePurpose::ServerAuth)
    }

    fn client_cert(&self, name: &str) -> Issued {
        self.issue(name, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, name: &str, usage: ExtendedKeyUsagePurpose) -> Issued {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let issued = Issued {
            cert: self.dir.path().join(format!("{name}.crt")),
            key: self.dir.path().join(format!("{name}.key")),
            der: cert.der().clone(),
        };
        std::fs::write(&issued.key, key.serialize_pem()).unwrap();
        std::fs::write(&issued.cert, cert.pem()).unwrap();
        issued
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        roots
    }
}

fn toml_path(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

/// A server whose S3 listener serves `cert`, plus `extra` configuration lines.
fn start_tls(cert: &Issued, extra: &str) -> TestServer {
    let toml = format!(
        "tls_cert_file = {}\ntls_key_file = {}\n{extra}",
        toml_path(&cert.cert),
        toml_path(&cert.key)
    );
    let server = TestServer::start_with_config(&toml, &[]);
    assert!(
        server.endpoint.starts_with("https://"),
        "{}",
        server.endpoint
    );
    server
}

/// A client trusting `ca`, presenting `client_cert` if given.
fn client_config(ca: &TestCa, client_cert: Option<&Issued>) -> ClientConfig {
    let builder = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(ca.roots());
    match client_cert {
        None => builder.with_no_client_auth(),
        Some(issued) => {
            let certs = CertificateDer::pem_file_iter(&issued.cert)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_file(&issued.key).unwrap();
            builder.with_client_auth_cert(certs, key).unwrap()
        }
    }
}

/// An open HTTP/1.1 connection over TLS, and the certificate the server presented.
struct TlsConnection {
    sender: SendRequest<Empty<Bytes>>,
    server_cert: CertificateDer<'static>,
}

async fn connect(
    addr: &str,
    ca: &TestCa,
    client_cert: Option<&Issued>,
) -> std::io::Result<TlsConnection> {
    let config = client_config(ca, client_cert);
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    let server_cert = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(connection);
    Ok(TlsConnection {
        sender,
        server_cert,
    })
}

impl TlsConnection {
    /// GET `path` on this connection; the status, or the error if the connection failed.
    async fn get(&mut self, path: &str) -> Result<u16, hyper::Error> {
        self.sender.ready().await?;
        let request = hyper::Request::get(path)
            .header("host", "127.0.0.1")
            .body(Empty::new())
            .unwrap();
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        // Read the body so that the connection can carry the next request.
        http_body_util::BodyExt::collect(response.into_body()).await?;
        Ok(status)
    }
}

fn host_port(endpoint: &str) -> &str {
    endpoint.trim_start_matches("https://")
}

/// Records the headers of every request the SDK sends.
#[derive(Debug, Default, Clone)]
struct SentHeaders(Arc<Mutex<Vec<http::HeaderMap>>>);

impl Intercept for SentHeaders {
    fn name(&self) -> &'static str {
        "SentHeaders"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        let mut headers = http::HeaderMap::new();
        for (name, value) in context.request().headers() {
            headers.append(
                http::HeaderName::from_bytes(name.as_bytes())?,
                http::HeaderValue::from_str(value)?,
            );
        }
        self.0.lock().unwrap().push(headers);
        Ok(())
    }
}

#[tokio::test]
async fn the_sdk_puts_gets_and_uploads_parts_over_https() {
    let ca = TestCa::new("coffre test CA");
    let server = start_tls(&ca.server_cert("s3"), "");
    let s3 = server.s3_client_https(&ca.pem());
    s3.create_bucket().bucket("secure").send().await.unwrap();

    // The SDK's default checksums: a streaming body goes aws-chunked with a trailing
    // checksum (an in-memory one gets an x-amz-checksum-* header instead).
    let sent = SentHeaders::default();
    let data = pseudo_random_bytes(300 * 1024, 1);
    let file = ca.dir.path().join("object.bin");
    std::fs::write(&file, &data).unwrap();
    let put = s3
        .put_object()
        .bucket("secure")
        .key("object")
        .body(ByteStream::from_path(&file).await.unwrap())
        .customize()
        .interceptor(sent.clone())
        .send()
        .await
        .unwrap();
    assert!(put.checksum_crc32().is_some() || put.checksum_crc64_nvme().is_some());
    let headers = sent.0.lock().unwrap().pop().unwrap();
    assert!(
        headers.contains_key("x-amz-trailer"),
        "the SDK sent no trailing checksum over HTTPS: {headers:?}"
    );

    let got = s3
        .get_object()
        .bucket("secure")
        .key("object")
        .send()
        .await
        .unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes(), data);

    let upload = s3
        .create_multipart_upload()
        .bucket("secure")
        .key("parts")
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap();
    let parts = [
        pseudo_random_bytes(5 * 1024 * 1024, 2),
        pseudo_random_bytes(1024, 3),
    ];
    let mut completed = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        let number = index as i32 + 1;
        let out = s3
            .upload_part()
            .bucket("secure")
            .key("parts")
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(part.clone()))
            .send()
            .await
            .unwrap();
        completed.push(
            CompletedPart::builder()
                .part_number(number)
                .e_tag(out.e_tag().unwrap())
                .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
                .set_checksum_crc64_nvme(out.checksum_crc64_nvme().map(str::to_owned))
                .build(),
        );
    }
    s3.complete_multipart_upload()
        .bucket("secure")
        .key("parts")
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket("secure")
        .key("parts")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes(),
        parts.concat()
    );
}

/// Sends `bytes` on a fresh TCP connection and returns what comes back before the server
/// closes it.
async fn exchange(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(bytes).await.unwrap();
    let mut reply = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), tcp.read_to_end(&mut reply)).await;
    assert!(read.is_ok(), "the server kept the connection open");
    reply
}

/// A TLS 1.1 ClientHello offering ECDHE-RSA-AES128-SHA (CBC) and no supported_versions.
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02]; // client_version TLS 1.1
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0x00, 0x02, 0xc0, 0x13]); // cipher suites
    body.extend_from_slice(&[0x01, 0x00]); // compression: null
    body.extend_from_slice(&[0x00, 0x00]); // no extensions
    let mut handshake = vec![0x01, 0x00];
    handshake.extend_from_slice(&(body.len() as u16).to_be_bytes());
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

#[tokio::test]
async fn plain_http_and_tls_1_1_are_refused_and_tls_1_2_uses_ecdhe_aead() {
    let ca = TestCa::new("coffre test CA");
    let server = start_tls(&ca.server_cert("s3"), "");
    let addr = server.authority();

    let reply = exchange(&addr, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await;
    assert!(!reply.starts_with(b"HTTP/"), "plain HTTP was answered");

    let reply = exchange(&addr, &tls11_client_hello()).await;
    // An alert record (or nothing), never a ServerHello.
    assert!(
        reply.first().is_none_or(|&kind| kind == 0x15),
        "TLS 1.1 got {reply:02x?}"
    );

    let tls12 = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_root_certificates(ca.roots())
    .with_no_client_auth();
    let tcp = TcpStream::connect(&addr).await.unwrap();
    let tls = TlsConnector::from(Arc::new(tls12))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    let suite = format!("{:?}", tls.get_ref().1.negotiated_cipher_suite().unwrap());
    assert!(suite.starts_with("TLS_ECDHE_"), "{suite}");
    assert!(
        suite.contains("GCM") || suite.contains("CHACHA20_POLY1305"),
        "{suite}"
    );
}

fn send_sighup(server: &TestServer) {
    let status = Command::new("kill")
        .arg("-HUP")
        .arg(server.pid().unwrap().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Connects until the server presents `expected` (a reload is asynchronous to the signal).
async fn wait_for_cert(addr: &str, ca: &TestCa, expected: &CertificateDer<'static>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let connection = connect(addr, ca, None).await.unwrap();
        if connection.server_cert == *expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served"
        );
        // The poll interval of the wait for the new certificate, under the deadline above.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sighup_reloads_the_certificate_and_keeps_open_connections() {
    let ca = TestCa::new("coffre test CA");
    let first = ca.server_cert("s3");
    let server = start_tls(&first, "");
    let addr = server.authority();

    let mut open = connect(&addr, &ca, None).await.unwrap();
    assert_eq!(open.server_cert, first.der);
    let status = open.get("/").await.unwrap();

    // A new certificate under the same file names.
    let second = ca.server_cert("s3");
    assert_eq!(second.cert, first.cert);
    send_sighup(&server);
    wait_for_cert(&addr, &ca, &second.der).await;
    assert_eq!(open.get("/").await.unwrap(), status, "keep-alive survives");

    // A broken file is refused: the server keeps serving the current certificate.
    std::fs::write(&second.cert, "not a certificate").unwrap();
    send_sighup(&server);
    for _ in 0..10 {
        let mut fresh = connect(&addr, &ca, None).await.unwrap();
        assert_eq!(fresh.server_cert, second.der);
        assert_eq!(fresh.get("/").await.unwrap(), status);
    }
    let third = ca.server_cert("s3");
    send_sighup(&server);
    wait_for_cert(&addr, &ca, &third.der).await;
    assert_eq!(open.get("/").await.unwrap(), status, "keep-alive survives");
}

#[tokio::test]
async fn the_admin_listener_can_require_client_certificates() {
    let ca = TestCa::new("coffre test CA");
    let s3 = ca.server_cert("s3");
    let admin = ca.server_cert("admin");
    let clients = TestCa::new("coffre client CA");
    let extra = format!(
        "admin_tls_cert_file = {}\nadmin_tls_key_file = {}\nadmin_client_ca_file = {}\n",
        toml_path(&admin.cert),
        toml_path(&admin.key),
        toml_path(&clients.pem_path())
    );
    let server = start_tls(&s3, &extra);
    assert!(server.admin_endpoint.starts_with("https://"));
    let addr = host_port(&server.admin_endpoint);

    let trusted = clients.client_cert("operator");
    let mut connection = connect(addr, &ca, Some(&trusted)).await.unwrap();
    assert_eq!(connection.server_cert, admin.der);
    assert_eq!(connection.get("/health").await.unwrap(), 200);

    // TLS 1.3 reports a refused client certificate after the client's handshake finishes,
    // so the refusal shows on the connection or on its first request.
    let stranger_ca = TestCa::new("someone else");
    let stranger = stranger_ca.client_cert("stranger");
    for cert in [None, Some(&stranger)] {
        let refused = match connect(addr, &ca, cert).await {
            Err(_) => true,
            Ok(mut connection) => connection.get("/health").await.is_err(),
        };
        assert!(refused, "a client without a trusted certificate was served");
    }

    // The S3 listener asks for no client certificate.
    let mut s3_connection = connect(&server.authority(), &ca, None).await.unwrap();
    assert!(s3_connection.get("/").await.is_ok());
}
