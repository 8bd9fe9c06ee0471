//! The admin listener, the `coffre admin` command line over HTTPS with client
//! certificates, and what the first start creates (the `default` tenant).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use coffre_conformance::{
    audit_records, coffre_binary, parse_credentials, send_request, TestServer,
};
use http_body_util::{BodyExt, Full};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

#[tokio::test]
async fn health_is_ok_on_the_admin_listener() {
    let server = TestServer::start();
    let request = http::Request::get(format!("{}/health", server.admin_endpoint))
        .body(Full::new(Bytes::new()).boxed_unsync())
        .unwrap();
    let response = send_request(request).await;
    response.assert_status(200);
}

#[tokio::test]
async fn credentials_file_is_private_and_stable() {
    let mut server = TestServer::start();
    let path = server.data_dir().join("credentials");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode,
        0o600,
        "{} must be readable by its owner only",
        path.display()
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let (key, secret) = parse_credentials(&text).expect("a [default] profile");
    assert!(
        key.len() >= 16 && secret.len() >= 32,
        "credentials look generated: {key}"
    );
    server.restart();
    let again = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        parse_credentials(&again),
        Some((key, secret)),
        "a restart keeps the credentials"
    );
}

/// A certificate authority made for one test, and the PEM files it issues.
struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
}

impl Authority {
    fn new(dir: &Path, name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), issuer.pem()).unwrap();
        Authority { issuer, dir }
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// `(certificate, key)` files for 127.0.0.1.
    fn issue(&self, name: &str, usage: ExtendedKeyUsagePurpose) -> (PathBuf, PathBuf) {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let (cert_file, key_file) = (
            self.dir.join(format!("{name}.crt")),
            self.dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        (cert_file, key_file)
    }
}

/// `coffre admin ARGS...` against `server`'s admin listener: (success, stdout, stderr).
fn coffre_admin(server: &TestServer, args: &[&OsStr]) -> (bool, String, String) {
    let out = Command::new(coffre_binary())
        .arg("admin")
        .arg("--endpoint")
        .arg(&server.admin_endpoint)
        .arg("--token-file")
        .arg(server.data_dir().join("admin-token"))
        .args(args)
        .env_remove("COFFRE_ADMIN_CA_FILE")
        .env_remove("COFFRE_ADMIN_CLIENT_CERT")
        .env_remove("COFFRE_ADMIN_CLIENT_KEY")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn r12_the_cli_speaks_https_with_a_client_certificate() {
    let files = tempfile::tempdir().unwrap();
    let servers = Authority::new(files.path(), "servers");
    let operators = Authority::new(files.path(), "operators");
    let (admin_cert, admin_key) = servers.issue("admin", ExtendedKeyUsagePurpose::ServerAuth);
    let (operator_cert, operator_key) =
        operators.issue("operator", ExtendedKeyUsagePurpose::ClientAuth);
    // The admin listener as deploy/coffre.example.toml sets it up.
    let toml = format!(
        "admin_tls_cert_file = {:?}\nadmin_tls_key_file = {:?}\nadmin_client_ca_file = {:?}\n",
        admin_cert.display().to_string(),
        admin_key.display().to_string(),
        operators.ca_file().display().to_string(),
    );
    let mut server = TestServer::start_with_config(&toml, &[]);
    assert!(server.admin_endpoint.starts_with("https://"));

    let ca = servers.ca_file();
    let with_cert: Vec<&OsStr> = vec![
        "--ca-file".as_ref(),
        ca.as_os_str(),
        "--client-cert".as_ref(),
        operator_cert.as_os_str(),
        "--client-key".as_ref(),
        operator_key.as_os_str(),
    ];
    let mut create = with_cert.clone();
    create.extend(["--json", "tenant", "create", "over-tls"].map(OsStr::new));
    let (ok, stdout, stderr) = coffre_admin(&server, &create);
    assert!(ok, "{stdout}{stderr}");
    let created: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(created["name"], "over-tls");
    let mut list = with_cert.clone();
    list.extend(["tenant", "list"].map(OsStr::new));
    let (ok, stdout, stderr) = coffre_admin(&server, &list);
    assert!(ok && stdout.contains("over-tls"), "{stdout}{stderr}");

    // Without a client certificate the listener refuses the connection.
    let refused: Vec<&OsStr> = vec![
        "--ca-file".as_ref(),
        ca.as_os_str(),
        "tenant".as_ref(),
        "list".as_ref(),
    ];
    let (ok, stdout, stderr) = coffre_admin(&server, &refused);
    assert!(!ok, "served without a client certificate: {stdout}");
    assert!(stderr.contains("cannot reach the admin API"), "{stderr}");
    // Without the CA, the client does not guess whom to trust.
    let mut no_ca: Vec<&OsStr> = with_cert[2..].to_vec();
    no_ca.extend(["tenant", "list"].map(OsStr::new));
    let (ok, _, stderr) = coffre_admin(&server, &no_ca);
    assert!(!ok && stderr.contains("--ca-file"), "{stderr}");

    server.stop();
    let all = audit_records(&server.data_dir().join("audit"));
    let record = all
        .iter()
        .find(|r| r["kind"] == "admin" && r["operation"] == "CreateTenant")
        .unwrap_or_else(|| panic!("no CreateTenant record in {all:#?}"));
    assert!(record["source"].as_str().unwrap().starts_with("127.0.0.1:"));
}

/// `coffre serve ARGS...` on ephemeral ports over `data_dir`, stdout piped: the process and
/// what it printed up to its "listening" line (its admin URL last).
fn serve_piped(data_dir: &Path, args: &[&str]) -> (Child, String, String) {
    let mut child = Command::new(coffre_binary())
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args([
            "--s3-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut printed = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let admin = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("coffre stopped before listening; printed {printed:?}"))
            .unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if let Some(rest) = line.strip_prefix("coffre listening ") {
            let admin = rest
                .split_whitespace()
                .find_map(|w| w.strip_prefix("admin="));
            break admin.unwrap().to_owned();
        }
    };
    (child, printed, admin)
}

#[tokio::test]
async fn r12_the_embedded_default_writes_credentials_but_prints_no_secret_to_a_pipe() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, printed, _) = serve_piped(data.path(), &[]);
    let _ = child.kill();
    let _ = child.wait();
    let path = data.path().join("credentials");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let (key, secret) = parse_credentials(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(printed.contains(&key), "the key id is announced: {printed}");
    assert!(
        !printed.contains(&secret),
        "the secret went to a pipe: {printed}"
    );
}

#[tokio::test]
async fn r12_a_configuration_file_makes_no_default_tenant_unless_asked() {
    for (toml, expected) in [
        ("region = \"us-east-1\"\n", false),
        ("[bootstrap]\ndefault_tenant = true\n", true),
    ] {
        let data = tempfile::tempdir().unwrap();
        let config = data.path().join("coffre.toml");
        std::fs::write(&config, toml).unwrap();
        let (mut child, printed, admin) =
            serve_piped(data.path(), &["--config", config.to_str().unwrap()]);
        let token = std::fs::read_to_string(data.path().join("admin-token")).unwrap();
        let request = http::Request::get(format!("{admin}/admin/v1/tenants"))
            .header("authorization", format!("Bearer {}", token.trim()))
            .body(Full::new(Bytes::new()).boxed_unsync())
            .unwrap();
        let response = send_request(request).await;
        let _ = child.kill();
        let _ = child.wait();
        response.assert_status(200);
        let listed: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        let names: Vec<&str> = listed["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert_eq!(names.contains(&"default"), expected, "{toml}: {names:?}");
        assert_eq!(data.path().join("credentials").exists(), expected, "{toml}");
        if !expected {
            assert!(!printed.contains("Created tenant"), "{printed}");
        }
    }
}
