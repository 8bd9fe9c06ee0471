//! TLS between the gateway and PostgreSQL (`[metadata] tls`, `ca_file`, `cert_file`,
//! `key_file`), against a PostgreSQL server of the test's own that speaks TLS only
//! (`conformance/postgres start --tls`: `ssl = on`, `hostssl` lines only, so plain TCP is
//! refused), with a CA and certificates generated here:
//!
//! - `verify-full` with the right CA serves S3 requests, over connections the server reports
//!   as TLS; `require` without a CA too; a client certificate gets into the database that
//!   demands one (mutual TLS).
//! - A server certificate of another CA, or not naming the host connected to, is refused:
//!   the gateway does not start, and says why. So is TLS disabled against this server, a
//!   missing client certificate, a client key others may read, a CA file missing or not
//!   PEM, and TLS required of a server that does not offer it (the suite's own).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use coffre_conformance::own_postgres::OwnPostgres;
use coffre_conformance::{
    coffre_binary, create_buckets, get_bytes, pseudo_random_bytes, TestServer,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// How long a gateway that cannot reach its database may take to give up (its connect
/// timeout is 1 s).
const REFUSAL_DEADLINE: Duration = Duration::from_secs(30);

/// A CA of this test's own.
struct Ca(CertifiedIssuer<'static, KeyPair>);

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ca(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
    }

    /// Writes the CA certificate to `path`.
    fn write(&self, path: &Path) -> PathBuf {
        std::fs::write(path, self.0.pem()).unwrap();
        path.to_owned()
    }

    /// Issues a certificate for `names` (subject alternative names) with common name `cn`,
    /// written as `<dir>/<stem>.crt` and `<dir>/<stem>.key` (0600).
    fn issue(
        &self,
        dir: &Path,
        stem: &str,
        names: &[&str],
        cn: &str,
        usage: ExtendedKeyUsagePurpose,
    ) -> (PathBuf, PathBuf) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.0).unwrap();
        let (cert_path, key_path) = (
            dir.join(format!("{stem}.crt")),
            dir.join(format!("{stem}.key")),
        );
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        set_mode(&key_path, 0o600);
        (cert_path, key_path)
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// What the tests need: a TLS-only PostgreSQL whose certificate names 127.0.0.1 only
/// (not `localhost`), the CA that issued it, another CA, and a client certificate for the
/// `mtls` database (the user `coffre`, issued by a client CA the server trusts).
struct Setup {
    dir: tempfile::TempDir,
    postgres: OwnPostgres,
    ca: PathBuf,
    other_ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("coffre-postgres-tls-")
            .tempdir()
            .unwrap();
        let ca = Ca::new("coffre test database CA");
        let server_dir = dir.path().join("server");
        std::fs::create_dir(&server_dir).unwrap();
        ca.issue(
            &server_dir,
            "server",
            &["127.0.0.1"],
            "coffre test database",
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let client_ca = Ca::new("coffre test database client CA");
        client_ca.write(&server_dir.join("client-ca.crt"));
        let (client_cert, client_key) = client_ca.issue(
            dir.path(),
            "client",
            &[],
            "coffre",
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let postgres = tls_postgres(&server_dir);
        // A database per gateway: each has a root key of its own.
        for database in ["verified", "required", "mtls"] {
            query(
                &postgres,
                "postgres",
                &format!("CREATE DATABASE {database}"),
            );
        }
        Setup {
            ca: ca.write(&dir.path().join("ca.pem")),
            other_ca: Ca::new("another CA").write(&dir.path().join("other-ca.pem")),
            client_cert,
            client_key,
            postgres,
            dir,
        }
    }

    /// A `[metadata]` table for `host` and `database`, with `tls` lines of its own.
    fn metadata(&self, host: &str, database: &str, tls: &str) -> String {
        format!(
            "[metadata]\nkind = \"postgres\"\nurl = \"postgresql://coffre@{host}:{}/{database}\"\n\
             pool_size = 2\nconnect_timeout_secs = 1\n{tls}\n",
            self.postgres.port()
        )
    }
}

/// `conformance/postgres start --tls`: a TLS-only server of the test's own.
fn tls_postgres(server_dir: &Path) -> OwnPostgres {
    let dir = server_dir.to_str().expect("a UTF-8 temporary path");
    OwnPostgres::start(&["--tls", dir])
}

/// Runs `sql` on `database` over the server's Unix socket (`local ... trust`: the one way
/// in without TLS), on a thread of its own (the synchronous client runs a runtime of its
/// own).
fn query(postgres: &OwnPostgres, database: &str, sql: &str) -> Vec<postgres::SimpleQueryMessage> {
    let config = format!(
        "host={} port={} user=coffre dbname={database}",
        postgres.var("COFFRE_TEST_POSTGRES_DIR"),
        postgres.port()
    );
    let sql = sql.to_owned();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&config, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL ({config}): {e}"));
        client.simple_query(&sql).unwrap()
    })
    .join()
    .unwrap()
}

/// Starts the gateway on `metadata` and expects it to stop before it is ready, within the
/// deadline: returns what it wrote.
fn refused(setup: &Setup, name: &str, metadata: &str) -> String {
    let data_dir = setup.dir.path().join(name);
    std::fs::create_dir(&data_dir).unwrap();
    let config = data_dir.join("coffre.toml");
    std::fs::write(&config, metadata).unwrap();
    let mut child = Command::new(coffre_binary())
        .arg("serve")
        .arg("--data-dir")
        .arg(&data_dir)
        .args([
            "--s3-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start coffre");
    let deadline = Instant::now() + REFUSAL_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "{name}: still running after {REFUSAL_DEADLINE:?}: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("--- {name}: the gateway said:\n{text}");
    assert!(!status.success(), "{name}: exited {status}: {text}");
    assert!(
        !text.contains("coffre listening"),
        "{name}: became ready: {text}"
    );
    text
}

/// One PUT and GET through aws-sdk-s3.
async fn round_trip(server: &TestServer, bucket: &str) {
    let s3 = server.s3_client();
    create_buckets(&s3, &[bucket]).await;
    let data = pseudo_random_bytes(100_000, 7);
    s3.put_object()
        .bucket(bucket)
        .key("over-tls")
        .body(data.clone().into())
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&s3, bucket, "over-tls").await, data);
}

#[tokio::test]
async fn the_gateway_reaches_postgresql_over_tls() {
    let setup = Setup::new();

    // verify-full, trusting the CA of the server's certificate.
    let server = TestServer::start_with_config(
        &setup.metadata(
            "127.0.0.1",
            "verified",
            &format!("tls = \"verify-full\"\nca_file = {:?}", setup.ca),
        ),
        &[],
    );
    round_trip(&server, "verified").await;
    // Every TCP connection the server has is TLS (pg_hba.conf leaves no other way), and
    // the gateway's are among them.
    let rows = query(
        &setup.postgres,
        "postgres",
        "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a \
         JOIN pg_stat_ssl s USING (pid) WHERE a.client_addr IS NOT NULL",
    );
    let counts: Vec<(String, String)> = rows
        .iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => {
                Some((r.get(0).unwrap().to_owned(), r.get(1).unwrap().to_owned()))
            }
            _ => None,
        })
        .collect();
    let (all, tls) = &counts[0];
    assert!(all.parse::<u32>().unwrap() > 0, "no TCP connection seen");
    assert_eq!(all, tls, "connections without TLS");
    drop(server);

    // require: encrypted, nothing verified (no CA needed).
    let server = TestServer::start_with_config(
        &setup.metadata("127.0.0.1", "required", "tls = \"require\""),
        &[],
    );
    round_trip(&server, "unverified").await;
    drop(server);

    // Mutual TLS: the `mtls` database takes clients with a certificate of its client CA.
    let server = TestServer::start_with_config(
        &setup.metadata(
            "127.0.0.1",
            "mtls",
            &format!(
                "tls = \"verify-full\"\nca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}",
                setup.ca, setup.client_cert, setup.client_key
            ),
        ),
        &[],
    );
    round_trip(&server, "mutual").await;
}

#[test]
fn the_gateway_refuses_a_database_it_cannot_trust() {
    let setup = Setup::new();

    // The server's certificate is not signed by the CA trusted.
    let text = refused(
        &setup,
        "other-ca",
        &setup.metadata(
            "127.0.0.1",
            "postgres",
            &format!("tls = \"verify-full\"\nca_file = {:?}", setup.other_ca),
        ),
    );
    assert!(
        text.contains("invalid peer certificate") && text.contains("UnknownIssuer"),
        "{text}"
    );

    // The right CA, but the certificate names 127.0.0.1, not `localhost`.
    let text = refused(
        &setup,
        "other-name",
        &setup.metadata(
            "localhost",
            "postgres",
            &format!("tls = \"verify-full\"\nca_file = {:?}", setup.ca),
        ),
    );
    assert!(
        text.contains("invalid peer certificate: certificate not valid for name \"localhost\""),
        "{text}"
    );

    // No TLS (the default on loopback): the server takes no plain connection.
    let text = refused(
        &setup,
        "plain",
        &setup.metadata("127.0.0.1", "postgres", ""),
    );
    assert!(
        text.contains("pg_hba.conf") && text.contains("no encryption"),
        "{text}"
    );

    // TLS required of the suite's own PostgreSQL server, which does not offer it.
    let plain_server = coffre_conformance::postgres::test_server_url();
    let text = refused(
        &setup,
        "no-tls-offered",
        &format!(
            "[metadata]\nkind = \"postgres\"\nurl = \"{plain_server}\"\nconnect_timeout_secs = 1\n\
             tls = \"require\"\n"
        ),
    );
    assert!(text.contains("server does not support TLS"), "{text}");

    // The database that wants a client certificate, without one.
    let text = refused(
        &setup,
        "no-client-cert",
        &setup.metadata(
            "127.0.0.1",
            "mtls",
            &format!("tls = \"verify-full\"\nca_file = {:?}", setup.ca),
        ),
    );
    assert!(text.contains("certificate"), "{text}");

    // A client key others may read: refused before any connection.
    let exposed = setup.dir.path().join("exposed.key");
    std::fs::copy(&setup.client_key, &exposed).unwrap();
    set_mode(&exposed, 0o644);
    let text = refused(
        &setup,
        "exposed-key",
        &setup.metadata(
            "127.0.0.1",
            "mtls",
            &format!(
                "tls = \"verify-full\"\nca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}",
                setup.ca, setup.client_cert, exposed
            ),
        ),
    );
    assert!(text.contains("chmod 600"), "{text}");

    // A CA file that is no PEM certificate.
    let garbage = setup.dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let text = refused(
        &setup,
        "garbage-ca",
        &setup.metadata(
            "127.0.0.1",
            "postgres",
            &format!("tls = \"verify-full\"\nca_file = {:?}", garbage),
        ),
    );
    assert!(text.contains("no PEM certificate"), "{text}");

    // A CA file that does not exist.
    let text = refused(
        &setup,
        "missing-ca",
        &setup.metadata(
            "127.0.0.1",
            "postgres",
            "tls = \"verify-full\"\nca_file = \"/nonexistent/ca.pem\"",
        ),
    );
    assert!(text.contains("/nonexistent/ca.pem"), "{text}");
}
